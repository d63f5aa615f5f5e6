import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

from maskgit_jax.models import transformer as tr

TINY = dict(num_codes=12, seq_len=9, dim=16, depth=2, heads=4, mlp_dim=24, dropout=0.1, ln_eps=1e-5)


def init(model, seq_len, seed=0):
    ids = jnp.zeros((1, seq_len), jnp.int32)
    params = model.init(jax.random.key(seed), ids)["params"]
    # Non-trivial LayerNorm affine parameters and biases, so the reference checks them too.
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    leaves = [x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, leaves)


def numpy_reference(p, ids, cfg, predicted=None):
    """Float64 forward pass written from the course's transformer (post-LN blocks, tied head), independent of flax; ``predicted`` (B, L) bool
    adds ``pred_emb`` at those positions (the optional self-conditioning flag)."""
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), p)
    eps, n = cfg["ln_eps"], cfg["heads"]

    def ln(x, q):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * q["scale"] + q["bias"]

    gelu = lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2)))
    x = p["tok_emb"]["embedding"][ids] + p["pos_emb"][None, : ids.shape[1]]
    if predicted is not None:
        x = x + predicted[..., None] * p["pred_emb"]
    x = ln(x, p["LN"])
    for i in range(cfg["depth"]):
        b = p[f"blocks_{i}"]
        a = b["Attention"]
        proj = lambda q: np.einsum("bld,dnh->blnh", x, q["kernel"]) + q["bias"]
        q, k, v = proj(a["query"]), proj(a["key"]), proj(a["value"])
        s = np.einsum("bqnh,bknh->bnqk", q, k) / math.sqrt(q.shape[-1])
        w = np.exp(s - s.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        o = np.einsum("bnqk,bknh->bqnh", w, v)
        o = np.einsum("blnh,nhd->bld", o, a["out"]["kernel"]) + a["out"]["bias"]
        x = ln(x + o, b["LayerNorm1"])
        h = gelu(x @ b["MLP_0"]["kernel"] + b["MLP_0"]["bias"]) @ b["MLP_2"]["kernel"] + b["MLP_2"]["bias"]
        x = ln(x + h, b["LayerNorm2"])
    h = gelu(x @ p["Token_Prediction_0"]["kernel"] + p["Token_Prediction_0"]["bias"])
    h = ln(h, p["Token_Prediction_2"])
    return h @ p["tok_emb"]["embedding"].T + p["bias"][None, : ids.shape[1]]


def test_forward_matches_float64_numpy_reference():
    model = tr.BidirectionalTransformer(**TINY)
    params = init(model, TINY["seq_len"])
    ids = np.random.RandomState(0).randint(0, TINY["num_codes"] + 1, size=(3, TINY["seq_len"]))
    got = np.asarray(model.apply({"params": params}, jnp.asarray(ids)))
    want = numpy_reference(params, ids, TINY)
    assert got.shape == (3, TINY["seq_len"], TINY["num_codes"] + 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_predicted_flag_adds_its_embedding_as_in_the_reference():
    model = tr.BidirectionalTransformer(**TINY, predicted_embedding=True)
    params = init(model, TINY["seq_len"])
    rs = np.random.RandomState(2)
    ids = rs.randint(0, TINY["num_codes"] + 1, size=(3, TINY["seq_len"]))
    predicted = rs.rand(3, TINY["seq_len"]) < 0.4
    apply = lambda flags: np.asarray(model.apply({"params": params}, jnp.asarray(ids), predicted_BxL=flags))
    np.testing.assert_allclose(apply(predicted), numpy_reference(params, ids, TINY, predicted),
                               rtol=1e-4, atol=1e-4)
    # No flags means nothing predicted; flags change the logits.
    np.testing.assert_allclose(apply(None), numpy_reference(params, ids, TINY), rtol=1e-4, atol=1e-4)
    assert np.abs(apply(predicted) - apply(None)).max() > 1e-3


def test_predicted_flag_is_ignored_without_its_embedding():
    model = tr.BidirectionalTransformer(**TINY)
    params = init(model, TINY["seq_len"])
    assert "pred_emb" not in params  # the course architecture, unchanged
    ids = jnp.asarray(np.random.RandomState(3).randint(0, TINY["num_codes"] + 1, size=(2, TINY["seq_len"])))
    flagged = model.apply({"params": params}, ids, predicted_BxL=jnp.ones(ids.shape, bool))
    np.testing.assert_array_equal(flagged, model.apply({"params": params}, ids))


def test_every_attention_implementation_matches_the_reference():
    params = init(tr.BidirectionalTransformer(**TINY), TINY["seq_len"])
    ids = np.random.RandomState(1).randint(0, TINY["num_codes"] + 1, size=(2, TINY["seq_len"]))
    want = numpy_reference(params, ids, TINY)
    for attention in ("auto", "xla", "einsum"):  # "cudnn" needs a GPU
        model = tr.BidirectionalTransformer(**TINY, attention=attention)
        got = np.asarray(model.apply({"params": params}, jnp.asarray(ids)))
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=attention)


def test_auto_attention_is_the_einsum_on_the_cpu():
    assert jax.default_backend() == "cpu"  # the tests run on the CPU
    assert tr.resolved_attention("auto") == "einsum"
    assert [tr.resolved_attention(a) for a in ("xla", "einsum")] == ["xla", "einsum"]


def test_unknown_attention_is_refused():
    model = tr.BidirectionalTransformer(**TINY, attention="flash")
    with pytest.raises(ValueError, match="attention must be one of"):
        init(model, TINY["seq_len"])


def test_attention_is_bidirectional():
    model = tr.BidirectionalTransformer(**TINY)
    params = init(model, TINY["seq_len"])
    ids = jnp.zeros((1, TINY["seq_len"]), jnp.int32)
    a = model.apply({"params": params}, ids)
    b = model.apply({"params": params}, ids.at[0, -1].set(5))
    assert float(jnp.abs(a[0, 0] - b[0, 0]).max()) > 1e-4  # the first position sees the last


def test_dropout_only_in_training():
    model = tr.BidirectionalTransformer(**TINY)
    params = init(model, TINY["seq_len"])
    ids = jnp.ones((2, TINY["seq_len"]), jnp.int32)
    e1 = model.apply({"params": params}, ids)
    e2 = model.apply({"params": params}, ids)
    t1 = model.apply({"params": params}, ids, train=True, rngs={"dropout": jax.random.key(1)})
    np.testing.assert_array_equal(e1, e2)
    assert float(jnp.abs(t1 - e1).max()) > 1e-3


def test_bf16_compute_keeps_float32_parameters_and_logits():
    model = tr.BidirectionalTransformer(**TINY, dtype=jnp.bfloat16)
    params = init(model, TINY["seq_len"])
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
    ids = jnp.ones((2, TINY["seq_len"]), jnp.int32)
    logits = model.apply({"params": params}, ids)
    ref = tr.BidirectionalTransformer(**TINY).apply({"params": params}, ids)
    assert logits.dtype == jnp.float32
    np.testing.assert_allclose(logits, ref, atol=0.25)


def test_lab_preset_parameter_count():
    cfg = tr.lab_transformer_config()
    model = tr.BidirectionalTransformer(**cfg)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 256), jnp.int32))["params"]
    d, m, v, L = 768, 1536, 1025, 256
    block = 4 * (d * d + d) + 2 * 2 * d + (d * m + m) + (m * d + d)
    want = v * d + L * d + L * v + 15 * block + (d * d + d) + 2 * d + 2 * d
    assert sum(x.size for x in jax.tree.leaves(shapes)) == want
    assert shapes["bias"].shape == (256, 1025) and shapes["tok_emb"]["embedding"].shape == (1025, 768)


def test_lab_flops_are_about_120_gflop_per_training_image():
    c = tr.lab_transformer_config()
    fwd = tr.transformer_flops_per_example(c["seq_len"], c["dim"], c["depth"], c["mlp_dim"],
                                           c["num_codes"])
    assert 115e9 < 3 * fwd < 125e9
