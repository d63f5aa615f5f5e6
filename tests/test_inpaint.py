"""Tests for maskgit_jax.inpaint with a tiny random VQGAN (16x16 images, 4x4 tokens) and transformer."""

import dataclasses
import functools

import jax
import numpy as np
import pytest

from maskgit_jax import decoding, inpaint as ip, masking, seamless
from maskgit_jax.data import normalize
from maskgit_jax.models.transformer import BidirectionalTransformer
from maskgit_jax.models.vqgan import make_vqgan

SIZE, GRID, K = 16, 4, 16
MEAN = STD = (0.5, 0.5, 0.5)
VQGAN = make_vqgan(dict(enc_channels=(8, 8, 16), dec_channels=(8, 16), enc_num_res_blocks=1,
                        dec_num_res_blocks=1, enc_downsample_levels=(0, 1), dec_upsample_levels=(0, 1),
                        attn_resolutions=(), mid_attention=False, img_resolution=SIZE, latent_dim=8,
                        num_codes=K))
TRANSFORMER = BidirectionalTransformer(num_codes=K, seq_len=GRID * GRID, dim=16, depth=1, heads=2,
                                       mlp_dim=32, dropout=0.0)
DECODE = decoding.DecodeConfig(num_codes=K, total_iter=4)


def config(**kw):
    return ip.InpaintConfig(**{"decode": DECODE, "mean": MEAN, "std": STD, **kw})


