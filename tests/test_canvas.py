"""Masks from geometry: an extended canvas (outpainting) and a box (box editing)."""

import numpy as np
import pytest

from maskgit_jax import canvas, imageio, sampling


def test_extend_places_the_picture_and_marks_only_it_known():
    picture = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    grown, known = canvas.extend(picture, top=1, bottom=2, left=3, right=4)
    assert grown.shape == (5, 10, 3) and known.shape == (5, 10)
    np.testing.assert_array_equal(grown[1:3, 3:6], picture)
    assert known.sum() == 6 and known[1:3, 3:6].all()
    assert (grown[~known] == 128).all()
    with pytest.raises(ValueError, match="must be >= 0 and not all 0"):
        canvas.extend(picture)


def test_box_known_is_false_inside_the_box_only():
    known = canvas.box_known((4, 6), (1, 2, 4, 3))
    expected = np.ones((4, 6), bool)
    expected[2, 1:4] = False
    np.testing.assert_array_equal(known, expected)
    with pytest.raises(ValueError, match=r"must lie inside the 6x4 picture"):
        canvas.box_known((4, 6), (0, 0, 7, 2))


def test_run_edit_checks_the_box_and_the_output_before_the_model(tmp_path):
    imageio.write_image(tmp_path / "photo.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="must lie inside the 8x8 picture"):
        sampling.run_edit(None, str(tmp_path / "photo.png"), str(tmp_path / "out.png"), box=(0, 0, 9, 9))
    with pytest.raises(ValueError, match="is the input"):
        sampling.run_edit(None, str(tmp_path / "photo.png"), str(tmp_path / "photo.png"), box=(0, 0, 2, 2))
    imageio.write_image(tmp_path / "old.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="exists; choose a new file name, or pass --overwrite"):
        sampling.run_edit(None, str(tmp_path / "photo.png"), str(tmp_path / "old.png"), box=(0, 0, 2, 2))
