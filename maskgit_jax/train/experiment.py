"""From a training config to the objects of each stage, and a workdir's layout.

workdir/
  config.json                        the config of the run (sample.py rebuilds the models from it)
  config_changes.jsonl               settings changed on resume, old and new (workdir_config.py)
  checkpoints/{tokenizer,transformer}/<step>/   orbax checkpoints (<step>.corrupt-<time>: an
                                     unreadable one a resumed run set aside)
  token_cache.npz                    the training set as token ids (stage 2 input)
  metrics_{stage}.jsonl, tensorboard/, samples/
"""

import json
from pathlib import Path

import jax
import ml_collections

from maskgit_jax.models import discriminator as disc_lib
from maskgit_jax.models import from_config
from maskgit_jax.train import optim, tokenizer_stage, transformer_stage
from maskgit_jax.train.checkpoint import Checkpoints, abstract_like

STAGES = ("tokenizer", "transformer")


def parse_stages(stages: str) -> list[str]:
    names = [s.strip() for s in stages.split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGES]
    if unknown or not names:
        raise ValueError(f"config.stages={stages!r}: use a comma-separated subset of {', '.join(STAGES)}")
    return names


def load_config(workdir: str | Path) -> ml_collections.ConfigDict:
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {workdir} a trained workdir (train.py --workdir)?")
    return ml_collections.ConfigDict(json.loads(path.read_text()))


def checkpoints(workdir: Path, stage: str, config) -> Checkpoints:
    return Checkpoints(Path(workdir) / "checkpoints" / stage, max_to_keep=config.keep_checkpoints)


# --- stage 1 -----------------------------------------------------------------------------------

def tokenizer_parts(config):
    """(model, discriminator, tx, disc_tx, loss options) of stage 1."""
    t = config.tokenizer
    model = from_config.vqgan(config)
    disc = disc_lib.PatchDiscriminator(t.disc_channels, t.disc_layers,
                                       dtype=from_config.compute_dtype(config.compute_dtype),
                                       param_dtype=from_config.param_dtype(config.compute_dtype))
    tx = optim.adamw(t.lr, t.warmup_steps, t.steps, t.weight_decay, t.b1, t.b2, t.grad_clip)
    disc_tx = optim.adamw(t.lr, t.warmup_steps, t.steps, t.weight_decay, t.b1, t.b2, t.grad_clip)
    opts = tokenizer_stage.TokenizerLoss(
        l1_weight=t.l1_weight, l2_weight=t.l2_weight, disc_weight=t.disc_weight,
        disc_start=t.disc_start, restart_dead_codes_every=t.restart_dead_codes_every,
        mean=tuple(config.data.mean), std=tuple(config.data.std))
    return model, disc, tx, disc_tx, opts


def tokenizer_init(config, mesh_sharding):
    """(init function of the stage-1 state, its abstract shape on ``mesh_sharding``)."""
    model, disc, tx, disc_tx, _ = tokenizer_parts(config)
    init = lambda: tokenizer_stage.init_state(jax.random.key(config.seed), model, disc, tx, disc_tx,
                                              config.data.image_size)
    return init, abstract_like(jax.eval_shape(init), mesh_sharding)


# --- stage 2 -----------------------------------------------------------------------------------

def transformer_parts(config):
    """(model, tx, loss options) of stage 2."""
    t = config.transformer
    model = from_config.transformer(config)
    self_condition = t.get("self_condition", 0.0)  # absent from configs saved before it existed
    if self_condition > 0 and not model.predicted_embedding:
        raise ValueError("config.transformer.self_condition > 0 needs "
                         "config.transformer_model.predicted_embedding=True (the flag it trains)")
    tx = optim.adamw(t.lr, t.warmup_steps, t.steps, t.weight_decay, t.b1, t.b2, t.grad_clip)
    opts = transformer_stage.MaskedTokenLoss(
        schedule=t.schedule, blob_prob=t.blob_prob, label_smoothing=t.label_smoothing,
        loss_on=t.loss_on, grad_accum=t.grad_accum, ema_decay=t.ema_decay,
        self_condition=self_condition)
    return model, tx, opts


def transformer_init(config, mesh_sharding):
    model, tx, opts = transformer_parts(config)
    rng = jax.random.fold_in(jax.random.key(config.seed), 2)
    init = lambda: transformer_stage.init_state(rng, model, tx, ema=opts.ema_decay > 0)
    return init, abstract_like(jax.eval_shape(init), mesh_sharding)


# --- trained parameters ------------------------------------------------------------------------

def restore_tokenizer(config, workdir: Path, sharding):
    """(step, params) of the newest readable stage-1 checkpoint."""
    ckpt = checkpoints(workdir, "tokenizer", config)
    if ckpt.latest_step() is None:
        raise FileNotFoundError(f"no tokenizer checkpoint in {ckpt.directory}: train stage 1 first "
                                "(--config.stages=tokenizer)")
    _, abstract = tokenizer_init(config, sharding)
    step, state = ckpt.restore(abstract)
    return step, state.params


def restore_transformer(config, workdir: Path, sharding, use_ema: bool = True):
    """(step, params) of the newest readable stage-2 checkpoint; the EMA parameters when there
    are some."""
    ckpt = checkpoints(workdir, "transformer", config)
    if ckpt.latest_step() is None:
        raise FileNotFoundError(f"no transformer checkpoint in {ckpt.directory}: train stage 2 first")
    _, abstract = transformer_init(config, sharding)
    step, state = ckpt.restore(abstract)
    return step, state.ema_params if use_ema and state.ema_params is not None else state.params
