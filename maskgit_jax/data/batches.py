"""Training batches on grain: a seeded shuffle per epoch, random flips, batching, prefetch.

The pipeline is a grain ``MapDataset``, so it has random access: batch ``s`` is a pure function of
(seed, s). The data position is therefore the step stored in the checkpoint, and a run resumed at
step s reads exactly what an uninterrupted run would have read. Epochs follow each other without a
gap (a batch may hold the end of one epoch and the start of the next), each in its own permutation.

Several hosts: host ``p`` of ``P`` reads rows ``[p * B/P, (p+1) * B/P)`` of every global batch, so
the global batch does not depend on the number of hosts.
"""

import queue
import threading
from typing import Callable, Iterator, Sequence

import grain
import jax
import numpy as np


def _mirror(image_HxWxC: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return image_HxWxC[:, ::-1] if rng.random() < 0.5 else image_HxWxC


def dataset(examples: Sequence, global_batch_size: int, seed: int, flip: bool = False,
            process_index: int | None = None, process_count: int | None = None) -> grain.MapDataset:
    """This host's share of every global batch, indexed by step: ``ds[s]`` is (B/P, ...) numpy.

    examples: anything with ``len`` and ``[i]`` (an in-memory array of images or token ids).
    flip: mirror each image left-right with probability 1/2 (for (H, W, C) images only).
    """
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    if global_batch_size % process_count:
        raise ValueError(f"the global batch size {global_batch_size} is not divisible by the "
                         f"number of hosts {process_count}")
    ds = grain.MapDataset.source(examples).seed(seed).shuffle().repeat()
    if flip:
        ds = ds.random_map(_mirror)
    # Consecutive per-host batches make up one global batch; each host takes its own.
    ds = ds.batch(global_batch_size // process_count, drop_remainder=True)
    return ds[process_index::process_count]


def iterate(ds: grain.MapDataset, start: int, stop: int, threads: int = 2,
            buffer: int = 4) -> Iterator[np.ndarray]:
    """Batches ``start .. stop - 1``, read ahead by ``threads`` grain threads."""
    options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=buffer)
    return iter(ds[start:stop].to_iter_dataset(options))


def prefetch_to_device(host_batches: Iterator, put: Callable, size: int = 2) -> Iterator:
    """Yields ``put(batch)`` for each batch, ``size`` ahead in a thread.

    ``put`` copies the batch to the devices, so the copy overlaps the previous training step.
    """
    q: queue.Queue = queue.Queue(maxsize=size)
    done, failure = object(), []

    def work():
        try:
            for batch in host_batches:
                q.put(put(batch))
        except BaseException as e:  # surfaced in the consumer, not lost in the thread
            failure.append(e)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        yield item
    if failure:
        raise failure[0]
