"""Tests for maskgit_jax.metrics against hand-computed values."""

import math

import numpy as np
import pytest

from maskgit_jax import metrics


def _pair_with_known_errors():
    """Two 4x4 images; image 0 has 4 missing pixels with error 10 in every channel (MSE 100, L1 10)."""
    target = np.full((2, 4, 4, 3), 100, np.uint8)
    pred = target.copy()
    known = np.ones((2, 4, 4), bool)
    known[0, :2, :2] = False
    pred[0, :2, :2] = 90              # below the target: checks there is no uint8 wrap-around
    pred[0, 3, 3] = 0                 # a known pixel: must be ignored
    known[1, 0, :] = False            # image 1: 4 missing pixels, errors 0, 0, 0, 20 in channel 0
    pred[1, 0, 3, 0] = 120
    return pred, target, known


def test_masked_psnr_from_known_mse():
    pred, target, known = _pair_with_known_errors()
    psnr = metrics.masked_psnr(pred, target, known)
    mse1 = 20.0**2 / (4 * 3)
    np.testing.assert_allclose(psnr, [10 * math.log10(255**2 / 100.0), 10 * math.log10(255**2 / mse1)])


def test_masked_psnr_exact_match_and_no_hole():
    target = np.zeros((2, 2, 2, 3), np.uint8)
    known = np.array([np.zeros((2, 2), bool), np.ones((2, 2), bool)])
    psnr = metrics.masked_psnr(target, target, known)
    assert psnr[0] == np.inf
    assert np.isnan(psnr[1])


def test_masked_l1():
    pred, target, known = _pair_with_known_errors()
    np.testing.assert_allclose(metrics.masked_l1(pred, target, known), [10.0, 20.0 / 12])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        metrics.masked_l1(np.zeros((1, 2, 2, 3)), np.zeros((1, 3, 3, 3)), np.ones((1, 2, 2), bool))


def test_mean_fill_on_a_hand_made_image():
    image = np.zeros((1, 2, 2, 3), np.uint8)
    image[0, 0, 0] = (10, 20, 30)
    image[0, 0, 1] = (20, 40, 61)
    image[0, 1, 0] = (30, 60, 90)
    image[0, 1, 1] = (255, 255, 255)  # the hole: its value must not leak into the mean
    known = np.array([[[True, True], [True, False]]])
    filled = metrics.mean_fill(image, known)
    assert filled.dtype == np.uint8
    np.testing.assert_array_equal(filled[0, 1, 1], [20, 40, 60])  # 181/3 = 60.33 -> 60
    np.testing.assert_array_equal(filled[0, :, 0], image[0, :, 0])
    np.testing.assert_array_equal(filled[0, 0, 1], image[0, 0, 1])


def test_mean_fill_with_nothing_known_is_gray():
    image = np.full((1, 2, 2, 3), 7, np.uint8)
    filled = metrics.mean_fill(image, np.zeros((1, 2, 2), bool))
    np.testing.assert_array_equal(filled, np.full_like(image, 128))


def test_token_accuracy():
    true = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    pred = np.array([[1, 0, 3, 0], [5, 6, 0, 0]])
    unknown = np.array([[True, True, False, False], [True, True, True, False]])
    # unknown tokens: (1 ok, 2 wrong), (5 ok, 6 ok, 7 wrong) -> 3 / 5; the known ones do not count
    assert metrics.token_accuracy(pred, true, unknown) == pytest.approx(0.6)
    assert math.isnan(metrics.token_accuracy(pred, true, np.zeros_like(unknown)))


def _ssim_reference(x, y):
    """Direct float64 SSIM map of one (H, W) channel: an explicit loop over 11x11 Gaussian windows."""
    h, w = x.shape
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    g /= g.sum()
    window = np.outer(g, g)
    reflect = lambda i, n: -i if i < 0 else (2 * (n - 1) - i if i >= n else i)
    out = np.zeros((h, w))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    for i in range(h):
        for j in range(w):
            rows = [reflect(i + d, h) for d in range(-5, 6)]
            cols = [reflect(j + d, w) for d in range(-5, 6)]
            px, py = x[np.ix_(rows, cols)], y[np.ix_(rows, cols)]
            mx, my = np.sum(window * px), np.sum(window * py)
            vx = np.sum(window * (px - mx) ** 2)
            vy = np.sum(window * (py - my) ** 2)
            cxy = np.sum(window * (px - mx) * (py - my))
            out[i, j] = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return out


def test_ssim_map_matches_a_direct_windowed_computation():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (1, 12, 13, 3), dtype=np.uint8)
    pred = np.clip(target + rng.normal(0, 25, target.shape), 0, 255).astype(np.uint8)
    got = metrics.ssim_map(pred, target)
    for c in range(3):
        np.testing.assert_allclose(got[0, ..., c], _ssim_reference(pred[0, ..., c].astype(float),
                                                                   target[0, ..., c].astype(float)),
                                   rtol=1e-9, atol=1e-12)


def test_masked_ssim_averages_over_the_hole_only():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    known = np.ones((2, 16, 16), bool)
    known[0, 4:8, 4:8] = False
    np.testing.assert_allclose(metrics.masked_ssim(target, target, known)[0], 1.0)
    assert np.isnan(metrics.masked_ssim(target, target, known)[1])
    noisy = 255 - target
    ssim = metrics.masked_ssim(noisy, target, known)[0]
    expected = metrics.ssim_map(noisy, target)[0, 4:8, 4:8].mean()
    np.testing.assert_allclose(ssim, expected)
    assert ssim < 0  # an inverted image is anti-correlated
