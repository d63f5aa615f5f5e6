"""Deterministic batches by step number, and a background prefetcher.

Batch ``s`` is fixed by (seed, s) alone: examples are visited epoch by epoch, each epoch in its own
seeded permutation. A run resumed at step s therefore sees exactly the data an uninterrupted run
would have seen; the data position is the step stored in the checkpoint.
"""

import queue
import threading
from typing import Callable, Iterator

import jax
import numpy as np


def _epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batch_indices(num_examples: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Indices of this host's share of the global batch ``step`` (shape (batch_size / hosts,))."""
    start = step * batch_size
    first_epoch, last_epoch = start // num_examples, (start + batch_size - 1) // num_examples
    stream = np.concatenate([_epoch_permutation(num_examples, seed, e)
                             for e in range(first_epoch, last_epoch + 1)])
    offset = start - first_epoch * num_examples
    global_batch = stream[offset: offset + batch_size]
    per_host = batch_size // jax.process_count()
    return global_batch[jax.process_index() * per_host: (jax.process_index() + 1) * per_host]


def prefetch(make_batch: Callable[[int], object], start: int, stop: int,
             size: int = 2) -> Iterator[object]:
    """Yields make_batch(start), ..., make_batch(stop - 1), computed ``size`` ahead in a thread.

    ``make_batch`` may also put the batch on the devices, so the copy overlaps the previous step.
    """
    q: queue.Queue = queue.Queue(maxsize=size)
    failure = []

    def work():
        try:
            for step in range(start, stop):
                q.put(make_batch(step))
        except BaseException as e:  # surfaced in the consumer, not lost in the thread
            failure.append(e)
        q.put(None)

    threading.Thread(target=work, daemon=True).start()
    for _ in range(start, stop):
        item = q.get()
        if item is None:
            raise failure[0] if failure else RuntimeError("prefetch thread stopped early")
        yield item
