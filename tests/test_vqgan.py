"""Tests for maskgit_jax.models.vqgan: lab layout, blocks vs float64 NumPy references, the
vector quantizer, and a small end-to-end VQGAN (CPU-cheap)."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp
import optax

from maskgit_jax.models import vqgan as V

# ----------------------------------------------------------------------------------------------
# The lab architecture, written down independently from the course's VQGAN (its layer list, NYCU lab)
# ----------------------------------------------------------------------------------------------

_ENC_TABLE = (
    [("conv", 3, 128)] + [("res", 128, 128)] * 4
    + [("res", 128, 256), ("res", 256, 256), ("down", 256, 256)]
    + [("res", 256, 256)] * 2
    + [("res", 256, 512), ("res", 512, 512), ("down", 512, 512), ("res", 512, 512),
       ("nonlocal", 512, 512), ("res", 512, 512), ("groupnorm", 512, 512), ("swish", 512, 512),
       ("conv", 512, 256)]
)
_R512, _N512 = ("res", 512, 512), ("nonlocal", 512, 512)
_DEC_TABLE = (
    [("conv", 256, 512), _R512, _N512, _R512, _R512, _N512, _R512, _N512, _R512, _N512,
     ("up", 512, 512), ("res", 512, 256)] + [("res", 256, 256)] * 5
    + [("up", 256, 256), ("res", 256, 128)] + [("res", 128, 128)] * 5
    + [("groupnorm", 128, 128), ("conv", 128, 3)]
)


def _torch_keys(prefix, table):
    """Torch state_dict keys -> shapes for a course nn.Sequential described by `table`."""
    out = {}

    def conv(p, o, i, k):
        out[p + ".weight"] = (o, i, k, k)
        out[p + ".bias"] = (o,)

    def gn(p, c):
        out[p + ".gn.weight"] = (c,)
        out[p + ".gn.bias"] = (c,)

    for idx, (kind, ci, co) in enumerate(table):
        p = f"{prefix}.model.{idx}"
        if kind == "conv":
            conv(p, co, ci, 3)
        elif kind == "res":
            gn(p + ".block.0", ci)
            conv(p + ".block.2", co, ci, 3)
            gn(p + ".block.3", co)
            conv(p + ".block.5", co, co, 3)
            if ci != co:
                conv(p + ".channel_up", co, ci, 1)
        elif kind in ("down", "up"):
            conv(p + ".conv", co, ci, 3)
        elif kind == "nonlocal":
            gn(p + ".norm", ci)
            for n in ("q", "k", "v", "proj_out"):
                conv(f"{p}.{n}", ci, ci, 1)
        elif kind == "groupnorm":
            gn(p, ci)
    return out


def _lab_torch_state_shapes():
    sd = {}
    sd.update(_torch_keys("encoder", _ENC_TABLE))
    sd.update(_torch_keys("decoder", _DEC_TABLE))
    sd["codebook.embedding.weight"] = (1024, 256)
    for n in ("quant_conv", "post_quant_conv"):
        sd[n + ".weight"] = (256, 256, 1, 1)
        sd[n + ".bias"] = (256,)
    return sd


def _torch_to_flax(key, shape):
    """The naming rule documented in vqgan.py, implemented independently."""
    parts = key.split(".")
    merged = []
    for p in parts:
        if p.isdigit():
            merged[-1] = f"{merged[-1]}_{p}"
        else:
            merged.append(p)
    if key == "codebook.embedding.weight":
        return "codebook/embedding", shape
    if merged[-1] == "weight":
        if len(shape) == 4:
            merged[-1] = "kernel"
            shape = (shape[2], shape[3], shape[1], shape[0])  # OIHW -> HWIO
        else:
            merged[-1] = "scale"
    return "/".join(merged), shape


def _flax_shapes(params):
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    return {"/".join(k.key for k in path): tuple(x.shape) for path, x in flat}


@pytest.fixture(scope="module")
def lab_param_shapes():
    model = V.make_vqgan(V.lab_vqgan_config())
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0),
                                                  jnp.zeros((1, 64, 64, 3))))
    assert set(variables) == {"params"}  # stateless: no batch_stats etc.
    return _flax_shapes(variables["params"])


def test_lab_parameter_count(lab_param_shapes):
    assert len(lab_param_shapes) == 315
    assert sum(int(np.prod(s)) for s in lab_param_shapes.values()) == 70_775_299


def test_lab_forward_shapes():
    model = V.make_vqgan(V.lab_vqgan_config(), dtype=jnp.bfloat16)
    x = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    recon, aux = jax.eval_shape(model.apply, variables, x)
    assert recon.shape == (2, 64, 64, 3) and recon.dtype == jnp.bfloat16
    assert aux["indices"].shape == (2, 16, 16) and aux["indices"].dtype == jnp.int32
    ids = jax.ShapeDtypeStruct((2, 16, 16), jnp.int32)
    assert jax.eval_shape(lambda v, i: model.apply(v, i, method=model.decode_indices),
                          variables, ids).shape == (2, 64, 64, 3)


def test_lab_torch_keys_map_one_to_one(lab_param_shapes):
    torch_sd = _lab_torch_state_shapes()
    assert len(torch_sd) == 315  # sanity of the independent table itself
    expected = dict(_torch_to_flax(k, s) for k, s in torch_sd.items())
    assert set(expected) == set(lab_param_shapes)
    for path, shape in expected.items():
        assert lab_param_shapes[path] == shape, path


def test_lab_module_indices_and_kinds(lab_param_shapes):
    def children(prefix):
        return {p[len(prefix):].split("/")[0] for p in lab_param_shapes if p.startswith(prefix)}

    enc = children("encoder/")
    dec = children("decoder/")
    assert enc == {f"model_{i}" for i in range(19)} - {"model_17"}  # 17 = swish, no params
    assert dec == {f"model_{i}" for i in range(26)}
    for i in (7, 12):
        assert children(f"encoder/model_{i}/") == {"conv"}
    for i in (10, 17):
        assert children(f"decoder/model_{i}/") == {"conv"}
    nl = {"norm", "q", "k", "v", "proj_out"}
    assert children("encoder/model_14/") == nl
    for i in (2, 5, 7, 9):
        assert children(f"decoder/model_{i}/") == nl
    assert children("encoder/model_5/") == {"block_0", "block_2", "block_3", "block_5",
                                            "channel_up"}
    assert children("encoder/model_6/") == {"block_0", "block_2", "block_3", "block_5"}
    assert children("encoder/model_16/") == {"gn"}
    assert children("decoder/model_24/") == {"gn"}


def test_lab_layer_lists_match_product_tables():
    cfg = V.lab_vqgan_config()
    enc = V.encoder_layers(cfg["image_channels"], cfg["enc_channels"], cfg["enc_num_res_blocks"],
                           cfg["enc_downsample_levels"], cfg["attn_resolutions"],
                           cfg["mid_attention"], cfg["img_resolution"], cfg["latent_dim"])
    dec = V.decoder_layers(cfg["image_channels"], cfg["dec_channels"], cfg["dec_num_res_blocks"],
                           cfg["dec_upsample_levels"], cfg["attn_resolutions"],
                           cfg["mid_attention"], 16, cfg["latent_dim"])
    assert [tuple(s) for s in enc] == _ENC_TABLE
    assert [tuple(s) for s in dec] == _DEC_TABLE


def test_num_groups_rule():
    assert V.num_groups_for(512) == 32
    assert V.num_groups_for(128) == 32
    assert V.num_groups_for(16) == 4
    assert V.num_groups_for(48) == 12
    assert V.num_groups_for(3) == 1


# ----------------------------------------------------------------------------------------------
# Float64 NumPy references for the blocks
# ----------------------------------------------------------------------------------------------


def np_conv(x, kernel, bias, stride=1, pad=((0, 0), (0, 0))):
    """NHWC x, HWIO kernel, explicit ((top, bottom), (left, right)) zero padding."""
    x = np.pad(x, ((0, 0), pad[0], pad[1], (0, 0)))
    kh, kw, _, co = kernel.shape
    b, h, w, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((b, oh, ow, co))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            out += patch @ kernel[i, j]
    return out + bias


def np_conv_p(x, p, stride=1, pad=None):
    k = np.asarray(p["kernel"], np.float64)
    if pad is None:
        r = k.shape[0] // 2
        pad = ((r, r), (r, r))
    return np_conv(x, k, np.asarray(p["bias"], np.float64), stride, pad)


def np_gn(x, p, groups, eps=1e-6):
    b, h, w, c = x.shape
    xg = x.reshape(b, h, w, groups, c // groups)
    mean = xg.mean(axis=(1, 2, 4), keepdims=True)
    var = ((xg - mean) ** 2).mean(axis=(1, 2, 4), keepdims=True)
    y = ((xg - mean) / np.sqrt(var + eps)).reshape(b, h, w, c)
    return y * np.asarray(p["gn"]["scale"], np.float64) + np.asarray(p["gn"]["bias"], np.float64)


def np_swish(x):
    return x / (1.0 + np.exp(-x))


def _fake_init(module, x, seed=0, scale=None):
    """Parameters with the module's own tree and shapes (from jax.eval_shape of init) but
    values drawn with NumPy: module.init compiles a random-number kernel per parameter,
    which costs many seconds on a shared 2-core CPU. Kernels ~ N(0, 1/fan_in) (or N(0, scale^2)),
    GN scale 1 + noise, biases and everything else N(0, 0.1^2) so every value matters."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x))["params"]
    leaves, tree = jax.tree_util.tree_flatten_with_path(shapes)
    rng = np.random.default_rng(seed + 1)
    new = []
    for path, leaf in leaves:
        name = path[-1].key
        if name == "kernel":
            std = scale if scale is not None else 1.0 / np.sqrt(np.prod(leaf.shape[:-1]))
            val = rng.normal(0, std, leaf.shape)
        elif name == "scale":
            val = 1.0 + rng.normal(0, 0.1, leaf.shape)
        else:
            val = rng.normal(0, 0.1, leaf.shape)
        new.append(jnp.asarray(val, jnp.float32))
    return jax.tree_util.tree_unflatten(tree, new)


