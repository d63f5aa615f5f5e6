"""A trained model on disk: the exported folder, and the parameters inside a training workdir.

Exported model (what ``MaskGIT.save_pretrained`` writes, ``train.py`` leaves in WORKDIR/model/, and
``python -m maskgit_jax.export`` makes from any checkpoint):

    config.json      ``model_config.ModelConfig`` with its format name and version, and the
                     sha256 of params.msgpack
    params.msgpack   {"tokenizer": {...}, "transformer": {...}}: float32 arrays in flax's msgpack
                     encoding; reading it runs no code from the file (no pickle)

Nothing of the optimizer is stored. A training workdir (train.py --workdir) is read as parameters
only: its config.json is a training config, and only the ``params`` (or ``ema_params``) items of
its orbax checkpoints are restored, without building any optimizer or train state.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

import jax
import msgpack
import numpy as np
from flax import serialization
from ml_collections import ConfigDict

from maskgit_jax import model_config as mc
from maskgit_jax.checkpoint_files import (newest_readable, process_local_reads, quiet_orbax, reading,
                                          warn_skipped)

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
# config.json records the parameter file's sha256: msgpack has no checksum, and a flipped bit in a
# weight would otherwise load silently.
PARAMS_DIGEST = "params_sha256"
STAGES = ("tokenizer", "transformer")
INITIAL_MODEL = "initial_model"  # a workdir's copy of the model its config.init_from started from


class ModelFileError(ValueError):
    """A model folder or workdir that cannot be loaded; the message names the file."""


def is_exported(folder: Path) -> bool:
    """Whether ``folder`` holds an exported model's config (its parameter file may still be missing)."""
    try:
        return json.loads((folder / CONFIG_FILE).read_text()).get("format") == mc.FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def is_workdir(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() and (folder / "checkpoints").is_dir()


# --- exported folders --------------------------------------------------------------------------

def save(folder: str | os.PathLike, config: mc.ModelConfig, params: dict,
         overwrite: bool = False) -> Path:
    """Writes the exported model; each file goes to a temporary name first, so a killed save never
    leaves a half-written file under the real name. Refuses to replace a model unless ``overwrite``."""
    folder = Path(folder)
    check_destination(folder, overwrite)
    expected = {"tokenizer"} | ({"transformer"} if config.transformer is not None else set())
    if set(params) != expected:
        raise ValueError(f"params must have the parts {sorted(expected)}, got {sorted(params)}")
    folder.mkdir(parents=True, exist_ok=True)
    host = jax.tree.map(lambda x: np.asarray(x, np.float32), jax.device_get(params))
    data = serialization.msgpack_serialize(host)
    _write_atomically(folder / PARAMS_FILE, data)
    values = {**config.to_json_dict(), PARAMS_DIGEST: hashlib.sha256(data).hexdigest()}
    _write_atomically(folder / CONFIG_FILE, (json.dumps(values, indent=2) + "\n").encode())
    return folder


def check_destination(folder: Path, overwrite: bool = False) -> None:
    """Whether a model may be saved to ``folder``: a new folder, or one without a model's files, or
    (with ``overwrite``) one holding an exported model; never over a file, a workdir or a foreign
    config.json / params.msgpack."""
    if folder.exists() and not folder.is_dir():
        raise ModelFileError(f"{folder}: exists and is not a folder")
    exported = is_exported(folder)
    if exported and not overwrite:
        raise ModelFileError(f"{folder}: already holds a model; choose another folder, or pass "
                             "--overwrite to replace it")
    if not exported:
        for name in (CONFIG_FILE, PARAMS_FILE):
            if (folder / name).exists():
                raise ModelFileError(f"{folder / name}: is not an exported model's (a training "
                                     "workdir, or another program's file?); choose another folder")
        if is_workdir(folder):
            raise ModelFileError(f"{folder}: is a training workdir; choose another folder")


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _config_and_digest(folder: Path) -> tuple[mc.ModelConfig, Optional[str]]:
    """The model config of ``folder`` and the parameter file's sha256 it records (None: a model
    saved before the digest was recorded)."""
    path = folder / CONFIG_FILE
    values = _read_json(path)
    digest = values.pop(PARAMS_DIGEST, None)
    if digest is not None and not isinstance(digest, str):
        raise ModelFileError(f"{path}: {PARAMS_DIGEST} must be a hex string")
    return mc.ModelConfig.from_json_dict(values, str(path)), digest


def read_config(folder: Path) -> mc.ModelConfig:
    return _config_and_digest(folder)[0]


def load(folder: str | os.PathLike) -> tuple[mc.ModelConfig, dict]:
    """(config, params as NumPy arrays) of an exported model folder; the parameter file must have
    the sha256 that config.json records."""
    folder = Path(folder)
    config, digest = _config_and_digest(folder)
    path = folder / PARAMS_FILE
    try:
        data = path.read_bytes()
        if digest is not None and hashlib.sha256(data).hexdigest() != digest:
            raise ModelFileError(f"{path}: its sha256 is not the one {CONFIG_FILE} records (a damaged "
                                 "or replaced file)")
        params = serialization.msgpack_restore(data)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: not found") from None
    except ModelFileError:
        raise
    except (msgpack.exceptions.ExtraData, msgpack.exceptions.UnpackException, ValueError,
            TypeError) as e:
        raise ModelFileError(f"{path}: not a readable parameter file ({type(e).__name__}: {e})") from None
    if not isinstance(params, dict):
        raise ModelFileError(f"{path}: holds no parameter tree")
    return config, params


# --- training workdirs -------------------------------------------------------------------------

def training_config(workdir: Path) -> ConfigDict:
    return ConfigDict(_read_json(workdir / CONFIG_FILE))


def checkpoint_steps(workdir: Path, stage: str) -> list[int]:
    """The saved steps of one stage's checkpoints, oldest first (none: [])."""
    import orbax.checkpoint as ocp  # only workdirs need it: loading an exported model does not
    directory = (workdir / "checkpoints" / stage).absolute()
    if not directory.is_dir():
        return []
    with quiet_orbax():
        manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(
            read_only=True, create=False))
        steps = sorted(manager.all_steps())
        manager.close()
    return steps


