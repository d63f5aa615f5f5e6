"""Tests for image/mask file I/O and the lab test-set layout (maskgit_jax.imageio)."""

import io

import numpy as np
import pytest
from PIL import Image

from maskgit_jax.imageio import (
    ImageError,
    LabTestSet,
    read_image,
    read_lab_layout,
    read_mask,
    write_image,
    write_lab_layout,
    write_mask,
)


def random_image(seed: int = 0, h: int = 64, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def smooth_image(h: int = 64, w: int = 64) -> np.ndarray:
    """A gradient: JPEG keeps it close, so a JPEG round trip can be checked by value."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 4, y * 4, (x + y) * 2], -1).clip(0, 255).astype(np.uint8)


def test_png_round_trip_creates_dirs(tmp_path):
    img = random_image()
    path = tmp_path / "a" / "b" / "img.png"
    write_image(path, img)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (64, 64, 3)
    assert np.array_equal(out, img)
    with Image.open(path) as im:
        assert im.format == "PNG"


def test_write_image_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", np.zeros((8, 8, 4), np.uint8))


def test_jpeg_bytes_in_png_file_load(tmp_path):
    img = smooth_image()
    path = tmp_path / "really_jpeg.png"
    Image.fromarray(img).save(path, format="JPEG", quality=95)
    assert path.read_bytes()[:2] == b"\xff\xd8"  # JPEG magic in a .png file
    out = read_image(path)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - img).mean() < 4


def test_gray_and_palette_convert_to_rgb(tmp_path):
    gray = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) % 256
    Image.fromarray(gray.astype(np.uint8), "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out, np.repeat(gray.astype(np.uint8)[..., None], 3, -1))

    img = random_image(1, 16, 16) // 128 * 255  # 8 colours: exact in a palette
    Image.fromarray(img).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "p.png")
    assert np.array_equal(read_image(tmp_path / "p.png"), img)


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red channel
    rgba[0, :, 3] = 255  # opaque row
    rgba[1, :, 3] = 0  # transparent row -> white
    rgba[2:, :, 3] = 128  # half: halfway to white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png").astype(int)
    assert out.shape == (4, 4, 3)
    assert np.array_equal(out[0], np.tile([200, 0, 0], (4, 1)))
    assert np.array_equal(out[1], np.full((4, 3), 255))
    assert np.all(np.abs(out[2] - [228, 128, 128]) <= 2)


def test_wrong_size_error_names_file(tmp_path):
    path = tmp_path / "small.png"
    write_image(path, random_image(0, 32, 48))
    assert read_image(path, expected_size=(32, 48)).shape == (32, 48, 3)
    with pytest.raises(ImageError) as e:
        read_image(path, expected_size=(64, 64))
    msg = str(e.value)
    assert "expected 64x64, got 32x48" in msg and str(path) in msg and "\n" not in msg


def test_undecodable_file_error_names_file(tmp_path):
    path = tmp_path / "junk.png"
    path.write_bytes(b"this is not an image")
    with pytest.raises(ImageError, match="cannot decode image") as e:
        read_image(path)
    assert str(path) in str(e.value)
    assert isinstance(e.value, ValueError)
    # A truncated PNG fails at read time too, not later.
    buf = io.BytesIO()
    Image.fromarray(random_image()).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[:200])
    with pytest.raises(ImageError, match="cut.png"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageError, match="missing.png"):
        read_image(tmp_path / "missing.png")


def test_mask_round_trip_and_values(tmp_path):
    known = np.random.default_rng(0).random((64, 64)) < 0.7
    write_mask(tmp_path / "m.png", known)
    with Image.open(tmp_path / "m.png") as im:
        assert im.mode == "L" and set(np.unique(np.asarray(im))) == {0, 255}
    out = read_mask(tmp_path / "m.png", expected_size=(64, 64))
    assert out.dtype == np.bool_ and np.array_equal(out, known)
    # {0, 1} masks are accepted too; 0 is missing.
    Image.fromarray(known.astype(np.uint8), "L").save(tmp_path / "m01.png")
    assert np.array_equal(read_mask(tmp_path / "m01.png"), known)


def test_non_binary_mask_error_names_file_and_values(tmp_path):
    arr = np.zeros((64, 64), np.uint8)
    arr[:10] = 255
    arr[10:12] = 37
    path = tmp_path / "mask_007.png"
    Image.fromarray(arr, "L").save(path)
    with pytest.raises(ImageError) as e:
        read_mask(path)
    assert "37" in str(e.value) and str(path) in str(e.value)
    # A mix of 1 and 255 is not binary either.
    arr[10:12] = 1
    Image.fromarray(arr, "L").save(path)
    with pytest.raises(ImageError, match="not binary"):
        read_mask(path)


def make_set(n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    images = np.stack([random_image(i) for i in range(n)])
    known = np.random.default_rng(9).random((n, 64, 64)) < 0.75
    return images, known


def test_lab_layout_round_trip(tmp_path):
    images, known = make_set()
    write_lab_layout(tmp_path, images, known)
    assert sorted(p.name for p in (tmp_path / "mask64").iterdir())[0] == "mask_000.png"
    ts = read_lab_layout(tmp_path)
    assert isinstance(ts, LabTestSet) and len(ts) == 5
    assert ts.names == [f"image_{i:03d}.png" for i in range(5)]
    assert np.array_equal(ts.known, known)
    assert np.array_equal(ts.ground_truth, images)
    assert np.array_equal(ts.images[known], images[known])
    assert np.all(ts.images[~known] == 128)  # holes filled gray


def test_lab_layout_without_gt_and_numeric_order(tmp_path):
    images, known = make_set(3)
    names = ["image_2.png", "image_10.png", "image_1.png"]
    write_lab_layout(tmp_path, images, known, names=names)
    for p in (tmp_path / "gt").iterdir():
        p.unlink()
    (tmp_path / "gt").rmdir()
    ts = read_lab_layout(tmp_path)
    assert ts.ground_truth is None
    assert ts.names == ["image_1.png", "image_2.png", "image_10.png"]  # numeric, not lexical
    assert np.array_equal(ts.known, known[[2, 0, 1]])


def test_lab_layout_many_images_pad_digits(tmp_path):
    images = np.zeros((1001, 2, 2, 3), np.uint8)
    known = np.ones((1001, 2, 2), bool)
    write_lab_layout(tmp_path, images[:1001], known)
    names = sorted(p.name for p in (tmp_path / "masked_image").iterdir())
    assert names[0] == "image_0000.png" and names[-1] == "image_1000.png"


def test_lab_layout_mismatched_names(tmp_path):
    images, known = make_set(4)
    write_lab_layout(tmp_path, images, known)
    (tmp_path / "mask64" / "mask_001.png").unlink()
    with pytest.raises(ImageError, match="001") as e:
        read_lab_layout(tmp_path)
    assert "without a mask" in str(e.value)
    (tmp_path / "masked_image" / "image_001.png").unlink()
    write_mask(tmp_path / "mask64" / "mask_042.png", known[0])
    with pytest.raises(ImageError, match="042") as e:
        read_lab_layout(tmp_path)
    assert "without an image" in str(e.value)


def test_lab_layout_errors(tmp_path):
    with pytest.raises(ImageError, match="masked_image"):
        read_lab_layout(tmp_path)  # missing folder is named
    (tmp_path / "masked_image").mkdir()
    (tmp_path / "mask64").mkdir()
    with pytest.raises(ImageError, match="no image"):
        read_lab_layout(tmp_path)
    images, known = make_set(2)
    write_lab_layout(tmp_path, images, known)
    with pytest.raises(ImageError, match="expected 32x32, got 64x64"):
        read_lab_layout(tmp_path, image_size=32)
    (tmp_path / "gt" / "image_001.png").unlink()
    with pytest.raises(ImageError, match="ground truth"):
        read_lab_layout(tmp_path)


def test_write_lab_layout_rejects_bad_input(tmp_path):
    images, known = make_set(2)
    with pytest.raises(ValueError):
        write_lab_layout(tmp_path, images, known[:1])
    with pytest.raises(ValueError, match="image_XXX"):
        write_lab_layout(tmp_path, images, known, names=["a.png", "b.png"])
