"""Training: each stage's step learns, a resumed run continues identically, the optimizer details."""

import functools
import json
import os
import re
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from maskgit_jax import masking, model_files
from maskgit_jax.configs import faces as faces_config
from maskgit_jax.data import faces
from maskgit_jax.train import experiment, loop, main, optim, tokenizer_stage, transformer_stage
from maskgit_jax.train.checkpoint import Checkpoints
from maskgit_jax.train.metric_writer import MetricWriter, read_metrics



def tiny_config(**overrides):
    config = faces_config.get_config("tiny")
    for key, value in overrides.items():
        node = config
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        node[last] = value
    return config


def test_tokenizer_step_lowers_the_loss_on_a_fixed_batch():
    config = tiny_config(**{"tokenizer.disc_weight": 0.0, "tokenizer.restart_dead_codes_every": 0,
                            "tokenizer.steps": 100, "tokenizer.lr": 3e-4, "tokenizer.hflip": False})
    model, disc, tx, disc_tx, opts = experiment.tokenizer_parts(config)
    init, _ = experiment.tokenizer_init(config, None)
    state = init()
    step = jax.jit(functools.partial(tokenizer_stage.train_step, model=model, disc=disc, tx=tx,
                                     disc_tx=disc_tx, opts=opts, seed=0))
    images = jnp.asarray(faces.faces_split("train", 8))
    losses = []
    for _ in range(12):
        state, metrics = step(state, images)
        losses.append(float(metrics["loss"]))
    assert np.mean(losses[-3:]) < 0.8 * losses[0], losses


def _transformer_loss_before_and_after_training(config):
    """(initial state, state after 15 steps, fixed-mask loss before, after) on tokens whose masked
    ones are predictable."""
    model, tx, opts = experiment.transformer_parts(config)
    state = initial = experiment.transformer_init(config, None)[0]()
    step = jax.jit(functools.partial(transformer_stage.train_step, model=model, tx=tx, opts=opts,
                                     seed=0))
    # Structured tokens: each row repeats a short pattern, so masked tokens are predictable.
    rs = np.random.RandomState(0)
    tokens = jnp.asarray(np.tile(rs.randint(0, 32, size=(8, 16)), (1, 16)))
    # The same masks before and after training, so only the parameters differ.
    fixed_loss = jax.jit(lambda p: transformer_stage.masked_token_loss(
        p, tokens, jax.random.key(123), model=model, opts=opts)[0])
    before = float(fixed_loss(state.params))
    for _ in range(15):
        state, _ = step(state, tokens)
    return initial, state, before, float(fixed_loss(state.params))


TRANSFORMER_FIT = {"transformer.steps": 100, "transformer.lr": 1e-2, "transformer.warmup_steps": 1,
                   "transformer_model.dropout": 0.0}


def test_transformer_step_lowers_the_loss_on_a_fixed_batch():
    _, _, before, after = _transformer_loss_before_and_after_training(tiny_config(**TRANSFORMER_FIT))
    assert after < 0.9 * before, (before, after)  # chance level is ln(32) = 3.47


def test_code_targets_are_the_normalised_kernel_over_code_distances():
    codebook = np.random.RandomState(0).randn(12, 3)
    width = 0.05
    d = ((codebook[:, None] - codebook[None]) ** 2).sum(-1)
    median = np.median(d[~np.eye(12, dtype=bool)])
    want = np.exp(-d / (2 * width * median))
    want /= want.sum(1, keepdims=True)
    got = np.asarray(transformer_stage.code_targets(jnp.asarray(codebook, jnp.float32), width))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_the_loss_with_code_targets_is_the_cross_entropy_against_them():
    """Against a float64 NumPy cross-entropy of the same logits (the masks remade from the rng),
    label smoothing on top of the code targets."""
    config = tiny_config(**{"transformer.self_condition": 0.0, "transformer.label_smoothing": 0.1})
    model, _, opts = experiment.transformer_parts(config)
    params = experiment.transformer_init(config, None)[0]().params
    k = model.num_codes
    rs = np.random.RandomState(3)
    tokens = rs.randint(0, k, size=(4, model.seq_len))
    targets_KxK = rs.dirichlet(np.full(k, 0.3), size=k).astype(np.float32)  # rows: any distribution
    rng = jax.random.key(5)
    got = transformer_stage.masked_token_loss(params, jnp.asarray(tokens), rng, model=model,
                                              opts=opts, train=False,
                                              code_targets_KxK=jnp.asarray(targets_KxK))[0]
    mask_rng, _ = jax.random.split(rng)
    grid = int(round(model.seq_len ** 0.5))
    masked = np.asarray(masking.training_mask(mask_rng, 4, grid, opts.schedule, opts.blob_prob))
    logits = np.asarray(model.apply({"params": params}, jnp.asarray(np.where(masked, model.mask_id,
                                                                             tokens))), np.float64)[..., :k]
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    targets = targets_KxK.astype(np.float64)[tokens] * 0.9 + 0.1 / k
    want = (-(targets * log_p).sum(-1) * masked).sum() / masked.sum()
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    one_hot = transformer_stage.masked_token_loss(params, jnp.asarray(tokens), rng, model=model,
                                                  opts=opts, train=False)[0]
    assert abs(float(one_hot) - want) > 1e-3  # the targets matter (100x the tolerance above)


