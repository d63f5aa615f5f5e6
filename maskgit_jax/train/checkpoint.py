"""Orbax checkpoints of a train state: save every N steps, restore the newest readable one.

Restoring needs no pickle: orbax reads array files into the shapes, dtypes and shardings of a
``jax.eval_shape`` abstract state built from the config. A step folder whose files are damaged (a
truncated, missing or undecodable file) is skipped with one warning line, and the newest older step
that every process can read is used; a step whose arrays do not fit the config is an error, not a
fallback (every older step would not fit either).
"""

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from maskgit_jax.checkpoint_files import (  # noqa: F401 (UnreadableCheckpointError: part of this API)
    CheckpointMismatchError, UnreadableCheckpointError, newest_readable, process_local_reads,
    quiet_orbax, reading, warn_skipped)


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

    def read(self, step: int, abstract_state: Any) -> Any:
        """The state saved at ``step``, with the structure and shardings of ``abstract_state``:
        ``UnreadableCheckpointError`` when its files are damaged, ``CheckpointMismatchError`` when
        its arrays are not the state's. Each process reads on its own (no barrier)."""
        step_dir = self.directory / str(step)
        with reading(step_dir):  # a mismatch is not a read failure: it passes unchanged
            if not (step_dir / "default").is_dir():
                raise FileNotFoundError("no state folder (default/)")
            metadata = self.manager.item_metadata(step)
            if metadata is None:
                raise FileNotFoundError("no array metadata")
            difference = layout_difference(metadata, abstract_state)
            if difference is not None:
                raise CheckpointMismatchError(
                    f"{step_dir}: the checkpoint does not fit the config ({difference}); resume "
                    "with the config it was trained with or use a new workdir")
            reader = ocp.Checkpointer(ocp.StandardCheckpointHandler(),
                                      multiprocessing_options=process_local_reads())
            return reader.restore(step_dir / "default", args=ocp.args.StandardRestore(abstract_state))

    def restore(self, abstract_state: Any, set_aside: bool = False,
                fall_back: bool = True) -> tuple[int, Any]:
        """(step, state) of the newest checkpoint that every process can read, with the structure
        and shardings of ``abstract_state``; each newer unreadable step gets one warning line.
        ``fall_back=False``: the newest step or its ``UnreadableCheckpointError``.

        ``set_aside`` (a run resuming into this directory) renames each unreadable step folder to
        ``<step>.corrupt-<UTC time>``: it is kept for the user, and the run can save that step
        number again when it gets there. Process 0 renames, the others wait for it.
        """
        steps = sorted(self.manager.all_steps())
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        with quiet_orbax():
            step, state, failures = newest_readable(self.directory, steps if fall_back else steps[-1:],
                                                    lambda s: self.read(s, abstract_state))
        # Every process skipped the same steps (newest_readable agrees): all take this branch or none.
        if failures and set_aside:
            stamp = set_aside_stamp()
            kept = [failure.step_dir.with_name(f"{failure.step_dir.name}.corrupt-{stamp}")
                    for failure in failures]
            if jax.process_index() == 0:
                for failure, moved in zip(failures, kept):
                    failure.step_dir.rename(moved)
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


def set_aside_stamp() -> str:
    """The UTC time for the names of folders set aside, process 0's on every process."""
    now = int(multihost_utils.broadcast_one_to_all(np.int64(time.time())))
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def abstract_like(state: Any, sharding: jax.sharding.Sharding) -> Any:
    """ShapeDtypeStructs of ``state`` (itself abstract or concrete) placed with ``sharding``."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)
