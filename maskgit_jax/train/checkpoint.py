"""Orbax checkpoints of a train state: save every N steps, restore the latest into an abstract state.

Restoring needs no pickle: orbax reads array files into the shapes, dtypes and shardings of a
``jax.eval_shape`` abstract state built from the config.
"""

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpoints:
    """One stage's checkpoints under ``directory`` (e.g. workdir/checkpoints/transformer)."""

    def __init__(self, directory: str | Path, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        self.manager.save(step, args=ocp.args.StandardSave(state))

    def restore(self, abstract_state: Any, step: int | None = None) -> Any:
        """The state at ``step`` (default: latest) with the structure and shardings of ``abstract_state``."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))

    def wait_until_finished(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def abstract_like(state: Any, sharding: jax.sharding.Sharding) -> Any:
    """ShapeDtypeStructs of ``state`` (itself abstract or concrete) placed with ``sharding``."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)
