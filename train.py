"""Trains MaskGIT (stage 1 tokenizer and/or stage 2 transformer); see maskgit_jax/cli/train.py.

    python train.py --config=configs/faces.py:small --workdir=runs/faces
    python train.py --config=configs/faces.py --config.stages=transformer --config.transformer.batch_size=256
"""

from maskgit_jax.cli.train import run

if __name__ == "__main__":
    run()
