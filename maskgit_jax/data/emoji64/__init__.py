"""emoji64, shipped with the package: 3,371 Twemoji (CC-BY 4.0, see README.md here) as 64x64 RGB,
one `.npz` per split (``maskgit_jax.data.array_files``):

    train.npz   2,761 images      the data source ``emoji64`` trains on these
    val.npz       210 images      its held-out split
    test.npz      400 test images with brush holes (the lab layout): ``--input=emoji64/test``

``python -m maskgit_jax.data.emoji64`` builds these files from a folder of PNGs, writes that folder
back out, and checks the two against each other pixel by pixel.
"""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
SPLITS = {"train": 2761, "val": 210, "test": 400}  # split: image count
IMAGE_SIZE = 64
