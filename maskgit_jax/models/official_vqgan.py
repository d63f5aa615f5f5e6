"""The VQGAN tokenizer of the official MaskGIT ImageNet checkpoints (google-research/maskgit), in flax.

Written here from the conventions of the released ``tokenizer_imagenet256_checkpoint`` so that it
loads as it is (its ``params`` tree has exactly this module's names and shapes):

    encoder: Conv3x3 (no bias); per level i: num_res_blocks ResBlocks at filters * mult[i], then a
             2x2 average pool (not after the last level); num_res_blocks more ResBlocks; GN, swish,
             Conv1x1 (bias) to embedding_dim
    quantizer/codebook (K, D): nearest code by squared distance (first index on ties)
    decoder: Conv3x3 (bias); num_res_blocks ResBlocks at the top width; per level i = last..0:
             num_res_blocks ResBlocks at filters * mult[i], then (i > 0) nearest x2 upsampling and
             Conv3x3 (bias); GN, swish, Conv3x3 (bias) to 3 channels

Images are NHWC float32 in [0, 1] (no mean/std); decoded images are unbounded (nominally [0, 1],
no tanh). GroupNorm is flax's with 32 groups and eps 1e-6. Convs inside ResBlocks have no bias, and
a ResBlock that changes width adds a 1x1 conv **of its own output** (``h + Conv1x1(h)``; the block's
input is dropped): that is what the released weights were trained with, and their ``Conv_2`` shape
(out, out) bakes it in.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

GN_EPS = 1e-6


def _norm() -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, epsilon=GN_EPS)


def _swish(x):
    return x * jax.nn.sigmoid(x)


def _conv(features: int, size: int, bias: bool = True) -> nn.Conv:
    return nn.Conv(features, (size, size), padding="SAME", use_bias=bias)


class ResBlock(nn.Module):
    """The official residual block (its class name gives the parameter names ResBlock_i)."""
    filters: int

    @nn.compact
    def __call__(self, x):
        h = _conv(self.filters, 3, bias=False)(_swish(_norm()(x)))
        h = _conv(self.filters, 3, bias=False)(_swish(_norm()(h)))
        if x.shape[-1] != self.filters:
            return h + _conv(self.filters, 1, bias=False)(h)  # the quirk: x is not used
        return h + x


def _avg_pool_2x2(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _upsample_nearest_2x(x):
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


class _Encoder(nn.Module):
    filters: int
    channel_multipliers: Sequence[int]
    num_res_blocks: int
    embedding_dim: int

    @nn.compact
    def __call__(self, x):
        x = _conv(self.filters, 3, bias=False)(x)
        levels = len(self.channel_multipliers)
        for i, mult in enumerate(self.channel_multipliers):
            for _ in range(self.num_res_blocks):
                x = ResBlock(self.filters * mult)(x)
            if i < levels - 1:
                x = _avg_pool_2x2(x)
        for _ in range(self.num_res_blocks):
            x = ResBlock(self.filters * self.channel_multipliers[-1])(x)
        return _conv(self.embedding_dim, 1)(_swish(_norm()(x)))


class _Decoder(nn.Module):
    filters: int
    channel_multipliers: Sequence[int]
    num_res_blocks: int

    @nn.compact
    def __call__(self, x):
        top = self.filters * self.channel_multipliers[-1]
        x = _conv(top, 3)(x)
        for _ in range(self.num_res_blocks):
            x = ResBlock(top)(x)
        for i in reversed(range(len(self.channel_multipliers))):
            width = self.filters * self.channel_multipliers[i]
            for _ in range(self.num_res_blocks):
                x = ResBlock(width)(x)
            if i > 0:
                x = _conv(width, 3)(_upsample_nearest_2x(x))
        return _conv(3, 3)(_swish(_norm()(x)))


class _Quantizer(nn.Module):
    codebook_size: int
    embedding_dim: int

    def setup(self):
        self.codebook = self.param("codebook", nn.initializers.variance_scaling(1.0, "fan_in", "uniform"),
                                   (self.codebook_size, self.embedding_dim))

    def nearest(self, z_BxhxwxD):
        """Code ids (B, h, w) of the nearest codebook rows: argmin |z|^2 - 2 z.e + |e|^2."""
        distances = (jnp.sum(z_BxhxwxD ** 2, axis=-1, keepdims=True)
                     - 2 * z_BxhxwxD @ self.codebook.T + jnp.sum(self.codebook ** 2, axis=-1))
        return jnp.argmin(distances, axis=-1).astype(jnp.int32)

    def lookup(self, ids):
        return jnp.take(self.codebook, ids, axis=0)


class OfficialVQGAN(nn.Module):
    """The official f16 VQGAN: ``encode(images in [0, 1]) -> (z_q, ids (B, S/16, S/16), {})``,
    ``decode_indices(ids) -> images``; ``__call__`` reconstructs (and creates every parameter).

    Defaults are the ImageNet checkpoints' (54,515,587 parameters); ``img_resolution`` is the size
    the model works at (256 or 512; the weights are the same).
    """
    img_resolution: int = 256
    filters: int = 128
    channel_multipliers: Sequence[int] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    embedding_dim: int = 256
    num_codes: int = 1024
    image_channels: int = 3

    @property
    def latent_resolution(self) -> int:
        return self.img_resolution // 2 ** (len(self.channel_multipliers) - 1)

    def setup(self):
        mults = tuple(self.channel_multipliers)
        self.encoder = _Encoder(self.filters, mults, self.num_res_blocks, self.embedding_dim)
        self.quantizer = _Quantizer(self.num_codes, self.embedding_dim)
        self.decoder = _Decoder(self.filters, mults, self.num_res_blocks)

    def encode(self, images_BxHxWx3):
        """(quantized latents (B, h, w, D), ids (B, h, w) int32, {}): the interface of ``VQGAN``."""
        ids = self.quantizer.nearest(self.encoder(images_BxHxWx3))
        return self.quantizer.lookup(ids), ids, {}

    def encoder_features(self, images_BxHxWx3):
        """The encoder's output before quantisation (B, h, w, D)."""
        return self.encoder(images_BxHxWx3)

    def decode(self, z_BxhxwxD):
        """Latents (B, h, w, D) -> images: the interface of ``VQGAN``."""
        return self.decoder(z_BxhxwxD)

    def decode_indices(self, ids_Bxhxw):
        return self.decode(self.quantizer.lookup(ids_Bxhxw))

    def code_vectors(self):
        """The (K, D) codebook ``decode_indices`` looks up."""
        return self.quantizer.codebook

    def __call__(self, images_BxHxWx3):
        return self.decoder(self.encode(images_BxHxWx3)[0])
