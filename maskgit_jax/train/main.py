"""train_and_evaluate(config, workdir): the stages a config asks for, each resumable, then the export.

Killed at any moment, a run restarts from its last checkpoint with the same data order and RNG
stream (both derive from the seed and the step number), so it continues as if never stopped.
``config.init_from`` (an exported model or a shipped name) starts the stages from its parameters:
its architecture replaces the config's, its tokenizer serves stage 2 when the workdir has none (the
course's VQGAN.pt converted with convert_lab), its transformer is fine-tuned. When stage 2 ends the
model is exported to WORKDIR/model/.
"""

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax import inpaint, mesh as mesh_lib, model_config, model_files
from maskgit_jax.data import batches, faces, sources
from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.models import from_config
from maskgit_jax.pipeline import MaskGIT
from maskgit_jax.train import experiment, loop, token_cache, tokenizer_checkpoint, workdir_config
from maskgit_jax.train import tokenizer_stage, transformer_stage
from maskgit_jax.train.metric_writer import MetricWriter
from maskgit_jax.visualize import image_grid


def _train_images(config) -> np.ndarray:
    d = config.data
    return sources.load_images(d.source, d.train_split, d.num_train or None, d.image_size, config.seed,
                               held_out=d.num_eval)


def _eval_set(config):
    """The held-out images with brush masks, for the sample grids and the validation loss:
    (images uint8, known bool); never among the training images."""
    d = config.data
    images = sources.load_held_out(d.source, d.train_split, d.num_eval, d.image_size, config.seed)
    return images, faces.brush_masks(len(images), config.seed, d.image_size)


def _start(stage: str, config, workdir: Path, init_and_abstract, mesh, batch_size: int,
           initial_params=None, on_unreadable_tokenizer: str = "stop"):
    """(checkpoints, state, step): the newest readable checkpoint's state (unreadable newer ones
    are set aside; the tokenizer's: see tokenizer_checkpoint), or a fresh one at step 0 (with
    ``initial_params``, when given, as its parameters)."""
    init, abstract = init_and_abstract
    mesh_lib.check_batch_size(batch_size, mesh, f"config.{stage}.batch_size")
    ckpt = experiment.checkpoints(workdir, stage, config)
    if ckpt.latest_step() is not None:
        step, state = (tokenizer_checkpoint.restore(ckpt, abstract, workdir, on_unreadable_tokenizer)
                       if stage == "tokenizer" else ckpt.restore(abstract, set_aside=True))
        return ckpt, state, step
    state = jax.jit(init, out_shardings=mesh_lib.replicated(mesh))()
    if initial_params is not None:
        # Own copies: the train step donates the state's buffers, so the parameters and their EMA
        # must not share one (nor the starting model's, still in use).
        fresh = lambda: jax.tree.map(jnp.copy, jax.device_put(initial_params, mesh_lib.replicated(mesh)))
        state = state.replace(params=fresh(), **(
            {"ema_params": fresh()} if getattr(state, "ema_params", None) is not None else {}))
    return ckpt, state, 0


def _device_batches(data: np.ndarray, batch_size: int, seed: int, mesh, start: int, stop: int,
                    flip: bool = False):
    """Global batches ``start .. stop - 1`` of ``data`` (grain pipeline), each split over the mesh."""
    ds = batches.dataset(data, batch_size, seed, flip=flip)
    return batches.prefetch_to_device(batches.iterate(ds, start, stop),
                                      lambda batch: mesh_lib.put_batch(batch, mesh))


def _run(stage, config, state, start, stage_config, step_fn, device_batches, ckpt, writer,
         on_sample, evaluate, progress):
    """The shared loop of both stages, then the writer and checkpoints closed."""
    state = loop.run(stage=stage, state=state, train_step=step_fn,
                     batches=device_batches,
                     start_step=start, num_steps=stage_config.steps, checkpoints=ckpt, writer=writer,
                     log_every=config.log_every, checkpoint_every=config.checkpoint_every,
                     examples_per_step=stage_config.batch_size, on_sample=on_sample,
                     sample_every=config.sample_every, evaluate=evaluate, progress=progress)
    writer.close()
    ckpt.close()
    return state


