"""Trains MaskGIT: stage 1 (VQGAN tokenizer) and/or stage 2 (bidirectional transformer).

    maskgit-train --config=faces.py:small --workdir=runs/faces        # a config of the package
    python train.py --config=configs/faces.py:small --workdir=runs/faces   # the same, in a checkout
    maskgit-train --config=my_config.py --config.transformer.batch_size=256

When stage 2 ends the model is exported to WORKDIR/model/ (what MaskGIT.from_pretrained and
maskgit-sample --model read). Several hosts (one process each; see README "Several devices and hosts"):

    maskgit-train --config=... --coordinator_address=HOST0:1234 --num_processes=2 --process_id=0
    maskgit-train --config=... --multihost          # TPU pod slice, SLURM, Open MPI
"""

import sys
from pathlib import Path

from absl import app, flags, logging
from ml_collections import config_flags

from maskgit_jax import configs
from maskgit_jax.cli import boundary

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(Path(configs.__file__).with_name("faces.py")),
    "Training configuration file: a path, or the name of one of the package's configs "
    "(faces.py, emoji.py, lab.py), with an optional :variant (faces.py:small).")
_WORKDIR = flags.DEFINE_string("workdir", "runs/faces", "Where checkpoints, metrics and samples go.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", "",
                                   "Multi-process runs: host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", 0, "Multi-process runs: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", -1, "Multi-process runs: this process's index.")
# The choices of maskgit_jax.train.tokenizer_checkpoint.ON_UNREADABLE (not imported: --help at once).
_ON_UNREADABLE_TOKENIZER = flags.DEFINE_enum(
    "on_unreadable_tokenizer", "stop", ["stop", "restart_transformer"],
    "When the newest tokenizer checkpoint cannot be read while the workdir holds transformer "
    "checkpoints (which learnt its codes): stop with an error, or set the transformer checkpoints "
    "aside (renamed, not deleted) and train stage 2 again from the newest readable tokenizer step. "
    "Does nothing otherwise.")
_MULTIHOST = flags.DEFINE_bool("multihost", False, "Join a multi-process run whose layout JAX reads "
                               "from the cluster (TPU pod slice, SLURM, Open MPI).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # checkpointing logs every file at INFO
    # Imported here so that --help answers at once.
    from maskgit_jax import compile_cache
    from maskgit_jax.train import distributed
    from maskgit_jax.train.loop import NonFiniteLossError
    from maskgit_jax.train.main import train_and_evaluate
    compile_cache.enable()  # a resumed run starts without compiling again
    with boundary.user_errors(NonFiniteLossError):  # a diverging run: one line, like a bad input
        distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                               _MULTIHOST.value)
        train_and_evaluate(_CONFIG.value, _WORKDIR.value,
                           on_unreadable_tokenizer=_ON_UNREADABLE_TOKENIZER.value)


def run(argv=None):
    """The ``maskgit-train`` console script (and train.py)."""
    boundary.run(main, configs.resolve_config_flag(sys.argv if argv is None else argv))


if __name__ == "__main__":
    run()
