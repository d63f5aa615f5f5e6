"""A few updates of the tiny config at a non-zero learning rate; the parameters before and after.

Run by test_distributed.py as a subprocess (XLA_FLAGS fixes its device count before JAX starts):

    python tests/parallel_worker.py WORKDIR OUT.npz STAGES [PORT NUM_PROCESSES PROCESS_ID]

Process 0 writes OUT.npz: ``{stage}/{step}/{leaf path}`` for the initial parameters (step 0) and
those of each checkpoint (steps 3 and STEPS), ``{stage}/loss`` and ``{stage}/grad_norm`` (one value
per update), and ``devices`` / ``processes``.

With ``COMPUTE_DTYPE=float64`` in the environment the models compute and keep their parameters (and
Adam its moments) in float64, under 64-bit JAX; the default is the config's float32.

With ``UNREADABLE=PROCESS:STAGE/STEP`` in the environment, that process cannot read that checkpoint
step while it trains (its read fails as a damaged file's would; the other processes read it).
"""

import os
import sys
from contextlib import contextmanager

import jax
import numpy as np

from maskgit_jax import compile_cache, mesh as mesh_lib
from maskgit_jax.configs import faces as faces_config
from maskgit_jax.checkpoint_files import unreadable
from maskgit_jax.train import checkpoint, distributed, experiment, main
from maskgit_jax.train.metric_writer import read_metrics

STEPS = 5


def config(stages: str, compute_dtype: str = "float32"):
    c = faces_config.get_config("tiny")
    c.stages = stages
    c.compute_dtype = compute_dtype
    for stage in (c.tokenizer, c.transformer):
        stage.steps = STEPS
        # The tiny configs warm up over one update, i.e. make the first at learning rate 0; here
        # every update runs at a non-zero rate (cosine from the peak: 0.1 x the peak at the last).
        stage.warmup_steps = 0
    c.tokenizer.disc_start = 1  # the discriminator and its GAN term take part from the 2nd update
    c.checkpoint_every, c.sample_every = 3, 0  # checkpoints at steps 3 and 5
    return c


@contextmanager
def unreadable_here(what: str):
    """Inside, this process fails to read the checkpoint ``PROCESS:STAGE/STEP`` (when PROCESS is
    this one), as if a file of it were damaged; every other read is the real one."""
    process, _, step_dir = what.partition(":")
    real = checkpoint.Checkpoints.read

    def read(self, step, abstract_state):
        if self.directory.parts[-1] + f"/{step}" == step_dir:
            raise unreadable(self.directory / str(step), ValueError("DATA_LOSS: injected by the test"))
        return real(self, step, abstract_state)
    if what and int(process) == jax.process_index():
        checkpoint.Checkpoints.read = read
    try:
        yield
    finally:
        checkpoint.Checkpoints.read = real


def _init_and_abstract(stage: str, c) -> tuple:
    """(init function of the stage's state, its abstract state replicated over the mesh)."""
    return (experiment.tokenizer_init if stage == "tokenizer" else
            experiment.transformer_init)(c, mesh_lib.replicated(mesh_lib.make_mesh()))


def _flat(prefix: str, state) -> dict:
    trees = {"params": state.params}
    if getattr(state, "disc_params", None) is not None:
        trees["disc_params"] = state.disc_params
    return {f"{prefix}/{name}{jax.tree_util.keystr(path)}": np.asarray(leaf)
            for name, tree in trees.items()
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def main_(workdir: str, out: str, stages: str, port: str = "", num_processes: str = "1",
          process_id: str = "0") -> None:
    compute_dtype = os.environ.get("COMPUTE_DTYPE", "float32")
    # Before any array exists: 64-bit JAX is a process-wide switch.
    jax.config.update("jax_enable_x64", compute_dtype == "float64")
    # The test run's cache (tests/conftest.py): the resuming processes, and the inits below, read
    # the programs that a run with the same devices compiled.
    compile_cache.enable()
    if int(num_processes) > 1:
        distributed.initialize(f"127.0.0.1:{port}", int(num_processes), int(process_id))
    c = config(stages, compute_dtype)
    with unreadable_here(os.environ.get("UNREADABLE", "")):
        main.train_and_evaluate(c, workdir, progress=False)
    arrays = {"devices": np.int64(jax.device_count()), "processes": np.int64(jax.process_count())}
    for stage in experiment.parse_stages(stages):
        init, abstract = _init_and_abstract(stage, c)
        ckpt = experiment.checkpoints(workdir, stage, c)
        steps = sorted(ckpt.manager.all_steps())
        states = [(s, ckpt.read(s, abstract)) for s in steps]  # every process takes part
        ckpt.close()
        if jax.process_index() != 0:
            continue
        arrays.update(_flat(f"{stage}/0", jax.jit(init)()))
        for s, state in states:
            arrays.update(_flat(f"{stage}/{s}", state))
        rows = read_metrics(f"{workdir}/metrics_{stage}.jsonl")
        arrays[f"{stage}/loss"] = np.array([r["loss"] for r in rows])
        arrays[f"{stage}/grad_norm"] = np.array([r["grad_norm"] for r in rows])
    if jax.process_index() == 0:
        np.savez(out, **arrays)


if __name__ == "__main__":
    main_(*sys.argv[1:])
