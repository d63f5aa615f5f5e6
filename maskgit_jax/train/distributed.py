"""Joining a multi-process run: several hosts, or several processes on one host.

``initialize`` must run before any other JAX call. Afterwards ``jax.devices()`` lists the devices of
every process, the ``data`` mesh spans them all, each process reads its own rows of every global
batch, and checkpoints are written jointly (each array once) into the shared workdir.
"""

import jax


def initialize(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1,
               auto: bool = False) -> None:
    """Starts ``jax.distributed`` when asked to; a single-process run passes nothing.

    coordinator_address: "host:port" of process 0, reachable from every process.
    num_processes: how many processes take part; process_id: this one's index in [0, num_processes).
    auto: leave all three to JAX, which reads them from the cluster environment (TPU pod slices,
      SLURM, Open MPI, Kubernetes).
    """
    explicit = (bool(coordinator_address), num_processes > 0, process_id >= 0)
    if any(explicit) and not all(explicit):
        raise ValueError("a multi-process run needs all of --coordinator_address, --num_processes "
                         "and --process_id (or --multihost to read them from the cluster)")
    if all(explicit):
        if not 0 <= process_id < num_processes:
            raise ValueError(f"--process_id={process_id} must be in [0, {num_processes})")
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    elif auto:
        jax.distributed.initialize()
