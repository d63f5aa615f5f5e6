"""The device mesh: one ``data`` axis over all devices of all hosts (pure data parallelism).

Parameters and optimizer state are replicated; batches are split along their first axis. The same
code runs on 1 CPU, 8 GPUs, a TPU slice or several hosts (after ``distributed.initialize``).
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def make_mesh() -> Mesh:
    """All devices of all processes, each process's devices side by side (in process order).

    So process p's devices hold rows [p * B/P, (p+1) * B/P) of a global batch of B rows: exactly
    the rows that process reads (``data.batches``), and the global batch is the same for any
    number of processes.
    """
    devices = sorted(jax.devices(), key=lambda d: d.process_index)  # stable: keeps JAX's order
    return Mesh(np.asarray(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def check_batch_size(batch_size: int, mesh: Mesh, option: str) -> None:
    devices = mesh.devices.size
    if batch_size % devices:
        raise ValueError(f"{option}={batch_size} must be divisible by the number of devices ({devices})")


def put_batch(host_batch: np.ndarray, mesh: Mesh) -> jax.Array:
    """This host's part of the global batch -> a global array sharded along ``data``."""
    return jax.make_array_from_process_local_data(batch_sharded(mesh), host_batch)


def jit_train_step(step_fn, mesh: Mesh, donate: bool = True):
    """``step_fn(state, batch) -> (state, metrics)`` compiled over the mesh: state replicated and
    donated (updated in place, so parameters and optimizer state are never held twice), batch
    split along ``data``."""
    return jax.jit(step_fn, in_shardings=(replicated(mesh), batch_sharded(mesh)),
                   out_shardings=(replicated(mesh), replicated(mesh)),
                   donate_argnums=0 if donate else ())
