"""Inpaints (or generates / outpaints) with a trained model; see maskgit_jax/cli/sample.py.

    python sample.py --schedule=square                                   # the shipped faces model
    python sample.py --image=photo.png --mask=mask.png --output=out.png
    python sample.py --workdir=runs/lab --input=test_dir --output=out
"""

from maskgit_jax.cli.sample import run

if __name__ == "__main__":
    run()
