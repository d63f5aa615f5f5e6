"""8 devices, and 2 processes joined by jax.distributed (on 127.0.0.1), train exactly like 1 device;
2 processes that resume agree on the checkpoint step.

Each run makes 5 updates of each stage, every one at a non-zero learning rate (tests/
parallel_worker.py), in float64 (``COMPUTE_DTYPE``: 64-bit JAX; the models compute and keep their
parameters, and Adam its moments, in float64: maskgit_jax/models/precision.py). The losses and
gradient norms of every update, and the parameters after the last, must match the 1-device run's:
the parameters per leaf, |a - b| / |b| in Frobenius norms, to TOLERANCE = 1e-5 in both stages, so a
small leaf (a bias, a norm scale) counts as much as a big kernel, while the 5 updates moved the
parameters by far more than that. A gradient taken over one device's rows only fails: made so for
the discriminator in the 8-device run, the losses differ by 9e-3 from the 3rd update on and the
discriminator's leaves by up to 0.7. One summed instead of averaged over the devices fails on the
gradient norms (Adam's update does not change when every gradient is scaled by the same factor).

Why float64: the devices sum their gradients in another order than one device does (8 devices sum
their own rows and then all-reduce, 1 device reduces all rows at once, and XLA chooses the
association of both), and Adam's m / sqrt(v) turns that rounding into relative changes of the
parameters whose gradients are small. In float32 (the configs' dtype) the gradients differ by 1e-7
at the first update and 2.5e-6 at the fifth (the GAN term and the clipping carry the differences
on), and stage 1's worst leaf ends 1.1e-5 apart (an encoder attention query bias; 7.6e-5 for a
zero-initialised discriminator bias at half the learning rate): at 1e-5 a float32 test would
measure float32 noise (it needed 2e-4 for stage 1). In float64 that noise is 1e-16. What is left is
the program under test, the same in both types: the mesh, the shardings, the jitted steps, the data
each process reads and the checkpoints; only the element types differ (tests/test_precision.py:
in float64 the stage-1 gradients do not depend on the order of the batch's rows, in float32 they
do). So float64 alone is checked here, not float32 too: that would take two more runs for no other
code. Measured after 5 updates against 1
device:
- stage 1 (VQGAN and discriminator), 8 devices: every leaf within 3.7e-14 (an encoder conv bias;
  median leaf 5.6e-16), the losses within 7e-16, the gradient norms within 5e-15; 2 processes of 2
  devices: within 3.5e-14 (the same bias; median 5.3e-16), the losses within 1.8e-15. With every
  process reading the first half of each global batch, the 2-process run fails on stage 1's losses;
- stage 2, 8 devices and 2 processes of 2 alike: every leaf within 2.2e-8 (pos_emb; median 2e-10),
  the losses within 2e-11. That is float32 rounding still: jax.nn.dot_product_attention takes its
  softmax in float32 whatever its inputs. With the transformer's einsum attention (float64
  throughout) every leaf is within 4.3e-16. In float32, 3.5e-7.
- the attention key biases differ completely (relative difference about 1) in both stages and both
  types: the softmax over the keys does not change when every score of a query grows by the same
  q.b_k, so their exact gradient is 0, and the computed one is rounding noise, which Adam scales up
  to steps of about the learning rate. They change no output; the test checks that they are the
  only leaves left out and that they stay within the learning rate times the updates of 0.
"""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maskgit_jax.train import distributed, optim

from tests import parallel_worker
from tests.shared_folders import built_once

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5
COMPUTE_DTYPE = "float64"  # see the module docstring: float32 rounding would dominate stage 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(workdir: Path, out: Path, stages: str, devices: int, port: int = 0,
           num_processes: int = 1, process_id: int = 0, unreadable: str = ""):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), UNREADABLE=unreadable,
               COMPUTE_DTYPE=COMPUTE_DTYPE,
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen([sys.executable, str(ROOT / "tests" / "parallel_worker.py"), str(workdir),
                             str(out), stages, str(port), str(num_processes), str(process_id)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish(procs, out: Path, logs: list | None = None) -> dict:
    """Waits for all processes (killing all if one hangs); the arrays process 0 wrote. Each
    process's stderr is appended to ``logs`` when given."""
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=500))
    finally:
        for proc in procs:
            proc.kill()
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    if logs is not None:
        logs.extend(err for _, err in outputs)
    with np.load(out) as arrays:
        return dict(arrays)


def _noise_only(name: str) -> bool:
    """Attention key biases (the transformer's key/bias, the VQGAN's k/bias): gradient 0 exactly."""
    return name.endswith("['key']['bias']") or name.endswith("['k']['bias']")


def _leaves(run: dict, stage: str, step: int) -> dict:
    prefix = f"{stage}/{step}/"
    return {k[len(prefix):]: v for k, v in run.items() if k.startswith(prefix)}


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    difference, scale = np.linalg.norm(a - b), np.linalg.norm(b)
    return difference / scale if scale else float(difference > 0) * np.inf


