"""Which errors while reading a checkpoint step mean "its files are damaged" (skip it for an older
step) and which must surface unchanged (a bug, out of memory, no permission, a flaky disk)."""

import os
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from maskgit_jax import checkpoint_files
from maskgit_jax.train import checkpoint

STATE = {"kernel": jnp.arange(64 * 64, dtype=jnp.float32).reshape(64, 64), "bias": jnp.ones(8)}
ABSTRACT = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), STATE)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A checkpoint folder with steps 1 and 2 of STATE (step 2 with every value + 1)."""
    directory = tmp_path_factory.mktemp("ckpt") / "stage"
    ckpt = checkpoint.Checkpoints(directory)
    ckpt.save(1, STATE)
    ckpt.save(2, jax.tree.map(lambda x: x + 1, STATE))
    ckpt.close()
    return directory


def _largest_data_file(step_dir: Path) -> Path:
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
    return max(files, key=lambda p: p.stat().st_size)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _zero(path: Path) -> None:
    """The same size, every byte 0 (a disk that lost the data, not the length)."""
    path.write_bytes(bytes(path.stat().st_size))


# Damage done to step 2: (what, how, the cause named in the error).
DAMAGE = [
    ("data file cut short", lambda d: os.truncate(_largest_data_file(d), 100), "OUT_OF_RANGE"),
    ("data file zeroed", lambda d: _zero(_largest_data_file(d)), "FAILED_PRECONDITION"),
    ("array files deleted", lambda d: shutil.rmtree(d / "default" / "ocdbt.process_0"),
     "FAILED_PRECONDITION"),
    ("index deleted", lambda d: (d / "default" / "manifest.ocdbt").unlink(), "NOT_FOUND"),
    ("index cut short", lambda d: os.truncate(d / "default" / "manifest.ocdbt", 10), "DATA_LOSS"),
    ("metadata deleted", lambda d: (d / "default" / "_METADATA").unlink(), "FileNotFoundError"),
    ("metadata not JSON", lambda d: _write(d / "default" / "_METADATA", b"{x"), "JSONDecodeError"),
    ("metadata not text", lambda d: _write(d / "default" / "_METADATA", b"\xff\xfe"),
     "UnicodeDecodeError"),
    ("state folder deleted", lambda d: shutil.rmtree(d / "default"), "FileNotFoundError"),
]


@pytest.mark.parametrize("what,damage,cause", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_step_is_unreadable_and_the_older_one_is_used(saved, tmp_path, what, damage,
                                                                cause):
    directory = tmp_path / "stage"
    shutil.copytree(saved, directory)
    damage(directory / "2")
    ckpt = checkpoint.Checkpoints(directory)
    with checkpoint.quiet_orbax(), pytest.raises(
            checkpoint.UnreadableCheckpointError,
            match=f"^{directory}/2: unreadable checkpoint \\((ValueError: )?{cause}"):
        ckpt.read(2, ABSTRACT)
    step, state = ckpt.restore(ABSTRACT)
    ckpt.close()
    assert step == 1
    np.testing.assert_array_equal(state["kernel"], STATE["kernel"])


def _orbax_wrapped(error: BaseException) -> Exception:
    """What orbax raises when reading an array fails: a bare Exception raised from the error."""
    try:
        raise Exception("Encountered error while reading array index") from error
    except Exception as wrapped:
        return wrapped


# Errors that are not the files' fault: a retry, more memory, a permission or a code change cures them.
NOT_DAMAGE = [
    ValueError("PERMISSION_DENIED: Error reading local file"),
    ValueError("UNAVAILABLE: Error reading local file"),
    ValueError("RESOURCE_EXHAUSTED: out of memory"),
    ValueError("INVALID_ARGUMENT: Error opening \"zarr\" driver"),
    ValueError("the sharding does not match"),
    PermissionError(13, "Permission denied"),
    OSError(5, "Input/output error"),
    MemoryError(),
    TypeError("restore() got an unexpected keyword argument"),
    KeyError("params"),
    RuntimeError("INTERNAL: something"),
]


@pytest.mark.parametrize("error", NOT_DAMAGE + [_orbax_wrapped(e) for e in NOT_DAMAGE[:4]], ids=repr)
def test_other_errors_surface_unchanged_and_no_step_is_skipped(saved, tmp_path, monkeypatch, error):
    directory = tmp_path / "stage"
    shutil.copytree(saved, directory)

    def fail(*args, **kwargs):
        raise error
    monkeypatch.setattr(ocp.Checkpointer, "restore", fail)
    ckpt = checkpoint.Checkpoints(directory)
    with pytest.raises(type(error)) as raised:
        ckpt.restore(ABSTRACT, set_aside=True)
    ckpt.close()
    assert raised.value is error
    assert sorted(p.name for p in directory.iterdir()) == ["1", "2"]


@pytest.mark.parametrize("error,damage", [
    (ValueError("NOT_FOUND: Error reading \"a/.zarray\""), True),
    (_orbax_wrapped(ValueError("DATA_LOSS: Error decoding")), True),
    (_orbax_wrapped(FileNotFoundError("gone")), True),
    (ValueError("not NOT_FOUND: a message that only mentions a code"), False),
    (_orbax_wrapped(MemoryError()), False),
    (Exception("NOT_FOUND: a bare Exception is orbax's wrapper, not TensorStore's error"), False),
], ids=repr)
def test_damage_is_decided_by_the_error_that_started_it(error, damage):
    assert checkpoint_files.is_damage(error) is damage
