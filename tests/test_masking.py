import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax import masking, schedules


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
@pytest.mark.parametrize("blob_prob", [0.0, 1.0])
def test_training_mask_has_exact_count_per_example(schedule, blob_prob):
    rng = jax.random.PRNGKey(3)
    batch, grid = 64, 8
    mask = np.asarray(masking.training_mask(rng, batch, grid, schedule, blob_prob))
    # The count is drawn from the first split of rng, exactly as training_mask does.
    count_rng = jax.random.split(rng, 4)[0]
    r = np.asarray(jax.random.uniform(count_rng, (batch,)), np.float64)
    want = [min(max(math.ceil(float(schedules.gamma(schedule, x, 64)) * 64), 1), 64) for x in r]
    assert mask.shape == (batch, 64)
    np.testing.assert_array_equal(mask.sum(-1), want)
    assert len({tuple(m) for m in mask}) > 8  # positions differ between examples


def test_blob_masks_are_spatially_coherent():
    mask = np.asarray(masking.training_mask(jax.random.PRNGKey(0), 256, 16, "linear", blob_prob=1.0))
    rand = np.asarray(masking.training_mask(jax.random.PRNGKey(0), 256, 16, "linear", blob_prob=0.0))

    def same_as_right_neighbour(m):
        g = m.reshape(-1, 16, 16)
        return np.mean(g[:, :, 1:] == g[:, :, :-1])

    assert same_as_right_neighbour(mask) > same_as_right_neighbour(rand) + 0.15


def test_lowest_k_picks_the_k_smallest():
    scores = jnp.array([[0.5, 0.1, 0.9, 0.3], [0.2, 0.2, 0.1, 0.7]])
    got = np.asarray(masking.lowest_k(scores, jnp.array([2, 3])))
    np.testing.assert_array_equal(got, [[False, True, False, True], [True, True, True, False]])


def test_pixel_to_token_any_missing_pixel_masks_the_token():
    known = np.ones((1, 8, 8), bool)
    known[0, 0, 0] = False   # token (0, 0)
    known[0, 7, 5] = False   # token (3, 2) of a 4x4 grid of 2x2 patches
    got = np.asarray(masking.pixel_to_token_unknown(jnp.asarray(known), grid=4)).reshape(4, 4)
    want = np.zeros((4, 4), bool)
    want[0, 0] = want[3, 2] = True
    np.testing.assert_array_equal(got, want)


def test_pixel_to_token_dilate_grows_by_one_token():
    known = np.ones((1, 8, 8), bool)
    known[0, 4, 4] = False  # token (2, 2)
    got = np.asarray(masking.pixel_to_token_unknown(jnp.asarray(known), grid=4, dilate=1)).reshape(4, 4)
    want = np.zeros((4, 4), bool)
    want[1:4, 1:4] = True
    np.testing.assert_array_equal(got, want)


def test_token_to_pixel_repeats_patches():
    m = jnp.array([[True, False, False, True]])
    got = np.asarray(masking.token_to_pixel(m, 4))
    assert got.shape == (1, 4, 4)
    assert got[0, :2, :2].all() and not got[0, :2, 2:].any() and got[0, 2:, 2:].all()
