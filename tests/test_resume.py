"""Resuming a run: unreadable checkpoints, a changed config, metric rows, the token cache, kill -9."""

import json
import logging
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from maskgit_jax import model_files
from maskgit_jax.data import faces
from maskgit_jax.models import from_config
from maskgit_jax.train import checkpoint, experiment, main, token_cache
from maskgit_jax.train.metric_writer import read_metrics

from test_train import tiny_config

ROOT = Path(__file__).resolve().parents[1]

# Stage 1 of the tiny config alone, 6 updates, no sample grids: checkpoints at steps 2, 4 and 6.
TOKENIZER_ONLY = {"stages": "tokenizer", "sample_every": 0, "tokenizer.steps": 6}


# A training run in its own process (to be killed, or to fill JAX's persistent compilation cache
# that later runs of the same steps read instead of compiling again).
TRAIN_SCRIPT = """
import json, sys
from maskgit_jax.configs import faces as faces_config
from maskgit_jax.train import main
config = faces_config.get_config("tiny")
for key, value in json.loads(sys.argv[2]).items():
    node = config
    *path, last = key.split(".")
    for p in path:
        node = node[p]
    node[last] = value
main.train_and_evaluate(config, sys.argv[1], progress=False)
"""


def _start_run(workdir: Path, overrides: dict, cache_dir: Path) -> subprocess.Popen:
    """The run's messages go to ``workdir``.stderr (a file: a full pipe would stall it)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
               JAX_COMPILATION_CACHE_DIR=str(cache_dir),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    with _stderr(workdir).open("a") as stderr:
        return subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, str(workdir),
                                 json.dumps(overrides)], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=stderr)


def _stderr(workdir: Path) -> Path:
    return workdir.with_name(workdir.name + ".stderr")


@pytest.fixture(scope="module")
def compilation_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax_cache")


@pytest.fixture(scope="module")
def tokenizer_run(tmp_path_factory, compilation_cache):
    """The uninterrupted run the others are compared with (its process compiles the steps once
    for the killed runs too)."""
    workdir = tmp_path_factory.mktemp("tokenizer_run")
    proc = _start_run(workdir, TOKENIZER_ONLY, compilation_cache)
    assert proc.wait(timeout=600) == 0, _stderr(workdir).read_text()[-3000:]
    return workdir


def _copy(workdir: Path, to: Path) -> Path:
    shutil.copytree(workdir, to)
    return to


def _data_files(step_dir: Path) -> list[Path]:
    """The array files of an orbax step folder, largest first."""
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
    return sorted(files, key=lambda p: -p.stat().st_size)


def _truncate_largest_data_file(step_dir: Path) -> Path:
    """Cuts the largest array file of an orbax step folder to 100 bytes, as a full disk would."""
    largest = _data_files(step_dir)[0]
    os.truncate(largest, 100)
    return largest


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _steps(workdir: Path, stage: str = "tokenizer") -> list[str]:
    return sorted(os.listdir(workdir / "checkpoints" / stage))


def _params(workdir: Path, step: int):
    return jax.tree.leaves(model_files.read_workdir(workdir, step=step)[1])


def _tensorboard_scalars(folder: Path) -> dict[tuple[str, int], list[float]]:
    """{(tag, step): values} of the event files in ``folder`` as TensorBoard shows them: a session
    start at step T hides the events of steps >= T written before it (its purge rule)."""
    from tensorboardX.proto import event_pb2
    values: dict[tuple[str, int], list[float]] = {}
    for path in sorted(folder.iterdir()):  # events.out.tfevents.<creation time>...
        data, at = path.read_bytes(), 0
        while at < len(data):  # TFRecord: length (8 bytes), its CRC (4), the event, its CRC (4)
            (length,) = struct.unpack("<Q", data[at: at + 8])
            event = event_pb2.Event.FromString(data[at + 12: at + 12 + length])
            at += 12 + length + 4
            if event.session_log.status == event_pb2.SessionLog.START:
                values = {key: v for key, v in values.items() if key[1] < event.step}
            for value in event.summary.value:
                values.setdefault((value.tag, event.step), []).append(value.simple_value)
    return values


def test_resume_sets_an_unreadable_latest_checkpoint_aside_and_continues_identically(
        tokenizer_run, tmp_path, caplog):
    workdir = _copy(tokenizer_run, tmp_path / "run")
    bad = _truncate_largest_data_file(workdir / "checkpoints" / "tokenizer" / "6")
    main.train_and_evaluate(tiny_config(**TOKENIZER_ONLY), workdir, progress=False)
    warned = [w for w in _warnings(caplog) if "unreadable" in w]
    assert len(warned) == 1 and f"{workdir}/checkpoints/tokenizer/6: unreadable" in warned[0], warned
    assert "using step 4 instead" in warned[0] and "not deleted" in warned[0]
    steps = _steps(workdir)
    assert steps[:3] == ["2", "4", "6"] and len(steps) == 4 and steps[3].startswith("6.corrupt-"), steps
    # The set-aside folder is the corrupt one, untouched; the new step 4 is the uninterrupted one.
    kept = workdir / "checkpoints" / "tokenizer" / steps[3] / bad.relative_to(bad.parents[3])
    assert kept.stat().st_size == 100
    for got, want in zip(_params(workdir, 6), _params(tokenizer_run, 6)):
        np.testing.assert_array_equal(got, want)
    # One metric row per step: the rows of steps 5 and 6 that the first run wrote were dropped.
    rows = read_metrics(workdir / "metrics_tokenizer.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    shown = _tensorboard_scalars(workdir / "tensorboard" / "tokenizer")
    assert sorted(step for tag, step in shown if tag == "tokenizer/loss") == [1, 2, 3, 4, 5, 6]
    assert all(len(values) == 1 for values in shown.values()), shown


def test_reading_a_workdir_skips_an_unreadable_latest_checkpoint_and_leaves_it(
        tokenizer_run, tmp_path, caplog):
    workdir = _copy(tokenizer_run, tmp_path / "run")
    for path in _data_files(workdir / "checkpoints" / "tokenizer" / "6"):  # params are among them
        os.truncate(path, 100)
    config, params = model_files.read_workdir(workdir)
    assert config.about["tokenizer_step"] == 4
    warned = _warnings(caplog)
    assert len(warned) == 1, warned
    assert f"{workdir}/checkpoints/tokenizer/6: unreadable" in warned[0]
    assert "the folder is left as it is" in warned[0]
    assert _steps(workdir) == ["2", "4", "6"]
    for got, want in zip(jax.tree.leaves(params), _params(tokenizer_run, 4)):
        np.testing.assert_array_equal(got, want)
    # Asked for by number, the bad step is an error of its own, not a silent substitute.
    with pytest.raises(checkpoint.UnreadableCheckpointError, match="tokenizer/6: unreadable"):
        model_files.read_workdir(workdir, step=6)
    # With a transformer (any checkpoint stands in for one here), an older tokenizer would not be
    # the one whose codes it learnt: its latest unreadable step is an error, not a fallback.
    shutil.copytree(workdir / "checkpoints" / "tokenizer" / "2", workdir / "checkpoints" / "transformer" / "2")
    with pytest.raises(checkpoint.UnreadableCheckpointError, match="tokenizer/6: unreadable"):
        model_files.read_workdir(workdir)
    shutil.rmtree(workdir / "checkpoints" / "transformer")
    # Nothing readable: one error naming the folder.
    for step in ("2", "4"):
        (workdir / "checkpoints" / "tokenizer" / step / "default" / "manifest.ocdbt").unlink()
    with pytest.raises(OSError, match=f"{workdir}/checkpoints/tokenizer: no readable checkpoint"):
        model_files.read_workdir(workdir)


def _under_a_transformer(tokenizer_run: Path, to: Path) -> Path:
    """A copy of the tokenizer run whose newest tokenizer step (6) is damaged, with transformer
    checkpoints beside it (any checkpoint stands in for one: none is read) and their metric rows."""
    workdir = _copy(tokenizer_run, to)
    _truncate_largest_data_file(workdir / "checkpoints" / "tokenizer" / "6")
    shutil.copytree(workdir / "checkpoints" / "tokenizer" / "2",
                    workdir / "checkpoints" / "transformer" / "2")
    (workdir / "metrics_transformer.jsonl").write_text('{"step": 2, "loss": 1.0}\n')
    return workdir


@pytest.mark.parametrize("stages", ["tokenizer", "transformer"])
def test_an_unreadable_tokenizer_under_a_transformer_is_an_error_not_a_fallback(
        tokenizer_run, tmp_path, stages):
    """The transformer learnt the codes of the newest tokenizer step: resuming either stage from an
    older one would silently pair it with other codes."""
    workdir = _under_a_transformer(tokenizer_run, tmp_path / "run")
    with pytest.raises(checkpoint.UnreadableCheckpointError,
                       match=rf"^{workdir}/checkpoints/tokenizer/6: unreadable checkpoint .*; the "
                             rf"transformer checkpoints in {workdir}/checkpoints/transformer learnt "
                             r".*--on_unreadable_tokenizer=restart_transformer") as raised:
        main.train_and_evaluate(tiny_config(**{**TOKENIZER_ONLY, "stages": stages}), workdir,
                                progress=False)
    assert "\n" not in str(raised.value)
    assert _steps(workdir) == ["2", "4", "6"] and _steps(workdir, "transformer") == ["2"]


def test_restart_transformer_sets_stage_2_aside_and_resumes_the_tokenizer(tokenizer_run, tmp_path,
                                                                          caplog):
    workdir = _under_a_transformer(tokenizer_run, tmp_path / "run")
    main.train_and_evaluate(tiny_config(**TOKENIZER_ONLY), workdir, progress=False,
                            on_unreadable_tokenizer="restart_transformer")
    kept = sorted(p.name for p in (workdir / "checkpoints").iterdir())
    assert kept[0] == "tokenizer" and kept[1].startswith("transformer.restarted-"), kept
    assert os.listdir(workdir / "checkpoints" / kept[1]) == ["2"]
    stamp = kept[1].partition(".")[2]
    assert (workdir / f"metrics_transformer.{stamp}.jsonl").read_text().startswith('{"step": 2')
    assert not (workdir / "metrics_transformer.jsonl").exists()
    assert any("stage 2 starts again from step 0" in w for w in _warnings(caplog))
    # The tokenizer resumed from step 4 like any stage (the damaged step 6 set aside, then redone).
    steps = _steps(workdir)
    assert steps[:3] == ["2", "4", "6"] and steps[3].startswith("6.corrupt-"), steps
    for got, want in zip(_params(workdir, 6), _params(tokenizer_run, 6)):
        np.testing.assert_array_equal(got, want)


def test_a_changed_model_is_refused_and_leaves_the_workdir_untouched(tokenizer_run, tmp_path):
    workdir = _copy(tokenizer_run, tmp_path / "run")
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()}
    changed = tiny_config(**{**TOKENIZER_ONLY, "vqgan.latent_dim": 16, "data.mean": (0.4, 0.5, 0.5),
                             "tokenizer.steps": 8})
    with pytest.raises(ValueError) as error:
        main.train_and_evaluate(changed, workdir, progress=False)
    message = str(error.value)
    assert "vqgan.latent_dim 8 -> 16" in message and "data.mean.0 0.5 -> 0.4" in message, message
    assert "tokenizer.steps" not in message  # allowed, not part of the refusal
    assert {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file()} == before


def test_an_exported_model_folder_is_not_taken_for_a_workdir(tmp_path):
    folder = _copy(ROOT / "maskgit_jax" / "pretrained" / "faces-small", tmp_path / "model")
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="holds an exported model"):
        main.train_and_evaluate(tiny_config(**TOKENIZER_ONLY), folder, progress=False)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_allowed_changes_are_saved_and_recorded(tokenizer_run, tmp_path, caplog):
    """More steps and another transformer (stage 2 has no checkpoint yet): resumed, recorded."""
    workdir = _copy(tokenizer_run, tmp_path / "run")
    changed = tiny_config(**{**TOKENIZER_ONLY, "tokenizer.steps": 8, "transformer_model.dim": 32})
    main.train_and_evaluate(changed, workdir, progress=False)
    assert json.loads((workdir / "config.json").read_text())["tokenizer"]["steps"] == 8
    records = [json.loads(line) for line in (workdir / "config_changes.jsonl").read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["changes"] == {"tokenizer.steps": [6, 8], "transformer_model.dim": [16, 32]}
    assert any("resuming with changed settings: tokenizer.steps 6 -> 8" in w for w in _warnings(caplog))
    assert _steps(workdir) == ["4", "6", "8"]
    assert [r["step"] for r in read_metrics(workdir / "metrics_tokenizer.jsonl")] == list(range(1, 9))


def _writes_in_progress(workdir: Path) -> list[str]:
    folder = workdir / "checkpoints" / "tokenizer"
    return [name for name in (os.listdir(folder) if folder.is_dir() else [])
            if "orbax-checkpoint-tmp" in name]


def test_kill_9_during_checkpoint_writes_then_resume_reaches_the_same_parameters(
        tokenizer_run, compilation_cache, tmp_path):
    """Killed 3 times, each time a random 0-30 ms after an asynchronous checkpoint write began
    (the first or second write of that run), then resumed: the final parameters and every
    step's loss are those of the uninterrupted run, bit for bit, with one metric row per step."""
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    workdir = tmp_path / "run"
    every_update = {**TOKENIZER_ONLY, "checkpoint_every": 1}  # most moments are inside a write
    mid_write = 0
    for _ in range(3):
        proc = _start_run(workdir, every_update, compilation_cache)
        writes_seen, seen, skip = 0, set(), rng.randint(0, 1)
        while proc.poll() is None:
            new = set(_writes_in_progress(workdir)) - seen
            seen |= new
            if new and writes_seen == skip:
                time.sleep(rng.uniform(0, 0.03))
                proc.kill()  # SIGKILL: no cleanup of any kind
                break
            writes_seen += bool(new)
            time.sleep(0.002)
        proc.wait()
        mid_write += bool(_writes_in_progress(workdir))  # the write it was killed in never finished
        assert proc.returncode == -signal.SIGKILL, (seed, _stderr(workdir).read_text()[-3000:])
    proc = _start_run(workdir, every_update, compilation_cache)
    assert proc.wait(timeout=600) == 0, (seed, _stderr(workdir).read_text()[-3000:])
    for got, want in zip(_params(workdir, 6), _params(tokenizer_run, 6)):
        np.testing.assert_array_equal(got, want, err_msg=f"random seed {seed}")
    rows = read_metrics(workdir / "metrics_tokenizer.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 7)), seed
    want = {r["step"]: r["loss"] for r in read_metrics(tokenizer_run / "metrics_tokenizer.jsonl")}
    assert [r["loss"] for r in rows] == [want[s] for s in range(1, 7)], seed
    assert mid_write >= 1, f"no kill landed inside a checkpoint write (random seed {seed})"


def test_the_token_cache_is_rebuilt_when_what_made_it_changes(tmp_path, caplog):
    """The cache key as stage 2 makes it: a changed image count, normalisation or tokenizer
    rebuilds the cache with one line naming the change; the same key reuses it."""
    config = tiny_config()
    model = from_config.vqgan(config)
    params = jax.jit(experiment.tokenizer_init(config, None)[0])().params
    images = faces.faces_split("train", 8)
    path = tmp_path / "token_cache.npz"

    def load_or_build(config, params):
        """(ids, whether the images were encoded, the rebuild lines logged)."""
        caplog.clear()
        encoded = []
        shifts = config.transformer.cache_shifts
        ids = token_cache.load_or_build(
            path, token_cache.cache_key(config, params, flips=True, shifts=shifts, max_shift=4),
            model, params, lambda: encoded.append(True) or images[: config.data.num_train],
            tuple(config.data.mean), tuple(config.data.std), flips=True, shifts=shifts,
            max_shift=4)
        return ids, bool(encoded), [w for w in _warnings(caplog) if "rebuilding" in w]

    config.data.num_train = 8
    first, encoded, _ = load_or_build(config, params)
    assert encoded and first.shape[0] == 2 * 8  # the images and their mirror images
    again, encoded, logged = load_or_build(config, params)
    assert not encoded and not logged
    np.testing.assert_array_equal(again, first)

    config.data.num_train = 4
    fewer, encoded, logged = load_or_build(config, params)
    assert encoded and fewer.shape[0] == 2 * 4
    assert logged == [f"{path}: rebuilding the token cache: data.num_train changed"]

    config.transformer.cache_shifts = 2
    shifted, encoded, logged = load_or_build(config, params)
    assert encoded and shifted.shape[0] == 3 * 2 * 4  # and two shifted copies of each
    assert logged == [f"{path}: rebuilding the token cache: shifts changed"]
    np.testing.assert_array_equal(shifted[: 2 * 4], fewer)

    config.data.std = (0.25, 0.25, 0.25)
    _, encoded, logged = load_or_build(config, params)
    assert encoded and logged == [f"{path}: rebuilding the token cache: data.std changed"]

    path.write_bytes(path.read_bytes()[:100])  # a damaged cache (a partial copy) is rebuilt
    _, encoded, logged = load_or_build(config, params)
    assert encoded and logged == [f"{path}: rebuilding the token cache: (unreadable: BadZipFile) changed"]

    config.data.num_eval += 1  # a folder without val/ holds out one more of its images
    _, encoded, logged = load_or_build(config, params)
    assert encoded and logged == [f"{path}: rebuilding the token cache: data.num_eval changed"]

    retrained = jax.tree.map(lambda x: x + 1e-3, params)  # another tokenizer, same shapes
    _, encoded, logged = load_or_build(config, retrained)
    assert encoded and logged == [f"{path}: rebuilding the token cache: tokenizer_params_sha256 changed"]


def test_a_checkpoint_that_does_not_fit_the_state_is_an_error_not_a_fallback(tokenizer_run):
    """Another architecture's state (what a code or config change could ask for) is refused with
    the differing arrays named, and no step is taken for unreadable and set aside."""
    config = tiny_config(**{**TOKENIZER_ONLY, "vqgan.latent_dim": 16})
    _, abstract = experiment.tokenizer_init(config, None)
    ckpt = experiment.checkpoints(tokenizer_run, "tokenizer", config)
    with pytest.raises(checkpoint.CheckpointMismatchError,
                       match=r"tokenizer/6: the checkpoint does not fit the config \(.*"
                             r"codebook\.embedding: saved \(32, 8\), config \(32, 16\)"):
        ckpt.restore(abstract, set_aside=True)
    ckpt.close()
    assert _steps(tokenizer_run) == ["2", "4", "6"]
