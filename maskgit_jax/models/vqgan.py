"""Stage-1 tokenizer: a VQGAN (conv encoder -> vector quantizer -> conv decoder) in flax.linen.

Images are NHWC. With the lab preset a (B, 64, 64, 3) image in normalised space becomes a
(B, 16, 16, 256) latent, i.e. a 16x16 grid of indices into a (1024, 256) codebook (256 tokens,
row-major: token = h * 16 + w), and decodes back to (B, 64, 64, 3) in the same normalised space
(no tanh at the end).

The architecture follows the PyTorch course code ("MaskGIT for Image Inpainting", NYCU lab) so its
``VQGAN.pt`` state_dict maps one-to-one onto the flax parameter tree. The naming rule is:

    torch key                               flax path (params/...)
    encoder.model.{i}.weight / .bias        encoder/model_{i}/kernel / bias        (conv)
    encoder.model.{i}.gn.weight / .bias     encoder/model_{i}/gn/scale / bias      (GroupNorm)
    ...model.{i}.block.{j}.weight           .../model_{i}/block_{j}/kernel         (conv in a ResidualBlock)
    ...model.{i}.block.{j}.gn.weight        .../model_{i}/block_{j}/gn/scale       (GN in a ResidualBlock)
    ...model.{i}.channel_up.weight          .../model_{i}/channel_up/kernel
    ...model.{i}.conv.weight                .../model_{i}/conv/kernel              (Down / Up)
    ...model.{i}.norm.gn.weight             .../model_{i}/norm/gn/scale            (NonLocal)
    ...model.{i}.{q,k,v,proj_out}.weight    .../model_{i}/{q,k,v,proj_out}/kernel  (NonLocal)
    codebook.embedding.weight  (K, D)       codebook/embedding  (K, D), no transpose
    quant_conv / post_quant_conv            quant_conv / post_quant_conv

i.e. replace "." by "/", join a numeric index to its parent name with "_", rename weight->kernel
(conv) or weight->scale (GroupNorm). Conv kernels: torch OIHW -> flax HWIO (transpose(2, 3, 1, 0)).
Parameter-free layers (swish) keep their index in the numbering but create no submodule.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from maskgit_jax.models.precision import at_least_float32

Dtype = Any

__all__ = [
    "LayerSpec",
    "GroupNorm",
    "swish",
    "ResidualBlock",
    "Downsample",
    "Upsample",
    "NonLocal",
    "encoder_layers",
    "decoder_layers",
    "Encoder",
    "Decoder",
    "VectorQuantizer",
    "code_histogram",
    "codebook_perplexity",
    "codebook_usage",
    "restart_dead_codes",
    "VQGAN",
    "lab_vqgan_config",
    "make_vqgan",
]


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------


def num_groups_for(channels: int, max_groups: int = 32) -> int:
    """Largest divisor of ``channels`` that is <= ``max_groups`` and leaves >= 4 channels a group.

    32 for every lab layer (128 to 512 channels). Narrow CPU configs get fewer groups: with one
    channel a group, GroupNorm would remove each channel's spatial mean, i.e. the image's colours.
    """
    for g in range(min(max_groups, max(channels // 4, 1)), 0, -1):
        if channels % g == 0:
            return g
    return 1


def swish(x: jax.Array) -> jax.Array:
    """x * sigmoid(x) (a.k.a. SiLU)."""
    return x * jax.nn.sigmoid(x)


def _conv(features: int, kernel: int, dtype: Dtype, param_dtype: Dtype, name: str,
          stride: int = 1, padding: Any = None) -> nn.Conv:
    """Conv with bias (every conv of the lab has one); 'same'-style symmetric padding by default."""
    if padding is None:
        padding = kernel // 2
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding,
                   use_bias=True, dtype=dtype, param_dtype=param_dtype, name=name)


class GroupNorm(nn.Module):
    """GroupNorm(32 groups, eps 1e-6, affine) wrapped in a module whose child is ``gn``.

    The wrapper exists only so that parameter paths read ``.../gn/scale`` like the torch keys
    ``...gn.weight``. Statistics are computed in float32 (bf16 variance is too coarse; float64 for
    a float64 ``dtype``); the result is cast back to ``dtype``. (B, H, W, C) -> (B, H, W, C).
    """

    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32
    max_groups: int = 32
    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        groups = num_groups_for(x.shape[-1], self.max_groups)
        # use_fast_variance=False: E[(x-mean)^2] instead of E[x^2]-mean^2, as torch does.
        stats = at_least_float32(self.dtype)
        y = nn.GroupNorm(num_groups=groups, epsilon=self.epsilon, dtype=stats,
                         param_dtype=self.param_dtype, use_fast_variance=False,
                         name="gn")(x.astype(stats))
        return y.astype(self.dtype)


class ResidualBlock(nn.Module):
    """Pre-activation residual block (in_ch -> out_ch), (B, H, W, in) -> (B, H, W, out).

    block = [0 GN(in), 1 swish, 2 conv3x3(in,out), 3 GN(out), 4 swish, 5 conv3x3(out,out)];
    the submodules carry the torch Sequential index (block_0, block_2, ...). When in != out the
    shortcut is a 1x1 conv ``channel_up``; output = shortcut(x) + block(x).
    """

    in_channels: int
    out_channels: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        h = GroupNorm(name="block_0", **kw)(x)
        h = swish(h)
        h = _conv(self.out_channels, 3, name="block_2", **kw)(h)
        h = GroupNorm(name="block_3", **kw)(h)
        h = swish(h)
        h = _conv(self.out_channels, 3, name="block_5", **kw)(h)
        if self.in_channels != self.out_channels:
            x = _conv(self.out_channels, 1, name="channel_up", **kw)(x)
        return x.astype(self.dtype) + h


class Downsample(nn.Module):
    """Halve the resolution: (B, H, W, C) -> (B, H // 2, W // 2, C).

    Pads one zero row at the bottom and one zero column at the right, then conv3x3 stride 2 with
    no padding (the asymmetric padding of the course / taming code, not 'SAME').
    """

    channels: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
        return _conv(self.channels, 3, self.dtype, self.param_dtype, name="conv",
                     stride=2, padding="VALID")(x)


class Upsample(nn.Module):
    """Double the resolution: nearest x2 (pixel repeat) then conv3x3 pad 1.

    (B, H, W, C) -> (B, 2H, 2W, C).
    """

    channels: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        # Exact nearest-neighbour x2: every pixel becomes a 2x2 block.
        x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
        return _conv(self.channels, 3, self.dtype, self.param_dtype, name="conv")(x)


class NonLocal(nn.Module):
    """Single-head self-attention over all H*W positions, (B, H, W, C) -> (B, H, W, C).

    h = GN(x); q, k, v = 1x1 convs of h; A = softmax(q k^T / sqrt(C)) over keys (float32);
    out = x + proj_out(A v).
    """

    channels: int
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        b, hgt, wid, c = x.shape
        # GroupNorm named "norm" holds its nn.GroupNorm as "gn": path norm/gn/scale.
        h = GroupNorm(name="norm", **kw)(x)
        q = _conv(c, 1, name="q", **kw)(h).reshape(b, hgt * wid, c)
        k = _conv(c, 1, name="k", **kw)(h).reshape(b, hgt * wid, c)
        v = _conv(c, 1, name="v", **kw)(h).reshape(b, hgt * wid, c)
        # Logits and softmax in float32: with bf16 the softmax over 256+ keys loses too much.
        stats = at_least_float32(self.dtype)
        logits = jnp.einsum("bqc,bkc->bqk", q.astype(stats), k.astype(stats))
        attn = jax.nn.softmax(logits * (c ** -0.5), axis=-1)
        out = jnp.einsum("bqk,bkc->bqc", attn.astype(self.dtype), v).reshape(b, hgt, wid, c)
        return x.astype(self.dtype) + _conv(c, 1, name="proj_out", **kw)(out)


# ----------------------------------------------------------------------------------------------
# Layer lists (the exact nn.Sequential index layout of the course code)
# ----------------------------------------------------------------------------------------------


class LayerSpec(NamedTuple):
    """One entry of an encoder/decoder layer list.

    kind is one of: "conv" (3x3, in->out), "res" (ResidualBlock in->out), "nonlocal", "down",
    "up", "groupnorm", "swish" (for the last four in == out).
    """

    kind: str
    in_channels: int
    out_channels: int


def _check_levels(levels: Sequence[int], n: int, what: str) -> None:
    bad = [lv for lv in levels if not 0 <= lv < n]
    if bad:
        raise ValueError(f"{what}: level(s) {bad} out of range; there are {n} levels (0..{n - 1})")


def encoder_layers(image_channels: int, channels: Sequence[int], num_res_blocks: int,
                   downsample_levels: Sequence[int], attn_resolutions: Sequence[int],
                   mid_attention: bool, resolution: int, latent_dim: int) -> list[LayerSpec]:
    """The encoder's layer list; its position = the torch ``encoder.model`` index.

    conv3x3(image_channels -> channels[0]); then for each level i (len(channels)-1 levels,
    channels[i] -> channels[i+1]): ``num_res_blocks`` ResidualBlocks (the first changes the
    width), each followed by NonLocal when the current resolution is in ``attn_resolutions``,
    and a Downsample if i is in ``downsample_levels``; then the mid block RB, [NonLocal], RB;
    then GN, swish, conv3x3(channels[-1] -> latent_dim).

    Lab: channels [128,128,128,256,256,512], 2 blocks, downsample after levels 2 and 4,
    attention at 16 (never reached inside the levels at 64 -> 16), mid attention -> indices 0..18.
    """
    channels = list(channels)
    if len(channels) < 2:
        raise ValueError(f"encoder channels need at least 2 entries, got {channels}")
    _check_levels(downsample_levels, len(channels) - 1, "encoder downsample_levels")
    layers = [LayerSpec("conv", image_channels, channels[0])]
    for i in range(len(channels) - 1):
        cin, cout = channels[i], channels[i + 1]
        for _ in range(num_res_blocks):
            layers.append(LayerSpec("res", cin, cout))
            cin = cout
            if resolution in attn_resolutions:
                layers.append(LayerSpec("nonlocal", cout, cout))
        if i in downsample_levels:
            layers.append(LayerSpec("down", cout, cout))
            resolution //= 2
    c = channels[-1]
    layers.append(LayerSpec("res", c, c))
    if mid_attention:
        layers.append(LayerSpec("nonlocal", c, c))
    layers.append(LayerSpec("res", c, c))
    layers += [LayerSpec("groupnorm", c, c), LayerSpec("swish", c, c),
               LayerSpec("conv", c, latent_dim)]
    return layers


def decoder_layers(image_channels: int, channels: Sequence[int], num_res_blocks: int,
                   upsample_levels: Sequence[int], attn_resolutions: Sequence[int],
                   mid_attention: bool, resolution: int, latent_dim: int) -> list[LayerSpec]:
    """The decoder's layer list; its position = the torch ``decoder.model`` index.

    ``channels`` are given low level first like the course's dec_channels ([128,128,256,256,512])
    and are walked in reverse (widest first). ``resolution`` is the latent resolution.
    conv3x3(latent_dim -> c0); mid block RB(c0), [NonLocal], RB(c0); then for each level i
    (out width = reversed(channels)[i]): ``num_res_blocks`` ResidualBlocks, each followed by
    NonLocal when the current resolution is in ``attn_resolutions``, and an Upsample if i is in
    ``upsample_levels``; then GN and conv3x3(-> image_channels). No swish before the last conv
    and no tanh (as in the lab).

    Lab: 3 blocks per level, upsample after levels 0 and 2, attention at 16 -> indices 0..25.
    """
    rev = list(channels)[::-1]
    if not rev:
        raise ValueError("decoder channels must not be empty")
    _check_levels(upsample_levels, len(rev), "decoder upsample_levels")
    c = rev[0]
    layers = [LayerSpec("conv", latent_dim, c), LayerSpec("res", c, c)]
    if mid_attention:
        layers.append(LayerSpec("nonlocal", c, c))
    layers.append(LayerSpec("res", c, c))
    cin = c
    for i, cout in enumerate(rev):
        for _ in range(num_res_blocks):
            layers.append(LayerSpec("res", cin, cout))
            cin = cout
            if resolution in attn_resolutions:
                layers.append(LayerSpec("nonlocal", cout, cout))
        if i in upsample_levels:
            layers.append(LayerSpec("up", cout, cout))
            resolution *= 2
    layers += [LayerSpec("groupnorm", cin, cin), LayerSpec("conv", cin, image_channels)]
    return layers


def _apply_layers(layers: Sequence[LayerSpec], x: jax.Array, dtype: Dtype,
                  param_dtype: Dtype) -> jax.Array:
    """Run a layer list inside the caller's compact scope, naming submodules ``model_{i}``."""
    kw = dict(dtype=dtype, param_dtype=param_dtype)
    for i, spec in enumerate(layers):
        name = f"model_{i}"
        if spec.kind == "conv":
            x = _conv(spec.out_channels, 3, name=name, **kw)(x)
        elif spec.kind == "res":
            x = ResidualBlock(spec.in_channels, spec.out_channels, name=name, **kw)(x)
        elif spec.kind == "nonlocal":
            x = NonLocal(spec.out_channels, name=name, **kw)(x)
        elif spec.kind == "down":
            x = Downsample(spec.out_channels, name=name, **kw)(x)
        elif spec.kind == "up":
            x = Upsample(spec.out_channels, name=name, **kw)(x)
        elif spec.kind == "groupnorm":
            x = GroupNorm(name=name, **kw)(x)
        elif spec.kind == "swish":
            x = swish(x)  # no parameters: the index is used, no submodule is created
        else:
            raise ValueError(f"unknown layer kind {spec.kind!r}")
    return x


class Encoder(nn.Module):
    """(B, H, W, image_channels) -> (B, H/2^d, W/2^d, latent_dim), d = len(downsample_levels).

    Submodules are ``model_{i}`` for the i-th entry of :func:`encoder_layers`.
    """

    image_channels: int = 3
    channels: Sequence[int] = (128, 128, 128, 256, 256, 512)
    num_res_blocks: int = 2
    downsample_levels: Sequence[int] = (2, 4)
    attn_resolutions: Sequence[int] = (16,)
    mid_attention: bool = True
    resolution: int = 64
    latent_dim: int = 256
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def layers(self) -> list[LayerSpec]:
        return encoder_layers(self.image_channels, self.channels, self.num_res_blocks,
                              self.downsample_levels, self.attn_resolutions, self.mid_attention,
                              self.resolution, self.latent_dim)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _apply_layers(self.layers(), x.astype(self.dtype), self.dtype, self.param_dtype)


class Decoder(nn.Module):
    """(B, h, w, latent_dim) -> (B, h*2^u, w*2^u, image_channels), u = len(upsample_levels).

    ``resolution`` is the latent resolution (decides where NonLocal blocks go). Submodules are
    ``model_{i}`` for the i-th entry of :func:`decoder_layers`.
    """

    image_channels: int = 3
    channels: Sequence[int] = (128, 128, 256, 256, 512)
    num_res_blocks: int = 3
    upsample_levels: Sequence[int] = (0, 2)
    attn_resolutions: Sequence[int] = (16,)
    mid_attention: bool = True
    resolution: int = 16
    latent_dim: int = 256
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def layers(self) -> list[LayerSpec]:
        return decoder_layers(self.image_channels, self.channels, self.num_res_blocks,
                              self.upsample_levels, self.attn_resolutions, self.mid_attention,
                              self.resolution, self.latent_dim)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        return _apply_layers(self.layers(), z.astype(self.dtype), self.dtype, self.param_dtype)


# ----------------------------------------------------------------------------------------------
# Vector quantizer and codebook statistics
# ----------------------------------------------------------------------------------------------


def code_histogram(indices: jax.Array, num_codes: int) -> jax.Array:
    """Counts per code, shape (num_codes,) int32. Sum histograms of several batches to
    accumulate statistics over an epoch."""
    return jnp.bincount(jnp.ravel(indices).astype(jnp.int32), length=num_codes).astype(jnp.int32)


def codebook_perplexity(histogram: jax.Array) -> jax.Array:
    """exp(entropy) of the code distribution given by a count histogram (K,).

    Ranges from 1 (a single code used) to K (all codes equally used): the effective number of
    codes in use. 0 for an empty histogram.
    """
    h = jnp.asarray(histogram, jnp.float32)
    total = jnp.sum(h)
    p = h / jnp.maximum(total, 1.0)
    entropy = -jnp.sum(jax.scipy.special.xlogy(p, p))
    return jnp.where(total > 0, jnp.exp(entropy), 0.0)


def codebook_usage(histogram: jax.Array) -> jax.Array:
    """Fraction of codes used at least once, in [0, 1]."""
    h = jnp.asarray(histogram)
    return jnp.mean((h > 0).astype(jnp.float32))


def restart_dead_codes(codebook: jax.Array, histogram: jax.Array, candidates: jax.Array,
                       rng: jax.Array) -> jax.Array:
    """Remedy against codebook collapse: re-initialise unused codes from encoder outputs.

    codebook (K, D); histogram (K,) counts accumulated over some steps; candidates (N, D) recent
    pre-quantisation latents (e.g. ``aux['z_e']`` reshaped to (-1, D)). Every code with count 0
    is replaced by a randomly chosen candidate, so it lands where the data is and gets picked
    again; used codes are untouched. Pure and jittable; returns the new (K, D) codebook
    (write it into ``params['codebook']['embedding']`` and reset the optimizer moments there if
    you want a clean restart).
    """
    k = codebook.shape[0]
    pick = jax.random.randint(rng, (k,), 0, candidates.shape[0])
    fresh = candidates[pick].astype(codebook.dtype)
    dead = (jnp.asarray(histogram) == 0)[:, None]
    return jnp.where(dead, fresh, codebook)


def _l2_normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps * eps))