def _init_random(module, x, seed=0):
    """Every parameter random with std 0.3 (GN scale 1 +- 0.1) for the block references."""
    return _fake_init(module, x, seed, scale=0.3)


def _rand(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_downsample_matches_numpy():
    x = _rand((2, 9, 8, 4))  # odd height: output floor(9/2) = 4, bottom row is dropped
    mod = V.Downsample(6)
    p = _init_random(mod, x)
    got = np.asarray(mod.apply({"params": p}, x))
    ref = np_conv_p(x.astype(np.float64), p["conv"], stride=2, pad=((0, 1), (0, 1)))
    assert got.shape == (2, 4, 4, 6)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_upsample_matches_numpy():
    x = _rand((2, 3, 4, 4))
    mod = V.Upsample(5)
    p = _init_random(mod, x)
    got = np.asarray(mod.apply({"params": p}, x))
    up = x.astype(np.float64).repeat(2, axis=1).repeat(2, axis=2)
    ref = np_conv_p(up, p["conv"], pad=((1, 1), (1, 1)))
    assert got.shape == (2, 6, 8, 5)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_nonlocal_matches_numpy():
    c = 128  # 32 groups of 4 channels, as in the lab
    x = _rand((2, 4, 5, c), seed=3)
    mod = V.NonLocal(c)
    p = _init_random(mod, x, seed=3)
    got = np.asarray(mod.apply({"params": p}, x))
    x64 = x.astype(np.float64)
    h = np_gn(x64, p["norm"], 32)
    q, k, v = (np_conv_p(h, p[n]).reshape(2, 20, c) for n in ("q", "k", "v"))
    logits = np.einsum("bic,bjc->bij", q, k) / np.sqrt(c)
    a = np.exp(logits - logits.max(-1, keepdims=True))
    a /= a.sum(-1, keepdims=True)
    att = np.einsum("bij,bjc->bic", a, v).reshape(2, 4, 5, c)
    ref = x64 + np_conv_p(att, p["proj_out"])
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-4)


