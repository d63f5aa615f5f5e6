"""bench.matmul_shapes lists every matmul of a training step: the forward ones add up to the model's
analytic FLOPs, and the backward pass doubles them."""

import pytest

from bench import matmul_shapes, models, timing
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
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    runs = {"a": lambda: None, "b": lambda: None}
    assert timing.fastest_seconds(runs, rounds=2, calls=1) == {"a": 1.0, "b": 2.0}
