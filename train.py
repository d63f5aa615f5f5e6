"""Trains MaskGIT: stage 1 (VQGAN tokenizer) and/or stage 2 (bidirectional transformer).

    python train.py --config=configs/faces.py:small --workdir=runs/faces
    python train.py --config=configs/faces.py --config.stages=transformer --config.transformer.batch_size=256
"""

from absl import app, flags, logging
from ml_collections import config_flags

from maskgit_jax.train.main import train_and_evaluate

_CONFIG = config_flags.DEFINE_config_file("config", "configs/faces.py", "Training configuration file.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/faces", "Where checkpoints, metrics and samples go.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # checkpointing logs every file at INFO
    train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