def assert_same_training(got: dict, want: dict, stage: str, config, tolerance: float) -> None:
    """Same losses and gradient norms at every update, same parameters after the last (see the
    module docstring), every update at a non-zero learning rate and all of them moving the
    parameters by far more than ``tolerance``."""
    steps = parallel_worker.STEPS
    stage_config = getattr(config, stage)
    rates = optim.learning_rate_schedule(stage_config.lr, stage_config.warmup_steps, stage_config.steps)
    assert all(float(rates(i)) >= 0.05 * stage_config.lr for i in range(steps))
    np.testing.assert_allclose(got[f"{stage}/loss"], want[f"{stage}/loss"], rtol=1e-6)
    np.testing.assert_allclose(got[f"{stage}/grad_norm"], want[f"{stage}/grad_norm"], rtol=1e-5)
    assert len(want[f"{stage}/loss"]) == steps
    a, b, initial = _leaves(got, stage, steps), _leaves(want, stage, steps), _leaves(want, stage, 0)
    assert sorted(a) == sorted(b) == sorted(initial) and a
    assert {v.dtype for v in (*a.values(), *b.values())} == {np.dtype(COMPUTE_DTYPE)}
    compared = sorted(k for k in b if not _noise_only(k))
    flat = lambda leaves: np.concatenate([leaves[k].ravel() for k in compared])
    moved = _relative(flat(b), flat(initial))
    assert moved > 100 * tolerance, (stage, moved)
    differences = {k: _relative(a[k], b[k]) for k in compared}
    over = {k: f"{v:.2e}" for k, v in differences.items() if not v <= tolerance}
    assert not over, (stage, over)
    noise = [k for k in b if _noise_only(k)]
    assert noise and all(np.abs(b[k]).max() <= stage_config.lr * steps for k in noise), stage


@pytest.fixture(scope="session")
def one_device(tmp_path_factory):
    """(workdir, arrays) of both stages on 1 device: the reference (run once, read-only)."""
    def build(folder):
        folder.mkdir(parents=True)
        _finish([_start(folder / "run", folder / "one.npz", "tokenizer,transformer", 1)],
                folder / "one.npz")
    folder = built_once(tmp_path_factory, "distributed_one_device", build)
    with np.load(folder / "one.npz") as arrays:
        return folder, dict(arrays)


def test_eight_devices_train_like_one(one_device, tmp_path):
    want = one_device[1]
    got = _finish([_start(tmp_path / "run", tmp_path / "eight.npz", "tokenizer,transformer", 8)],
                  tmp_path / "eight.npz")
    assert (int(got["devices"]), int(want["devices"])) == (8, 1)
    config = parallel_worker.config("tokenizer,transformer")
    assert_same_training(got, want, "tokenizer", config, TOLERANCE)
    assert_same_training(got, want, "transformer", config, TOLERANCE)


def test_two_processes_train_like_one_device(one_device, tmp_path):
    """Both stages in 2 processes of 2 devices: each process reads only its half of every global
    batch and takes part in writing the checkpoints."""
    reference, want = one_device
    two = tmp_path / "two"
    port = _free_port()
    got = _finish([_start(two, tmp_path / "two.npz", "tokenizer,transformer", 2, port, 2, i)
                   for i in range(2)], tmp_path / "two.npz")
    assert (int(got["processes"]), int(got["devices"])) == (2, 4)
    config = parallel_worker.config("tokenizer,transformer")
    assert_same_training(got, want, "tokenizer", config, TOLERANCE)
    assert_same_training(got, want, "transformer", config, TOLERANCE)
    # Process 0 wrote the token cache (of its own stage 1): the same as the single run's.
    with np.load(reference / "run" / "token_cache.npz") as a, np.load(two / "token_cache.npz") as b:
        np.testing.assert_array_equal(a["ids"], b["ids"])


def test_two_processes_resume_from_the_newest_step_that_both_can_read(one_device, tmp_path):
    """Process 1 cannot read the newest transformer checkpoint (step 5), process 0 can: both
    resume from step 3, process 0 alone sets step 5 aside, and the two train the same updates as
    the uninterrupted 1-device run."""
    reference, want = one_device
    workdir = tmp_path / "resumed"
    shutil.copytree(reference / "run", workdir)
    port, logs = _free_port(), []
    got = _finish([_start(workdir, tmp_path / "resumed.npz", "transformer", 2, port, 2, i,
                          unreadable="1:transformer/5") for i in range(2)],
                  tmp_path / "resumed.npz", logs)
    for process, log in enumerate(logs):
        warned = [line for line in log.splitlines() if "unreadable checkpoint" in line]
        assert len(warned) == 1 and "transformer/5: unreadable" in warned[0], (process, warned)
        assert "using step 3 instead (moved to 5.corrupt-" in warned[0], (process, warned)
    folders = sorted(p.name for p in (workdir / "checkpoints" / "transformer").iterdir())
    # Step 5 trained again (the copied one is set aside): the same updates as the reference's.
    assert folders[:2] == ["3", "5"] and len(folders) == 3 and folders[2].startswith("5.corrupt-")
    config = parallel_worker.config("transformer")
    assert_same_training(got, want, "transformer", config, TOLERANCE)


@pytest.mark.parametrize("args", [dict(coordinator_address="127.0.0.1:1"),
                                  dict(coordinator_address="127.0.0.1:1", num_processes=2),
                                  dict(coordinator_address="h:1", num_processes=2, process_id=2)])
def test_incomplete_or_wrong_process_flags_are_refused(args):
    with pytest.raises(ValueError, match="process"):
        distributed.initialize(**args)
