"""Masks made from geometry: a picture's canvas extended on chosen sides (outpainting), or a box to
regenerate (box editing, as the official MaskGIT demo edits a region with a chosen class)."""

import numpy as np


def extend(picture_HxWx3: np.ndarray, top: int = 0, bottom: int = 0, left: int = 0,
           right: int = 0, fill: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(canvas, known): the picture on a canvas grown by that many pixels on each side (the new
    pixels ``fill`` gray and unknown), and the bool mask that is True on the picture's own pixels."""
    margins = (top, bottom, left, right)
    if min(margins) < 0 or not any(margins):
        raise ValueError(f"extend: margins (top, bottom, left, right) must be >= 0 and not all 0, "
                         f"got {margins}")
    h, w = picture_HxWx3.shape[:2]
    canvas = np.full((h + top + bottom, w + left + right, 3), fill, np.uint8)
    canvas[top:top + h, left:left + w] = picture_HxWx3
    known = np.zeros(canvas.shape[:2], bool)
    known[top:top + h, left:left + w] = True
    return canvas, known


def box_known(shape_HxW: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """bool (H, W), False inside ``box`` = (x0, y0, x1, y1) in pixels (x1, y1 excluded)."""
    h, w = shape_HxW
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"box (x0, y0, x1, y1) = {tuple(box)} must lie inside the {w}x{h} picture "
                         "with x0 < x1 and y0 < y1")
    known = np.ones((h, w), bool)
    known[y0:y1, x0:x1] = False
    return known