@pytest.mark.parametrize("cin,cout", [(64, 96), (48, 48)])
def test_residual_block_matches_numpy(cin, cout):
    x = _rand((2, 5, 6, cin), seed=5)
    mod = V.ResidualBlock(cin, cout)
    p = _init_random(mod, x, seed=5)
    assert ("channel_up" in p) == (cin != cout)
    got = np.asarray(mod.apply({"params": p}, x))
    x64 = x.astype(np.float64)
    h = np_swish(np_gn(x64, p["block_0"], V.num_groups_for(cin)))
    h = np_conv_p(h, p["block_2"])
    h = np_swish(np_gn(h, p["block_3"], V.num_groups_for(cout)))
    h = np_conv_p(h, p["block_5"])
    short = np_conv_p(x64, p["channel_up"]) if cin != cout else x64
    np.testing.assert_allclose(got, short + h, rtol=1e-4, atol=5e-4)


# ----------------------------------------------------------------------------------------------
# Vector quantizer
# ----------------------------------------------------------------------------------------------

K, D = 16, 8


@pytest.fixture(scope="module")
def vq_setup():
    vq = V.VectorQuantizer(num_codes=K, code_dim=D, beta=0.25)
    z = _rand((2, 3, 4, D), seed=7)
    params = {"embedding": jnp.asarray(_rand((K, D), seed=8))}
    return vq, z, params