class VectorQuantizer(nn.Module):
    """Nearest-code quantisation with a straight-through gradient.

    z (..., D) -> z_q (..., D) (same dtype as ``dtype``), indices (...) int32, aux dict.
    Param ``embedding`` (K, D) (torch ``codebook.embedding.weight``).

    Distances |z|^2 - 2 z.e + |e|^2 and the loss are computed in float32 whatever the compute
    dtype (bf16 distances would tie/miss-rank close codes; float64 for a float64 one). Loss
    (standard VQ-VAE): codebook term mean((z_q - sg(z))^2) + beta * commitment term
    mean((sg(z_q) - z)^2).
    (The course code puts beta on the codebook term instead; the value is the same,
    only the gradient split differs.)

    ``l2_normalize`` (ViT-VQGAN): the lookup, loss and output use l2-normalised z and codes,
    i.e. cosine similarity; this keeps all codes competitive and is a remedy against collapse.
    """

    num_codes: int = 1024
    code_dim: int = 256
    beta: float = 0.25
    l2_normalize: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    def setup(self):
        k = self.num_codes

        def init(rng, shape, dtype):
            # Same as the course: uniform(-1/K, 1/K).
            return jax.random.uniform(rng, shape, dtype, -1.0 / k, 1.0 / k)

        self.embedding = self.param("embedding", init, (self.num_codes, self.code_dim),
                                    self.param_dtype)

    def codes(self) -> jax.Array:
        """The (K, D) code vectors (float32 or float64) as used by the lookup (normalised if
        l2_normalize)."""
        e = self.embedding.astype(at_least_float32(self.dtype))
        return _l2_normalize(e) if self.l2_normalize else e

    def lookup(self, indices: jax.Array) -> jax.Array:
        """indices (...) int -> code vectors (..., D) in ``dtype``."""
        return jnp.take(self.codes(), indices, axis=0).astype(self.dtype)

    def __call__(self, z: jax.Array):
        if z.shape[-1] != self.code_dim:
            raise ValueError(f"VectorQuantizer: last axis of z is {z.shape[-1]}, "
                             f"expected code_dim={self.code_dim}")
        lead = z.shape[:-1]
        zf = z.astype(at_least_float32(self.dtype)).reshape(-1, self.code_dim)
        if self.l2_normalize:
            zf = _l2_normalize(zf)
        e = self.codes()
        # HIGHEST: on GPUs a default-precision f32 matmul may run in TF32 and mis-rank codes.
        dist = (jnp.sum(zf * zf, axis=1, keepdims=True)
                - 2.0 * jnp.matmul(zf, e.T, precision=jax.lax.Precision.HIGHEST)
                + jnp.sum(e * e, axis=1)[None, :])
        idx = jnp.argmin(dist, axis=1).astype(jnp.int32)
        zq = jnp.take(e, idx, axis=0)
        sg = jax.lax.stop_gradient
        commitment = jnp.mean((sg(zq) - zf) ** 2)
        codebook_loss = jnp.mean((zq - sg(zf)) ** 2)
        loss = codebook_loss + self.beta * commitment
        # Straight-through: forward value zq, gradient w.r.t. z is the identity.
        zq_st = zf + sg(zq - zf)
        hist = code_histogram(idx, self.num_codes)
        aux = {
            "vq_loss": loss,
            "commitment_loss": commitment,
            "codebook_loss": codebook_loss,
            "histogram": hist,
            "perplexity": codebook_perplexity(hist),
            "usage": codebook_usage(hist),
            "z_e": zf.reshape(*lead, self.code_dim),
        }
        return zq_st.reshape(*lead, self.code_dim).astype(self.dtype), idx.reshape(lead), aux


