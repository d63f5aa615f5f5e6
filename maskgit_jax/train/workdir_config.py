"""A workdir's config.json on resume: a changed model is refused before anything is written, other
changes are allowed and recorded.

The checkpoints of a stage are the parameters of one architecture, made from tokens of one image
size and normalisation; a resumed run whose config describes another model would fail in orbax
(or, for the normalisation, silently learn something else) and leave a config.json that no longer
matches the checkpoints. Everything else (steps, learning rates, batch sizes, log_every,
checkpoint_every, sample_every, the data source and image count, the seed, dropout, compute_dtype,
stages, the sample section, the EMA's decay) may change between runs: the new config.json says
what the run now does, and ``config_changes.jsonl`` keeps each change's old and new values.
"""

import json
import time
from pathlib import Path
from typing import Any

import ml_collections
from absl import logging

from maskgit_jax import model_files

CONFIG_FILE = "config.json"
CHANGES_FILE = "config_changes.jsonl"

# The fields that make a stage's checkpoints what they are (dotted prefixes of the flat config).
_TOKENS = ("vqgan.", "data.image_size", "data.mean.", "data.std.")
MODEL_FIELDS = {
    "tokenizer": _TOKENS + ("tokenizer.disc_channels", "tokenizer.disc_layers"),
    "transformer": _TOKENS + ("transformer_model.", "transformer.ema_decay > 0"),
}
NOT_MODEL = ("transformer_model.dropout",)  # a training setting kept next to the architecture


def flat(values: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.0": value} of a JSON-like nest of dicts and lists, with the derived fields that
    MODEL_FIELDS names (whether the transformer keeps an EMA: its state has the extra copy)."""
    out = {}
    if isinstance(values, dict):
        for key, value in values.items():
            out.update(flat(value, f"{prefix}{key}."))
    elif isinstance(values, (list, tuple)):
        for index, value in enumerate(values):
            out.update(flat(value, f"{prefix}{index}."))
    else:
        out[prefix[:-1]] = values
    if not prefix and isinstance(out.get("transformer.ema_decay"), (int, float)):
        out["transformer.ema_decay > 0"] = out["transformer.ema_decay"] > 0
    return out


def _is_model_field(key: str, stage: str) -> bool:
    return key not in NOT_MODEL and any(
        key == field or (field.endswith(".") and key.startswith(field))
        for field in MODEL_FIELDS[stage])


def changes_on_resume(config: ml_collections.ConfigDict, workdir: Path) -> dict[str, list]:
    """{field: [saved, new]} of the settings ``config`` changes against ``workdir/config.json``
    ({} for a new workdir). A changed model field of a stage that has checkpoints is a
    ``ValueError`` naming the fields; nothing is written either way.

    Fields that the saved config lacks (written by an older version) are recorded, not refused:
    the value they were trained with is unknown.
    """
    path = workdir / CONFIG_FILE
    if not path.exists():
        return {}
    if model_files.is_exported(workdir):
        raise ValueError(f"{workdir}: holds an exported model ({path} is its config), not a training "
                         "workdir; choose another workdir")
    saved = flat(model_files.training_config(workdir).to_dict())
    new = flat(json.loads(config.to_json_best_effort()))
    changes = {key: [saved.get(key), new.get(key)] for key in sorted(saved.keys() | new.keys())
               if saved.get(key) != new.get(key)}
    trained = [stage for stage in MODEL_FIELDS if model_files.checkpoint_steps(workdir, stage)]
    refused = [key for key in changes if key in saved and key in new
               and any(_is_model_field(key, stage) for stage in trained)]
    if refused:
        listed = ", ".join(f"{key} {changes[key][0]!r} -> {changes[key][1]!r}" for key in refused)
        raise ValueError(f"{workdir}: its {'/'.join(trained)} checkpoints were trained with another "
                         f"model ({listed}); resume with the config in {path} or use a new workdir")
    return changes


def save(config: ml_collections.ConfigDict, workdir: Path, changes: dict[str, list]) -> None:
    """Writes ``workdir/config.json`` (atomically) and appends ``changes`` to the record, with one
    log line naming them."""
    workdir.mkdir(parents=True, exist_ok=True)
    if changes:
        logging.warning("%s: resuming with changed settings: %s", workdir, ", ".join(
            f"{key} {old!r} -> {new!r}" for key, (old, new) in changes.items()))
        with (workdir / CHANGES_FILE).open("a") as f:
            f.write(json.dumps({"time": time.time(), "changes": changes}) + "\n")
    tmp = workdir / (CONFIG_FILE + ".tmp")
    tmp.write_text(config.to_json_best_effort(indent=2))
    tmp.replace(workdir / CONFIG_FILE)
