"""Where training images come from: the built-in faces, an image folder, an `.npz` of images, a
data set shipped with the package (emoji64), or a TFDS data source.

``load_images(source, split, num)`` returns the whole split as uint8 (N, H, W, 3) in memory: the
64x64 datasets this project targets fit easily (20k images = 245 MB).

A folder's split is its sub-folder ``SPLIT/`` or its array file ``SPLIT.npz`` (``array_files``);
a name or path is resolved by ``locate.resolve`` (a path that exists wins over a shipped set's name).

Every source has a held-out split that training never sees (``load_held_out``; the sample grids
and the validation loss use it): the faces' ``val`` split; a folder's ``val``, ``validation`` or
``test`` split (the first that exists; of a test set, its ground truth), else its last ``held_out``
images in sorted path order (an `.npz`: in its order), which are then left out of training; a TFDS
dataset's ``validation`` or ``test`` split, else the last ``held_out`` examples of the training
split, likewise left out.
"""

from pathlib import Path

import numpy as np

from maskgit_jax import imageio
from maskgit_jax.data import array_files, faces, locate

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
# Leading bytes of the formats Pillow reads here; files without an image suffix are taken by these.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00",
               b"MM\x00*")


def _looks_like_image(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(12)
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


# Sub-folder / split names of held-out data, in order of preference.
HELD_OUT_SPLITS = ("val", "validation", "test")


def _image_paths(folder: Path, exclude: tuple = ()) -> list[Path]:
    """Every image file under ``folder`` (recursive, sorted), except under the folders ``exclude``.

    A file with an image suffix counts (and must decode later, else ImageError naming it); other
    files count when their first bytes are an image signature (READMEs, label files do not).
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and
                   not any(p.is_relative_to(x) for x in exclude) and
                   (p.suffix.lower() in IMAGE_SUFFIXES or _looks_like_image(p)))
    if not paths:
        raise ValueError(f"no images under {folder}")
    return paths


def _images_of(location: Path, image_size: int, exclude: tuple = ()) -> list[Path] | np.ndarray:
    """A folder's image paths (decoded later, only those used), or an array file's images."""
    if location.is_file():
        return array_files.read_images(location, image_size)[0]
    return _image_paths(location, exclude)


def _source_split(root: Path, split: str, held_out: int,
                  image_size: int) -> tuple[list[Path] | np.ndarray, list[Path] | np.ndarray]:
    """(training images, held-out images) of the folder or array file ``root``, each as image
    paths or an array (both slice alike); see the module docstring."""
    if not root.exists():
        raise FileNotFoundError(f"no such image folder or .npz file: {root}")
    train, held = root, []
    if root.is_dir():
        train = locate.file_or_npz(root / split) or root
        held = [found for s in HELD_OUT_SPLITS if s != split and (found := locate.file_or_npz(root / s))]
    if held:
        # Training reads train; when that is the root, never its held-out splits.
        return (_images_of(train, image_size, exclude=tuple(held)),
                _images_of(held[0], image_size)[:held_out])
    images = _images_of(train, image_size)
    if held_out and held_out >= len(images):
        raise ValueError(f"{train} holds {len(images)} images and no val or test split: too "
                         f"few to hold out {held_out} (config.data.num_eval) and train on the rest")
    return images[: len(images) - held_out], images[len(images) - held_out:]


def _read_images(images: list[Path] | np.ndarray, image_size: int) -> np.ndarray:
    if isinstance(images, np.ndarray):
        return images
    return np.stack([imageio.read_image(p, expected_size=(image_size, image_size)) for p in images])


def _tfds_splits(name: str, split: str, held_out: int) -> tuple[str, str]:
    """(training split, held-out split) of a TFDS dataset, in TFDS's split-slicing syntax."""
    tfds = _tfds(name)
    available = tfds.builder(name).info.splits
    held = next((s for s in ("validation", "test") if s != split and s in available), None)
    if held is not None:
        return split, f"{held}[:{held_out}]"
    if "[" in split or "+" in split:  # the end of a sliced or combined split cannot be sliced again
        raise ValueError(f"config.data.train_split={split!r}: tfds:{name} has no validation or test "
                         "split to hold out, and the held-out images cannot be cut from a sliced "
                         "split; give a plain split name")
    return f"{split}[:-{held_out}]" if held_out else split, f"{split}[-{held_out}:]"


def _tfds(name: str):
    try:
        import tensorflow_datasets as tfds  # optional: its data sources need no TensorFlow
    except ImportError:
        raise ImportError(f"data source 'tfds:{name}' needs tensorflow-datasets: "
                          "pip install tensorflow-datasets") from None
    return tfds


def _tfds_images(name: str, split: str, num: int | None, image_size: int) -> np.ndarray:
    source = _tfds(name).data_source(name, split=split)
    count = len(source) if not num else min(num, len(source))
    images = np.stack([np.asarray(source[i]["image"]) for i in range(count)])
    if images.shape[1:3] != (image_size, image_size):
        raise ValueError(f"tfds:{name} images are {images.shape[1]}x{images.shape[2]}, "
                         f"expected {image_size}x{image_size}")
    return images


def _check_faces(num: int | None, image_size: int, option: str) -> None:
    if not num:
        raise ValueError(f"data source 'faces' needs a number of images ({option})")
    if image_size != 64:
        raise ValueError(f"data source 'faces' renders 64x64 faces, but the model takes "
                         f"{image_size}x{image_size} images (config.data.image_size)")


def load_images(source: str, split: str = "train", num: int | None = None,
                image_size: int = 64, seed: int = 0, held_out: int = 0) -> np.ndarray:
    """The training images of a source, uint8 (N, H, W, 3), without its held-out ones.

    source: 'faces' (built-in procedural faces, ``num`` of them), a folder path (recursive;
    ``split`` is a sub-folder or SPLIT.npz when it exists, e.g. the lab's train/ and val/), an
    `.npz` of images, a shipped set's name ('emoji64'), or 'tfds:NAME'.
    num: at most this many (None or 0: all; 'faces' needs it). held_out: how many images
    ``load_held_out`` takes where it has to take them from the training images (see the module
    docstring); those are left out here.
    """
    if source == "faces":
        _check_faces(num, image_size, "config.data.num_train")
        return faces.faces_split(split, num, seed)
    if source.startswith("tfds:"):
        name = source[len("tfds:"):]
        return _tfds_images(name, _tfds_splits(name, split, held_out)[0], num, image_size)
    train, _ = _source_split(locate.resolve(source), split, held_out, image_size)
    return _read_images(train[:num] if num else train, image_size)


def load_held_out(source: str, split: str = "train", num: int = 64, image_size: int = 64,
                  seed: int = 0) -> np.ndarray:
    """``num`` held-out images of a source, uint8 (num, H, W, 3): never among ``load_images(source,
    split, ..., held_out=num)``. ``split`` is the training split."""
    if num < 1:
        raise ValueError(f"config.data.num_eval={num}: the held-out set needs at least 1 image")
    if source == "faces":
        _check_faces(num, image_size, "config.data.num_eval")
        return faces.faces_split("val", num, seed)
    if source.startswith("tfds:"):
        name = source[len("tfds:"):]
        return _tfds_images(name, _tfds_splits(name, split, num)[1], num, image_size)
    _, held_out = _source_split(locate.resolve(source), split, num, image_size)
    return _read_images(held_out, image_size)
