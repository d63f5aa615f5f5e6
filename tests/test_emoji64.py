"""The shipped emoji64 files hold the documented splits, and their PNG folder and they are made from
each other exactly (--export, --build); .npz test sets read like lab folders."""

import numpy as np
import pytest

from maskgit_jax import imageio
from maskgit_jax.data import array_files, emoji64, faces, sources, test_sets
from maskgit_jax.data.emoji64 import __main__ as emoji64_files
from maskgit_jax.data.normalize import fill_holes


def test_the_shipped_files_hold_the_documented_splits():
    """The one test that reads the whole set: counts, shapes, dtypes, names, masks, as sources and
    test_sets serve them."""
    train, train_names = array_files.read_images(emoji64.FOLDER / "train.npz", 64)
    val, val_names = array_files.read_images(emoji64.FOLDER / "val.npz", 64)
    test = test_sets.read_test_set("emoji64/test")
    assert (len(train), len(val), len(test)) == (emoji64.SPLITS["train"], emoji64.SPLITS["val"],
                                                 emoji64.SPLITS["test"]) == (2761, 210, 400)
    for images in (train, val, test.ground_truth, test.images):
        assert images.dtype == np.uint8 and images.shape[1:] == (64, 64, 3)
    assert len(set(train_names) | set(val_names)) == 2971 and all(
        n.endswith(".png") for n in train_names + val_names)
    assert test.names == [f"image_{i:03d}.png" for i in range(400)]
    missing = 1 - test.known.mean(axis=(1, 2))
    assert missing.min() >= 0.09 and missing.max() <= 0.41 and 0.2 < missing.mean() < 0.3
    np.testing.assert_array_equal(test.images, fill_holes(test.ground_truth, test.known))
    # The data source: train.npz trains, val.npz is held out.
    np.testing.assert_array_equal(sources.load_images("emoji64", held_out=64), train)
    np.testing.assert_array_equal(sources.load_held_out("emoji64", "train", 64), val[:64])


def _png_folder(root, rng):
    """A small folder in emoji64's layout; its masked images are gt with gray holes."""
    images = rng.integers(0, 256, (7, 64, 64, 3), dtype=np.uint8)
    for split, part, names in (("train", images[:3], ["b.png", "a-1f3fb.png", "c.png"]),
                               ("val", images[3:5], ["y.png", "x.png"])):
        for name, image in zip(names, part):
            imageio.write_image(root / split / name, image)
    known = faces.brush_masks(2, 0, 64)
    imageio.write_lab_layout(root / "test", images[5:], known)
    return images


def test_export_then_build_gives_the_same_files_byte_for_byte(tmp_path):
    rng = np.random.default_rng(0)
    images = _png_folder(tmp_path / "pngs", rng)
    built = emoji64_files.build(tmp_path / "pngs", tmp_path / "npz")
    assert set(array_files.read(built["test"])) == {"names", "gt", "mask64"}  # masked_image rebuilt
    emoji64_files.export(tmp_path / "again", source=tmp_path / "npz")
    for split, part in (("train", images[[1, 0, 2]]), ("val", images[[4, 3]])):  # sorted by name
        again = sorted((tmp_path / "again" / split).iterdir())
        np.testing.assert_array_equal([imageio.read_image(p) for p in again], part)
    assert emoji64_files.check(tmp_path / "pngs", source=tmp_path / "npz")  # every pixel
    emoji64_files.build(tmp_path / "again", tmp_path / "npz2")
    for name in ("train.npz", "val.npz", "test.npz"):
        assert (tmp_path / "npz" / name).read_bytes() == (tmp_path / "npz2" / name).read_bytes()
    with pytest.raises(ValueError, match="exists; choose a new file name, or pass --overwrite"):
        emoji64_files.build(tmp_path / "again", tmp_path / "npz")  # nothing is overwritten unasked


def test_masked_images_are_stored_only_where_they_are_not_the_gray_filled_truth(tmp_path):
    """A test set whose masked images are gt with gray holes stores gt and masks only; one that
    differs keeps its masked images; both read back like the lab folder they came from."""
    truth, known = faces.faces_test_set(3, seed=1)
    imageio.write_lab_layout(tmp_path / "lab", truth, known)
    odd = fill_holes(truth, known)
    odd[0][~known[0]] = 7  # holes painted another colour in one image
    imageio.write_image(tmp_path / "odd" / "masked_image" / "image_000.png", odd[0])
    imageio.write_lab_layout(tmp_path / "odd", truth, known, masked_images=odd)
    for name in ("lab", "odd"):
        lab = imageio.read_lab_layout(tmp_path / name)
        arrays = array_files.test_set_arrays(lab)
        assert ("masked_image" in arrays) == (name == "odd")
        array_files.write(tmp_path / "npz" / f"{name}.npz", arrays)
        got = test_sets.read_test_set(str(tmp_path / "npz" / name))  # NAME stands for NAME.npz
        assert got.names == lab.names
        for field in ("images", "known", "ground_truth"):
            np.testing.assert_array_equal(getattr(got, field), getattr(lab, field))
