"""Image-folder and .npz data sources: recursive, decoded by content, clear errors naming the file;
held-out splits; the shipped emoji64 by name, a path that exists first."""

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskgit_jax.data import array_files, faces, locate, sources
from maskgit_jax.imageio import ImageError


def _encoded(image: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)


def test_folder_is_read_recursively_by_content(tmp_path, images):
    root = tmp_path / "data" / "train"
    (root / "sub").mkdir(parents=True)
    jpeg = _encoded(images[0], "JPEG")
    (root / "a.png").write_bytes(jpeg)   # JPEG bytes under a .png name
    (root / "sub" / "b").write_bytes(_encoded(images[1], "PNG"))  # no suffix at all
    (root / "c.jpg").write_bytes(_encoded(images[2], "PNG"))
    (root / "README.md").write_text("not an image")
    (root / "labels.csv").write_text("a,1\n")
    got = sources.load_images(str(tmp_path / "data"), "train", image_size=16)  # split sub-folder
    assert got.shape == (3, 16, 16, 3) and got.dtype == np.uint8
    # Sorted by path: a.png, c.jpg, sub/b.
    np.testing.assert_array_equal(got[1], images[2])
    np.testing.assert_array_equal(got[2], images[1])
    np.testing.assert_array_equal(got[0], np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")))
    assert len(sources.load_images(str(root), "train", num=2, image_size=16)) == 2


def test_folder_errors_name_the_file(tmp_path, images):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageError, match="broken.png"):
        sources.load_images(str(tmp_path), image_size=16)
    (tmp_path / "broken.png").unlink()
    (tmp_path / "big.png").write_bytes(_encoded(np.zeros((32, 32, 3), np.uint8), "PNG"))
    with pytest.raises(ImageError, match=r"expected 16x16, got 32x32: .*big.png"):
        sources.load_images(str(tmp_path), image_size=16)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        sources.load_images(str(tmp_path / "nowhere"))
    (tmp_path / "big.png").unlink()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="no images under"):
        sources.load_images(str(tmp_path), image_size=16)


def _write_images(folder, images, names):
    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names):
        (folder / name).write_bytes(_encoded(image, "PNG"))


def _same_rows(a, b):
    return sorted(map(bytes, a)) == sorted(map(bytes, b))


@pytest.fixture
def five():
    return np.random.default_rng(1).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)


def test_a_folder_without_val_holds_out_its_last_images_by_name(tmp_path, five):
    _write_images(tmp_path / "train", five, ["e.png", "a.png", "d.png", "b.png", "c.png"])
    train = sources.load_images(str(tmp_path), "train", image_size=16, held_out=2)
    held_out = sources.load_held_out(str(tmp_path), "train", 2, image_size=16)
    np.testing.assert_array_equal(train, five[[1, 3, 4]])     # a, b, c
    np.testing.assert_array_equal(held_out, five[[2, 0]])     # d, e: never trained on
    assert len(sources.load_images(str(tmp_path), "train", num=2, image_size=16, held_out=2)) == 2
    with pytest.raises(ValueError, match=r"train holds 5 images .* hold out 5 \(config.data.num_eval\)"):
        sources.load_images(str(tmp_path), "train", image_size=16, held_out=5)


@pytest.mark.parametrize("train_split", ["train", "none"])
def test_a_val_or_test_folder_is_the_held_out_split(tmp_path, five, train_split):
    """Training reads train/ (or, without it, the root but never val/ or test/); val/ is preferred."""
    if train_split == "train":
        _write_images(tmp_path / "train", five[:2], ["a.png", "b.png"])
    else:
        _write_images(tmp_path, five[:2], ["a.png", "b.png"])
    _write_images(tmp_path / "test", five[2:3], ["z.png"])
    _write_images(tmp_path / "val", five[3:], ["y.png", "x.png"])
    train = sources.load_images(str(tmp_path), "train", image_size=16, held_out=1)
    assert _same_rows(train, five[:2])  # the held-out count does not cut the training images
    np.testing.assert_array_equal(sources.load_held_out(str(tmp_path), "train", 8, image_size=16),
                                  five[[4, 3]])   # val/, sorted: x, y
    (tmp_path / "val" / "x.png").unlink()
    (tmp_path / "val" / "y.png").unlink()
    (tmp_path / "val").rmdir()
    np.testing.assert_array_equal(sources.load_held_out(str(tmp_path), "train", 8, image_size=16),
                                  five[2:3])      # test/ when there is no val/
    assert _same_rows(sources.load_images(str(tmp_path), "train", image_size=16, held_out=1), five[:2])


