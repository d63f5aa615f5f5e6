"""The grain input pipeline: deterministic by (seed, step), epoch permutations, host shares, flips;
the token cache's mirrored and shifted copies."""

import numpy as np
import pytest

from maskgit_jax.data import batches
from maskgit_jax.train import token_cache


def _ids(n):
    return np.arange(n, dtype=np.int32)


def test_each_epoch_is_a_new_permutation_and_batches_are_fixed_by_seed_and_step():
    ds = batches.dataset(_ids(12), 4, seed=3)
    epoch0 = np.concatenate([ds[s] for s in range(3)])
    epoch1 = np.concatenate([ds[s] for s in range(3, 6)])
    assert sorted(epoch0) == list(range(12)) and sorted(epoch1) == list(range(12))
    assert not np.array_equal(epoch0, epoch1)
    assert not np.array_equal(epoch0, np.arange(12))
    again = batches.dataset(_ids(12), 4, seed=3)
    np.testing.assert_array_equal(np.stack([again[s] for s in range(6)]),
                                  np.stack([ds[s] for s in range(6)]))
    other_seed = batches.dataset(_ids(12), 4, seed=4)
    assert not np.array_equal(np.stack([other_seed[s] for s in range(3)]),
                              np.stack([ds[s] for s in range(3)]))


def test_batches_straddle_epochs_without_dropping_examples():
    ds = batches.dataset(_ids(10), 4, seed=0)  # 10 is not a multiple of 4
    stream = np.concatenate([ds[s] for s in range(5)])  # 20 examples = two epochs
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:]) == list(range(10))


def test_a_resumed_iterator_reads_what_an_uninterrupted_one_reads():
    ds = batches.dataset(_ids(50), 8, seed=1)
    whole = list(batches.iterate(ds, 0, 9))
    resumed = list(batches.iterate(ds, 4, 9))
    assert len(whole) == 9 and len(resumed) == 5
    for a, b in zip(whole[4:], resumed):
        np.testing.assert_array_equal(a, b)


def test_host_shares_make_up_the_single_host_global_batch():
    single = batches.dataset(_ids(40), 8, seed=2, process_index=0, process_count=1)
    hosts = [batches.dataset(_ids(40), 8, seed=2, process_index=p, process_count=2) for p in (0, 1)]
    for step in range(7):
        np.testing.assert_array_equal(np.concatenate([h[step] for h in hosts]), single[step])
    with pytest.raises(ValueError, match="not divisible by the number of hosts"):
        batches.dataset(_ids(40), 9, seed=2, process_index=0, process_count=2)


def test_flips_mirror_about_half_of_the_images_deterministically():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 8, 8, 3), dtype=np.uint8)
    plain = batches.dataset(images, 64, seed=5)
    flipped = batches.dataset(images, 64, seed=5, flip=True)
    a, b = plain[0], flipped[0]
    same = np.all(a == b, axis=(1, 2, 3))
    mirrored = np.all(a[:, :, ::-1] == b, axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 16 < mirrored.sum() < 48
    np.testing.assert_array_equal(batches.dataset(images, 64, seed=5, flip=True)[0], b)


def test_device_prefetch_keeps_order_and_surfaces_errors():
    assert list(batches.prefetch_to_device(iter(range(5)), lambda x: 10 * x)) == [0, 10, 20, 30, 40]

    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(batches.prefetch_to_device(failing(), lambda x: x))


def _clamped_shift(image, dy, dx):
    """A pixel-by-pixel reference: output (y, x) reads input (y - dy, x - dx), clamped to the edge."""
    h, w = image.shape[:2]
    out = np.empty_like(image)
    for y in range(h):
        for x in range(w):
            out[y, x] = image[min(max(y - dy, 0), h - 1), min(max(x - dx, 0), w - 1)]
    return out


@pytest.mark.parametrize("dy, dx", [(0, 0), (1, -2), (-3, 2), (5, 5)])
def test_a_shifted_image_moves_its_pixels_and_repeats_the_edges(dy, dx):
    image = np.arange(5 * 6 * 2, dtype=np.uint8).reshape(5, 6, 2)
    np.testing.assert_array_equal(token_cache.shifted(image, dy, dx), _clamped_shift(image, dy, dx))


def test_the_augmented_cache_holds_the_images_their_mirrors_and_shifted_copies_of_both():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    out = token_cache.augment(images, flips=True, shifts=2, max_shift=2, seed=7)
    assert out.shape == (3 * 2 * 3, 8, 8, 3)
    np.testing.assert_array_equal(out[:3], images)
    np.testing.assert_array_equal(out[3:6], images[:, :, ::-1])
    sources = out[:6]
    offsets = []
    for copy, source in zip(out[6:], np.concatenate([sources, sources])):
        # Each copy is its source moved by one offset within max_shift (the random images make
        # that offset unique).
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(copy, _clamped_shift(source, dy, dx))]
        assert len(found) == 1
        offsets.append(found[0])
    assert len(set(offsets[:6])) > 1  # offsets are drawn per image, not one per copy
    np.testing.assert_array_equal(out, token_cache.augment(images, True, 2, 2, seed=7))
    assert not np.array_equal(out, token_cache.augment(images, True, 2, 2, seed=8))
    np.testing.assert_array_equal(token_cache.augment(images, False, 0, 2, seed=7), images)
