"""bench.paired_gaps: the standard errors of the gaps between two fills of the same test images."""

import numpy as np

from bench import paired_gaps
from maskgit_jax.fid.frechet import fid_from_features


def test_psnr_gap_is_a_paired_mean_over_images_finite_in_both():
    a = np.array([10.0, 12.0, np.inf, np.nan, 9.0])
    b = np.array([9.0, 11.5, 8.0, 7.0, 10.0])
    gap, se, n = paired_gaps.paired_gap(a, b)
    # By hand: images 0, 1, 4; differences 1, 0.5, -1; mean 1/6; squared deviations from it
    # 25/36, 1/9, 49/36 sum to 13/6, over 2 degrees of freedom 13/12; s.e. sqrt(13/12 / 3).
    assert n == 3
    assert abs(gap - 1 / 6) < 1e-12
    assert abs(se - np.sqrt(13 / 36)) < 1e-12


def _test_set(rng, n=150, d=6):
    """Features of a test set's truth and of two fills of it: each fill is the truth plus its own
    per-image error, the second a little worse; most of the spread is the images' own."""
    truth = rng.standard_normal((n, d)) * np.linspace(1, 3, d)
    return truth, truth + 0.6 * rng.standard_normal((n, d)), truth + 0.8 * rng.standard_normal((n, d))


def test_bootstrap_se_of_a_fid_gap_matches_its_spread_over_fresh_test_sets():
    """The paired bootstrap's standard error, taken from one test set, is the spread of the gap
    over many fresh test sets (1.14-1.41 times it here, the bootstrap's duplicated images widen it
    a little). Resampling the truth apart from the fills (unpaired) gives 7-8 times."""
    rng = np.random.default_rng(0)
    gaps = []
    for _ in range(300):
        truth, a, b = _test_set(rng)
        gaps.append(fid_from_features(a, truth) - fid_from_features(b, truth))
    spread = np.std(gaps, ddof=1)
    ratios = []
    for seed in range(4):
        truth, a, b = _test_set(np.random.default_rng(100 + seed))
        draws = paired_gaps.bootstrap_indices(len(truth), 200, seed)
        boot = paired_gaps.bootstrap_fids(a, truth, draws) - paired_gaps.bootstrap_fids(b, truth, draws)
        ratios.append(np.std(boot, ddof=1) / spread)
    assert 0.7 < np.median(ratios) < 1.6, ratios
    # Each draw is a FID of the same rows of the fill and of the truth.
    i = draws[7]
    assert paired_gaps.bootstrap_fids(a, truth, draws[7:8])[0] == fid_from_features(a[i], truth[i])


def test_pairs_compare_each_fill_with_the_next_and_the_model_with_telea():
    names = ["model, square T=8", "model, T=1", paired_gaps.MEAN_FILL]
    assert paired_gaps.pairs(names) == [(names[0], names[1]), (names[1], names[2])]
    assert paired_gaps.pairs(names + [paired_gaps.TELEA])[-1] == (names[0], paired_gaps.TELEA)