# ----------------------------------------------------------------------------------------------
# The full tokenizer
# ----------------------------------------------------------------------------------------------


class VQGAN(nn.Module):
    """encoder -> quant_conv (1x1) -> codebook | post_quant_conv (1x1) -> decoder.

    Defaults are the lab architecture (see :func:`lab_vqgan_config`). Methods (all usable via
    ``model.apply(variables, x, method=...)``):

    * ``__call__(images (B,H,W,C), train=False) -> (recon (B,H,W,C), aux)`` with aux keys
      'vq_loss', 'indices' (B,h,w) int32, 'perplexity', 'usage', 'histogram' (K,),
      'commitment_loss', 'codebook_loss', 'z_e' (B,h,w,D) pre-quantisation latents.
    * ``encode(images) -> (z_q (B,h,w,D), indices (B,h,w), aux)``
    * ``decode(z_q) -> images``
    * ``decode_indices(indices (B,h,w)) -> images`` (codebook lookup then decode)

    ``dtype`` is the activation/compute dtype; parameters are ``param_dtype`` (float32);
    GroupNorm, attention softmax and VQ distances always run in float32 (float64 for a float64
    ``dtype``: ``precision.at_least_float32``).
    """

    image_channels: int = 3
    enc_channels: Sequence[int] = (128, 128, 128, 256, 256, 512)
    dec_channels: Sequence[int] = (128, 128, 256, 256, 512)
    enc_num_res_blocks: int = 2
    dec_num_res_blocks: int = 3
    enc_downsample_levels: Sequence[int] = (2, 4)
    dec_upsample_levels: Sequence[int] = (0, 2)
    attn_resolutions: Sequence[int] = (16,)
    mid_attention: bool = True
    img_resolution: int = 64
    latent_dim: int = 256
    num_codes: int = 1024
    beta: float = 0.25
    l2_normalize: bool = False
    dtype: Dtype = jnp.float32
    param_dtype: Dtype = jnp.float32

    @property
    def latent_resolution(self) -> int:
        r = self.img_resolution
        for _ in self.enc_downsample_levels:
            r //= 2
        return r

    def setup(self):
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        if len(self.dec_upsample_levels) != len(self.enc_downsample_levels):
            raise ValueError(
                f"VQGAN: {len(self.enc_downsample_levels)} encoder downsamplings but "
                f"{len(self.dec_upsample_levels)} decoder upsamplings; output size would differ")
        self.encoder = Encoder(self.image_channels, tuple(self.enc_channels),
                               self.enc_num_res_blocks, tuple(self.enc_downsample_levels),
                               tuple(self.attn_resolutions), self.mid_attention,
                               self.img_resolution, self.latent_dim, **kw)
        self.quant_conv = _conv(self.latent_dim, 1, name="quant_conv", **kw)
        self.codebook = VectorQuantizer(self.num_codes, self.latent_dim, self.beta,
                                        self.l2_normalize, **kw)
        self.post_quant_conv = _conv(self.latent_dim, 1, name="post_quant_conv", **kw)
        self.decoder = Decoder(self.image_channels, tuple(self.dec_channels),
                               self.dec_num_res_blocks, tuple(self.dec_upsample_levels),
                               tuple(self.attn_resolutions), self.mid_attention,
                               self.latent_resolution, self.latent_dim, **kw)

    def _check_images(self, images: jax.Array) -> None:
        if images.ndim != 4 or images.shape[-1] != self.image_channels:
            raise ValueError(f"VQGAN expects images of shape (B, H, W, {self.image_channels}) "
                             f"(NHWC), got {tuple(images.shape)}")

    def encode(self, images: jax.Array):
        """(B, H, W, C) -> z_q (B, h, w, D) in ``dtype``, indices (B, h, w) int32, aux."""
        self._check_images(images)
        z = self.quant_conv(self.encoder(images))
        z_q, indices, aux = self.codebook(z)
        aux["indices"] = indices
        return z_q, indices, aux

    def decode(self, z_q: jax.Array) -> jax.Array:
        """(B, h, w, D) -> (B, H, W, C) images in normalised space, dtype ``dtype``."""
        return self.decoder(self.post_quant_conv(z_q.astype(self.dtype)))

    def decode_indices(self, indices: jax.Array) -> jax.Array:
        """(B, h, w) int token ids in [0, K) -> (B, H, W, C) images."""
        return self.decode(self.codebook.lookup(indices))

    def code_vectors(self) -> jax.Array:
        """The (K, D) code vectors ``decode_indices`` looks up (float32 or float64)."""
        return self.codebook.codes()

    def __call__(self, images: jax.Array, train: bool = False):
        # `train` is accepted for a uniform interface; the model has no dropout or batch stats.
        del train
        z_q, _, aux = self.encode(images)
        return self.decode(z_q), aux


