"""Training: each stage's step learns, a resumed run continues identically, 8 devices = 1 device."""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax import model_files
from maskgit_jax.configs import faces as faces_config
from maskgit_jax.data import faces
from maskgit_jax.train import experiment, main, tokenizer_stage, transformer_stage
from maskgit_jax.train.metric_writer import read_metrics

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="module")
def trained_tiny(tmp_path_factory):
    """Both stages of the tiny config, 4 updates each, checkpoints at 2 and 4."""
    workdir = tmp_path_factory.mktemp("tiny")
    main.train_and_evaluate(tiny_config(), workdir, progress=False)
    return workdir


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


MULTI_DEVICE_SCRIPT = """
import json, sys
import jax
from maskgit_jax.configs import faces as faces_config
from maskgit_jax.train import main
from maskgit_jax.train.metric_writer import read_metrics
config = faces_config.get_config("tiny")
config.tokenizer.steps = config.transformer.steps = 2
workdir = sys.argv[1]
main.train_and_evaluate(config, workdir, progress=False)
out = {s: [r["loss"] for r in read_metrics(f"{workdir}/metrics_{s}.jsonl")]
       for s in ("tokenizer", "transformer")}
out["devices"] = jax.device_count()
print("RESULT" + json.dumps(out))
"""


def _run_with_devices(n, workdir):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
               XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
    proc = subprocess.run([sys.executable, "-c", MULTI_DEVICE_SCRIPT, str(workdir)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def test_eight_devices_give_the_same_losses_as_one(tmp_path):
    one = _run_with_devices(1, tmp_path / "one")
    eight = _run_with_devices(8, tmp_path / "eight")
    assert one["devices"] == 1 and eight["devices"] == 8
    for stage in ("tokenizer", "transformer"):
        assert len(one[stage]) == 2
        np.testing.assert_allclose(eight[stage], one[stage], rtol=2e-5)
