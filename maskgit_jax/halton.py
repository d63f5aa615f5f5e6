"""The Halton sampler: tokens revealed in a fixed low-discrepancy order instead of by confidence.

The order of an n x n token grid is that of the 2-D Halton sequence (base 2 for the column, base 3
for the row; Halton 1960), point i = 1, 2, ... falling in cell (floor(y n), floor(x n)), each cell
taken at its first visit: consecutive tokens are spread over the image rather than clustered
(Besnier et al. 2025, "Halton Scheduler for Masked Generative Image Transformers",
https://arxiv.org/abs/2503.17076). The decoders keep the schedule's counts and the token sampling;
only the choice of which masked tokens to fix follows this order, restricted to the tokens that
are unknown (inpainting keeps the known ones as they are).
"""

import functools
import math

import numpy as np

SAMPLERS = ("confidence", "halton")


def _radical_inverse(i: int, base: int) -> float:
    value, scale = 0.0, 1.0 / base
    while i:
        i, digit = divmod(i, base)
        value += digit * scale
        scale /= base
    return value


@functools.lru_cache(maxsize=None)
def order(n: int) -> tuple[int, ...]:
    """Row-major positions of an n x n grid in Halton order (a permutation of range(n * n))."""
    seen: dict[int, None] = {}
    i = 1
    while len(seen) < n * n and i <= 1000 * n * n:
        row = int(_radical_inverse(i, 3) * n)
        col = int(_radical_inverse(i, 2) * n)
        seen.setdefault(row * n + col)
        i += 1
    return tuple(seen) + tuple(p for p in range(n * n) if p not in seen)  # never needed in practice


def priority(seq_len: int) -> np.ndarray:
    """(seq_len,) float32 confidences that reveal a sequence's last n * n positions (the token grid)
    in Halton order: the k-th of the order gets -k; leading positions (a class token) get 0."""
    n = math.isqrt(seq_len)
    prefix = seq_len - n * n
    out = np.zeros(seq_len, np.float32)
    out[prefix + np.asarray(order(n), np.int64)] = -np.arange(n * n, dtype=np.float32)
    return out