def test_vq_indices_match_bruteforce(vq_setup):
    vq, z, params = vq_setup
    zq, idx, aux = vq.apply({"params": params}, z)
    e = np.asarray(params["embedding"], np.float64)
    d = ((z.astype(np.float64)[..., None, :] - e) ** 2).sum(-1)
    np.testing.assert_array_equal(np.asarray(idx), d.argmin(-1))
    assert idx.dtype == jnp.int32 and idx.shape == (2, 3, 4)
    np.testing.assert_allclose(np.asarray(zq), e[d.argmin(-1)], rtol=1e-6, atol=1e-6)


def test_vq_loss_and_gradients(vq_setup):
    vq, z, params = vq_setup
    beta = 0.25
    e = np.asarray(params["embedding"], np.float64)
    z64 = z.astype(np.float64)
    zq = e[((z64[..., None, :] - e) ** 2).sum(-1).argmin(-1)]
    mse = ((zq - z64) ** 2).mean()
    _, _, aux = vq.apply({"params": params}, z)
    np.testing.assert_allclose(float(aux["vq_loss"]), (1 + beta) * mse, rtol=1e-5)
    # The gradient w.r.t. z carries only the commitment term (beta), the one w.r.t. the
    # codebook only the codebook term.
    g_z = jax.grad(lambda zz: vq.apply({"params": params}, zz)[2]["vq_loss"])(z)
    np.testing.assert_allclose(np.asarray(g_z), beta * 2 * (z64 - zq) / z.size,
                               rtol=1e-4, atol=1e-7)
    g_e = jax.grad(lambda pp: vq.apply({"params": pp}, z)[2]["vq_loss"])(params)["embedding"]
    idx = ((z64[..., None, :] - e) ** 2).sum(-1).argmin(-1).ravel()
    ref = np.zeros_like(e)
    np.add.at(ref, idx, 2 * (zq - z64).reshape(-1, D) / z.size)
    np.testing.assert_allclose(np.asarray(g_e), ref, rtol=1e-4, atol=1e-7)


def test_vq_real_init():
    z = jnp.zeros((1, 2, 2, D))
    emb = np.asarray(V.VectorQuantizer(K, D).init(jax.random.PRNGKey(0), z)["params"]["embedding"])
    assert emb.shape == (K, D) and emb.dtype == np.float32
    assert np.all(np.abs(emb) <= 1.0 / K) and emb.std() > 0  # uniform(-1/K, 1/K) as the course


def test_vq_straight_through(vq_setup):
    vq, z, params = vq_setup
    w = _rand(z.shape, seed=9)
    # d/dz sum(w * z_q(z)) == w  <=>  the Jacobian of z_q w.r.t. z is the identity.
    g = jax.grad(lambda zz: jnp.sum(w * vq.apply({"params": params}, zz)[0]))(z)
    np.testing.assert_allclose(np.asarray(g), w, rtol=1e-6)


def test_vq_l2_normalized_lookup(vq_setup):
    _, z, params = vq_setup
    vq = V.VectorQuantizer(num_codes=K, code_dim=D, l2_normalize=True)
    zq, idx, _ = vq.apply({"params": params}, z)
    e = np.asarray(params["embedding"], np.float64)
    en = e / np.linalg.norm(e, axis=1, keepdims=True)
    zn = z / np.linalg.norm(z, axis=-1, keepdims=True)
    np.testing.assert_array_equal(np.asarray(idx), (zn @ en.T).argmax(-1))  # max cosine
    np.testing.assert_allclose(np.linalg.norm(np.asarray(zq), axis=-1), 1.0, rtol=1e-5)


def test_codebook_statistics_by_hand():
    hist = np.array([5, 0, 5, 0, 5, 0, 5, 0])  # uniform over 4 of 8 codes
    assert float(V.codebook_perplexity(hist)) == pytest.approx(4.0, rel=1e-5)
    assert float(V.codebook_usage(hist)) == pytest.approx(0.5)
    one = np.array([0, 7, 0, 0])
    assert float(V.codebook_perplexity(one)) == pytest.approx(1.0)
    assert float(V.codebook_usage(one)) == pytest.approx(0.25)
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2 -> perplexity 2^1.5
    assert float(V.codebook_perplexity(np.array([2, 1, 1]))) == pytest.approx(2 ** 1.5, rel=1e-5)
    np.testing.assert_array_equal(V.code_histogram(jnp.array([[0, 2], [2, 2]]), 4), [1, 0, 3, 0])


