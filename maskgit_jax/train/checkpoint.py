"""Orbax checkpoints of a train state: save every N steps, restore the newest readable one.

Restoring needs no pickle: orbax reads array files into the shapes, dtypes and shardings of a
``jax.eval_shape`` abstract state built from the config. A step folder whose files cannot be read
(a truncated or missing data file, a disk error) is skipped with one warning line, and the next
older step is used; a step whose arrays do not fit the config is an error, not a fallback (every
older step would not fit either).
"""

import contextlib
import gc
import logging as std_logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

T = TypeVar("T")


class UnreadableCheckpointError(OSError):
    """A checkpoint step folder (or every one of a stage) whose files cannot be read; ``step_dir``
    is the folder (None for a whole stage)."""

    step_dir: Path | None = None


class CheckpointMismatchError(ValueError):
    """A readable checkpoint whose arrays are not those of the state the config describes."""


@contextlib.contextmanager
def quiet_orbax():
    """Only our one line about a bad step, not orbax's noise, while it reads a checkpoint.

    Orbax warns about read-only managers and metadata it does not need on every read. When one
    array fails to read, orbax closes its event loop with the sibling reads still in flight; as
    TensorStore finishes them they fail against the closed loop, and Python prints each as
    "Task exception was never retrieved" or "Exception ignored in ..." with a traceback: hundreds
    of lines for one truncated file. Those reports are silenced until the stragglers are done (a
    moment after a failure: local reads finish in milliseconds); the error itself still raises.
    """
    level = logging.get_verbosity()
    asyncio_logger = std_logging.getLogger("asyncio")
    hook, asyncio_disabled = sys.unraisablehook, asyncio_logger.disabled
    silenced = []
    logging.set_verbosity(logging.ERROR)
    asyncio_logger.disabled = True
    sys.unraisablehook = lambda report: silenced.append(type(report.exc_value))  # no references
    try:
        yield
    finally:
        gc.collect()
        if silenced:  # a read failed: let its in-flight siblings finish and report, silenced
            time.sleep(0.5)
            gc.collect()
        sys.unraisablehook, asyncio_logger.disabled = hook, asyncio_disabled
        logging.set_verbosity(level)


def unreadable(step_dir: Path, error: BaseException) -> UnreadableCheckpointError:
    """The one-line error of a step folder that failed to read with ``error``."""
    while error.__cause__ is not None:  # orbax wraps TensorStore's error (which names the file)
        error = error.__cause__
    first_line = (str(error).splitlines() or [""])[0]
    first_line = first_line if len(first_line) <= 120 else first_line[:117] + "..."
    failure = UnreadableCheckpointError(f"{step_dir}: unreadable checkpoint "
                                        f"({type(error).__name__}: {first_line})")
    failure.step_dir = step_dir
    return failure


def is_read_failure(error: Exception) -> bool:
    """Whether ``error``, raised while orbax read a checkpoint, means its files are bad.

    TensorStore reports a truncated or missing chunk as a bare ``Exception``, so the test is by
    exclusion: device errors (out of memory) and programming errors are not the files' fault.
    """
    return not isinstance(error, (jax.errors.JaxRuntimeError, MemoryError, TypeError,
                                  AttributeError, NameError, CheckpointMismatchError))


def newest_readable(directory: Path, steps: list[int], read: Callable[[int], T],
                    ) -> tuple[int, T, list[UnreadableCheckpointError]]:
    """(step, read(step), failures) for the newest of ``steps`` that ``read`` can read.

    ``read`` raises ``UnreadableCheckpointError`` for a bad step; the failures of the newer steps
    are returned for the caller to report. No readable step: one ``UnreadableCheckpointError``.
    """
    failures = []
    for step in sorted(steps, reverse=True):
        try:
            return step, read(step), failures
        except UnreadableCheckpointError as e:
            failures.append(e)
    reasons = "; ".join(str(e) for e in failures)
    raise UnreadableCheckpointError(f"{directory}: no readable checkpoint ({reasons})")


