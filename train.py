"""Trains MaskGIT: stage 1 (VQGAN tokenizer) and/or stage 2 (bidirectional transformer).

    python train.py --config=configs/faces.py:small --workdir=runs/faces
    python train.py --config=configs/faces.py --config.stages=transformer --config.transformer.batch_size=256

Several hosts (one process each; see README "Several devices and hosts"):

    python train.py --config=... --coordinator_address=HOST0:1234 --num_processes=2 --process_id=0
    python train.py --config=... --multihost          # TPU pod slice, SLURM, Open MPI
"""

from absl import app, flags, logging
from ml_collections import config_flags

from maskgit_jax.train import distributed
from maskgit_jax.train.main import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", "configs/faces.py", "Training configuration file.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/faces", "Where checkpoints, metrics and samples go.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", "",
                                   "Multi-process runs: host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 0, "Multi-process runs: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "Multi-process runs: this process's index.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Join a multi-process run whose layout JAX reads "
                               "from the cluster (TPU pod slice, SLURM, Open MPI).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # checkpointing logs every file at INFO
    distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                           _MULTIHOST.value)
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
