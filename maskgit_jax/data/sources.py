"""Where training images come from: the built-in faces, an image folder, or a TFDS data source.

``load_images(source, split, num)`` returns the whole split as uint8 (N, H, W, 3) in memory: the
64x64 datasets this project targets fit easily (20k images = 245 MB).
"""

import os
from pathlib import Path

import numpy as np

from maskgit_jax import imageio
from maskgit_jax.data import faces

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# Leading bytes of the formats Pillow reads here; files without an image suffix are taken by these.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00",
               b"MM\x00*")


def _looks_like_image(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(12)
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _folder_images(folder: Path, num: int | None, image_size: int) -> np.ndarray:
    """Every image under ``folder`` (recursive, sorted), decoded by content whatever its name says.

    A file with an image suffix must decode (else ImageError naming it); other files are taken when
    their first bytes are an image signature and skipped otherwise (READMEs, label files).
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and
                   (p.suffix.lower() in IMAGE_SUFFIXES or _looks_like_image(p)))
    if not paths:
        raise ValueError(f"no images under {folder}")
    paths = paths[:num] if num else paths
    return np.stack([imageio.read_image(p, expected_size=(image_size, image_size)) for p in paths])


def _tfds_images(name: str, split: str, num: int | None, image_size: int) -> np.ndarray:
    try:
        import tensorflow_datasets as tfds  # optional: its data sources need no TensorFlow
    except ImportError:
        raise ImportError(f"data source 'tfds:{name}' needs tensorflow-datasets: "
                          "pip install tensorflow-datasets") from None
    source = tfds.data_source(name, split=split)
    count = len(source) if not num else min(num, len(source))
    images = np.stack([np.asarray(source[i]["image"]) for i in range(count)])
    if images.shape[1:3] != (image_size, image_size):
        raise ValueError(f"tfds:{name} images are {images.shape[1]}x{images.shape[2]}, "
                         f"expected {image_size}x{image_size}")
    return images


def load_images(source: str, split: str = "train", num: int | None = None,
                image_size: int = 64, seed: int = 0) -> np.ndarray:
    """All images of a split, uint8 (N, H, W, 3).

    source: 'faces' (built-in procedural faces, ``num`` of them), a folder path (recursive;
    ``split`` is a sub-folder when it exists, e.g. the lab's train/ and val/), or 'tfds:NAME'.
    """
    if source == "faces":
        if not num:
            raise ValueError("data source 'faces' needs a number of images (config.data.num_train)")
        if image_size != 64:
            raise ValueError(f"data source 'faces' renders 64x64 faces, but the model takes "
                             f"{image_size}x{image_size} images (config.data.image_size)")
        return faces.faces_split(split, num, seed)
    if source.startswith("tfds:"):
        return _tfds_images(source[len("tfds:"):], split, num, image_size)
    folder = Path(os.path.expanduser(source))
    if (folder / split).is_dir():
        folder = folder / split
    return _folder_images(folder, num, image_size)
