"""Which tokenizer checkpoint a run may resume stage 1 from or train stage 2 on.

The transformer learns the codes of one tokenizer: while the workdir holds transformer checkpoints,
they were trained on its newest tokenizer step, and an older step would give other codes for the
same images. So an unreadable newest tokenizer step then falls back to no older one: it is one
error naming it, unless the run asks for ``restart_transformer`` (train.py
``--on_unreadable_tokenizer=restart_transformer``), which sets the transformer's checkpoints,
metric rows and TensorBoard events aside (renamed ``<name>.restarted-<UTC time>``, not deleted) and
trains stage 2 again from step 0 on the newest tokenizer step that can be read.
"""

from pathlib import Path
from typing import Any

import jax
from absl import logging
from jax.experimental import multihost_utils

from maskgit_jax import model_files
from maskgit_jax.train.checkpoint import Checkpoints, UnreadableCheckpointError, set_aside_stamp

# What a run chooses when the newest tokenizer step cannot be read under a transformer.
ON_UNREADABLE = ("stop", "restart_transformer")


def check_choice(on_unreadable: str) -> None:
    if on_unreadable not in ON_UNREADABLE:
        raise ValueError(f"on_unreadable_tokenizer={on_unreadable!r}: expected one of "
                         f"{', '.join(ON_UNREADABLE)}")


def restore(ckpt: Checkpoints, abstract_state: Any, workdir: Path, on_unreadable: str = "stop",
            ) -> tuple[int, Any]:
    """(step, state) of the tokenizer checkpoints ``ckpt`` of ``workdir`` for a training run: the
    newest step every process reads, newer unreadable ones set aside; under transformer
    checkpoints only the newest step, else ``on_unreadable`` decides (see the module docstring)."""
    transformer = workdir / "checkpoints" / "transformer"
    if model_files.checkpoint_steps(workdir, "transformer"):
        try:
            return ckpt.restore(abstract_state, set_aside=True, fall_back=False)
        except UnreadableCheckpointError as e:
            if on_unreadable == "stop":
                raise UnreadableCheckpointError(
                    f"{e}; the transformer checkpoints in {transformer} learnt the codes of this "
                    "tokenizer step, so no older step can stand in for it: put its files back, or "
                    "resume with --on_unreadable_tokenizer=restart_transformer to set the "
                    "transformer checkpoints aside and train stage 2 again") from None
        _set_transformer_aside(workdir)
    return ckpt.restore(abstract_state, set_aside=True)


def _set_transformer_aside(workdir: Path) -> None:
    """Renames stage 2's checkpoints, metric rows and TensorBoard events to
    ``<name>.restarted-<UTC time>`` (process 0; the others wait): stage 2 starts again at step 0."""
    stamp = set_aside_stamp()
    paths = [workdir / "checkpoints" / "transformer", workdir / "metrics_transformer.jsonl",
             workdir / "tensorboard" / "transformer"]
    paths = [p for p in paths if p.exists()]
    moved = [p.with_name(f"{p.stem}.restarted-{stamp}{p.suffix}") for p in paths]
    multihost_utils.sync_global_devices("tokenizer_checkpoint: all have looked")
    if jax.process_index() == 0:
        for path, target in zip(paths, moved):
            path.rename(target)
    multihost_utils.sync_global_devices("tokenizer_checkpoint: transformer set aside")
    logging.warning("%s: stage 2 starts again from step 0 on the newest readable tokenizer step; "
                    "its earlier checkpoints, metrics and events are kept as %s",
                    workdir, ", ".join(p.name for p in moved))
