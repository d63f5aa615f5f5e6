"""Reading orbax checkpoint folders when their files may be damaged: shared by training (resume)
and by model loading (a training workdir read as a model), which must not import training code.

A step folder whose files are damaged (missing, cut short, undecodable: ``is_damage`` lists what
counts) is one ``UnreadableCheckpointError`` naming it; any other error while reading surfaces
unchanged. Callers fall back to the newest step that every process of the run could read, with one
warning line per skipped step (``newest_readable``, ``warn_skipped``), and orbax's own noise is
silenced while it reads (``quiet_orbax``).
"""

import contextlib
import gc
import json
import logging as std_logging
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

import jax
import numpy as np
from absl import logging

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


def root_cause(error: BaseException) -> BaseException:
    """The error that started it: orbax wraps TensorStore's (which names the file) in a bare
    ``Exception`` raised ``from`` it."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def unreadable(step_dir: Path, error: BaseException) -> UnreadableCheckpointError:
    """The one-line error of a step folder that failed to read with ``error``."""
    error = root_cause(error)
    first_line = (str(error).splitlines() or [""])[0]
    first_line = first_line if len(first_line) <= 120 else first_line[:117] + "..."
    failure = UnreadableCheckpointError(f"{step_dir}: unreadable checkpoint "
                                        f"({type(error).__name__}: {first_line})")
    failure.step_dir = step_dir
    return failure


# What a damaged step folder raises while it is read, and nothing else: the errors that no code
# change or retry would cure. Python's own for a file or folder that is missing or replaced, and
# metadata (JSON) that is cut short or not text.
DAMAGE_TYPES = (FileNotFoundError, NotADirectoryError, IsADirectoryError, EOFError,
                json.JSONDecodeError, UnicodeDecodeError)
# TensorStore raises a ValueError whose message starts with its status code. A missing file or
# key is NOT_FOUND, a data file shorter than its index says OUT_OF_RANGE, bytes that do not decode
# DATA_LOSS or FAILED_PRECONDITION ("ZSTD_decompressStream() failed"). FAILED_PRECONDITION also
# means "opened with other shapes or dtypes", but the arrays' layout is checked against the state
# before anything is read (CheckpointMismatchError). Every other code (PERMISSION_DENIED,
# UNAVAILABLE, RESOURCE_EXHAUSTED, INVALID_ARGUMENT, INTERNAL, ...) and every other error (out of
# memory, a bug) is not the step's fault: it surfaces unchanged, and no step is skipped for it.
DAMAGE_STATUS = ("NOT_FOUND", "OUT_OF_RANGE", "DATA_LOSS", "FAILED_PRECONDITION")


def is_damage(error: BaseException) -> bool:
    """Whether ``error``, raised while a checkpoint step folder was read, means that the folder's
    files are missing or damaged (decided by the error that started it: ``root_cause``)."""
    error = root_cause(error)
    if isinstance(error, DAMAGE_TYPES):
        return True
    return type(error) is ValueError and str(error).startswith(
        tuple(f"{code}: " for code in DAMAGE_STATUS))


@contextlib.contextmanager
def reading(step_dir: Path):
    """Inside, an error that means the step folder's files are damaged (``is_damage``) becomes
    ``UnreadableCheckpointError`` naming ``step_dir``; every other error passes unchanged."""
    try:
        yield
    except Exception as e:  # orbax and TensorStore raise many kinds: is_damage sorts them
        if not is_damage(e):
            raise
        raise unreadable(step_dir, e) from None


def process_local_reads():
    """Orbax options that let each process read a checkpoint on its own: without them orbax ends
    every read with a barrier of all processes, which a process whose read failed never reaches
    (``newest_readable`` makes the processes agree instead)."""
    import orbax.checkpoint as ocp
    me = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})


def _read_by_all(step: int, read_here: bool) -> bool:
    """Whether every process of the run read ``step`` (each says whether it did; all must be
    trying the same step)."""
    if jax.process_count() == 1:
        return read_here
    from jax.experimental import multihost_utils
    said = multihost_utils.process_allgather(np.array([step, read_here], dtype=np.int64))
    if not (said[:, 0] == step).all():
        raise RuntimeError(f"the processes of this run see different checkpoint steps: "
                           f"{sorted(set(said[:, 0].tolist()))}")
    return bool(said[:, 1].all())


def newest_readable(directory: Path, steps: list[int], read: Callable[[int], T],
                    ) -> tuple[int, T, list[UnreadableCheckpointError]]:
    """(step, read(step), skipped) for the newest of ``steps`` that ``read`` can read, with the
    failures of the newer steps for the caller to report.

    ``read`` raises ``UnreadableCheckpointError`` for a damaged step. In a multi-process run every
    process calls this with the same steps and they agree, step by step from the newest: the step
    is the newest one that every process read (a step that one process could not read is skipped
    by all; a process that read it reports it as unreadable by another). ``read`` must therefore
    not wait for the other processes (``process_local_reads``). No step readable by all: one
    ``UnreadableCheckpointError`` (for a single step, that step's own).
    """
    skipped = []
    for step in sorted(steps, reverse=True):
        try:
            value, failure = read(step), None
        except UnreadableCheckpointError as e:
            value, failure = None, e
        if _read_by_all(step, failure is None):
            return step, value, skipped
        if failure is None:
            failure = UnreadableCheckpointError(
                f"{directory / str(step)}: unreadable checkpoint (by another process of this run)")
            failure.step_dir = directory / str(step)
        skipped.append(failure)
    if len(skipped) == 1:  # one step tried (e.g. the one asked for): its own error
        raise skipped[0]
    reasons = "; ".join(str(e) for e in skipped)
    raise UnreadableCheckpointError(f"{directory}: no readable checkpoint ({reasons})")


def warn_skipped(failure: UnreadableCheckpointError, used_step: int, fate: str) -> None:
    """The one warning line of an unreadable step that ``used_step`` replaced."""
    logging.warning("%s; using step %d instead (%s)", failure, used_step, fate)