def test_restart_dead_codes():
    codebook = jnp.asarray(_rand((6, 3), seed=1))
    hist = jnp.array([3, 0, 1, 0, 0, 2])
    cands = jnp.asarray(_rand((10, 3), seed=2))
    new = np.asarray(V.restart_dead_codes(codebook, hist, cands, jax.random.PRNGKey(0)))
    live = np.asarray(hist) > 0
    np.testing.assert_array_equal(new[live], np.asarray(codebook)[live])
    for row in new[~live]:
        assert np.any(np.all(row == np.asarray(cands), axis=1))


# ----------------------------------------------------------------------------------------------
# A small VQGAN end to end
# ----------------------------------------------------------------------------------------------


def small_config(res=64, attn=16):
    return dict(enc_channels=[16, 16, 32], dec_channels=[16, 32, 32], enc_num_res_blocks=1,
                dec_num_res_blocks=1, enc_downsample_levels=[0, 1], dec_upsample_levels=[0, 1],
                attn_resolutions=[attn], img_resolution=res, latent_dim=16, num_codes=32)


@pytest.fixture(scope="module")
def small_model():
    model = V.make_vqgan(small_config())
    x = jnp.asarray(_rand((2, 64, 64, 3), seed=11))
    variables = {"params": _fake_init(model, x, seed=11)}
    return model, variables, x


def test_small_vqgan_forward_and_decode_indices(small_model):
    model, variables, x = small_model
    # attention where the config asks for it: encoder mid block, decoder mid + level 0 (16x16)
    p = variables["params"]
    assert "q" in p["encoder"]["model_6"] and "q" in p["decoder"]["model_2"]
    recon, aux = jax.jit(model.apply)(variables, x)
    assert recon.shape == (2, 64, 64, 3) and recon.dtype == jnp.float32
    assert aux["indices"].shape == (2, 16, 16) and aux["indices"].dtype == jnp.int32
    assert aux["vq_loss"].shape == () and np.isfinite(float(aux["vq_loss"]))
    assert 1.0 <= float(aux["perplexity"]) <= 32.0
    assert 0.0 < float(aux["usage"]) <= 1.0
    assert int(aux["histogram"].sum()) == 2 * 16 * 16

    z_q, idx, _ = model.apply(variables, x, method=model.encode)
    np.testing.assert_array_equal(np.asarray(idx), np.asarray(aux["indices"]))
    emb = np.asarray(p["codebook"]["embedding"])
    np.testing.assert_allclose(np.asarray(z_q), emb[np.asarray(idx)], atol=1e-6)
    via_ids = model.apply(variables, idx, method=model.decode_indices)
    np.testing.assert_allclose(np.asarray(via_ids), np.asarray(recon), rtol=1e-4, atol=1e-4)
    via_zq = model.apply(variables, z_q, method=model.decode)
    np.testing.assert_allclose(np.asarray(via_zq), np.asarray(recon), rtol=1e-4, atol=1e-4)


def test_small_vqgan_bf16(small_model):
    _, variables, x = small_model
    model = V.make_vqgan(small_config(), dtype=jnp.bfloat16)
    init_params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x))["params"]
    assert all(l.dtype == jnp.float32 for l in jax.tree_util.tree_leaves(init_params))
    recon, aux = jax.jit(model.apply)(variables, x)  # the f32 params work unchanged
    assert recon.dtype == jnp.bfloat16
    assert aux["indices"].dtype == jnp.int32 and aux["vq_loss"].dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(recon, np.float32)))


def test_small_vqgan_learns_one_batch():
    model = V.make_vqgan(small_config(res=32, attn=8))
    x = jnp.asarray(_rand((2, 32, 32, 3), seed=12))
    params = _fake_init(model, x, seed=12)
    opt = optax.adam(2e-3)
    state = opt.init(params)

    def loss_fn(p):
        recon, aux = model.apply({"params": p}, x)
        rec = jnp.mean((recon - x) ** 2)
        return rec + aux["vq_loss"], rec

    @jax.jit
    def step(p, s):
        (_, rec), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, rec

    recs = []
    for _ in range(8):
        params, state, rec = step(params, state)
        recs.append(float(rec))
    assert recs[-1] < 0.9 * recs[0], recs


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="unknown option"):
        V.make_vqgan(small_config(), latent_dims=8)
    model = V.make_vqgan(small_config())
    with pytest.raises(ValueError, match="NHWC"):
        jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 64, 64))))
    with pytest.raises(ValueError, match="out of range"):
        V.encoder_layers(3, [8, 8], 1, [3], [], True, 64, 4)
