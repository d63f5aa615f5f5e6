"""Pictures of any size through a model of one size: down to the model, and the fill back up.

A model works on S x S images (its tokenizer's resolution). A picture of another size is resized to
S x S for the model; the model's fill is resized back to the picture's size and composited there, so
(with 'paste') the known pixels of the output are exactly the picture's own. Non-square pictures are stretched to
the square and back (the fill is stretched back with them).

The masks follow the pixels' footprints: area resampling gives each model pixel the average of the
picture pixels its box overlaps (weighted by the overlap), and a model pixel is missing as soon as
one of those is missing, so no hole colour ever reaches a model pixel that the model takes as known.
"""

import numpy as np
from PIL import Image

from maskgit_jax import inpaint
from maskgit_jax.data.normalize import fill_holes


def to_model_size(image_HxWx3: np.ndarray, known_HxW: np.ndarray, size: int,
                  hole_gray: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (size, size, 3) image with gray holes, bool (size, size) known mask)."""
    if image_HxWx3.shape[:2] == (size, size):
        return fill_holes(image_HxWx3, known_HxW, hole_gray), known_HxW
    h, w = known_HxW.shape
    rows_SxH, cols_SxW = area_weights(h, size), area_weights(w, size)
    filled = fill_holes(image_HxWx3, known_HxW, hole_gray).astype(np.float64)
    # One axis at a time, as matrix products: (S, H) @ (H, W*3), then the columns.
    rows_done_SxWx3 = np.tensordot(rows_SxH, filled, axes=(1, 0))
    small = np.tensordot(rows_done_SxWx3, cols_SxW, axes=(1, 1)).transpose(0, 2, 1)
    # Non-negative weights: > 0 exactly when a missing pixel overlaps the model pixel's box.
    known_small = rows_SxH @ (~known_HxW).astype(np.float64) @ cols_SxW.T <= 0
    small = np.clip(np.round(small), 0, 255).astype(np.uint8)
    return fill_holes(small, known_small, hole_gray), known_small


def area_weights(n: int, size: int) -> np.ndarray:
    """(size, n) float64: row i holds the overlap of target pixel i's box [i n/size, (i+1) n/size)
    with each source pixel [k, k+1), normalised to sum to 1 (area resampling along one axis)."""
    lo = np.arange(size)[:, None] * n / size
    hi = (np.arange(size)[:, None] + 1) * n / size
    k = np.arange(n)[None, :]
    overlap = np.clip(np.minimum(hi, k + 1) - np.maximum(lo, k), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def to_picture_size(decoded_SxSx3: np.ndarray, image_HxWx3: np.ndarray, known_HxW: np.ndarray,
                    cfg: inpaint.InpaintConfig) -> np.ndarray:
    """The model's decoded image resized to the picture (bicubic) and composited over it by
    ``cfg.composite``: 'paste' keeps every known pixel exactly, 'blend' all but those within its
    ramp of a hole, 'none' is the resized decoded image."""
    h, w = image_HxWx3.shape[:2]
    if decoded_SxSx3.shape[:2] == (h, w):
        big = decoded_SxSx3
    else:
        big = np.asarray(Image.fromarray(decoded_SxSx3).resize((w, h), Image.BICUBIC), np.uint8)
    out = inpaint.composite(image_HxWx3[None], big[None], known_HxW[None], cfg)
    return np.asarray(out[0])
