"""Image and mask files, and the inpainting lab's test-set layout (NYCU course lab).

Images are decoded by content, never by extension: the lab's `.png` train files are really JPEG.
Lab layout of a test folder:

    masked_image/image_XXX.png   RGB, holes filled with gray 128
    mask64/mask_XXX.png          8-bit gray, 0 = missing pixel, 255 = known pixel
    gt/image_XXX.png             optional ground truth, or instead:
    test_gt.csv                  a header row, then one row of H*W*3 uint8 values (HWC order) per image,
                                 in the numeric order of the images

Every failure raises `ImageError` (a ValueError) with a one-line message naming the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "ImageError", "read_image", "read_gray", "read_mask", "write_image", "write_mask",
    "LabTestSet", "read_lab_layout", "write_lab_layout", "read_gt_csv", "write_gt_csv", "HOLE_GRAY",
]

HOLE_GRAY = 128  # fill value of missing pixels in the lab's masked images

_IMAGE_NAME = re.compile(r"^image_(\d+)\.png$", re.IGNORECASE)
_MASK_NAME = re.compile(r"^mask_(\d+)\.png$", re.IGNORECASE)


class ImageError(ValueError):
    """An image or mask file that cannot be used; the message names the file."""


def _open(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode `path` by content (PIL sniffs the bytes, not the extension)."""
    try:
        with Image.open(path) as im:  # closes the file even when decoding fails
            im.load()  # decode now, so truncated or corrupt files fail here and not later
    except FileNotFoundError:
        raise ImageError(f"no such file: {path}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"cannot decode image: {path}: {e}") from None
    return im


def _check_size(arr: np.ndarray, expected_size: tuple[int, int] | None, path) -> None:
    if expected_size is not None and tuple(arr.shape[:2]) != tuple(expected_size):
        h, w = expected_size
        raise ImageError(f"expected {h}x{w}, got {arr.shape[0]}x{arr.shape[1]}: {path}")


def read_image(path: str | os.PathLike, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB.

    Gray and palette images are converted to RGB; transparency is composited on white.
    `expected_size` is (H, W); a different size raises ImageError.
    """
    im = _open(path)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit gray: keep the top 8 bits, PIL would clip
        a = np.asarray(im, np.int64)
        im = Image.fromarray((np.clip(a, 0, 65535) >> 8).astype(np.uint8), "L")
    if im.mode == "P" or im.mode == "LA" or im.mode == "PA" or "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    arr = np.asarray(im.convert("RGB"), np.uint8)
    _check_size(arr, expected_size, path)
    return arr


def read_mask(path: str | os.PathLike, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a lab mask as bool (H, W), True = known pixel.

    The file is converted to 8-bit gray and must hold only {0, 255} (lab masks) or only {0, 1};
    0 means missing. Anything else raises ImageError listing the offending values: lab masks are
    lossless PNG, so a gray value in between means a wrong file, not compression noise.
    """
    im = _open(path)
    if im.mode not in ("L", "1"):
        im = im.convert("L")
    arr = np.asarray(im, np.uint8)
    _check_size(arr, expected_size, path)
    values = np.unique(arr)
    if not (set(values.tolist()) <= {0, 255} or set(values.tolist()) <= {0, 1}):
        bad = [int(v) for v in values if v not in (0, 255)][:8]
        raise ImageError(f"mask is not binary (expected 0 and 255), found values {bad}: {path}")
    return arr != 0


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """Read any image file as 8-bit gray (H, W) uint8 (e.g. a user's mask; transparency on white)."""
    return np.asarray(Image.fromarray(read_image(path)).convert("L"), np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write uint8 (H, W, 3) RGB (or (H, W) gray) as PNG, whatever the extension; creates parent dirs."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected uint8 (H, W, 3) or (H, W), got {image.dtype} {image.shape}: {path}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")


def write_mask(path: str | os.PathLike, known: np.ndarray) -> None:
    """Write a bool (H, W) mask (True = known) as the lab's 8-bit gray PNG: 255 known, 0 missing."""
    known = np.asarray(known)
    if known.ndim != 2:
        raise ValueError(f"expected a (H, W) mask, got shape {known.shape}: {path}")
    write_image(path, np.where(known.astype(bool), 255, 0).astype(np.uint8))


@dataclasses.dataclass
class LabTestSet:
    """A test set in the lab layout.

    names: file names of the masked images, e.g. 'image_000.png' (outputs use the same names).
    images: uint8 (N, H, W, 3), the masked images as stored (holes gray).
    known: bool (N, H, W), True = known pixel.
    ground_truth: uint8 (N, H, W, 3) from gt/ or test_gt.csv, or None when there is neither.
    """

    names: list[str]
    images: np.ndarray
    known: np.ndarray
    ground_truth: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)


def _index(folder: Path, pattern: re.Pattern) -> dict[str, str]:
    """Map the XXX part to the file name for files of `folder` matching `pattern` (any case, so
    `image_001.png` and `IMAGE_001.png` side by side are an error, not one of them dropped)."""
    found = {}
    for name in sorted(os.listdir(folder)):
        m = pattern.match(name)
        if m:
            if m.group(1) in found:
                raise ImageError(f"two files for number {m.group(1)}: {found[m.group(1)]} and {name} "
                                 f"in {folder}; remove one")
            found[m.group(1)] = name
    return found


def _first(keys, n: int = 5) -> str:
    keys = sorted(keys, key=lambda k: (int(k), k))
    return ", ".join(keys[:n]) + (f" (and {len(keys) - n} more)" if len(keys) > n else "")


def read_gt_csv(path: str | os.PathLike, image_size: int = 64, count: int | None = None) -> np.ndarray:
    """Read the lab's `test_gt.csv`: uint8 (N, image_size, image_size, 3).

    A header row (ignored), then one row per image of image_size*image_size*3 integers in 0..255 in
    HWC order; blank lines are skipped. `count`: the number of images expected. Raises ImageError
    naming the file and the line for a wrong row length, a value that is not such an integer, or a
    count mismatch.
    """
    values_per_row = image_size * image_size * 3
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        raise ImageError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ImageError(f"cannot read ground-truth csv: {path}: {e}") from None
    rows = [(number, line) for number, line in enumerate(lines[1:], start=2) if line.strip()]
    if not rows:
        raise ImageError(f"no image rows after the header: {path}")
    if count is not None and len(rows) != count:
        raise ImageError(f"{len(rows)} ground-truth rows but {count} masked images: {path}")
    images = np.empty((len(rows), values_per_row), np.uint8)
    for i, (number, line) in enumerate(rows):
        length = line.count(",") + 1
        if length != values_per_row:
            raise ImageError(f"line {number} has {length} values, expected {values_per_row} "
                             f"({image_size}x{image_size}x3, HWC): {path}")
        values = _csv_integers(line)
        if values is None or values.size != length or values.min() < 0 or values.max() > 255:
            column, token = _first_bad_value(line)
            raise ImageError(f"line {number}, value {column + 1}: {token!r} is not an integer in "
                             f"0..255: {path}")
        images[i] = values
    return images.reshape(-1, image_size, image_size, 3)


def _csv_integers(line: str) -> np.ndarray | None:
    """The comma-separated integers of ``line`` (fast C parser), or None where it stops early."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy warns (or raises) on text it cannot parse
            return np.fromstring(line, dtype=np.int64, sep=",")
    except (ValueError, DeprecationWarning):
        return None


def _first_bad_value(line: str) -> tuple[int, str]:
    """(index, text) of the first value of ``line`` that is not an integer in 0..255."""
    for column, token in enumerate(line.split(",")):
        token = token.strip()
        if not (token.isdigit() and len(token) <= 3 and int(token) <= 255):
            return column, token
    return 0, line[:20]  # unreachable when the fast parser rejected the line


def write_gt_csv(path: str | os.PathLike, images: np.ndarray) -> None:
    """Write uint8 (N, H, W, 3) images as the lab's `test_gt.csv` (header row of column numbers)."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3), got {images.dtype} {images.shape}: {path}")
    flat = images.reshape(len(images), -1)
    lines = [",".join(map(str, range(flat.shape[1])))]
    lines += [",".join(map(str, row.tolist())) for row in flat]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")


def read_lab_layout(folder: str | os.PathLike, image_size: int = 64) -> LabTestSet:
    """Read `folder/masked_image/image_XXX.png` + `folder/mask64/mask_XXX.png` (+ ground truth from
    `folder/gt/` or, when there is no gt/ folder, `folder/test_gt.csv`, if present).

    Pairs files by their XXX part and sorts them numerically. All images and masks must be
    image_size x image_size. Raises ImageError (a ValueError) for a missing folder, an empty folder,
    unpaired files (names the first few) or a wrong size.
    """
    folder = Path(folder)
    img_dir, mask_dir, gt_dir = folder / "masked_image", folder / "mask64", folder / "gt"
    for d in (img_dir, mask_dir):
        if not d.is_dir():
            raise ImageError(f"missing folder: {d}")
    images, masks = _index(img_dir, _IMAGE_NAME), _index(mask_dir, _MASK_NAME)
    if not images:
        raise ImageError(f"no image_XXX.png files in {img_dir}")
    if set(images) - set(masks):
        raise ImageError(f"images without a mask in {mask_dir}: image_{{{_first(set(images) - set(masks))}}}.png")
    if set(masks) - set(images):
        raise ImageError(f"masks without an image in {img_dir}: mask_{{{_first(set(masks) - set(images))}}}.png")

    keys = sorted(images, key=lambda k: (int(k), k))
    size = (image_size, image_size)
    names = [images[k] for k in keys]
    imgs = np.stack([read_image(img_dir / images[k], size) for k in keys])
    known = np.stack([read_mask(mask_dir / masks[k], size) for k in keys])
    gt = None
    if gt_dir.is_dir():
        gts = _index(gt_dir, _IMAGE_NAME)
        if set(keys) - set(gts):
            raise ImageError(f"images without ground truth in {gt_dir}: image_{{{_first(set(keys) - set(gts))}}}.png")
        gt = np.stack([read_image(gt_dir / gts[k], size) for k in keys])
    elif (folder / "test_gt.csv").is_file():
        gt = read_gt_csv(folder / "test_gt.csv", image_size, count=len(keys))
    return LabTestSet(names=names, images=imgs, known=known, ground_truth=gt)


def write_lab_layout(
    folder: str | os.PathLike,
    images: np.ndarray,
    known: np.ndarray,
    names: list[str] | None = None,
    masked_images: np.ndarray | None = None,
) -> None:
    """Write a test set in the lab layout.

    images: uint8 (N, H, W, 3) originals, written to gt/; masked copies (holes gray 128, or
    ``masked_images`` as given) go to masked_image/ and the masks (0 missing / 255 known) to mask64/.
    known: bool (N, H, W), True = known. names default to image_000.png ... (3 digits, more when
    N > 1000) and must look like image_XXX.png.
    """
    images, known = np.asarray(images), np.asarray(known).astype(bool)
    if images.ndim != 4 or images.shape[-1] != 3 or known.shape != images.shape[:3]:
        raise ValueError(f"expected images (N, H, W, 3) and known (N, H, W), got {images.shape} and {known.shape}")
    if masked_images is None:
        masked_images = np.where(known[..., None], images, HOLE_GRAY).astype(np.uint8)
    elif np.shape(masked_images) != images.shape:
        raise ValueError(f"expected masked images {images.shape}, got {np.shape(masked_images)}")
    n = len(images)
    if names is None:
        digits = max(3, len(str(n - 1)))
        names = [f"image_{i:0{digits}d}.png" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"got {len(names)} names for {n} images")
    folder = Path(folder)
    for name, image, masked, k in zip(names, images, masked_images, known):
        m = _IMAGE_NAME.match(name)
        if not m:
            raise ValueError(f"name {name!r} does not look like image_XXX.png")
        write_image(folder / "gt" / name, image)
        write_image(folder / "masked_image" / name, masked)
        write_mask(folder / "mask64" / f"mask_{m.group(1)}.png", k)
