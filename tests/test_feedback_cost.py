"""bench.feedback_cost's reach of the convolutions, against the gradient support of real layers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bench import feedback_cost
from maskgit_jax.models import vqgan as vqgan_lib
from maskgit_jax.models.vqgan import LayerSpec


class Layers(nn.Module):
    layers: tuple

    @nn.compact
    def __call__(self, x):
        return vqgan_lib._apply_layers(self.layers, x, jnp.float32, jnp.float32)


def support_width(layers, side: int, out_row: int, out_col: int) -> int:
    """Columns of the input that output element (out_row, out_col) (channel 0) depends on."""
    module = Layers(tuple(layers))
    x = jax.random.normal(jax.random.key(0), (1, side, side, layers[0].in_channels))
    params = module.init(jax.random.key(1), x)
    grad = jax.grad(lambda x: module.apply(params, x)[0, out_row, out_col, 0])(x)
    cols = np.flatnonzero(np.any(np.asarray(grad[0]) != 0, axis=(0, 2)))
    return int(cols[-1] - cols[0] + 1)


ENCODER_LIKE = [LayerSpec("conv", 3, 4), LayerSpec("res", 4, 4), LayerSpec("down", 4, 4),
                LayerSpec("res", 4, 8), LayerSpec("conv", 8, 4)]
DECODER_LIKE = [LayerSpec("conv", 4, 4), LayerSpec("res", 4, 4), LayerSpec("up", 4, 4),
                LayerSpec("res", 4, 4), LayerSpec("conv", 4, 3)]


def test_reach_by_hand():
    # back from one output: conv 3, res 7, down 2 * 7 + 1 = 15, res 19, conv 21 input pixels.
    assert feedback_cost.conv_reach(ENCODER_LIKE) == 21
    # conv 3, res 7, up (7 + 2) // 2 + 1 = 5 latent positions, res 9, conv 11.
    assert feedback_cost.conv_reach(DECODER_LIKE) == 11


def test_reach_is_the_gradient_support_without_groupnorm(monkeypatch):
    """With GroupNorm made the identity, an output element depends on exactly ``conv_reach``
    input columns (at the worst alignment, for the upsampling)."""
    monkeypatch.setattr(vqgan_lib, "GroupNorm", lambda **kw: (lambda x: x))
    assert support_width(ENCODER_LIKE, 32, 8, 8) == feedback_cost.conv_reach(ENCODER_LIKE)
    widths = [support_width(DECODER_LIKE, 16, 15, col) for col in (14, 15)]  # both alignments
    assert max(widths) == feedback_cost.conv_reach(DECODER_LIKE)


def test_groupnorm_makes_every_output_read_the_whole_input():
    assert support_width(ENCODER_LIKE, 32, 8, 8) == 32


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_the_faces_tokenizers_reach_across_the_image(name):
    """What the bench reports for the faces configs: convolutions alone already tie a token to
    nearly every pixel, and one pixel to more tokens than the grid has."""
    from maskgit_jax.configs import faces as faces_config
    from maskgit_jax.models import from_config
    vq = from_config.vqgan(faces_config.get_config(name))
    encoder, decoder = feedback_cost.layer_lists(vq)
    assert feedback_cost.conv_reach(encoder) >= vq.img_resolution - 3
    assert feedback_cost.conv_reach(decoder) > vq.latent_resolution
