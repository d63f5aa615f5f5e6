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


def fastest_seconds(runs: dict, rounds: int, calls: int = 1) -> dict:
    """{key: fastest mean seconds per call of ``runs[key]()`` over ``rounds`` rounds of ``calls``
    calls}, the callables taking turns within each round: on a shared machine other tenants only
    ever add time, so the minimum of interleaved runs compares them under the same conditions."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(calls):
                run()
            best[name] = min(best[name], (time.perf_counter() - start) / calls)
    return best
