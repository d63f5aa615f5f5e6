"""train_and_evaluate(config, workdir): the stages a config asks for, each resumable.

Killed at any moment, a run restarts from its last checkpoint with the same data order and RNG
stream (both derive from the seed and the step number), so it continues as if never stopped.
"""

import functools
from pathlib import Path

import jax
import numpy as np

from maskgit_jax import decoding, inpaint
from maskgit_jax.data import batches, faces, sources
from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.models import from_config
from maskgit_jax.train import experiment, loop, mesh as mesh_lib, token_cache
from maskgit_jax.train import tokenizer_stage, transformer_stage
from maskgit_jax.train.metric_writer import MetricWriter
from maskgit_jax.visualize import image_grid


def _train_images(config) -> np.ndarray:
    d = config.data
    return sources.load_images(d.source, d.train_split, d.num_train or None, d.image_size, config.seed)


def _eval_set(config, train_images_fn):
    """Held-out images with brush masks for the sample grids: (images uint8, known bool)."""
    d = config.data
    if d.source == "faces":
        return faces.faces_test_set(d.num_eval, seed=config.seed)
    images = train_images_fn()[: d.num_eval]
    rng = np.random.default_rng(config.seed)
    known = np.stack([faces.random_brush_mask(rng, d.image_size) for _ in images])
    return images, known


def _start(stage: str, config, workdir: Path, init_and_abstract, mesh, batch_size: int):
    """(checkpoints, state, step): the latest checkpoint's state, or a fresh one at step 0."""
    init, abstract = init_and_abstract
    mesh_lib.check_batch_size(batch_size, mesh, f"config.{stage}.batch_size")
    ckpt = experiment.checkpoints(workdir, stage, config)
    step = ckpt.latest_step()
    if step is not None:
        return ckpt, ckpt.restore(abstract, step), step
    return ckpt, jax.jit(init, out_shardings=mesh_lib.replicated(mesh))(), 0


def _device_batches(data: np.ndarray, batch_size: int, seed: int, mesh, start: int, stop: int,
                    flip: bool = False):
    """Global batches ``start .. stop - 1`` of ``data`` (grain pipeline), each split over the mesh."""
    ds = batches.dataset(data, batch_size, seed, flip=flip)
    return batches.prefetch_to_device(batches.iterate(ds, start, stop),
                                      lambda batch: mesh_lib.put_batch(batch, mesh))


def _run(stage, config, state, start, stage_config, step_fn, device_batches, ckpt, writer,
         on_sample, progress):
    """The shared loop of both stages, then the writer and checkpoints closed."""
    state = loop.run(stage=stage, state=state, train_step=step_fn,
                     batches=device_batches,
                     start_step=start, num_steps=stage_config.steps, checkpoints=ckpt, writer=writer,
                     log_every=config.log_every, checkpoint_every=config.checkpoint_every,
                     examples_per_step=stage_config.batch_size, on_sample=on_sample,
                     sample_every=config.sample_every, progress=progress)
    writer.close()
    ckpt.close()
    return state


def train_tokenizer(config, workdir: Path, mesh, train_images_fn, progress: bool = True):
    t = config.tokenizer
    model, disc, tx, disc_tx, opts = experiment.tokenizer_parts(config)
    ckpt, state, start = _start("tokenizer", config, workdir,
                                experiment.tokenizer_init(config, mesh_lib.replicated(mesh)), mesh,
                                t.batch_size)
    if start >= t.steps:
        ckpt.close()
        return state.params
    images = train_images_fn()
    step_fn = mesh_lib.jit_train_step(functools.partial(
        tokenizer_stage.train_step, model=model, disc=disc, tx=tx, disc_tx=disc_tx, opts=opts,
        seed=config.seed), mesh)
    device_batches = _device_batches(images, t.batch_size, config.seed, mesh, start, t.steps,
                                     flip=t.hflip)
    eval_images, _ = _eval_set(config, train_images_fn)
    writer = MetricWriter(workdir, "tokenizer", enabled=jax.process_index() == 0)

    def on_sample(state, step):
        recon = tokenizer_stage.reconstruct(model, state.params, eval_images, opts.mean, opts.std)
        writer.image(step, "reconstruction", image_grid([eval_images[:16], recon[:16]]))

    return _run("tokenizer", config, state, start, t, step_fn, device_batches, ckpt, writer, on_sample,
                progress).params


def train_transformer(config, workdir: Path, mesh, train_images_fn, progress: bool = True):
    t = config.transformer
    model, tx, opts = experiment.transformer_parts(config)
    ckpt, state, start = _start("transformer", config, workdir,
                                experiment.transformer_init(config, mesh_lib.replicated(mesh)), mesh,
                                t.batch_size)
    if start >= t.steps:
        ckpt.close()
        return state.params
    vq_model = from_config.vqgan(config)
    vq_step, vq_params = experiment.restore_tokenizer(config, workdir, mesh_lib.replicated(mesh))
    ids = token_cache.load_or_build(workdir / "token_cache.npz", vq_step, vq_model, vq_params,
                                    train_images_fn, tuple(config.data.mean),
                                    tuple(config.data.std), t.cache_flips)
    step_fn = mesh_lib.jit_train_step(functools.partial(
        transformer_stage.train_step, model=model, tx=tx, opts=opts, seed=config.seed), mesh)
    device_batches = _device_batches(ids, t.batch_size, config.seed, mesh, start, t.steps)
    eval_images, eval_known = _eval_set(config, train_images_fn)
    sample_cfg = inpaint.InpaintConfig(
        decode=decoding.DecodeConfig(num_codes=vq_model.num_codes, total_iter=config.sample.total_iter,
                                     schedule=config.sample.schedule,
                                     choice_temperature=config.sample.choice_temperature),
        mean=tuple(config.data.mean), std=tuple(config.data.std),
        pixel_feedback=config.sample.pixel_feedback)
    writer = MetricWriter(workdir, "transformer", enabled=jax.process_index() == 0)

    def on_sample(state, step):
        params = state.ema_params if state.ema_params is not None else state.params
        result = inpaint.inpaint(vq_model, vq_params, model, params, eval_images, eval_known,
                                 sample_cfg, jax.random.key(config.seed))
        masked = fill_holes(eval_images, eval_known)
        writer.image(step, "inpainting", image_grid([masked[:16], result.images[:16],
                                                     eval_images[:16]]))

    return _run("transformer", config, state, start, t, step_fn, device_batches, ckpt, writer,
                on_sample, progress).params


def train_and_evaluate(config, workdir: str | Path, progress: bool = True) -> None:
    """Trains the stages named in ``config.stages`` into ``workdir`` (resuming where it stopped)."""
    workdir = Path(workdir)
    stages = experiment.parse_stages(config.stages)
    if jax.process_index() == 0:
        experiment.save_config(config, workdir)
    mesh = mesh_lib.make_mesh()
    progress = progress and jax.process_index() == 0  # one progress bar for a multi-process run
    train_images_fn = functools.cache(lambda: _train_images(config))
    if "tokenizer" in stages:
        train_tokenizer(config, workdir, mesh, train_images_fn, progress)
    if "transformer" in stages:
        train_transformer(config, workdir, mesh, train_images_fn, progress)