def test_fill_with_guesses_fills_only_masked_positions_with_the_guesses():
    rs = np.random.RandomState(0)
    batch, seq_len, mask_id = 64, 16, 99
    masked = jnp.asarray(rs.rand(batch, seq_len) < 0.6)
    inputs = jnp.where(masked, mask_id, jnp.asarray(rs.randint(0, 10, (batch, seq_len))))
    guesses = jnp.asarray(rs.randint(10, 20, (batch, seq_len)))
    new_inputs, still, predicted = map(np.asarray, transformer_stage.fill_with_guesses(
        jax.random.key(0), inputs, masked, guesses, fraction=0.5))
    masked, inputs, guesses = map(np.asarray, (masked, inputs, guesses))
    assert not (predicted & ~masked).any()                       # only masked positions are filled
    np.testing.assert_array_equal(still, masked & ~predicted)    # the rest stays masked and scored
    np.testing.assert_array_equal(new_inputs, np.where(predicted, guesses, inputs))
    count, filled = masked.sum(1), predicted.sum(1)
    assert (filled <= count).all() and (filled[count > 0] < count[count > 0]).all()  # floor(u * n), u < 1
    chosen = filled > 0
    assert 0.2 < chosen.mean() < 0.55, chosen.mean()   # about half of the examples (u * n < 1 drops some)
    none = transformer_stage.fill_with_guesses(jax.random.key(0), jnp.asarray(inputs), jnp.asarray(masked),
                                               jnp.asarray(guesses), fraction=0.0)
    np.testing.assert_array_equal(none[0], inputs)


def test_self_conditioned_step_lowers_the_loss_and_needs_the_flag():
    overrides = {**TRANSFORMER_FIT, "transformer.self_condition": 1.0}
    with pytest.raises(ValueError, match="predicted_embedding"):
        experiment.transformer_parts(tiny_config(**overrides,
                                                 **{"transformer_model.predicted_embedding": False}))
    config = tiny_config(**overrides, **{"transformer_model.predicted_embedding": True})
    initial, state, before, after = _transformer_loss_before_and_after_training(config)
    assert after < 0.9 * before, (before, after)
    change = jnp.abs(state.params["pred_emb"] - initial.params["pred_emb"]).max()
    assert float(change) > 1e-4  # the flag is trained