def train_tokenizer(config, workdir: Path, mesh, train_images_fn, eval_set, progress: bool = True,
                    initial: MaskGIT | None = None, on_unreadable_tokenizer: str = "stop"):
    t = config.tokenizer
    model, disc, tx, disc_tx, opts = experiment.tokenizer_parts(config)
    ckpt, state, start = _start("tokenizer", config, workdir,
                                experiment.tokenizer_init(config, mesh_lib.replicated(mesh)), mesh,
                                t.batch_size, initial and initial.params["tokenizer"],
                                on_unreadable_tokenizer)
    if start >= t.steps:
        ckpt.close()
        return state.params
    images = train_images_fn()
    step_fn = mesh_lib.jit_train_step(functools.partial(
        tokenizer_stage.train_step, model=model, disc=disc, tx=tx, disc_tx=disc_tx, opts=opts,
        seed=config.seed), mesh)
    device_batches = _device_batches(images, t.batch_size, config.seed, mesh, start, t.steps,
                                     flip=t.hflip)
    eval_images, _ = eval_set
    writer = MetricWriter(workdir, "tokenizer", enabled=jax.process_index() == 0,
                          start_step=start)

    def on_sample(state, step):
        recon = tokenizer_stage.reconstruct(model, state.params, eval_images, opts.mean, opts.std)
        writer.image(step, "reconstruction", image_grid([eval_images[:16], recon[:16]]))

    # The held-out images are constants of the compiled function: the same on every process.
    val_loss = jax.jit(lambda params: tokenizer_stage.validation_loss(
        params, eval_images, model=model, opts=opts), out_shardings=mesh_lib.replicated(mesh))
    return _run("tokenizer", config, state, start, t, step_fn, device_batches, ckpt, writer, on_sample,
                lambda state: {"val_loss": val_loss(state.params)}, progress).params


def _tokenizer_for_stage2(config, workdir: Path, mesh, initial: MaskGIT | None,
                          on_unreadable_tokenizer: str):
    """The parameters of the workdir's newest readable tokenizer (see tokenizer_checkpoint), else
    ``init_from``'s."""
    ckpt = experiment.checkpoints(workdir, "tokenizer", config)
    if ckpt.latest_step() is None:
        ckpt.close()
        if initial is not None:
            return jax.device_put(initial.params["tokenizer"], mesh_lib.replicated(mesh))
        raise FileNotFoundError(f"no tokenizer checkpoint in {ckpt.directory}: train stage 1 first "
                                "(--config.stages=tokenizer)")
    _, abstract = experiment.tokenizer_init(config, mesh_lib.replicated(mesh))
    _, state = tokenizer_checkpoint.restore(ckpt, abstract, workdir, on_unreadable_tokenizer)
    ckpt.close()
    return state.params


def train_transformer(config, workdir: Path, mesh, train_images_fn, eval_set, progress: bool = True,
                      initial: MaskGIT | None = None, on_unreadable_tokenizer: str = "stop"):
    t = config.transformer
    model, tx, opts = experiment.transformer_parts(config)
    # The tokenizer first: it decides whether the transformer's checkpoints still stand.
    vq_params = _tokenizer_for_stage2(config, workdir, mesh, initial, on_unreadable_tokenizer)
    ckpt, state, start = _start("transformer", config, workdir,
                                experiment.transformer_init(config, mesh_lib.replicated(mesh)), mesh,
                                t.batch_size, initial and initial.params.get("transformer"))
    if start >= t.steps:
        ckpt.close()
        return state.params
    vq_model = from_config.vqgan(config)
    # .get: configs saved before shifted copies existed resume with none.
    shifts, max_shift = t.get("cache_shifts", 0), t.get("cache_max_shift", 0)
    ids = token_cache.load_or_build(
        workdir / "token_cache.npz",
        token_cache.cache_key(config, vq_params, t.cache_flips, shifts, max_shift), vq_model,
        vq_params, train_images_fn, tuple(config.data.mean), tuple(config.data.std), t.cache_flips,
        shifts, max_shift, config.seed)
    step_fn = mesh_lib.jit_train_step(functools.partial(
        transformer_stage.train_step, model=model, tx=tx, opts=opts, seed=config.seed,
        code_targets_KxK=_code_targets(config, vq_model, vq_params)), mesh)
    device_batches = _device_batches(ids, t.batch_size, config.seed, mesh, start, t.steps)
    eval_images, eval_known = eval_set
    # The grids decode as the exported model will: its normalisation and decoding defaults.
    exported = model_config.from_training_config(config)
    sample_cfg = exported.inpaint_config(exported.decoding)
    writer = MetricWriter(workdir, "transformer", enabled=jax.process_index() == 0,
                          start_step=start)

    def on_sample(state, step):
        params = _sampled_params(config, state)
        result = inpaint.inpaint(vq_model, vq_params, model, params, eval_images, eval_known,
                                 sample_cfg, jax.random.key(config.seed))
        masked = fill_holes(eval_images, eval_known)
        writer.image(step, "inpainting", image_grid([masked[:16], result.images[:16],
                                                     eval_images[:16]]))

    # The held-out images' tokens (no mirrors) with fixed masks: a loss comparable between log points.
    eval_ids = token_cache.encode_tokens(vq_model, vq_params, eval_images, tuple(config.data.mean),
                                         tuple(config.data.std))
    val_loss = jax.jit(lambda params: transformer_stage.validation_loss(
        params, eval_ids, jax.random.key(config.seed), model=model, opts=opts),
        out_shardings=mesh_lib.replicated(mesh))
    return _run("transformer", config, state, start, t, step_fn, device_batches, ckpt, writer,
                on_sample, lambda state: {"val_loss": val_loss(_sampled_params(config, state))},
                progress).params


