"""Seamless compositing (seamless.py) against a float64 SciPy solve of the same discrete Laplace
problem, and hand-computed cases."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.sparse import lil_matrix
from scipy.sparse.linalg import spsolve

from maskgit_jax import inpaint, seamless


def reference_offset(offset_HxWxC: np.ndarray, known_HxW: np.ndarray) -> np.ndarray:
    """float64: offset on known pixels; on missing ones the exact solution of 'each missing pixel
    is the mean of its neighbours inside the image' (a sparse direct solve)."""
    h, w, c = offset_HxWxC.shape
    missing = list(zip(*np.nonzero(~known_HxW)))
    index = {p: i for i, p in enumerate(missing)}
    a = lil_matrix((len(missing), len(missing)))
    b = np.zeros((len(missing), c))
    for (y, x), i in index.items():
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if not (0 <= ny < h and 0 <= nx < w):
                continue
            a[i, i] += 1
            if known_HxW[ny, nx]:
                b[i] += offset_HxWxC[ny, nx]
            else:
                a[i, index[(ny, nx)]] -= 1
    out = offset_HxWxC.astype(np.float64).copy()
    solved = spsolve(a.tocsr(), b)
    out[~known_HxW] = solved.reshape(len(missing), c)
    return out


def test_harmonic_offset_matches_a_direct_solve():
    rng = np.random.default_rng(0)
    known = rng.random((3, 14, 11)) > 0.45
    known[1, :, :6] = False          # a hole that runs into the image's border
    known[2] = True
    known[2, 3:9, 2:8] = False       # one rectangular hole
    offset = rng.normal(0, 40, (3, 14, 11, 3)).astype(np.float32)
    got = np.asarray(seamless.harmonic_offset(jnp.asarray(offset), jnp.asarray(known)))
    for i in range(3):
        np.testing.assert_allclose(got[i], reference_offset(offset[i], known[i]), atol=2e-3)


def test_a_line_between_two_known_pixels_is_a_ramp():
    # One row, known at both ends with offsets 0 and 8: the 3 pixels between get 2, 4, 6; the
    # pixels past the last known one (a mirror border) take its offset.
    known = np.array([[[True, False, False, False, True, False]]])
    offset = np.zeros((1, 1, 6, 1), np.float32)
    offset[0, 0, 4] = 8
    got = np.asarray(seamless.harmonic_offset(jnp.asarray(offset), jnp.asarray(known)))
    np.testing.assert_allclose(got[0, 0, :, 0], [0, 2, 4, 6, 8, 8], atol=1e-4)


def test_a_colour_shift_of_the_whole_fill_is_removed_and_detail_kept():
    rng = np.random.default_rng(1)
    picture = rng.integers(40, 200, (2, 16, 16, 3)).astype(np.uint8)
    known = np.ones((2, 16, 16), bool)
    known[:, 4:12, 3:13] = False
    shift = np.array([17, -9, 30])
    decoded = (picture.astype(np.int64) + shift).astype(np.uint8)  # the fill's detail, off in colour
    out = np.asarray(seamless.seamless_fill(picture, decoded, known))
    np.testing.assert_allclose(out, picture, atol=1e-3)


def test_nothing_known_leaves_the_decoded_image():
    decoded = np.random.default_rng(2).integers(0, 256, (1, 8, 8, 3)).astype(np.uint8)
    out = np.asarray(seamless.seamless_fill(np.zeros_like(decoded), decoded,
                                            np.zeros((1, 8, 8), bool)))
    np.testing.assert_array_equal(out, decoded)


def test_seamless_composite_keeps_known_pixels_and_returns_uint8():
    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, (2, 12, 12, 3)).astype(np.uint8)
    decoded = rng.integers(0, 256, (2, 12, 12, 3)).astype(np.uint8)
    known = rng.random((2, 12, 12)) > 0.3
    cfg = inpaint.InpaintConfig(decode=None, mean=(0.5,) * 3, std=(0.5,) * 3, composite="seamless")
    out = np.asarray(inpaint.composite(picture, decoded, known, cfg))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[known], picture[known])
    fill = decoded[0] + reference_offset(picture[0].astype(np.float64) - decoded[0], known[0])
    np.testing.assert_allclose(out[0][~known[0]], np.clip(np.round(fill), 0, 255)[~known[0]], atol=1)


@pytest.mark.parametrize("bad", ["Seamless", "poisson"])
def test_unknown_composite_is_refused(bad):
    with pytest.raises(ValueError, match="composite must be one of"):
        inpaint.InpaintConfig(decode=None, mean=(0.5,), std=(0.5,), composite=bad)
