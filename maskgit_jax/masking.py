"""Masks in token space: the training masks of MVTM and the pixel-mask -> token-mask rule of inpainting.

Tokens are in row-major order on a ``grid x grid`` latent (token = h * grid + w). ``True`` in a
``masked_BxL`` array means "this token is replaced by [MASK]".
"""

import jax
import jax.numpy as jnp

from maskgit_jax import schedules


def ranks(scores_BxL: jnp.ndarray) -> jnp.ndarray:
    """Rank of each entry in its row (0 = smallest); a permutation of 0..L-1 per row, ties broken by index."""
    order_BxL = jnp.argsort(scores_BxL, axis=-1, stable=True)
    return jnp.argsort(order_BxL, axis=-1, stable=True)


def lowest_k(scores_BxL: jnp.ndarray, k_B: jnp.ndarray) -> jnp.ndarray:
    """Boolean mask of exactly ``k_B[b]`` lowest-scored positions per row (ties broken by index)."""
    return ranks(scores_BxL) < k_B[:, None]


def num_to_mask(rng: jax.Array, batch: int, seq_len: int, schedule: str) -> jnp.ndarray:
    """Per example: r ~ U(0,1), ceil(gamma(r) * L) tokens to mask, at least 1 and at most L. Shape (B,)."""
    r_B = jax.random.uniform(rng, (batch,))
    count_B = jnp.ceil(schedules.gamma(schedule, r_B, seq_len) * seq_len).astype(jnp.int32)
    return jnp.clip(count_B, 1, seq_len)


def blob_scores(rng: jax.Array, batch: int, grid: int, coarse: int = 4) -> jnp.ndarray:
    """Smooth random field on the token grid (B, grid*grid): its lowest values form blobs.

    Masking the k lowest of these scores gives inpainting-shaped holes with exactly k tokens.
    """
    coarse_rng, jitter_rng = jax.random.split(rng)
    field = jax.random.normal(coarse_rng, (batch, coarse, coarse))
    field = jax.image.resize(field, (batch, grid, grid), method="bilinear")
    # A little jitter breaks the ties of the interpolation and roughens the blob borders.
    field = field + 0.05 * jax.random.normal(jitter_rng, field.shape)
    return field.reshape(batch, grid * grid)


def training_mask(rng: jax.Array, batch: int, grid: int, schedule: str,
                  blob_prob: float = 0.0) -> jnp.ndarray:
    """The MVTM training mask (B, grid*grid) bool: exactly ceil(gamma(r) * L) masked tokens per example.

    With probability ``blob_prob`` an example's masked tokens form blobs (inpainting-shaped holes)
    instead of being spread uniformly at random; the count is the same either way.
    """
    seq_len = grid * grid
    count_rng, uniform_rng, blob_rng, choose_rng = jax.random.split(rng, 4)
    count_B = num_to_mask(count_rng, batch, seq_len, schedule)
    scores_BxL = jax.random.uniform(uniform_rng, (batch, seq_len))
    if blob_prob > 0:
        use_blob_B = jax.random.uniform(choose_rng, (batch,)) < blob_prob
        scores_BxL = jnp.where(use_blob_B[:, None], blob_scores(blob_rng, batch, grid), scores_BxL)
    return lowest_k(scores_BxL, count_B)


def pixel_to_token_unknown(known_BxHxW: jnp.ndarray, grid: int, dilate: int = 0) -> jnp.ndarray:
    """Token-level unknown mask (B, grid*grid) from a pixel mask (True = known pixel).

    The lab's rule: a token is unknown if any pixel of its patch is missing. ``dilate`` additionally
    marks tokens within that many tokens (Chebyshev distance) of an unknown one, for softer borders.
    """
    b, h, w = known_BxHxW.shape
    if h % grid or w % grid:
        raise ValueError(f"mask of size {h}x{w} does not divide into a {grid}x{grid} token grid")
    patches = (~known_BxHxW.astype(bool)).reshape(b, grid, h // grid, grid, w // grid)
    unknown = patches.any(axis=(2, 4))
    if dilate > 0:
        size = 2 * dilate + 1
        unknown = jax.lax.reduce_window(unknown, False, jnp.logical_or, (1, size, size), (1, 1, 1),
                                        "SAME")
    return unknown.reshape(b, grid * grid)


def token_to_pixel(mask_BxL: jnp.ndarray, image_size: int) -> jnp.ndarray:
    """Token mask (B, L) to pixel resolution (B, image_size, image_size) by repeating each token's patch."""
    b, seq_len = mask_BxL.shape
    grid = int(round(seq_len**0.5))
    scale = image_size // grid
    m = mask_BxL.reshape(b, grid, grid)
    return jnp.repeat(jnp.repeat(m, scale, axis=1), scale, axis=2)