def warn_skipped(failure: UnreadableCheckpointError, used_step: int, fate: str) -> None:
    """The one warning line of an unreadable step that ``used_step`` replaced."""
    logging.warning("%s; using step %d instead (%s)", failure, used_step, fate)


def _flat_layout(tree: Any) -> dict[tuple[str, ...], tuple[tuple[int, ...], str]]:
    """{path: (shape, dtype)} of a state or of orbax's metadata of one, with the same paths for
    both (orbax stores a dataclass's fields and tuples as dict keys and lists)."""
    def name(key):
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                return str(getattr(key, attr))
        return str(key)
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {tuple(name(k) for k in path): (tuple(leaf.shape), str(leaf.dtype))
            for path, leaf in leaves}


def layout_difference(saved: Any, expected: Any) -> str | None:
    """None when ``saved`` (orbax metadata) has the arrays of ``expected``, else the first
    differences in words."""
    have, want = _flat_layout(saved), _flat_layout(expected)
    if have == want:
        return None
    notes = [f"{'.'.join(p)}: saved {have[p][0]}, config {want[p][0]}"
             for p in sorted(have.keys() & want.keys()) if have[p] != want[p]]
    notes += [f"{'.'.join(p)}: only in the checkpoint" for p in sorted(have.keys() - want.keys())]
    notes += [f"{'.'.join(p)}: only in the config's state" for p in sorted(want.keys() - have.keys())]
    more = f" and {len(notes) - 3} more" if len(notes) > 3 else ""
    return "; ".join(notes[:3]) + more


class Checkpoints:
    """One stage's checkpoints under ``directory`` (e.g. workdir/checkpoints/transformer)."""

    def __init__(self, directory: str | Path, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory, item_handlers=ocp.StandardCheckpointHandler(),
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        self.manager.save(step, args=ocp.args.StandardSave(state))

    def _read(self, step: int, abstract_state: Any) -> Any:
        step_dir = self.directory / str(step)
        try:
            metadata = self.manager.item_metadata(step)
        except Exception as e:  # orbax and TensorStore raise many kinds
            if not is_read_failure(e):
                raise
            raise unreadable(step_dir, e) from None
        if metadata is None:
            raise unreadable(step_dir, FileNotFoundError("no array metadata"))
        difference = layout_difference(metadata, abstract_state)
        if difference is not None:
            raise CheckpointMismatchError(
                f"{step_dir}: the checkpoint does not fit the config ({difference}); resume with "
                "the config it was trained with or use a new workdir")
        try:
            return self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
        except Exception as e:  # see is_read_failure
            if not is_read_failure(e):
                raise
            raise unreadable(step_dir, e) from None

    def restore(self, abstract_state: Any, set_aside: bool = False) -> tuple[int, Any]:
        """(step, state) of the newest readable checkpoint, with the structure and shardings of
        ``abstract_state``; each newer unreadable step gets one warning line.

        ``set_aside`` (a run resuming into this directory) renames each unreadable step folder to
        ``<step>.corrupt-<UTC time>``: it is kept for the user, and the run can save that step
        number again when it gets there.
        """
        steps = self.manager.all_steps()
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        with quiet_orbax():
            step, state, failures = newest_readable(self.directory, steps,
                                                    lambda s: self._read(s, abstract_state))
        if failures and set_aside:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            multihost_utils.sync_global_devices("checkpoints: read before setting aside")
            kept = []
            for failure in failures:
                kept.append(failure.step_dir.with_name(f"{failure.step_dir.name}.corrupt-{stamp}"))
                if jax.process_index() == 0:
                    failure.step_dir.rename(kept[-1])
            multihost_utils.sync_global_devices("checkpoints: set aside")
            self.manager.reload()
        else:
            kept = [None] * len(failures)
        for failure, moved in zip(failures, kept):
            warn_skipped(failure, step, f"moved to {moved.name}, not deleted" if moved
                         else "the folder is left as it is")
        return step, state

    def wait_until_finished(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_like(state: Any, sharding: jax.sharding.Sharding) -> Any:
    """ShapeDtypeStructs of ``state`` (itself abstract or concrete) placed with ``sharding``."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)
