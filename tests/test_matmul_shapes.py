"""bench.matmul_shapes lists every matmul of a training step: the forward ones add up to the model's
analytic FLOPs, and the backward pass doubles them."""

import types

import pytest

from bench import matmul_shapes, models
from maskgit_jax.models.transformer import transformer_flops_per_example


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_the_step_matmuls_are_three_times_the_forward_flops(name):
    config, batch = models.config(name), 4
    matmuls = matmul_shapes.step_matmuls(config, batch)
    t = config.transformer_model
    seq_len = {"tiny": 256, "small": 64}[name]
    forward = batch * transformer_flops_per_example(seq_len, t.dim, t.depth, t.mlp_dim,
                                                    config.vqgan.num_codes)
    total = lambda mms: sum(mm.flops * mm.count for mm in mms)
    assert total(mm for mm in matmuls if mm.forward) == forward
    assert total(matmuls) == 3 * forward


def test_fastest_round_of_each_library(monkeypatch):
    # Start and end readings of the clock: a takes 5 s then 1 s, b 2 s then 4 s (one call a turn).
    clock = iter([0.0, 5.0, 5.0, 7.0, 7.0, 8.0, 8.0, 12.0])
    monkeypatch.setattr(matmul_shapes.time, "perf_counter", lambda: next(clock))
    runs = {"a": lambda: None, "b": lambda: None}
    assert matmul_shapes.fastest_seconds(runs, rounds=2, calls=1) == {"a": 1.0, "b": 2.0}


def test_floor_note_against_a_hand_computed_case():
    # 32 images per 80 ms: at most 400 images/s, 1.33x PyTorch's 300; 1.2x (360) is within that
    # floor, 1.5x (450) above it.
    note = matmul_shapes.floor_note("small", "a training step of 32", 0.08, 32,
                                    ((1.2, 300.0, ""), (1.5, 300.0, "other")))
    assert "take 80 ms" in note and "at most 400 images/s = 1.33x PyTorch's rate" in note
    assert "the 1.2x target (360 images/s) lies within that floor" in note
    assert "the 1.5x other target (450 images/s) lies above that floor" in note


def test_no_floor_for_bfloat16_compute():
    m = types.SimpleNamespace(name="tiny", dtype="bfloat16", config=models.config("tiny"))
    assert matmul_shapes.cpu_floor_seconds(m, 8, "step") is None
