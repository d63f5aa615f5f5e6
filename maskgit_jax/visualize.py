"""Pictures of inpainting runs: image grids, latent masks, the lab's per-step strip (uint8 NumPy)
and the same steps as an animated GIF."""

import io

import numpy as np
from PIL import Image

from maskgit_jax import masking

WHITE = 255
MASKED_COLOR = (0, 0, 0)       # a token still [MASK]
KNOWN_COLOR = (255, 255, 255)  # a token that is known or already fixed


def image_grid(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """One grid row per entry of ``rows`` (each (N,H,W,3) uint8), N columns, separated by white ``pad``.

    Rows may hold different numbers of images; shorter rows are left white on the right.
    Returns (R*H + (R+1)*pad, C*W + (C+1)*pad, 3) uint8 with C the longest row.
    """
    if not rows:
        raise ValueError("image_grid needs at least one row")
    shapes = {tuple(np.shape(r)[1:]) for r in rows}
    if len(shapes) != 1:
        raise ValueError(f"all images must have the same (H, W, 3) shape, got {sorted(shapes)}")
    (h, w, c), = shapes
    cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + pad) + pad, cols * (w + pad) + pad, c), WHITE, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            top, left = pad + i * (h + pad), pad + j * (w + pad)
            grid[top:top + h, left:left + w] = image
    return grid


def mask_to_image(mask_BxL: np.ndarray, image_size: int) -> np.ndarray:
    """Token mask (B,L) bool, True = masked, to (B,S,S,3) uint8 with S = ``image_size``.

    Each token becomes its pixel patch: masked tokens black, the others white.
    """
    masked_BxSxS = np.asarray(masking.token_to_pixel(np.asarray(mask_BxL, bool), image_size))
    return np.where(masked_BxSxS[..., None], np.uint8(MASKED_COLOR), np.uint8(KNOWN_COLOR))


def step_strip(step_masks: np.ndarray, step_images: np.ndarray, masked_input: np.ndarray,
               pad: int = 2) -> np.ndarray:
    """The lab's picture of one decoding: two rows of 1 + S images, uint8.

    Top: the masked input, then the latent mask after each step (``step_masks`` (S,L) bool).
    Bottom: the masked input, then the decoded image of each step (``step_images`` (S,H,W,3) uint8).
    """
    masked_input = np.asarray(masked_input, np.uint8)[None]
    masks_SxHxWx3 = mask_to_image(step_masks, masked_input.shape[1])
    return image_grid([np.concatenate([masked_input, masks_SxHxWx3]),
                       np.concatenate([masked_input, np.asarray(step_images, np.uint8)])], pad)


def step_frames(unknown_tokens: np.ndarray, step_masks: np.ndarray, step_images: np.ndarray,
                masked_input: np.ndarray, pad: int = 2) -> np.ndarray:
    """One decoding as animation frames (1 + S, H', W', 3) uint8, each the latent mask next to an
    image: frame 0 the tokens to decode (``unknown_tokens`` (L,) bool) and the masked input, frame s
    the mask and the decoded image after step s (``step_masks`` (S,L) bool, ``step_images`` (S,H,W,3)).
    """
    masked_input = np.asarray(masked_input, np.uint8)
    masks = mask_to_image(np.concatenate([np.asarray(unknown_tokens, bool)[None], step_masks]),
                          masked_input.shape[0])
    images = np.concatenate([masked_input[None], np.asarray(step_images, np.uint8)])
    return np.stack([image_grid([np.stack([mask, image])], pad) for mask, image in zip(masks, images)])


def animation_gif(frames: np.ndarray, milliseconds: int = 400, scale: int = 1) -> bytes:
    """An endlessly looping GIF of ``frames`` ((N, H, W, 3) uint8), each shown ``milliseconds``,
    enlarged ``scale`` times (nearest neighbour: tokens stay sharp). In a notebook:
    ``IPython.display.Image(data=animation_gif(frames))``."""
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"frames must be (N, H, W, 3) uint8 with N >= 1, got shape {frames.shape}")
    if scale < 1 or milliseconds < 1:
        raise ValueError(f"scale and milliseconds must be >= 1, got {scale} and {milliseconds}")
    pictures = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST)
                for f in frames]
    out = io.BytesIO()
    pictures[0].save(out, format="GIF", save_all=True, append_images=pictures[1:],
                     duration=milliseconds, loop=0)
    return out.getvalue()


def png_bytes(image: np.ndarray, scale: int = 1) -> bytes:
    """A uint8 (H, W, 3) image as PNG bytes, enlarged ``scale`` times (nearest neighbour). In a
    notebook: ``IPython.display.Image(data=png_bytes(grid, scale=3))`` (one PNG, where displaying a
    PIL image stores a JPEG copy too)."""
    image = np.asarray(image, np.uint8)
    if image.ndim != 3 or image.shape[-1] != 3 or scale < 1:
        raise ValueError(f"expected a uint8 (H, W, 3) image and scale >= 1, got {image.shape}, {scale}")
    out = io.BytesIO()
    Image.fromarray(image.repeat(scale, axis=0).repeat(scale, axis=1)).save(out, format="PNG")
    return out.getvalue()
