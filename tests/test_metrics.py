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
