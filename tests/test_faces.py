"""Tests for the procedural faces and brush masks (maskgit_jax.data.faces)."""

import numpy as np
import pytest

from maskgit_jax.data.faces import faces_split, faces_test_set, random_brush_mask, render_face


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return np.stack([render_face(s) for s in range(64)])


@pytest.fixture(scope="module")
def masks() -> np.ndarray:
    rng = np.random.default_rng(123)
    return np.stack([random_brush_mask(rng) for _ in range(200)])


def mirror_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean abs difference between the face region of `a` and the mirrored `b`, best over small shifts
    (faces are centred with a jitter, so the mirror axis is not the image centre)."""
    a, fb = a.astype(np.float32), b[:, ::-1].astype(np.float32)
    return min(float(np.abs(a[10:54, 18:46] - fb[10:54, 18 + s:46 + s]).mean()) for s in range(-6, 7))


def test_render_face_shape_dtype_and_size():
    img = render_face(0)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    small = render_face(0, size=32)
    assert small.shape == (32, 32, 3) and small.dtype == np.uint8
    # Same design at another resolution: the downsampled 64px face is close to the 32px one.
    down = img.reshape(32, 2, 32, 2, 3).astype(np.float32).mean((1, 3))
    assert np.abs(down - small).mean() < 12


def test_render_face_deterministic():
    assert render_face(7).tobytes() == render_face(7).tobytes()
    assert render_face(7).tobytes() != render_face(8).tobytes()


def test_faces_are_varied(faces):
    # Backgrounds, skins, hair... differ: corner colours and mean colours are (almost) all distinct.
    assert len({tuple(f[0, 0]) for f in faces}) >= 50
    assert len({tuple((f.reshape(-1, 3).mean(0) // 4).astype(int)) for f in faces}) >= 50
    # Pixelwise, faces differ a lot from each other.
    assert faces.astype(np.float32).std(0).mean() > 35
    # Each face is an image, not flat: many distinct colours and real contrast.
    for f in faces[:8]:
        assert len(np.unique(f.reshape(-1, 3), axis=0)) > 100
        assert f.astype(np.float32).std() > 15


def test_faces_are_antialiased(faces):
    # Anti-aliased edges leave intermediate colours, so neighbouring pixels rarely jump by a full step
    # and many pixels are neither of the two colours around an edge.
    f = faces[0].astype(np.float32)
    jumps = np.abs(np.diff(f, axis=1)).max(-1)
    assert (jumps > 0).mean() > 0.1  # edges exist
    assert (jumps[jumps > 0] < 200).mean() > 0.9


def test_faces_are_left_right_symmetric(faces):
    self_err = np.array([mirror_error(f, f) for f in faces])
    other_err = np.array([mirror_error(faces[i], faces[(i + 1) % len(faces)]) for i in range(len(faces))])
    # Exactly mirrored features (only an asymmetric background gradient may differ) ...
    assert np.mean(self_err < 0.5) > 0.75
    assert self_err.max() < 6
    # ... and much closer to its own mirror image than to another face.
    assert np.all(self_err < 0.3 * other_err)


def test_missing_eye_is_mirror_of_the_other(faces):
    # The left half of the face region, mirrored, reproduces the right half (eyes, brows, ears).
    for f in faces[:16]:
        assert mirror_error(f, f) < 3


def test_faces_split_deterministic_prefix_and_seed():
    a = faces_split("train", 5)
    assert a.shape == (5, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, faces_split("train", 5))
    assert np.array_equal(a[:3], faces_split("train", 3))  # face i depends only on (split, seed, i)
    b = faces_split("train", 5, seed=1)
    assert not any(np.array_equal(x, y) for x in a for y in b)


def test_train_and_test_are_disjoint():
    train = faces_split("train", 200)
    test = faces_split("test", 50)
    train_bytes = {f.tobytes() for f in train}
    assert len(train_bytes) == 200
    assert not any(f.tobytes() in train_bytes for f in test)
    assert not np.array_equal(faces_split("val", 1)[0], test[0])


def test_unknown_split_raises():
    with pytest.raises(ValueError, match="validation"):
        faces_split("validation", 2)


def test_faces_test_set():
    images, known = faces_test_set(6, seed=3)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8
    assert known.shape == (6, 64, 64) and known.dtype == np.bool_
    images2, known2 = faces_test_set(6, seed=3)
    assert np.array_equal(images, images2) and np.array_equal(known, known2)
    assert np.array_equal(images, faces_split("test", 6, seed=3))
    missing = 1 - known.mean((1, 2))
    assert np.all((missing >= 0.1) & (missing <= 0.4))
    assert not np.array_equal(faces_test_set(6, seed=4)[1], known)


def test_brush_masks_missing_fraction_in_bounds(masks):
    assert masks.shape == (200, 64, 64) and masks.dtype == np.bool_
    missing = 1 - masks.mean((1, 2))
    assert missing.min() >= 0.10 and missing.max() <= 0.40
    # The target is drawn uniformly: the fractions spread over the range.
    assert missing.min() < 0.15 and missing.max() > 0.35 and 0.2 < missing.mean() < 0.3


def test_brush_masks_differ(masks):
    assert len({m.tobytes() for m in masks}) == len(masks)
    # Holes land all over the image, not in one fixed place.
    assert (~masks).mean(0).min() > 0.02


def test_brush_masks_are_strokes(masks):
    # Missing pixels form thick strokes: nearly all have at least two missing 4-neighbours.
    hole = np.pad(~masks, ((0, 0), (1, 1), (1, 1)))
    nbrs = (hole[:, :-2, 1:-1].astype(int) + hole[:, 2:, 1:-1] + hole[:, 1:-1, :-2] + hole[:, 1:-1, 2:])
    assert (nbrs[~masks] >= 2).mean() > 0.95
    # The criterion does reject scattered pixels.
    random_mask = np.random.default_rng(0).random((64, 64)) < 0.25
    rp = np.pad(random_mask, 1)
    random_nbrs = rp[:-2, 1:-1].astype(int) + rp[2:, 1:-1] + rp[1:-1, :-2] + rp[1:-1, 2:]
    assert (random_nbrs[random_mask] >= 2).mean() < 0.5


def n_components(hole: np.ndarray) -> np.ndarray:
    """Number of 4-connected components of each bool (N, H, W) array, by min-label propagation."""
    n, h, w = hole.shape
    none = h * w
    lab = np.where(hole, np.arange(none).reshape(1, h, w), none)
    while True:
        p = np.pad(lab, ((0, 0), (1, 1), (1, 1)), constant_values=none)
        new = np.minimum.reduce([lab, p[:, :-2, 1:-1], p[:, 2:, 1:-1], p[:, 1:-1, :-2], p[:, 1:-1, 2:]])
        new = np.where(hole, new, none)
        if np.array_equal(new, lab):
            return np.array([len(np.unique(x[x < none])) for x in lab])
        lab = new


def test_brush_masks_are_one_connected_walk(masks):
    # Like the lab's masks, the hole is one blob left by a single walk, not scattered stamps.
    assert np.all(n_components(~masks[:50]) == 1)
    assert np.array_equal(n_components(np.eye(4, dtype=bool)[None]), [4])  # the counter itself works


def test_brush_mask_bounds_and_args():
    rng = np.random.default_rng(0)
    m = random_brush_mask(rng, size=32, min_missing=0.25, max_missing=0.25)
    assert m.shape == (32, 32) and (~m).sum() == 256  # exactly the target
    with pytest.raises(ValueError, match="pixel count"):  # 0.3 * 1024 is no whole number of pixels
        random_brush_mask(rng, size=32, min_missing=0.3, max_missing=0.3)
    for _ in range(20):
        frac = 1 - random_brush_mask(rng, min_missing=0.0, max_missing=0.05).mean()
        assert 0.0 <= frac <= 0.05
    with pytest.raises(ValueError):
        random_brush_mask(rng, min_missing=0.5, max_missing=0.2)
    a = random_brush_mask(np.random.default_rng(5))
    assert np.array_equal(a, random_brush_mask(np.random.default_rng(5)))

