"""Inpainting quality on the missing region (NumPy, float64), and the mean-colour baseline.

Images are uint8 (B,H,W,C) in [0, 255]; ``known_BxHxW`` is True where the pixel was given. Pixel
metrics average over the missing pixels and all channels of each image and return one value per image,
NaN for an image with no missing pixel.
"""

import numpy as np

PEAK = 255.0


def _missing_mean(values_BxHxWxC: np.ndarray, known_BxHxW: np.ndarray) -> np.ndarray:
    """Per-image mean (B,) float64 of ``values`` over the missing pixels and all channels; NaN if none."""
    missing_BxHxWx1 = ~np.asarray(known_BxHxW, bool)[..., None]
    channels = values_BxHxWxC.shape[-1]
    total_B = np.sum(np.where(missing_BxHxWx1, values_BxHxWxC, 0.0), axis=(1, 2, 3))
    count_B = np.sum(missing_BxHxWx1, axis=(1, 2, 3)) * channels
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count_B > 0, total_B / count_B, np.nan)


def _difference(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """pred - target in float64 (uint8 subtraction would wrap around)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} != target shape {target.shape}")
    return pred - target


def masked_psnr(pred: np.ndarray, target: np.ndarray, known: np.ndarray) -> np.ndarray:
    """PSNR in dB per image (B,) over the missing pixels: 10 log10(255^2 / MSE).

    MSE in squared [0, 255] units over missing pixels x channels; +inf for an exact match, NaN for an
    image with no missing pixel.
    """
    mse_B = _missing_mean(_difference(pred, target) ** 2, known)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 * np.log10(PEAK**2 / mse_B)


def masked_l1(pred: np.ndarray, target: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Mean absolute error per image (B,) over the missing pixels and channels, in [0, 255] units."""
    return _missing_mean(np.abs(_difference(pred, target)), known)


def mean_fill(images: np.ndarray, known: np.ndarray, gray: int = 128) -> np.ndarray:
    """The baseline: missing pixels set to the image's mean colour of its known pixels, uint8 (B,H,W,C).

    The mean is per image and per channel, rounded to the nearest integer; an image with no known
    pixel is filled with ``gray``.
    """
    images = np.asarray(images)
    known_BxHxWx1 = np.asarray(known, bool)[..., None]
    total_BxC = np.sum(np.where(known_BxHxWx1, images.astype(np.float64), 0.0), axis=(1, 2))
    count_Bx1 = np.sum(known_BxHxWx1, axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_BxC = np.where(count_Bx1 > 0, total_BxC / count_Bx1, float(gray))
    fill_BxC = np.clip(np.round(mean_BxC), 0, 255).astype(np.uint8)
    return np.where(known_BxHxWx1, images, fill_BxC[:, None, None, :]).astype(np.uint8)


def token_accuracy(pred_ids: np.ndarray, true_ids: np.ndarray, unknown: np.ndarray) -> float:
    """Fraction in [0, 1] of the unknown tokens (all examples pooled) predicted exactly; NaN if none."""
    unknown = np.asarray(unknown, bool)
    count = int(np.sum(unknown))
    if count == 0:
        return float("nan")
    return float(np.sum((np.asarray(pred_ids) == np.asarray(true_ids)) & unknown) / count)
