"""Image-folder data source: recursive, decoded by content, clear errors naming the file."""

import io

import numpy as np
import pytest
from PIL import Image

from maskgit_jax.data import sources
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