def read_workdir(workdir: str | os.PathLike, step: Optional[int] = None,
                 use_ema: bool = True) -> tuple[mc.ModelConfig, dict]:
    """(config, params) of a training workdir: its latest tokenizer checkpoint and the transformer
    checkpoint at ``step`` (default: the latest; the EMA parameters where the run kept them).
    Without ``step``, a latest checkpoint that cannot be read is skipped for the newest readable
    one, with one warning line; it stays on disk. Not the tokenizer's when there is a transformer
    (which learnt the codes of the latest tokenizer): that is an error.

    A workdir with no transformer checkpoint gives the tokenizer alone (``step`` then picks the
    tokenizer's checkpoint); one with no tokenizer checkpoint takes the tokenizer of the model it
    started from (WORKDIR/initial_model, e.g. the course's VQGAN). No optimizer state is read.
    """
    workdir = Path(workdir)
    if not (workdir / CONFIG_FILE).is_file():
        raise ModelFileError(f"{workdir / CONFIG_FILE} not found: is {workdir} a trained workdir "
                             "(train.py --workdir) or an exported model?")
    config = training_config(workdir)
    if "format" in config:  # an exported model's config.json after all, one that cannot be read
        read_config(workdir)
    steps = {stage: checkpoint_steps(workdir, stage) for stage in STAGES}
    initial = workdir / INITIAL_MODEL
    if not steps["tokenizer"] and not is_exported(initial):
        raise ModelFileError(f"no tokenizer checkpoint in {workdir / 'checkpoints' / 'tokenizer'}: "
                             "train stage 1 first (--config.stages=tokenizer)")
    last_stage = "transformer" if steps["transformer"] or not steps["tokenizer"] else "tokenizer"
    if step is not None and step not in steps[last_stage]:
        raise ModelFileError(f"{workdir}: no {last_stage} checkpoint at step {step}; "
                             f"saved steps: {steps[last_stage]}")
    params, about = {}, {"source": str(workdir)}
    if not steps["tokenizer"]:
        params["tokenizer"] = load(initial)[1]["tokenizer"]
        about["tokenizer_step"] = f"{INITIAL_MODEL} (config.init_from={config.get('init_from')})"
    for stage, found in steps.items():
        if not found:
            continue
        directory = workdir / "checkpoints" / stage
        read = lambda at: _restore_params(directory / str(at), use_ema)
        if step is not None and stage == last_stage:
            candidates = [step]  # the step asked for, or its error
        elif stage == "tokenizer" and steps["transformer"]:
            # The transformer learnt the latest tokenizer's codes: an older one would decode garbage.
            candidates = found[-1:]
        else:
            candidates = found
        # Every process of a run reads (the export at the end of training): they agree on the step.
        at, (params[stage], ema), failures = newest_readable(directory, candidates, read)
        for failure in failures:
            warn_skipped(failure, at, "the folder is left as it is")
        about[f"{stage}_step"] = at
        if stage == "transformer":
            about["ema"] = ema
    model = mc.from_training_config(config, with_transformer="transformer" in params, about=about)
    return model, params


def _restore_params(step_dir: Path, use_ema: bool) -> tuple[Any, bool]:
    """The ``params`` (or ``ema_params``) item of one orbax train-state checkpoint, as NumPy arrays,
    and whether they are the EMA ones; ``UnreadableCheckpointError`` when its files are bad.

    Each process reads on its own (``newest_readable`` makes the processes of a run agree).
    """
    import orbax.checkpoint as ocp
    path = (step_dir / "default").absolute()
    checkpointer = ocp.Checkpointer(ocp.PyTreeCheckpointHandler(),
                                    multiprocessing_options=process_local_reads())
    with reading(step_dir), quiet_orbax():
        tree = checkpointer.metadata(path).item_metadata
        tree = getattr(tree, "tree", tree)
        if tree is None:
            raise FileNotFoundError("no array metadata")
        ema = use_ema and tree.get("ema_params") is not None
        name = "ema_params" if ema else "params"
        wanted = {name: tree[name]}
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), wanted)
        restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(
            item=wanted, restore_args=restore_args, partial_restore=True))
    return restored[name], ema


def _read_json(path: Path) -> dict:
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path}: not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(values, dict):
        raise ModelFileError(f"{path}: expected a JSON object")
    return values
