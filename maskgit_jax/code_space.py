"""Decoding choices that look at the tokenizer's code vectors, not only at the token ids.

MaskGIT picks the most probable code at each position. Over a codebook of near-duplicate codes
(many shades of one colour) the probability of a region is split among them, and the single most
probable code can be an outlier whose neighbours carry little mass: a dark outline code inside a
face whose skin tones together hold most of the mass. Two remedies, both functions of the
transformer's probabilities and the code vectors:

- ``kernel_mass``: each code's probability spread over the codebook by a Gaussian kernel on the
  squared distance between code vectors; the code with the most mass around it (a kernel-density
  mode, i.e. the minimum-Bayes-risk choice under a bounded loss on the code vectors) is still one
  code, so the image stays sharp.
- ``expected_codes``: the probability-weighted mean code vector, which the tokenizer's decoder draws
  as the prediction's mean: closest in pixels where the transformer is unsure, and softer.
"""

import jax
import jax.numpy as jnp

# A default-precision float32 matmul may run in TF32 or bfloat16 on accelerators.
HIGHEST = jax.lax.Precision.HIGHEST


def squared_distances(codebook_KxD: jnp.ndarray) -> jnp.ndarray:
    """(K, K) squared Euclidean distances between code vectors (float32, >= 0)."""
    c = codebook_KxD.astype(jnp.float32)
    sq_K = jnp.sum(c * c, axis=-1)
    gram_KxK = jnp.matmul(c, c.T, precision=HIGHEST)
    return jnp.maximum(sq_K[:, None] + sq_K[None, :] - 2 * gram_KxK, 0.0)


def kernel_matrix(codebook_KxD: jnp.ndarray, width: float) -> jnp.ndarray:
    """(K, K) exp(-d_kj / (2 * width * m)): d the squared distance between codes k and j, m its
    median over pairs of distinct codes (so ``width`` means the same for any tokenizer)."""
    d_KxK = squared_distances(codebook_KxD)
    off_diagonal_KxK = jnp.where(jnp.eye(d_KxK.shape[0], dtype=bool), jnp.nan, d_KxK)
    return jnp.exp(-d_KxK / (2.0 * width * jnp.nanmedian(off_diagonal_KxK)))


def kernel_mass(probs_BxLxK: jnp.ndarray, kernel_KxK: jnp.ndarray) -> jnp.ndarray:
    """(B, L, K): sum_j p_j kernel_jk, the probability near each code (in [0, 1]; kernel_kk = 1)."""
    return jnp.einsum("blj,jk->blk", probs_BxLxK, kernel_KxK, precision=HIGHEST)


def expected_codes(probs_BxLxK: jnp.ndarray, codebook_KxD: jnp.ndarray) -> jnp.ndarray:
    """(B, L, D): the mean code vector under the probabilities."""
    return jnp.einsum("blk,kd->bld", probs_BxLxK, codebook_KxD.astype(jnp.float32), precision=HIGHEST)
