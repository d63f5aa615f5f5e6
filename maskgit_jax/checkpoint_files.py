"""Reading orbax checkpoint folders when their files may be damaged: shared by training (resume)
and by model loading (a training workdir read as a model), which must not import training code.

A step folder whose files cannot be read (a truncated or missing data file, a disk error) is one
``UnreadableCheckpointError`` naming it; callers fall back to the newest readable step with one
warning line (``newest_readable``, ``warn_skipped``), and orbax's own noise is silenced while it
reads (``quiet_orbax``).
"""

import contextlib
import gc
import logging as std_logging
import sys
import time
from pathlib import Path
from typing import Callable, TypeVar

import jax
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


@contextlib.contextmanager
def reading(step_dir: Path):
    """Inside, an exception that means the step folder's files are bad (``is_read_failure``) becomes
    ``UnreadableCheckpointError`` naming ``step_dir``; others pass unchanged."""
    try:
        yield
    except Exception as e:  # orbax and TensorStore raise many kinds
        if not is_read_failure(e):
            raise
        raise unreadable(step_dir, e) from None


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
