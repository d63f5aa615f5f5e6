"""What the page's image editor gives, as the picture and mask that ``MaskGIT.inpaint`` takes.

Gradio's ImageEditor (RGBA, numpy) hands over a dict: "background" (the uploaded picture),
"layers" (what the user painted, one RGBA array per layer) and "composite". Every pixel that any
layer covers (alpha > 0, so the brush's soft edge too) is one to fill; the rest are known. Every
problem is a ValueError whose message the page shows as it is.
"""

from typing import Optional

import numpy as np

WHITE = 255


def picture_and_known(value: Optional[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (H, W, 3) picture, bool (H, W) known mask, True = keep) from the editor's value."""
    background = None if value is None else value.get("background")
    if background is None:  # also what a file the browser cannot open leaves
        raise ValueError("no picture: upload one that opens (PNG, JPEG, WebP) or pick an example")
    picture = _rgb(np.asarray(background))
    h, w = picture.shape[:2]
    painted = np.zeros((h, w), bool)
    for layer in value.get("layers") or []:
        layer = np.asarray(layer)
        if layer.shape[:2] != (h, w):
            raise ValueError(f"a painted layer is {layer.shape[1]}x{layer.shape[0]} but the "
                             f"picture is {w}x{h}: clear the editor and paint again")
        if layer.ndim == 3 and layer.shape[2] == 4:
            painted |= layer[..., 3] > 0
    if not painted.any():
        raise ValueError("nothing to fill: paint over the region to fill with the brush first")
    if painted.all():
        raise ValueError("the mask covers the whole picture: leave some of it unpainted for the "
                         "model to go on")
    return picture, ~painted


def check_size(picture: np.ndarray, min_side: int) -> None:
    """A ValueError for a picture with a side below ``min_side`` (the page uses the model's token
    grid: a smaller picture has less than one pixel per token to paint on)."""
    h, w = picture.shape[:2]
    if min(h, w) < min_side:
        raise ValueError(f"the picture is {w}x{h} pixels: too small, this model needs at least "
                         f"{min_side} on each side")


def _rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3): gray replicated, transparency flattened on white (as the editor shows it)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"the picture is not an 8-bit image (got {image.dtype} {image.shape})")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        alpha = image[..., 3:].astype(np.float32) / 255
        flat = image[..., :3] * alpha + WHITE * (1 - alpha)
        return np.clip(np.round(flat), 0, 255).astype(np.uint8)
    if image.shape[2] != 3:
        raise ValueError(f"the picture has {image.shape[2]} channels; expected RGB or RGBA")
    return image