def test_gradient_accumulation_matches_one_big_batch():
    config = tiny_config(**{"transformer_model.dropout": 0.0})
    model, tx, opts = experiment.transformer_parts(config)
    init, _ = experiment.transformer_init(config, None)
    params = init().params
    tokens = jnp.asarray(np.random.RandomState(1).randint(0, 32, size=(8, 256)))
    rng = jax.random.key(0)
    from maskgit_jax.train import optim
    import dataclasses
    # With the same masks in both, 2 micro-batches of 4 give the mean of the two halves' gradients.
    loss_fn = lambda p, b, r: transformer_stage.masked_token_loss(p, b, jax.random.key(7),
                                                                  model=model, opts=opts)
    loss2, _, grads2 = optim.accumulated_value_and_grad(loss_fn, params, tokens, rng, 2)
    halves = [optim.accumulated_value_and_grad(loss_fn, params, tokens[i * 4:(i + 1) * 4], rng, 1)
              for i in range(2)]
    np.testing.assert_allclose(loss2, (halves[0][0] + halves[1][0]) / 2, rtol=1e-5)
    want = jax.tree.map(lambda a, b: (a + b) / 2, halves[0][2], halves[1][2])
    for g, w in zip(jax.tree.leaves(grads2), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    del dataclasses


@pytest.fixture
def trained_tiny(tiny_run):
    """Both stages of the tiny config, 4 updates each, checkpoints at 2 and 4 (conftest)."""
    return tiny_run


def _losses(workdir, stage):
    rows = read_metrics(Path(workdir) / f"metrics_{stage}.jsonl")
    return {r["step"]: r["loss"] for r in rows}


def test_run_writes_checkpoints_metrics_and_samples(trained_tiny):
    for stage in ("tokenizer", "transformer"):
        assert sorted(os.listdir(trained_tiny / "checkpoints" / stage)) == ["2", "4"]
        assert sorted(_losses(trained_tiny, stage)) == [1, 2, 3, 4]
        assert list((trained_tiny / "tensorboard" / stage).iterdir())
    samples = sorted(p.name for p in (trained_tiny / "samples").iterdir())
    assert "tokenizer_reconstruction_0000004.png" in samples
    assert "transformer_inpainting_0000004.png" in samples
    assert (trained_tiny / "token_cache.npz").exists()
    assert json.loads((trained_tiny / "config.json").read_text())["stages"] == "tokenizer,transformer"


def test_resumed_run_continues_identically(trained_tiny, tmp_path):
    # Simulate a run killed after step 2 of each stage: keep only the step-2 checkpoints.
    resumed = tmp_path / "resumed"
    shutil.copytree(trained_tiny, resumed)
    for stage in ("tokenizer", "transformer"):
        shutil.rmtree(resumed / "checkpoints" / stage / "4")
        (resumed / f"metrics_{stage}.jsonl").unlink()
    (resumed / "token_cache.npz").unlink()
    main.train_and_evaluate(tiny_config(), resumed, progress=False)
    for stage in ("tokenizer", "transformer"):
        want, got = _losses(trained_tiny, stage), _losses(resumed, stage)
        assert sorted(got) == [3, 4]
        np.testing.assert_allclose([got[3], got[4]], [want[3], want[4]], rtol=1e-6)


def test_a_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    """A diverging update is caught before its state is saved: every checkpoint left is finite."""
    settings = {"stages": "tokenizer", "tokenizer.grad_clip": 0.0, "checkpoint_every": 1}
    main.train_and_evaluate(tiny_config(**settings, **{"tokenizer.steps": 2}), tmp_path, progress=False)
    # Resumed at a learning rate of 1e45, which overflows float32: the next update makes the
    # parameters infinite while the loss it was computed from is still finite.
    with pytest.raises(FloatingPointError, match=r"at step (\d+)") as error:
        main.train_and_evaluate(tiny_config(**settings, **{"tokenizer.lr": 1e45, "tokenizer.steps": 6}),
                                tmp_path, progress=False)
    bad_step = int(re.search(r"at step (\d+)", str(error.value)).group(1))
    saved = model_files.checkpoint_steps(tmp_path, "tokenizer")
    assert saved == [1, 2] and bad_step == 3  # complete checkpoints only, all before the NaN
    for step in saved:
        _, params = model_files.read_workdir(tmp_path, step=step)
        assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(params)), step


def test_weight_decay_reaches_the_kernels_only():
    """By rule from the names: no decay on biases, norm scales, embeddings, the codebook."""
    config = tiny_config(**{"transformer.warmup_steps": 0, "transformer.weight_decay": 0.5})
    _, tx, _ = experiment.transformer_parts(config)
    params = experiment.transformer_init(config, None)[0]().params
    names = lambda tree: sorted(jax.tree_util.keystr(path) for path, leaf
                                in jax.tree_util.tree_flatten_with_path(tree)[0] if leaf)
    assert names(optim.decay_mask(params)) == [
        "['Token_Prediction_0']['kernel']", "['blocks_0']['Attention']['key']['kernel']",
        "['blocks_0']['Attention']['out']['kernel']", "['blocks_0']['Attention']['query']['kernel']",
        "['blocks_0']['Attention']['value']['kernel']", "['blocks_0']['MLP_0']['kernel']",
        "['blocks_0']['MLP_2']['kernel']"]
    # The optimizer itself: with zero gradients only the decay moves anything.
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    assert names(jax.tree.map(lambda u: bool(jnp.any(u != 0)), updates)) == names(optim.decay_mask(params))
    vq_params = experiment.tokenizer_init(config, None)[0]().params
    decayed, kept = names(optim.decay_mask(vq_params)), names(jax.tree.map(lambda d: not d,
                                                                            optim.decay_mask(vq_params)))
    assert decayed and all(n.endswith("['kernel']") for n in decayed)
    assert "['codebook']['embedding']" in kept and not any(n.endswith("['kernel']") for n in kept)


def test_ema_warms_up_from_the_parameters():
    assert float(optim.ema_decay_at(0, 0.999)) == pytest.approx(0.1)
    assert float(optim.ema_decay_at(8, 0.999)) == pytest.approx(0.5)
    assert float(optim.ema_decay_at(10**6, 0.999)) == pytest.approx(0.999)
    config = tiny_config(**{"transformer.ema_decay": 0.999, "transformer.warmup_steps": 0,
                            "transformer.grad_accum": 1})
    model, tx, opts = experiment.transformer_parts(config)
    state = experiment.transformer_init(config, None)[0]()
    initial = jax.tree.map(np.asarray, state.params)
    step = jax.jit(functools.partial(transformer_stage.train_step, model=model, tx=tx, opts=opts, seed=0))
    state, _ = step(state, jnp.asarray(np.random.RandomState(0).randint(0, 32, size=(8, 256))))
    # The first update's average is 0.1 initial + 0.9 updated, not 0.999 initial.
    for e, p0, p1 in zip(*map(jax.tree.leaves, (state.ema_params, initial, state.params))):
        np.testing.assert_allclose(e, 0.1 * p0 + 0.9 * np.asarray(p1), rtol=1e-5, atol=1e-7)