def numpy_init(module, example_input, seed):
    """The module's parameter tree with NumPy-drawn values: ``module.init`` compiles a random kernel per
    parameter, seconds on a shared CPU. Kernels ~ N(0, 1/fan_in), norm scales 1 + noise, others N(0, 0.1^2)."""
    shapes = jax.eval_shape(module.init, jax.random.key(0), example_input)["params"]
    rs = np.random.RandomState(seed)

    def draw(path, leaf):
        name = path[-1].key
        if name == "kernel":
            return rs.normal(0, 1 / np.sqrt(np.prod(leaf.shape[:-1])), leaf.shape).astype(np.float32)
        return (float(name == "scale") + rs.normal(0, 0.1, leaf.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


@functools.lru_cache(maxsize=None)
def params():
    vq = numpy_init(VQGAN, np.zeros((1, SIZE, SIZE, 3), np.float32), seed=0)
    tr = numpy_init(TRANSFORMER, np.zeros((1, GRID * GRID), np.int32), seed=1)
    return vq, tr


def make_batch(n, seed=0, corners=(0, 8), sides=(4, 9)):
    """Random images with a different rectangular hole per image (not aligned to the 4x4 patches):
    its corner and sides in pixels drawn from the half-open ranges ``corners`` and ``sides``."""
    rs = np.random.RandomState(seed)
    images = rs.randint(0, 256, size=(n, SIZE, SIZE, 3)).astype(np.uint8)
    known = np.ones((n, SIZE, SIZE), bool)
    for b in range(n):
        top, left = rs.randint(*corners, size=2)
        known[b, top:top + rs.randint(*sides), left:left + rs.randint(*sides)] = False
    return images, known


def run(images, known, cfg, seed=0, history=False, scale=1.0):
    """``scale`` != 1 gives other parameter values of the same structure (a second init is slow)."""
    vq, tr = jax.tree.map(lambda p: p * scale, params())
    return ip.inpaint(VQGAN, vq, TRANSFORMER, tr, images, known, cfg, jax.random.key(seed), history)


@functools.lru_cache(maxsize=None)
def paste_run():
    images, known = make_batch(2)
    return images, known, run(images, known, config(composite="paste"), history=True)


def encoded_ids(images, known):
    x = normalize.normalize(normalize.fill_holes(images, known), MEAN, STD)
    encode = jax.jit(functools.partial(VQGAN.apply, method=VQGAN.encode))
    _, idx, _ = encode({"params": params()[0]}, x)
    return np.asarray(idx).reshape(len(images), -1)


def test_known_tokens_unchanged_and_no_mask_left():
    images, known, result = paste_run()
    expected_unknown = np.asarray(masking.pixel_to_token_unknown(known, GRID))
    np.testing.assert_array_equal(result.unknown_tokens, expected_unknown)
    assert result.unknown_tokens.any() and not result.unknown_tokens.all()
    ids = encoded_ids(images, known)
    np.testing.assert_array_equal(result.ids[~expected_unknown], ids[~expected_unknown])
    assert result.ids.dtype == np.int32
    assert ((result.ids >= 0) & (result.ids < K)).all()


def test_paste_keeps_known_pixels():
    images, known, result = paste_run()
    assert result.images.dtype == np.uint8 and result.images.shape == images.shape
    np.testing.assert_array_equal(result.images[known], images[known])
    np.testing.assert_array_equal(result.images[~known], result.decoded[~known])


def test_history_shapes_and_masks_shrink_to_zero():
    images, known, result = paste_run()
    steps, batch = DECODE.total_iter, len(images)
    assert result.step_masks.shape == (steps, batch, GRID * GRID) and result.step_masks.dtype == bool
    assert result.step_images.shape == (steps, batch, SIZE, SIZE, 3)
    assert result.step_images.dtype == np.uint8
    counts = np.concatenate([result.unknown_tokens.sum(-1)[None], result.step_masks.sum(-1)])
    # Each step reveals at least one token while any is left.
    assert ((np.diff(counts, axis=0) < 0) | (counts[:-1] == 0)).all()
    assert not result.step_masks[-1].any()
    assert not (result.step_masks & ~result.unknown_tokens[None]).any()  # known tokens never masked
    # The last step's full prediction is the final result.
    np.testing.assert_allclose(result.step_images[-1].astype(int), result.decoded.astype(int), atol=1)


def test_none_is_the_decoded_image():
    images, known, pasted = paste_run()
    result = run(images, known, config(composite="none"))
    np.testing.assert_array_equal(result.images, result.decoded)
    np.testing.assert_array_equal(result.ids, pasted.ids)  # the composite does not change decoding
    assert result.step_masks is None and result.step_images is None


def chebyshev_distance_to_hole(known):
    """Brute force: per pixel, the Chebyshev distance to the nearest missing pixel (B,H,W)."""
    ys, xs = np.mgrid[:SIZE, :SIZE]
    out = np.full(known.shape, np.inf)
    for b in range(len(known)):
        hy, hx = np.nonzero(~known[b])
        d = np.maximum(abs(ys[..., None] - hy), abs(xs[..., None] - hx))
        out[b] = d.min(axis=-1)
    return out


def test_blend_ramps_on_the_known_side():
    width = 2
    images, known, _ = paste_run()
    result = run(images, known, config(composite="blend", blend_width=width))
    dist = chebyshev_distance_to_hole(known)
    np.testing.assert_array_equal(result.images[dist > width], images[dist > width])
    np.testing.assert_array_equal(result.images[dist == 0], result.decoded[dist == 0])
    weight = np.clip((width + 1 - dist) / (width + 1), 0, 1)[..., None]
    expected = np.round(weight * result.decoded + (1 - weight) * images)
    np.testing.assert_allclose(result.images, expected, atol=1)
    ring = (dist > 0) & (dist <= width)
    assert not np.array_equal(result.images[ring], images[ring])  # the border really is soft


def test_generate_masks_every_token():
    images, known, _ = paste_run()
    result = run(images, ip.masks_for_mode("generate", known), config(), history=True)
    assert result.unknown_tokens.all()
    np.testing.assert_array_equal(result.images, result.decoded)  # nothing known to paste


def test_masks_for_mode():
    _, known, _ = paste_run()
    np.testing.assert_array_equal(ip.masks_for_mode("inpaint", known), known)
    np.testing.assert_array_equal(ip.masks_for_mode("outpaint", known), ~known)
    assert not ip.masks_for_mode("generate", known).any()
    with pytest.raises(ValueError, match="mode"):
        ip.masks_for_mode("uncrop", known)


def test_no_retrace_with_new_params_and_images():
    images, known, first = paste_run()
    compiled = ip._inpaint_core._cache_size()
    new_images, new_known = make_batch(2, seed=1)
    second = run(new_images, new_known, config(composite="paste"), seed=1, history=True, scale=1.5)
    assert ip._inpaint_core._cache_size() == compiled
    assert not np.array_equal(second.decoded, first.decoded)  # the new parameters were used


def test_only_tokens_the_decoder_filled_in_are_flagged_as_predicted():
    """A transformer with the predicted-token embedding: at T=1 nothing is flagged (known tokens are
    given), so it decodes like the same transformer without it; with T steps the flag is seen."""
    images, known = make_batch(3, seed=4)
    vq, tr = params()
    flagged_model = TRANSFORMER.clone(predicted_embedding=True)
    pred_emb = np.random.RandomState(5).normal(0, 3.0, TRANSFORMER.dim).astype(np.float32)
    tr_flagged = {**tr, "pred_emb": pred_emb}
    key = jax.random.key(6)
    for total_iter, same in ((1, True), (4, False)):
        cfg = config(decode=dataclasses.replace(DECODE, total_iter=total_iter))
        plain = ip.inpaint(VQGAN, vq, TRANSFORMER, tr, images, known, cfg, key)
        flagged = ip.inpaint(VQGAN, vq, flagged_model, tr_flagged, images, known, cfg, key)
        assert np.array_equal(plain.ids, flagged.ids) == same, total_iter
        np.testing.assert_array_equal(flagged.ids[~flagged.unknown_tokens], plain.ids[~plain.unknown_tokens])


def test_batched_results_do_not_depend_on_batch_size():
    images, known = make_batch(7, seed=2)
    vq, tr = params()
    cfg = config(decode=dataclasses.replace(DECODE, sample_temperature=1.0))
    key = jax.random.key(3)
    by3 = ip.inpaint_batched(VQGAN, vq, TRANSFORMER, tr, images, known, cfg, key, 3, return_history=True)
    by5 = ip.inpaint_batched(VQGAN, vq, TRANSFORMER, tr, images, known, cfg, key, 5, return_history=True)
    assert by3.images.shape == images.shape and by3.step_masks.shape == (4, 7, GRID * GRID)
    for field in ("unknown_tokens", "ids", "step_masks"):
        np.testing.assert_array_equal(getattr(by3, field), getattr(by5, field), err_msg=field)
    # Same tokens; the VQ decoder's convolutions round differently at another batch size (XLA CPU),
    # which can move a rare pixel by one level.
    for field in ("images", "decoded", "step_images"):
        a, b = getattr(by3, field).astype(int), getattr(by5, field).astype(int)
        assert np.abs(a - b).max() <= 1 and np.mean(a != b) < 1e-3, field


def test_batch_plan_runs_the_rest_in_a_power_of_two_batch():
    sizes = lambda *args: [len(batch) for batch in ip.batch_plan(*args)]
    assert sizes(4, 64) == [4] and sizes(3, 64) == [4]
    assert sizes(65, 64) == [64, 1] and sizes(70, 64) == [64, 8] and sizes(100, 64) == [64, 64]
    assert sizes(3, 64, 8) == [8] and sizes(70, 60, 8) == [64, 8]  # multiples of the device count
    batches = ip.batch_plan(70, 64)
    np.testing.assert_array_equal(np.concatenate(batches)[:70], np.arange(70))
    np.testing.assert_array_equal(batches[1], [64, 65, 66, 67, 68, 69, 69, 69])  # last one repeated


def test_config_validation():
    with pytest.raises(ValueError, match="composite"):
        config(composite="soft")
    cfg = config(mean=[0.1, 0.2, 0.3])
    assert cfg.mean == (0.1, 0.2, 0.3) and hash(cfg)  # lists become tuples: usable as a jit key
    assert cfg.output_mean == cfg.mean and cfg.output_std == STD
    assert config(out_mean=(0.0,) * 3).output_mean == (0.0, 0.0, 0.0)


def test_mismatched_models_are_a_clear_error():
    images, known = make_batch(1)
    vq, tr = params()
    cfg = ip.InpaintConfig(decode=decoding.DecodeConfig(num_codes=32), mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="codebook sizes"):
        ip.inpaint(VQGAN, vq, TRANSFORMER, tr, images, known, cfg, jax.random.key(0))
    with pytest.raises(ValueError, match="shape"):
        ip.inpaint(VQGAN, vq, TRANSFORMER, tr, images[:, :8], known[:, :8], config(), jax.random.key(0))


def token_holes(known):
    """(tokens with a missing pixel, tokens with missing and known pixels), each (B, GRID * GRID)."""
    b = len(known)
    patches = lambda m: m.reshape(b, GRID, SIZE // GRID, GRID, SIZE // GRID).any(axis=(2, 4)).reshape(b, -1)
    return patches(~known), patches(~known) & patches(known)


def reference_feedback_decode(model, tr_params, images, known, flag_fed_back=False,
                              seamless_fill=None):
    """Float32 NumPy re-make of T=2 square decoding with pixel feedback and no noise, from the
    models' own apply functions: step 1 keeps floor(0.75 * u0) least confident tokens masked and
    fixes the rest; a fixed token whose patch has a known pixel becomes the encoding of the decoded
    prediction with the known pixels pasted back (or, given ``seamless_fill``, that function's
    fill of it, rounded to uint8), and step 2 sees it unflagged (given); the other tokens the
    decoder fixed are flagged as predicted."""
    vq = params()[0]
    b = len(images)
    unknown, partial = token_holes(known)
    filled = normalize.fill_holes(images, known)

    def fed_back(prediction):
        decoded = VQGAN.apply({"params": vq}, prediction.reshape(b, GRID, GRID), method=VQGAN.decode_indices)
        decoded = np.asarray(normalize.denormalize(decoded, MEAN, STD))
        pasted = np.where(known[..., None], filled, decoded)
        if seamless_fill is not None:
            pasted = np.clip(np.round(np.asarray(seamless_fill(filled, decoded, known))), 0, 255)
        return encoded_ids(pasted, np.ones_like(known))

    def predict(ids, flagged):
        logits = np.asarray(model.apply({"params": tr_params}, ids, predicted_BxL=flagged))[..., :K]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        return np.where(ids == K, logits.argmax(-1), ids), np.where(ids == K, probs.max(-1), np.inf)

    ids0 = np.where(unknown, K, encoded_ids(images, known))
    prediction, confidence = predict(ids0, np.zeros_like(unknown))
    u0 = unknown.sum(-1)
    left = np.clip(np.floor(0.75 * u0).astype(int), 0, np.maximum(u0 - 1, 0))
    rank = np.argsort(np.argsort(confidence, axis=-1, kind="stable"), axis=-1, kind="stable")
    fixed = unknown & (rank >= left[:, None])
    ids1 = np.where(fixed, np.where(partial, fed_back(prediction), prediction), ids0)
    prediction, _ = predict(ids1, fixed if flag_fed_back else fixed & ~partial)
    still = ids1 == K
    return np.where(still, np.where(partial, fed_back(prediction), prediction), ids1), fixed, partial


def test_pixel_feedback_against_a_step_by_step_reference():
    images, known = make_batch(4, seed=0, corners=(1, 5), sides=(8, 12))  # 9-16 unknown tokens of 16
    vq, tr = params()
    model = TRANSFORMER.clone(predicted_embedding=True)
    pred_emb = np.random.RandomState(8).normal(0, 3.0, TRANSFORMER.dim).astype(np.float32)
    tr_flagged = {**tr, "pred_emb": pred_emb}
    decode = dataclasses.replace(DECODE, total_iter=2, schedule="square", choice_temperature=0.0)
    key = jax.random.key(0)
    cfg = config(decode=decode, pixel_feedback=True)
    got = ip.inpaint(VQGAN, vq, model, tr_flagged, images, known, cfg, key)
    want, fixed_first, partial = reference_feedback_decode(model, tr_flagged, images, known)
    assert (fixed_first & partial).any() and (fixed_first & ~partial).any()  # both kinds in step 1
    np.testing.assert_array_equal(got.ids, want)
    # The flags matter here: fed-back tokens flagged as predictions would decode otherwise.
    flagged_wrong, _, _ = reference_feedback_decode(model, tr_flagged, images, known, flag_fed_back=True)
    assert (flagged_wrong != want).any()
    plain = ip.inpaint(VQGAN, vq, model, tr_flagged, images, known, config(decode=decode), key)
    assert (plain.ids != got.ids).any()
    np.testing.assert_array_equal(got.ids[~got.unknown_tokens], plain.ids[~plain.unknown_tokens])


def test_seamless_composite_feeds_back_the_seamless_fill():
    """With composite='seamless', the fed-back tokens are encodings of the seamless fill (known
    pixels exact, the decoded prediction shifted to meet them), not of the pasted prediction."""
    images, known = make_batch(4, seed=0, corners=(1, 5), sides=(8, 12))
    vq, tr = params()
    decode = dataclasses.replace(DECODE, total_iter=2, schedule="square", choice_temperature=0.0)
    cfg = config(decode=decode, pixel_feedback=True, composite="seamless")
    got = ip.inpaint(VQGAN, vq, TRANSFORMER, tr, images, known, cfg, jax.random.key(0))
    want, _, _ = reference_feedback_decode(TRANSFORMER, tr, images, known,
                                           seamless_fill=seamless.seamless_fill)
    np.testing.assert_array_equal(got.ids, want)
    pasted, _, _ = reference_feedback_decode(TRANSFORMER, tr, images, known)
    assert (pasted != want).any()  # the two feedbacks differ on these images


def test_blur_composite_is_the_gaussian_blurred_hole():
    """'blur' (the official MaskGIT demo's blend): the decoded image weighted by the missing mask
    blurred with sigma = side / 16 - 1 = 3 pixels at 64 px; pixels beyond 3 sigma keep the input."""
    from scipy import ndimage
    rs = np.random.RandomState(0)
    images = rs.randint(0, 256, (1, 64, 64, 3)).astype(np.uint8)
    decoded = rs.randint(0, 256, (1, 64, 64, 3)).astype(np.uint8)
    known = np.ones((1, 64, 64), bool)
    known[0, 20:40, :30] = False  # touching the left edge: the edge is extended
    cfg = config(composite="blur")
    out = np.asarray(ip.composite(images, decoded, known, cfg))
    weight = ndimage.gaussian_filter((~known[0]).astype(np.float64), sigma=3, mode="nearest",
                                     truncate=3.0)[None, ..., None]
    np.testing.assert_allclose(out, np.round(weight * decoded + (1 - weight) * images), atol=1)
    far = np.ones_like(known)
    far[0, 20 - 9:40 + 9, :30 + 9] = False  # more than 9 pixels (3 sigma) from the hole
    np.testing.assert_array_equal(out[far], images[far])
    assert not np.array_equal(out[~far & known], images[~far & known])  # the fill fades outwards


def test_render_temperature_draws_predicted_tokens_as_expected_code_vectors():
    """T=1 with pixel feedback and tau > 0: the decoded image is the VQ decoding of softmax(logits /
    tau) @ codebook (NumPy, from the transformer's one pass) where the transformer predicted a token,
    and of the token's code where it was known or fed back (the real pixels' encoding)."""
    images, known = make_batch(4, seed=0, corners=(1, 5), sides=(8, 12))
    vq, tr = params()
    tau = 0.8
    decode = dataclasses.replace(DECODE, total_iter=1, render_temperature=tau)
    got = ip.inpaint(VQGAN, vq, TRANSFORMER, tr, images, known, config(decode=decode, pixel_feedback=True),
                     jax.random.key(0))
    b = len(images)
    unknown, partial = token_holes(known)
    assert (unknown & partial).any() and (unknown & ~partial).any()
    ids0 = np.where(unknown, K, encoded_ids(images, known))
    logits = np.asarray(TRANSFORMER.apply({"params": tr}, ids0), np.float64)[..., :K] / tau
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    codebook = np.asarray(VQGAN.apply({"params": vq}, method=VQGAN.code_vectors), np.float64)
    means = (probs / probs.sum(-1, keepdims=True)) @ codebook
    z = np.where((unknown & ~partial)[..., None], means, codebook[got.ids]).astype(np.float32)
    want = normalize.denormalize(VQGAN.apply({"params": vq}, z.reshape(b, GRID, GRID, -1),
                                             method=VQGAN.decode), MEAN, STD)
    np.testing.assert_allclose(got.decoded, np.asarray(want), atol=1e-3)
    # The ids are decoding's own, and drawn as codes they make another image.
    hard = ip.inpaint(VQGAN, vq, TRANSFORMER, tr, images, known,
                      config(decode=dataclasses.replace(decode, render_temperature=0.0), pixel_feedback=True),
                      jax.random.key(0))
    np.testing.assert_array_equal(got.ids, hard.ids)
    assert np.abs(np.asarray(got.decoded, np.float64) - hard.decoded).max() > 1
