import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax import decoding

K, L = 16, 64
MASK = K


def fake_tokens_to_logits(table_LxV):
    """A deterministic stand-in for the transformer: logits depend on the position and on the ids."""

    def tokens_to_logits(ids_BxL):
        context_B = jnp.sum(jnp.where(ids_BxL == MASK, 0, ids_BxL), axis=-1) % 7
        return table_LxV[None] + 0.3 * context_B[:, None, None].astype(jnp.float32)

    return tokens_to_logits


def make_inputs(seed=0, unknown_counts=(64, 40, 13, 1, 0)):
    rs = np.random.RandomState(seed)
    ids = rs.randint(0, K, size=(len(unknown_counts), L))
    for b, n in enumerate(unknown_counts):
        ids[b, rs.permutation(L)[:n]] = MASK
    table = rs.randn(L, K + 1).astype(np.float32) * 2
    return jnp.asarray(ids), jnp.asarray(table)


GAMMA64 = {
    "cosine": lambda r: math.cos(math.pi * r / 2),
    "linear": lambda r: 1 - r,
    "square": lambda r: 1 - r * r,
}


def expected_masked_per_step(u0, T, gamma, start=0):
    """Float64 reference of the tokens left masked after a step (MaskGIT, Chang et al. 2022, sec. 3.2) for one example."""
    out, masked = [], u0
    for t in range(start, T):
        n = 0 if t == T - 1 else min(max(math.floor(gamma((t + 1) / T) * u0), 0), max(masked - 1, 0))
        out.append(n)
        masked = n
    return out


def run(ids, table, cfg, seed=0, history=False):
    fn = jax.jit(lambda ids, key: decoding.decode(ids, key, fake_tokens_to_logits(table), cfg, history))
    return fn(ids, jax.random.key(seed))


@pytest.mark.parametrize("schedule", ["cosine", "linear", "square"])
@pytest.mark.parametrize("T", [4, 11])
def test_per_step_counts_follow_the_schedule(schedule, T):
    ids, table = make_inputs()
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=T, schedule=schedule)
    state = run(ids, table, cfg, history=True)
    masked_SxB = np.asarray(jnp.sum(state.history_ids_SxBxL == MASK, axis=-1))
    u0 = np.asarray(jnp.sum(ids == MASK, axis=-1))
    for b in range(ids.shape[0]):
        assert list(masked_SxB[:, b]) == expected_masked_per_step(int(u0[b]), T, GAMMA64[schedule])


@pytest.mark.parametrize("sample_temperature", [0.0, 1.0])
def test_known_tokens_kept_and_nothing_left_masked(sample_temperature):
    ids, table = make_inputs(1)
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=6, sample_temperature=sample_temperature)
    out = np.asarray(run(ids, table, cfg).ids_BxL)
    ids = np.asarray(ids)
    known = ids != MASK
    np.testing.assert_array_equal(out[known], ids[known])
    assert (out != MASK).all() and (out >= 0).all() and (out < K).all()


def test_fixed_tokens_never_change_between_steps():
    ids, table = make_inputs(2)
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=8, schedule="linear", sample_temperature=1.0)
    hist = np.asarray(run(ids, table, cfg, history=True).history_ids_SxBxL)
    for t in range(1, hist.shape[0]):
        fixed = hist[t - 1] != MASK
        np.testing.assert_array_equal(hist[t][fixed], hist[t - 1][fixed])


def test_sweet_spot_stops_early_and_fills_the_rest():
    ids, table = make_inputs(3)
    full = run(ids, table, decoding.DecodeConfig(num_codes=K, total_iter=10), history=True)
    early = run(ids, table, decoding.DecodeConfig(num_codes=K, total_iter=10, sweet_spot=4),
                history=True)
    assert early.history_ids_SxBxL.shape[0] == 4
    # The first 4 steps are the same steps; then the sweet-spot run stops.
    np.testing.assert_array_equal(early.history_ids_SxBxL, full.history_ids_SxBxL[:4])
    still_masked = np.asarray(early.history_ids_SxBxL[-1] == MASK)
    assert still_masked.any()
    out = np.asarray(early.ids_BxL)
    assert (out != MASK).all()
    np.testing.assert_array_equal(out[still_masked], np.asarray(early.prediction_BxL)[still_masked])


