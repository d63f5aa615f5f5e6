"""Two processes joined by jax.distributed (on 127.0.0.1) train exactly like one process.

Each process has 2 virtual CPU devices, reads only its half of every global batch and takes part in
writing the checkpoint; the losses, the checkpoint and the token cache must match a 1-device run.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from maskgit_jax.configs import faces as faces_config
from maskgit_jax import mesh as mesh_lib
from maskgit_jax.train import distributed, experiment
from maskgit_jax.train.checkpoint import Checkpoints

ROOT = Path(__file__).resolve().parents[1]

# Stage 2 of the tiny config for 2 updates, in a process that may be one of several.
WORKER = """
import json, sys
import jax
from maskgit_jax.configs import faces as faces_config
from maskgit_jax.train import distributed, main
from maskgit_jax.train.metric_writer import read_metrics
workdir, port, num_processes, process_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if num_processes > 1:
    distributed.initialize(f"127.0.0.1:{port}", num_processes, process_id)
config = faces_config.get_config("tiny")
config.stages = "transformer"
config.transformer.steps = config.checkpoint_every = 2
config.sample_every = 0
main.train_and_evaluate(config, workdir, progress=False)
if jax.process_index() == 0:
    losses = [r["loss"] for r in read_metrics(f"{workdir}/metrics_transformer.jsonl")]
    print("RESULT" + json.dumps(dict(losses=losses, devices=jax.device_count(),
                                     processes=jax.process_count())))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(workdir: Path, devices: int, port: int, num_processes: int, process_id: int):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen([sys.executable, "-c", WORKER, str(workdir), str(port),
                             str(num_processes), str(process_id)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs) -> dict:
    """Waits for all processes (killing all if one hangs); the RESULT line of process 0."""
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=300))
    finally:
        for proc in procs:
            proc.kill()
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    line = [l for l in outputs[0][0].splitlines() if l.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


@pytest.fixture(scope="module")
def tokenizer_workdir(tmp_path_factory):
    """A workdir holding an (untrained) tiny tokenizer checkpoint: what stage 2 starts from."""
    workdir = tmp_path_factory.mktemp("tokenizer")
    config = faces_config.get_config("tiny")
    init, _ = experiment.tokenizer_init(config, None)
    ckpt = Checkpoints(workdir / "checkpoints" / "tokenizer")
    ckpt.save(1, init())
    ckpt.close()
    return workdir


def test_two_processes_train_like_one_device(tokenizer_workdir, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(tokenizer_workdir, one)
    shutil.copytree(tokenizer_workdir, two)
    port = _free_port()
    # The pair and the reference run side by side.
    pair = [_start(two, 2, port, 2, i) for i in range(2)]
    single = _start(one, 1, 0, 1, 0)
    got, want = _finish(pair), _finish([single])

    assert (got["processes"], got["devices"]) == (2, 4)
    assert (want["processes"], want["devices"]) == (1, 1)
    assert len(want["losses"]) == 2
    np.testing.assert_allclose(got["losses"], want["losses"], rtol=2e-5)

    # Process 0 wrote the token cache, both wrote the checkpoint: the same as the single run's.
    with np.load(one / "token_cache.npz") as a, np.load(two / "token_cache.npz") as b:
        np.testing.assert_array_equal(a["ids"], b["ids"])
    config = faces_config.get_config("tiny")
    sharding = mesh_lib.replicated(mesh_lib.make_mesh())
    (step_one, params_one), (step_two, params_two) = (
        experiment.restore_transformer(config, w, sharding, use_ema=False) for w in (one, two))
    assert step_one == step_two == 2
    leaves_one, leaves_two = jax.tree.leaves(params_one), jax.tree.leaves(params_two)
    assert len(leaves_one) == len(leaves_two) > 0
    for a, b in zip(leaves_one, leaves_two):
        # Adam turns pure rounding noise (e.g. the key biases, whose gradient is 0) into
        # updates of up to the learning rate: hence the absolute tolerance.
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("args", [dict(coordinator_address="127.0.0.1:1"),
                                  dict(coordinator_address="127.0.0.1:1", num_processes=2),
                                  dict(coordinator_address="h:1", num_processes=2, process_id=2)])
def test_incomplete_or_wrong_process_flags_are_refused(args):
    with pytest.raises(ValueError, match="process"):
        distributed.initialize(**args)