def _code_targets(config, vq_model, vq_params):
    """The (K, K) code-space targets of transformer.code_smoothing (a kernel width), or None."""
    width = config.transformer.get("code_smoothing", 0.0)  # absent from configs saved before it
    if width <= 0:
        return None
    codebook_KxD = vq_model.apply({"params": vq_params}, method=vq_model.code_vectors)
    return transformer_stage.code_targets(codebook_KxD, width)


def _sampled_params(config, state):
    """The transformer parameters that the grids, the validation loss and the export use."""
    return state.ema_params if _use_ema(config) and state.ema_params is not None else state.params


def _use_ema(config) -> bool:
    """Whether the sample grids and WORKDIR/model use the EMA parameters (where there are some)."""
    return config.transformer.get("sample_ema", True)  # absent from configs saved before it existed


# What an exported transformer fixes; the rest of config.transformer_model (dropout) is training's.
ARCHITECTURE = ("dim", "depth", "heads", "mlp_dim", "ln_eps", "predicted_embedding")


def with_architecture_of(config, initial: MaskGIT):
    """``config`` with the model sizes of ``initial`` (an exported model to start from).

    Its normalisation must be the config's: the tokens of the training images would otherwise not
    be the ones the model was made with. A transformer without the predicted-token flag (the
    course's) cannot be trained with self-conditioning, which is then off.
    """
    ours = model_config.from_training_config(config, with_transformer=False)
    if (ours.mean, ours.std) != (initial.config.mean, initial.config.std):
        raise ValueError(f"config.init_from={config.init_from}: the model normalises with mean "
                         f"{initial.config.mean}, std {initial.config.std}; the config with "
                         f"{ours.mean}, {ours.std} (config.data)")
    config = config.copy_and_resolve_references()
    config.vqgan = type(config.vqgan)(initial.config.tokenizer)
    config.data.image_size = initial.image_size
    if initial.config.transformer is not None:
        config.transformer_model.update({k: initial.config.transformer[k] for k in ARCHITECTURE
                                         if k in initial.config.transformer})
        if not config.transformer_model.predicted_embedding:
            config.transformer.self_condition = 0.0
    return config


def _keep_initial_model(initial: MaskGIT, workdir: Path) -> None:
    """A copy of the starting model in the workdir (its model reads the tokenizer from there when
    stage 1 was not trained); a resumed run must start from the same model."""
    folder = workdir / model_files.INITIAL_MODEL
    if not model_files.is_exported(folder):
        initial.save_pretrained(folder)
        return
    kept_config, kept_params = model_files.load(folder)
    same = kept_config.tokenizer == initial.config.tokenizer and all(
        np.array_equal(a, b) for a, b in zip(jax.tree.leaves(kept_params),
                                             jax.tree.leaves(jax.device_get(initial.params))))
    if not same:
        raise ValueError(f"config.init_from: {workdir} was started from another model (kept in "
                         f"{folder}); resume with that one or use a new workdir")


def train_and_evaluate(config, workdir: str | Path, progress: bool = True,
                       on_unreadable_tokenizer: str = "stop") -> None:
    """Trains the stages named in ``config.stages`` into ``workdir`` (resuming where it stopped);
    when stage 2 is among them, exports the model to ``workdir/model``. An unreadable newest
    tokenizer step under transformer checkpoints: ``on_unreadable_tokenizer`` ("stop": an error;
    "restart_transformer": stage 2 again; see tokenizer_checkpoint)."""
    workdir = Path(workdir)
    stages = experiment.parse_stages(config.stages)
    tokenizer_checkpoint.check_choice(on_unreadable_tokenizer)
    initial = None
    if config.get("init_from"):
        initial = MaskGIT.from_pretrained(config.init_from)
        config = with_architecture_of(config, initial)
    model_config.from_training_config(config)  # a bad sample section fails now, not after training
    changes = workdir_config.changes_on_resume(config, workdir)  # a changed model: refused here
    # The held-out images (few): a missing or empty data folder fails now, before the workdir is
    # written or a model built.
    eval_set = _eval_set(config)
    if jax.process_index() == 0:
        if initial is not None:
            _keep_initial_model(initial, workdir)
        workdir_config.save(config, workdir, changes)
    mesh = mesh_lib.make_mesh()
    progress = progress and jax.process_index() == 0  # one progress bar for a multi-process run
    train_images_fn = functools.cache(lambda: _train_images(config))
    if "tokenizer" in stages:
        train_tokenizer(config, workdir, mesh, train_images_fn, eval_set, progress, initial,
                        on_unreadable_tokenizer)
    if "transformer" in stages:
        train_transformer(config, workdir, mesh, train_images_fn, eval_set, progress, initial,
                          on_unreadable_tokenizer)
        # Every process reads (they agree on the steps: checkpoint_files.newest_readable); process 0 writes.
        exported, params = model_files.read_workdir(workdir, use_ema=_use_ema(config))
        if jax.process_index() == 0:
            model_files.save(workdir / "model", exported, params, overwrite=True)
