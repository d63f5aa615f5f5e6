"""Wall-clock timing of work that may run asynchronously on a device."""

import time
from typing import Callable

import jax


def torch_sync() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def seconds(fn: Callable[[], object], repeats: int = 3, warmup: int = 1, sync=None) -> float:
    """Median wall time of ``fn()`` after ``warmup`` calls; each call is waited for to the end.

    JAX results are waited for with ``block_until_ready``; ``sync`` (e.g. ``torch_sync``) is
    called after each call when the work is not JAX's.
    """
    def once() -> float:
        start = time.perf_counter()
        out = fn()
        jax.block_until_ready(out)
        if sync is not None:
            sync()
        return time.perf_counter() - start

    for _ in range(warmup):
        once()
    times = sorted(once() for _ in range(repeats))
    return times[len(times) // 2]
