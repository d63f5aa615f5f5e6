"""PatchGAN discriminator (pix2pix / taming "NLayerDiscriminator") and hinge losses.

(B, H, W, C) images -> (B, h, w, 1) real/fake logits, one per overlapping receptive-field patch.
With the defaults (64 base channels, 3 layers) a 64x64 image gives 6x6 logits
(64 -> 32 -> 16 -> 8 with stride 2, then two 4x4 stride-1 pad-1 convs: 8 -> 7 -> 6).

Layout (4x4 kernels, padding 1 everywhere):
    conv_0: C -> base, stride 2, LeakyReLU(0.2)                       (no norm on the first layer)
    for n in 1..num_layers:  conv_n: -> base*min(2^n, 8), stride 2 (stride 1 for n == num_layers),
                             no bias, norm_n = GroupNorm, LeakyReLU(0.2)
    conv_out: -> 1 logit, stride 1
GroupNorm replaces the usual BatchNorm so the model is stateless (no batch_stats collection and
identical behaviour in train and eval, and no cross-device batch statistics).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from maskgit_jax.models.precision import at_least_float32
from maskgit_jax.models.vqgan import num_groups_for

Dtype = Any

__all__ = ["PatchDiscriminator", "hinge_d_loss", "hinge_g_loss"]


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator; see the module docstring for the layout.

    ``dtype``: compute dtype (params ``param_dtype``); GroupNorm statistics and the returned
    logits are float32 (float64 for a float64 ``dtype``: ``precision.at_least_float32``).
    """

    base_channels: int = 64
    num_layers: int = 3
    max_groups: int = 32
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        if images.ndim != 4:
            raise ValueError(f"PatchDiscriminator expects NHWC images, got shape {images.shape}")
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        stats = at_least_float32(self.dtype)
        x = nn.Conv(self.base_channels, (4, 4), strides=2, padding=1, name="conv_0",
                    **kw)(images.astype(self.dtype))
        x = nn.leaky_relu(x, 0.2)
        for n in range(1, self.num_layers + 1):
            ch = self.base_channels * min(2 ** n, 8)
            stride = 2 if n < self.num_layers else 1
            # No bias: the following normalisation would cancel it.
            x = nn.Conv(ch, (4, 4), strides=stride, padding=1, use_bias=False,
                        name=f"conv_{n}", **kw)(x)
            x = nn.GroupNorm(num_groups=num_groups_for(ch, self.max_groups), epsilon=1e-5,
                             dtype=stats, param_dtype=self.param_dtype,
                             use_fast_variance=False, name=f"norm_{n}")(x.astype(stats))
            x = nn.leaky_relu(x.astype(self.dtype), 0.2)
        x = nn.Conv(1, (4, 4), strides=1, padding=1, name="conv_out", **kw)(x)
        return x.astype(stats)


def hinge_d_loss(logits_real: jax.Array, logits_fake: jax.Array) -> jax.Array:
    """Discriminator hinge loss 0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake))).

    The 0.5 is the taming-transformers convention (with it the loss is 1.0 when all logits are
    0); it only rescales the discriminator's gradient.
    """
    real = jnp.mean(jax.nn.relu(1.0 - logits_real.astype(at_least_float32(logits_real.dtype))))
    fake = jnp.mean(jax.nn.relu(1.0 + logits_fake.astype(at_least_float32(logits_fake.dtype))))
    return 0.5 * (real + fake)


def hinge_g_loss(logits_fake: jax.Array) -> jax.Array:
    """Generator loss for the hinge GAN: -mean(logits_fake)."""
    return -jnp.mean(logits_fake.astype(at_least_float32(logits_fake.dtype)))
