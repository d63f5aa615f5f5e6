"""Image sets and test sets as `.npz` files of uint8 arrays: a data source next to image folders.

An image set holds

    images   uint8 (N, H, W, 3)   RGB
    names    str (N,)             the file names the images had (their stems survive a round trip)

A test set is the lab layout (see ``maskgit_jax.imageio``) as arrays, one per sub-folder:

    names         str (N,)              image_XXX.png
    mask64        uint8 (N, H, W)       255 = known pixel, 0 = missing
    gt            uint8 (N, H, W, 3)    the ground truth
    masked_image  uint8 (N, H, W, 3)    only when it is not gt with its holes gray (128):
                                        otherwise it is rebuilt from gt and mask64 when read

Files are written deterministically (deflate, fixed zip timestamps), so the same arrays always give
the same bytes, and read without pickle: each member's declared size is checked against the zip
entry before anything is allocated, so a damaged or hostile file is one ImageError naming it.
"""

import io
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.imageio import ImageError, LabTestSet

_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand a byte more than this (RFC 1951's longest match)
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Writes ``arrays`` (name: array, no object arrays) as an `.npz`; replaces ``path`` only once
    the whole file is written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, array in arrays.items():
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data.getvalue(), compresslevel=9)
    os.replace(partial, path)


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    limit = info.compress_size * (_DEFLATE_MAX_RATIO if info.compress_type else 1) + 1024
    if info.file_size > limit:
        raise ValueError(f"member {info.filename} claims {info.file_size} bytes from "
                         f"{info.compress_size} compressed")
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = header(f)
        if dtype.hasobject:
            raise ValueError(f"member {info.filename} holds Python objects (not read: no pickle)")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes != info.file_size - f.tell():
            raise ValueError(f"member {info.filename} declares a {dtype} {shape} array but holds "
                             f"{info.file_size - f.tell()} bytes of data")
        array = np.empty(shape, dtype, order="F" if fortran_order else "C")
        view = memoryview(array.reshape(-1, order="A").view(np.uint8))  # the array's own bytes
        filled = 0
        while filled < nbytes:
            got = f.readinto(view[filled:])
            if not got:
                raise ValueError(f"member {info.filename} ends early")
            filled += got
        f.read()  # to the end: zipfile checks the member's CRC-32 there
    return array


def read(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an `.npz` file (see the module docstring); ImageError naming it otherwise."""
    try:
        with zipfile.ZipFile(path) as z:
            arrays = {}
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"member {info.filename} is not a .npy array")
                arrays[info.filename[:-len(".npy")]] = _read_member(z, info)
            return arrays
    except FileNotFoundError:
        raise ImageError(f"no such file: {path}") from None
    except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile, NotImplementedError) as e:
        message = " ".join(str(e).split())
        raise ImageError(f"cannot read array file: {path}: {message}") from None


def _checked_images(arrays: dict, key: str, path, image_size: int | None) -> np.ndarray:
    images = arrays[key]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ImageError(f"{key} must be uint8 (N, H, W, 3) RGB, got {images.dtype} "
                         f"{images.shape}: {path}")
    if image_size is not None and images.shape[1:3] != (image_size, image_size):
        raise ImageError(f"expected {image_size}x{image_size}, got {images.shape[1]}x"
                         f"{images.shape[2]} {key}: {path}")
    return images


def _checked_names(arrays: dict, count: int, path) -> list[str]:
    names = arrays.get("names")
    if names is None or names.dtype.kind != "U" or names.shape != (count,):
        got = "none" if names is None else f"{names.dtype} {names.shape}"
        raise ImageError(f"names must be {count} strings (one per image), got {got}: {path}")
    return names.tolist()


def write_images(path: str | os.PathLike, images: np.ndarray, names: list[str]) -> None:
    """An image set: uint8 (N, H, W, 3) and the N file names they came from."""
    write(path, {"images": np.asarray(images, np.uint8), "names": np.asarray(names, str)})


def read_images(path: str | os.PathLike, image_size: int | None = None) -> tuple[np.ndarray, list[str]]:
    """(images uint8 (N, H, W, 3), names) of an image set, or of a test set its ground truth;
    ``image_size``: the side every image must have (None: any)."""
    arrays = read(path)
    key = "images" if "images" in arrays else "gt" if "gt" in arrays else None
    if key is None:
        raise ImageError(f"no images array (an image set) nor gt array (a test set), found "
                         f"{', '.join(sorted(arrays)) or 'nothing'}: {path}")
    images = _checked_images(arrays, key, path, image_size)
    return images, _checked_names(arrays, len(images), path)


def test_set_arrays(test: LabTestSet) -> dict[str, np.ndarray]:
    """The arrays that hold a lab-layout test set (its masked images only where they are not its
    ground truth with gray holes)."""
    arrays = {"names": np.asarray(test.names, str),
              "mask64": np.where(test.known, 255, 0).astype(np.uint8)}
    if test.ground_truth is not None:
        arrays["gt"] = test.ground_truth
    truth = test.ground_truth
    if truth is None or not np.array_equal(test.images, fill_holes(truth, test.known)):
        arrays["masked_image"] = test.images
    return arrays


def read_test_set(path: str | os.PathLike, image_size: int = 64) -> LabTestSet:
    """A test set file (see the module docstring) as the lab layout reads: masked images, masks
    (True = known), ground truth (None when the file has none)."""
    arrays = read(path)
    if "mask64" not in arrays or not ({"gt", "masked_image"} & set(arrays)):
        raise ImageError(f"not a test set (needs mask64 and gt or masked_image), found "
                         f"{', '.join(sorted(arrays)) or 'nothing'}: {path}")
    truth = _checked_images(arrays, "gt", path, image_size) if "gt" in arrays else None
    masks = arrays["mask64"]
    count = len(truth) if truth is not None else len(arrays["masked_image"])
    if masks.dtype != np.uint8 or masks.shape != (count, image_size, image_size):
        raise ImageError(f"mask64 must be uint8 ({count}, {image_size}, {image_size}), got "
                         f"{masks.dtype} {masks.shape}: {path}")
    if not set(np.unique(masks).tolist()) <= {0, 255}:
        raise ImageError(f"mask64 holds values other than 0 and 255: {path}")
    known = masks == 255
    masked = (_checked_images(arrays, "masked_image", path, image_size) if "masked_image" in arrays
              else fill_holes(truth, known))
    if len(masked) != count:
        raise ImageError(f"{len(masked)} masked images but {count} masks: {path}")
    return LabTestSet(names=_checked_names(arrays, count, path), images=masked, known=known,
                      ground_truth=truth)