def test_deterministic_for_a_seed_and_seed_matters_when_sampling():
    ids, table = make_inputs(4)
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=8, sample_temperature=2.0)
    a = np.asarray(run(ids, table, cfg, seed=5).ids_BxL)
    b = np.asarray(run(ids, table, cfg, seed=5).ids_BxL)
    c = np.asarray(run(ids, table, cfg, seed=6).ids_BxL)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_argmax_without_noise_picks_most_confident_first():
    # One example, logits independent of context: with zero choice temperature the order in which
    # positions are fixed is the order of their max probability.
    ids = jnp.full((1, L), MASK)
    table = jnp.asarray(np.random.RandomState(0).randn(L, K + 1).astype(np.float32) * 3)
    tok = lambda x: jnp.broadcast_to(table, x.shape + (K + 1,))
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=4, schedule="linear", choice_temperature=0.0)
    hist = np.asarray(decoding.decode(ids, jax.random.key(0), tok, cfg, True).history_ids_SxBxL)
    probs = np.asarray(jax.nn.softmax(table[:, :K], -1)).max(-1)
    first = hist[0, 0] != MASK
    assert probs[first].min() > probs[~first].max()
    np.testing.assert_array_equal(hist[-1, 0], np.asarray(table[:, :K]).argmax(-1))


def test_mask_token_is_never_predicted():
    ids = jnp.full((2, L), MASK)
    # [MASK] has by far the largest logit: the decoder must still pick a real code.
    table = jnp.zeros((L, K + 1)).at[:, K].set(100.0)
    tok = lambda x: jnp.broadcast_to(table, x.shape + (K + 1,))
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=3)
    out = np.asarray(decoding.decode(ids, jax.random.key(0), tok, cfg).ids_BxL)
    assert (out < K).all()


def test_result_does_not_depend_on_batch_composition():
    ids, table = make_inputs(5)
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=8, sample_temperature=1.0)
    keys = jax.random.split(jax.random.key(9), ids.shape[0])
    tok = fake_tokens_to_logits(table)
    both = np.asarray(decoding.decode(ids, keys, tok, cfg).ids_BxL)
    alone = np.asarray(decoding.decode(ids[1:2], keys[1:2], tok, cfg).ids_BxL)
    np.testing.assert_array_equal(both[1:2], alone)


def test_compiled_once_for_new_parameters_and_new_images():
    traces = []

    @jax.jit
    def decode_with(table, ids, key):
        traces.append(1)
        cfg = decoding.DecodeConfig(num_codes=K, total_iter=5, schedule="square")
        return decoding.decode(ids, key, fake_tokens_to_logits(table), cfg).ids_BxL

    ids, table = make_inputs(6)
    ids2, table2 = make_inputs(7)
    decode_with(table, ids, jax.random.key(0))
    decode_with(table2, ids2, jax.random.key(1))
    assert len(traces) == 1


def test_bad_config_is_rejected_clearly():
    with pytest.raises(ValueError, match="sweet_spot"):
        decoding.DecodeConfig(num_codes=K, total_iter=4, sweet_spot=5)
    with pytest.raises(ValueError, match="unknown schedule"):
        decoding.DecodeConfig(num_codes=K, schedule="nope")


def test_a_host_loop_over_the_parts_decodes_like_decode():
    ids, table = make_inputs(seed=3)
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=6, schedule="cosine", sweet_spot=5)
    key = jax.random.key(4)
    ttl = fake_tokens_to_logits(table)
    state, _ = decoding.decode_parts(ids, key, ttl, cfg)
    step = jax.jit(lambda t, s: decoding.decode_parts(ids, key, ttl, cfg)[1](t, s))
    for t in range(cfg.num_steps):  # one compiled step at a time, back on the host in between
        state = step(t, state)
    got = decoding.finish(state, cfg).ids_BxL
    np.testing.assert_array_equal(got, run(ids, table, cfg, seed=4).ids_BxL)


