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


SSIM_SIGMA, SSIM_RADIUS = 1.5, 5          # Gaussian window of Wang et al. (2004): 11x11, sigma 1.5
SSIM_C1, SSIM_C2 = (0.01 * PEAK) ** 2, (0.03 * PEAK) ** 2


def _gaussian_blur(x_BxHxWxC: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter over H and W with reflected borders (every pixel keeps a window)."""
    taps = np.exp(-0.5 * (np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1) / SSIM_SIGMA) ** 2)
    taps /= taps.sum()
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (SSIM_RADIUS, SSIM_RADIUS)
        windows = np.lib.stride_tricks.sliding_window_view(
            np.pad(x_BxHxWxC, pad, mode="reflect"), len(taps), axis=axis)
        x_BxHxWxC = windows @ taps
    return x_BxHxWxC


def ssim_map(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-pixel, per-channel SSIM (B,H,W,C) float64 with the standard constants (data range 255)."""
    x, y = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    _difference(x, y)  # shape check
    mu_x, mu_y = _gaussian_blur(x), _gaussian_blur(y)
    var_x = _gaussian_blur(x * x) - mu_x**2
    var_y = _gaussian_blur(y * y) - mu_y**2
    cov = _gaussian_blur(x * y) - mu_x * mu_y
    return ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
            / ((mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)))


def masked_ssim(pred: np.ndarray, target: np.ndarray, known: np.ndarray) -> np.ndarray:
    """SSIM per image (B,), the SSIM map averaged over the missing pixels and channels; NaN if none.

    Windows around a missing pixel also see known pixels nearby: SSIM scores structure, which is only
    defined over a neighbourhood, so the score says how well the fill continues its surroundings.
    """
    return _missing_mean(ssim_map(pred, target), known)


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
