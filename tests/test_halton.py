"""The Halton sampler: the order itself, and both decoders revealing tokens in that order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax import decoding, halton
from maskgit_jax.official import decoding as official_decoding

K, N = 8, 4  # codes, grid side


def test_order_is_the_halton_sequence_on_the_grid():
    order = halton.order(N)
    assert sorted(order) == list(range(N * N))
    # Points 1, 2, 3 of the (base 2, base 3) sequence: (x, y) = (1/2, 1/3), (1/4, 2/3), (3/4, 1/9)
    # fall in the cells (row, col) = (1, 2), (2, 1), (0, 3).
    assert order[:3] == (1 * N + 2, 2 * N + 1, 0 * N + 3)
    # A class token in front keeps the grid's order behind it.
    np.testing.assert_array_equal(halton.priority(N * N + 1)[1:], halton.priority(N * N))


def _revealed_order(decode, ids, mask_id, cfg, prefix):
    """Positions of the grid in the order the decoder fixed them (steps, then position order)."""
    table = jax.random.normal(jax.random.key(1), (ids.shape[1], K + 4))
    state = decode(ids, jax.random.key(2), lambda seq: jnp.broadcast_to(table, seq.shape + table.shape[1:]),
                   cfg, return_history=True)
    masked_SxL = np.asarray(state.history_ids_SxBxL)[:, 0, prefix:] == mask_id
    fixed = []
    before = np.asarray(ids)[0, prefix:] == mask_id
    for step_masked in list(masked_SxL) + [np.zeros_like(before)]:
        newly = before & ~step_masked
        fixed.append(set(np.flatnonzero(newly)))
        before = step_masked
    return fixed


@pytest.mark.parametrize("which", ["maskgit_jax", "official"])
def test_decoders_fix_the_unknown_tokens_in_halton_order(which):
    prefix = 1 if which == "official" else 0
    mask_id = -1 if which == "official" else K
    known = np.zeros(N * N, bool)
    known[[0, 5, 6, 15]] = True  # inpainting: the order is restricted to the unknown tokens
    ids = np.where(known, 3, mask_id)
    ids = jnp.asarray(np.concatenate([[K] * prefix, ids])[None], jnp.int32)
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=5, schedule="cosine", sampler="halton",
                                decoder=which, mask_token=mask_id if which == "official" else None)
    decode = official_decoding.decode if which == "official" else decoding.decode
    fixed = _revealed_order(decode, ids, mask_id, cfg, prefix)
    unknown_order = [p for p in halton.order(N) if not known[p]]
    start = 0
    for step in fixed:
        assert step == set(unknown_order[start:start + len(step)])
        start += len(step)
    assert start == len(unknown_order)