def test_feedback_replaces_exactly_the_tokens_each_step_fixes():
    """A feedback that ignores the prediction (id = position % K): every token the decoder fills in
    ends as that, known tokens keep theirs, and the per-step counts are the schedule's, also for the
    tokens the sweet spot fills at the end."""
    ids, table = make_inputs(8)
    marker_L = jnp.arange(L) % K
    feedback = lambda prediction_BxL: jnp.broadcast_to(marker_L, prediction_BxL.shape)
    for sweet_spot in (None, 3):
        cfg = decoding.DecodeConfig(num_codes=K, total_iter=7, schedule="linear", sweet_spot=sweet_spot)
        state = jax.jit(lambda ids, key: decoding.decode(ids, key, fake_tokens_to_logits(table), cfg,
                                                         True, feedback))(ids, jax.random.key(1))
        unknown = np.asarray(ids == MASK)
        out, marker = np.asarray(state.ids_BxL), np.broadcast_to(np.asarray(marker_L), unknown.shape)
        np.testing.assert_array_equal(out[unknown], marker[unknown])
        np.testing.assert_array_equal(out[~unknown], np.asarray(ids)[~unknown])
        masked_SxB = np.asarray(jnp.sum(state.history_ids_SxBxL == MASK, axis=-1))
        for b, u0 in enumerate(unknown.sum(-1)):
            want = expected_masked_per_step(int(u0), 7, GAMMA64["linear"])
            assert list(masked_SxB[:, b]) == want[:cfg.num_steps]
        # The recorded prediction holds the fed-back ids where the step fixed tokens.
        fixed_each_step = np.asarray(state.history_ids_SxBxL != MASK) & unknown
        np.testing.assert_array_equal(np.asarray(state.history_prediction_SxBxL)[fixed_each_step],
                                      np.broadcast_to(marker, fixed_each_step.shape)[fixed_each_step])


def test_feedback_sees_the_step_prediction():
    """At T=1 every unknown token is fixed in one step: with feedback (p + 1) % K the result is the
    plain decode's, plus one."""
    ids, table = make_inputs(9)
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=1)
    tok = fake_tokens_to_logits(table)
    plain = np.asarray(decoding.decode(ids, jax.random.key(0), tok, cfg).ids_BxL)
    fed = np.asarray(decoding.decode(ids, jax.random.key(0), tok, cfg,
                                     feedback=lambda p: (p + 1) % K).ids_BxL)
    unknown = np.asarray(ids == MASK)
    np.testing.assert_array_equal(fed[unknown], (plain[unknown] + 1) % K)
    np.testing.assert_array_equal(fed[~unknown], plain[~unknown])


def test_start_iter_skips_the_first_steps():
    """Editing starts later in the schedule: no step before start_iter runs, and the first step run
    leaves floor(gamma((start_iter + 1) / T) * unknown0) tokens masked."""
    ids, table = make_inputs()
    T, start = 8, 3
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=T, schedule="cosine", start_iter=start)
    state = run(ids, table, cfg, history=True)
    masked_SxB = np.sum(np.asarray(state.history_ids_SxBxL) == MASK, axis=-1)
    assert np.all(np.asarray(state.history_ids_SxBxL)[:start] == 0)  # never written
    for b, u0 in enumerate((64, 40, 13, 1, 0)):
        assert masked_SxB[start:, b].tolist() == expected_masked_per_step(u0, T, GAMMA64["cosine"], start)
    assert not np.any(np.asarray(state.ids_BxL) == MASK)


