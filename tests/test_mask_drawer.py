"""maskgit_jax.mask_drawer: strokes become the right missing pixels, with or without the widget."""

import numpy as np
import pytest

from maskgit_jax.mask_drawer import MaskDrawer


def _picture(h=20, w=30):
    return np.zeros((h, w, 3), np.uint8)


def test_a_stroke_removes_the_pixels_within_the_radius_of_the_segment():
    drawer = MaskDrawer(_picture(), brush_radius=2)
    assert drawer.known.all()
    drawer.paint(5, 10, 25, 10)
    ys, xs = np.nonzero(~drawer.known)
    # Pixel centres (x + 0.5, y + 0.5) within 2 of the segment y = 10, 5 <= x <= 25 (round caps).
    assert (ys.min(), ys.max()) == (8, 11) and (xs.min(), xs.max()) == (3, 26)
    assert not drawer.known[10, 4:25].any() and drawer.known[10, 27:].all()
    assert drawer.known[7].all() and drawer.known[12].all()


def test_a_dot_is_a_disc_and_clear_forgets_every_stroke():
    drawer = MaskDrawer(_picture(), brush_radius=1.5)
    drawer.paint(10.5, 10.5)   # the centre of pixel (10, 10): its 3x3 block is within 1.5 (diagonals 1.41)
    expected = np.zeros((20, 30), bool)
    expected[9:12, 9:12] = True
    np.testing.assert_array_equal(~drawer.known, expected)
    drawer.clear()
    assert drawer.known.all()


def test_mouse_strokes_on_the_widget_paint_in_picture_pixels():
    pytest.importorskip("ipycanvas")
    drawer = MaskDrawer(_picture(), brush_radius=1, scale=4)
    assert drawer.widget.width == 120 and drawer.widget.height == 80
    drawer._down(4 * 5, 4 * 10)
    drawer._move(4 * 15, 4 * 10)
    drawer._up(4 * 15, 4 * 10)
    drawer._move(4 * 25, 4 * 2)   # the button is up: nothing painted
    painted = MaskDrawer(_picture(), brush_radius=1)
    painted.paint(5, 10, 15, 10)
    np.testing.assert_array_equal(drawer.known, painted.known)


def test_a_picture_that_is_not_rgb_uint8_is_refused():
    with pytest.raises(ValueError, match="uint8"):
        MaskDrawer(np.zeros((4, 4), np.uint8))