def lab_vqgan_config() -> dict:
    """Constructor kwargs reproducing the course checkpoint VQGAN.pt (315 tensors, 70,775,299
    parameters): ``VQGAN(**lab_vqgan_config())`` or ``make_vqgan(lab_vqgan_config())``."""
    return dict(
        image_channels=3,
        enc_channels=(128, 128, 128, 256, 256, 512),
        dec_channels=(128, 128, 256, 256, 512),
        enc_num_res_blocks=2,
        dec_num_res_blocks=3,
        enc_downsample_levels=(2, 4),
        dec_upsample_levels=(0, 2),
        attn_resolutions=(16,),
        mid_attention=True,
        img_resolution=64,
        latent_dim=256,
        num_codes=1024,
        beta=0.25,
        l2_normalize=False,
    )


def make_vqgan(config: dict | None = None, **overrides) -> VQGAN:
    """Build a VQGAN from a kwargs dict (e.g. ``lab_vqgan_config()`` or an ml_collections
    ConfigDict converted with ``.to_dict()``) plus keyword overrides (e.g. ``dtype=jnp.bfloat16``).

    Lists become tuples so the module stays hashable (needed for jit static arguments).
    Unknown keys raise a one-line error naming them.
    """
    kwargs = dict(config or {})
    kwargs.update(overrides)
    known = set(VQGAN.__dataclass_fields__) - {"parent", "name"}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"make_vqgan: unknown option(s) {unknown}; known: {sorted(known)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return VQGAN(**kwargs)