def test_expected_code_vectors_are_the_fixing_steps_softmax_means():
    """render_temperature tau > 0: each filled-in position carries softmax(logits / tau) @ codebook of
    the step that fixed it (float64 NumPy from the recorded ids), the sweet spot's leftovers the last
    step's, known positions zeros; the ids are those of decoding without it."""
    ids, table = make_inputs(5)
    codebook = np.random.RandomState(6).randn(K, 5).astype(np.float32)
    tau = 0.7

    def reference_logits(ids_BxL):  # fake_tokens_to_logits in float64
        context = np.where(ids_BxL == MASK, 0, ids_BxL).sum(-1) % 7
        return np.asarray(table, np.float64)[None, :, :K] + 0.3 * context[:, None, None]

    for sweet_spot in (None, 3):
        cfg = decoding.DecodeConfig(num_codes=K, total_iter=6, schedule="cosine", sweet_spot=sweet_spot,
                                    render_temperature=tau)
        state = jax.jit(lambda ids, key: decoding.decode(
            ids, key, fake_tokens_to_logits(table), cfg, True, codebook_KxD=codebook))(ids, jax.random.key(2))
        before = np.concatenate([np.asarray(ids)[None], np.asarray(state.history_ids_SxBxL)])
        want = np.zeros(ids.shape + (5,))
        for t in range(cfg.num_steps):
            z = reference_logits(before[t]) / tau
            probs = np.exp(z - z.max(-1, keepdims=True))
            means = (probs / probs.sum(-1, keepdims=True)) @ codebook.astype(np.float64)
            # Fixed in step t, or still masked after the last step run (filled from it).
            last = t == cfg.num_steps - 1
            now = (before[t] == MASK) & ((before[t + 1] != MASK) | last)
            want[now] = means[now]
        np.testing.assert_allclose(np.asarray(state.expected_BxLxD), want, rtol=1e-5, atol=1e-5)
        plain = run(ids, table, dataclasses.replace(cfg, render_temperature=0.0), seed=2)
        np.testing.assert_array_equal(state.ids_BxL, plain.ids_BxL)
    with pytest.raises(ValueError, match="codebook_KxD"):
        decoding.decode(ids, jax.random.key(0), fake_tokens_to_logits(table), cfg)
    with pytest.raises(ValueError, match="render_temperature"):
        decoding.DecodeConfig(num_codes=K, decoder="official", render_temperature=1.0)


def reference_kernel_mass(logits_BxLxK, codebook_KxD, width):
    """Float64 NumPy: sum_j softmax(logits)_j exp(-|c_j - c_k|^2 / (2 w m)), m the median squared
    distance over pairs of distinct codes."""
    c = np.asarray(codebook_KxD, np.float64)
    d = ((c[:, None] - c[None]) ** 2).sum(-1)
    m = np.median(d[~np.eye(len(c), dtype=bool)])
    z = np.asarray(logits_BxLxK, np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ np.exp(-d / (2 * width * m))


def test_code_kernel_picks_the_code_with_the_most_mass_around_it():
    """code_kernel w > 0: at T=1 every unknown position takes argmax_k of the kernel mass (float64
    NumPy); at T=4 without noise the first step fixes the positions of highest mass. A codebook of
    two tight clusters and one far code: the far code is often the single most probable one, never
    the pick when the cluster around another code holds more."""
    rs = np.random.RandomState(7)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    codebook = (centres[np.arange(K) % 3] + 0.05 * rs.randn(K, 2)).astype(np.float32)
    codebook[0] = [30.0, 30.0]  # a code far from all others
    ids, table = make_inputs(11)
    table = table.at[:, 0].add(1.5)  # the far code gets the highest probability at many positions
    width = 0.05
    tok = fake_tokens_to_logits(table)
    cfg = decoding.DecodeConfig(num_codes=K, total_iter=1, code_kernel=width)
    got = decoding.decode(ids, jax.random.key(0), tok, cfg, codebook_KxD=codebook).ids_BxL
    mass = reference_kernel_mass(np.asarray(tok(ids))[..., :K], codebook, width)
    unknown = np.asarray(ids == MASK)
    np.testing.assert_array_equal(np.asarray(got)[unknown], mass.argmax(-1)[unknown])
    argmax_picks = np.asarray(tok(ids))[..., :K].argmax(-1)[unknown]
    assert (argmax_picks == 0).any() and (mass.argmax(-1)[unknown] != argmax_picks).any()

    cfg4 = dataclasses.replace(cfg, total_iter=4, choice_temperature=0.0)
    state = decoding.decode(ids, jax.random.key(0), tok, cfg4, True, codebook_KxD=codebook)
    fixed_first = unknown & np.asarray(state.history_ids_SxBxL[0] != MASK)
    best_mass = np.where(unknown, mass.max(-1), -np.inf)
    for b in range(len(ids)):
        n = fixed_first[b].sum()
        if n:
            assert best_mass[b][fixed_first[b]].min() >= np.sort(best_mass[b])[::-1][n - 1] - 1e-6
    with pytest.raises(ValueError, match="sample_temperature"):
        decoding.DecodeConfig(num_codes=K, code_kernel=0.1, sample_temperature=1.0)