def test_a_restarted_code_starts_with_fresh_adam_moments():
    config = tiny_config(**{"tokenizer.disc_weight": 0.0, "tokenizer.restart_dead_codes_every": 1,
                            "tokenizer.warmup_steps": 0})
    model, disc, tx, disc_tx, opts = experiment.tokenizer_parts(config)
    state = experiment.tokenizer_init(config, None)[0]()
    num_codes = state.code_histogram.shape[0]

    # A history: every code has Adam moments, the first half was picked since the last restart.
    def ones(path, x):
        named = [getattr(k, "key", None) for k in path[-2:]] == ["codebook", "embedding"]
        return jnp.ones_like(x) if named else x

    state = state.replace(opt_state=jax.tree_util.tree_map_with_path(ones, state.opt_state),
                          code_histogram=state.code_histogram.at[: num_codes // 2].set(5))
    step = jax.jit(functools.partial(tokenizer_stage.train_step, model=model, disc=disc, tx=tx,
                                     disc_tx=disc_tx, opts=opts, seed=0))
    blank = jnp.zeros((8, 64, 64, 3), jnp.uint8)  # few distinct latents: many codes stay unused
    state, metrics = step(state, blank)
    adam, = [s for s in jax.tree.leaves(state.opt_state, is_leaf=lambda s: isinstance(
        s, optax.ScaleByAdamState)) if isinstance(s, optax.ScaleByAdamState)]
    mu, nu = (np.asarray(m["codebook"]["embedding"]) for m in (adam.mu, adam.nu))
    fresh = ~mu.any(axis=1) & ~nu.any(axis=1)
    dead = int(metrics["dead_codes"])
    assert 0 < dead < num_codes // 2 and fresh.sum() == dead, (dead, fresh)
    assert not fresh[: num_codes // 2].any()  # codes in use keep their moments


def test_metric_rows_are_means_since_the_last_row_with_a_validation_loss(tmp_path):
    # A stand-in stage: the state counts updates, the loss of update i is the i-th batch.
    train_step = jax.jit(lambda state, batch: ({"updates": state["updates"] + 1}, {"loss": batch}))
    writer = MetricWriter(tmp_path, "toy")
    loop.run(stage="toy", state={"updates": jnp.zeros((), jnp.float32)}, train_step=train_step,
             batches=[jnp.float32(b) for b in (1, 2, 3, 4, 5, 6, 7)], start_step=0, num_steps=7,
             checkpoints=Checkpoints(tmp_path / "ckpt"), writer=writer, log_every=3,
             checkpoint_every=100, examples_per_step=1, progress=False,
             evaluate=lambda state: {"val_loss": 10 * state["updates"]})
    writer.close()
    rows = read_metrics(tmp_path / "metrics_toy.jsonl")
    assert [(r["step"], r["loss"], r["val_loss"]) for r in rows] == [(3, 2.0, 30.0), (6, 5.0, 60.0),
                                                                     (7, 7.0, 70.0)]


def test_the_runs_metric_rows_hold_a_validation_loss(trained_tiny):
    for stage in ("tokenizer", "transformer"):
        rows = read_metrics(Path(trained_tiny) / f"metrics_{stage}.jsonl")
        assert [r["step"] for r in rows] == [1, 2, 3, 4]
        assert all(np.isfinite(r["val_loss"]) and r["val_loss"] > 0 for r in rows), rows


def test_fine_tuning_a_model_with_an_ema_trains_from_its_parameters(tiny_run, tmp_path):
    """init_from an exported model with transformer.ema_decay > 0 (the shipped recipes' fine-tuning):
    the parameters and their EMA start as the model's, in buffers of their own (the train step
    donates both), and training moves them."""
    config = tiny_config(**{"init_from": str(tiny_run / "model"), "stages": "transformer",
                            "transformer.steps": 2})
    assert config.transformer.ema_decay > 0
    main.train_and_evaluate(config, tmp_path, progress=False)
    start = model_files.load(tiny_run / "model")[1]["transformer"]
    tuned = model_files.load(tmp_path / "model")[1]["transformer"]
    moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(start), jax.tree.leaves(tuned))]
    assert any(moved)