def test_the_faces_hold_out_their_val_split():
    held_out = sources.load_held_out("faces", "train", 3)
    np.testing.assert_array_equal(held_out, faces.faces_split("val", 3))
    train = sources.load_images("faces", "train", 50, held_out=3)
    assert not set(map(bytes, held_out)) & set(map(bytes, train))
    with pytest.raises(ValueError, match="num_eval=0"):
        sources.load_held_out("faces", "train", 0)


class _FakeTfds:
    """The two calls sources makes of tensorflow_datasets, over named splits of numbered images."""

    def __init__(self, splits: dict):
        self.splits, self.read = splits, []

    def builder(self, name):
        return type("Builder", (), {"info": type("Info", (), {"splits": self.splits})})()

    def data_source(self, name, split):
        self.read.append(split)
        base, _, part = split.partition("[")
        images = self.splits[base]
        if part:  # "a:b]" slicing as TFDS reads it
            start, stop = (int(x) if x else None for x in part.rstrip("]").split(":"))
            images = images[start:stop]
        return [{"image": image} for image in images]


def test_tfds_holds_out_its_validation_split_else_the_end_of_train(monkeypatch, five):
    fake = _FakeTfds({"train": five[:3], "validation": five[3:]})
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    assert _same_rows(sources.load_images("tfds:x", "train", image_size=16, held_out=1), five[:3])
    np.testing.assert_array_equal(sources.load_held_out("tfds:x", "train", 1, image_size=16), five[3:4])
    fake.splits = {"train": five}  # no validation or test split: the last images of train
    assert _same_rows(sources.load_images("tfds:x", "train", image_size=16, held_out=2), five[:3])
    np.testing.assert_array_equal(sources.load_held_out("tfds:x", "train", 2, image_size=16), five[3:])
    with pytest.raises(ValueError, match=r"train_split='train\[:50%\]': tfds:x has no validation"):
        sources.load_images("tfds:x", "train[:50%]", image_size=16, held_out=2)


def test_an_npz_of_images_is_a_source_and_a_split(tmp_path, five):
    """An .npz of images trains like a folder without val/ (its last images held out, in its
    order); train.npz and val.npz in a folder are its splits, like train/ and val/."""
    array_files.write_images(tmp_path / "set.npz", five, list("edcba"))
    np.testing.assert_array_equal(sources.load_images(str(tmp_path / "set.npz"), image_size=16,
                                                      held_out=2), five[:3])
    np.testing.assert_array_equal(sources.load_held_out(str(tmp_path / "set.npz"), "train", 2,
                                                        image_size=16), five[3:])
    folder = tmp_path / "splits"
    array_files.write_images(folder / "train.npz", five[:3], ["a.png", "b.png", "c.png"])
    array_files.write_images(folder / "val.npz", five[3:], ["d.png", "e.png"])
    np.testing.assert_array_equal(sources.load_images(str(folder), image_size=16, held_out=1), five[:3])
    np.testing.assert_array_equal(sources.load_held_out(str(folder), "train", 1, image_size=16), five[3:4])
    with pytest.raises(ImageError, match=r"expected 8x8, got 16x16 images: .*train.npz"):
        sources.load_images(str(folder), image_size=8)
    _write_images(folder / "val", five[:1], ["z.png"])  # val/ and val.npz: which one is not clear
    with pytest.raises(ValueError, match=r"both .*val and .*val.npz exist"):
        sources.load_held_out(str(folder), "train", 1, image_size=16)


def test_emoji64_names_the_shipped_set_unless_a_path_of_that_name_exists(tmp_path, monkeypatch, five):
    monkeypatch.chdir(tmp_path)
    shipped = locate.SHIPPED["emoji64"]
    assert locate.resolve("emoji64") == shipped
    assert locate.resolve("emoji64/test") == shipped / "test.npz"
    assert locate.resolve("emoji64/nothing") == Path("emoji64/nothing")  # for the caller's error
    _write_images(tmp_path / "emoji64" / "train", five[:2], ["a.png", "b.png"])
    _write_images(tmp_path / "emoji64" / "val", five[2:3], ["c.png"])
    assert locate.resolve("emoji64") == Path("emoji64")  # the user's folder wins
    np.testing.assert_array_equal(sources.load_images("emoji64", image_size=16, held_out=1), five[:2])
    np.testing.assert_array_equal(sources.load_held_out("emoji64", "train", 1, image_size=16), five[2:3])
    with pytest.raises(FileNotFoundError, match=r"emoji64/test: not found in the folder \./emoji64, "
                                                r"which hides the shipped data set emoji64"):
        locate.resolve("emoji64/test")  # never half the user's folder and half the shipped set
