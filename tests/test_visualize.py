"""Tests for maskgit_jax.visualize: grid layout, latent mask pictures and the per-step strip."""

import numpy as np
import pytest

from maskgit_jax import visualize


def _solid(n, value, size=4):
    return np.full((n, size, size, 3), value, np.uint8)


def test_image_grid_layout():
    rows = [_solid(3, 10), _solid(2, 20)]
    grid = visualize.image_grid(rows, pad=1)
    assert grid.shape == (2 * 4 + 3, 3 * 4 + 4, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[1:5, 1:5], 10)      # row 0, column 0
    np.testing.assert_array_equal(grid[1:5, 11:15], 10)    # row 0, column 2
    np.testing.assert_array_equal(grid[6:10, 6:10], 20)    # row 1, column 1
    np.testing.assert_array_equal(grid[6:10, 11:15], 255)  # row 1 is short: white
    np.testing.assert_array_equal(grid[0], 255)            # padding is white
    np.testing.assert_array_equal(grid[:, 5], 255)


def test_image_grid_rejects_mixed_sizes():
    with pytest.raises(ValueError, match="same"):
        visualize.image_grid([_solid(1, 0, 4), _solid(1, 0, 8)])


def test_mask_to_image_upsamples_tokens():
    mask = np.array([[True, False, False, True]])  # 2x2 tokens -> 4x4 pixels
    image = visualize.mask_to_image(mask, 4)
    assert image.shape == (1, 4, 4, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, :2, :2], 0)
    np.testing.assert_array_equal(image[0, :2, 2:], 255)
    np.testing.assert_array_equal(image[0, 2:, :2], 255)
    np.testing.assert_array_equal(image[0, 2:, 2:], 0)


def test_step_strip_rows():
    steps, size, pad = 3, 4, 2
    step_masks = np.array([[True] * 4, [True, False, False, False], [False] * 4])
    step_images = np.stack([_solid(1, 50 + s, size)[0] for s in range(steps)])
    masked_input = _solid(1, 7, size)[0]
    strip = visualize.step_strip(step_masks, step_images, masked_input, pad=pad)
    assert strip.shape == (2 * size + 3 * pad, (steps + 1) * size + (steps + 2) * pad, 3)

    def cell(row, col):
        top, left = pad + row * (size + pad), pad + col * (size + pad)
        return strip[top:top + size, left:left + size]

    np.testing.assert_array_equal(cell(0, 0), masked_input)
    np.testing.assert_array_equal(cell(1, 0), masked_input)
    np.testing.assert_array_equal(cell(0, 1), 0)                       # all masked after step 0
    np.testing.assert_array_equal(cell(0, 2)[:2, :2], 0)               # one token left after step 1
    np.testing.assert_array_equal(cell(0, 2)[2:], 255)
    np.testing.assert_array_equal(cell(0, 3), 255)                     # none left at the end
    for s in range(steps):
        np.testing.assert_array_equal(cell(1, s + 1), step_images[s])


def test_step_frames_pair_each_latent_mask_with_its_image():
    unknown = np.array([True, True, True, True])              # 2x2 tokens of 4x4 pixels at 8x8
    step_masks = np.array([[True, True, False, False], [False, False, False, False]])
    step_images = np.stack([_solid(1, 50, 8)[0], _solid(1, 90, 8)[0]])
    frames = visualize.step_frames(unknown, step_masks, step_images, _solid(1, 7, 8)[0], pad=1)
    assert frames.shape == (3, 8 + 2, 2 * 8 + 3, 3)
    np.testing.assert_array_equal(frames[0, 1:9, 1:9], 0)       # all tokens still masked: black
    np.testing.assert_array_equal(frames[0, 1:9, 10:18], 7)     # the masked input
    np.testing.assert_array_equal(frames[1, 1:5, 1:9], 0)       # top row still masked after step 1
    np.testing.assert_array_equal(frames[1, 5:9, 1:9], 255)     # bottom row fixed
    np.testing.assert_array_equal(frames[1, 1:9, 10:18], 50)
    np.testing.assert_array_equal(frames[2, 1:9, 1:9], 255)
    np.testing.assert_array_equal(frames[2, 1:9, 10:18], 90)


def test_animation_gif_holds_every_frame_enlarged():
    import io
    from PIL import Image, ImageSequence
    frames = np.stack([_solid(1, v, 4)[0] for v in (0, 120, 240)])
    gif = Image.open(io.BytesIO(visualize.animation_gif(frames, milliseconds=250, scale=3)))
    decoded = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    assert gif.size == (12, 12) and len(decoded) == 3 and gif.info["duration"] == 250
    assert [int(f[0, 0, 0]) for f in decoded] == [0, 120, 240]
    with pytest.raises(ValueError, match="frames"):
        visualize.animation_gif(np.zeros((4, 4, 3), np.uint8))


def test_png_bytes_decode_to_the_image_enlarged():
    import io
    from PIL import Image
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    decoded = np.asarray(Image.open(io.BytesIO(visualize.png_bytes(image, scale=2))))
    np.testing.assert_array_equal(decoded, image.repeat(2, axis=0).repeat(2, axis=1))
