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


def _start(ckpt, init, abstract, mesh):
    """The latest checkpoint's state and step, or a fresh state at step 0."""
    step = ckpt.latest_step()
    if step is not None:
        return ckpt.restore(abstract, step), step
    return jax.jit(init, out_shardings=mesh_lib.replicated(mesh))(), 0


def _run(stage, config, state, start, stage_config, step_fn, make_batch, ckpt, writer, on_sample,
         progress):
    """The shared loop of both stages, then the writer and checkpoints closed."""
    state = loop.run(stage=stage, state=state, train_step=step_fn,
                     batches=batches.prefetch(make_batch, start, stage_config.steps),
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
    init, abstract = experiment.tokenizer_init(config, mesh_lib.replicated(mesh))
    ckpt = experiment.checkpoints(workdir, "tokenizer", config)
    state, start = _start(ckpt, init, abstract, mesh)
    if start >= t.steps:
        return state.params
    mesh_lib.check_batch_size(t.batch_size, mesh, "config.tokenizer.batch_size")
    images = train_images_fn()
    step_fn = mesh_lib.jit_train_step(functools.partial(
        tokenizer_stage.train_step, model=model, disc=disc, tx=tx, disc_tx=disc_tx, opts=opts,
        seed=config.seed), mesh)
    make_batch = lambda s: mesh_lib.put_batch(
        images[batches.batch_indices(len(images), t.batch_size, s, config.seed)], mesh)
    eval_images, _ = _eval_set(config, train_images_fn)
    writer = MetricWriter(workdir, "tokenizer", enabled=jax.process_index() == 0)

    def on_sample(state, step):
        recon = tokenizer_stage.reconstruct(model, state.params, eval_images, opts.mean, opts.std)
        writer.image(step, "reconstruction", image_grid([eval_images[:16], recon[:16]]))

    return _run("tokenizer", config, state, start, t, step_fn, make_batch, ckpt, writer, on_sample,
                progress).params


def train_transformer(config, workdir: Path, mesh, train_images_fn, progress: bool = True):
    t = config.transformer
    model, tx, opts = experiment.transformer_parts(config)
    init, abstract = experiment.transformer_init(config, mesh_lib.replicated(mesh))
    ckpt = experiment.checkpoints(workdir, "transformer", config)
    state, start = _start(ckpt, init, abstract, mesh)
    if start >= t.steps:
        return state.params
    mesh_lib.check_batch_size(t.batch_size, mesh, "config.transformer.batch_size")
    vq_model = experiment.tokenizer_parts(config)[0]
    vq_step, vq_params = experiment.restore_tokenizer(config, workdir, mesh_lib.replicated(mesh))
    ids = token_cache.load_or_build(workdir / "token_cache.npz", vq_step, vq_model, vq_params,
                                    train_images_fn, tuple(config.data.mean),
                                    tuple(config.data.std), t.cache_flips)
    step_fn = mesh_lib.jit_train_step(functools.partial(
        transformer_stage.train_step, model=model, tx=tx, opts=opts, seed=config.seed), mesh)
    make_batch = lambda s: mesh_lib.put_batch(
        ids[batches.batch_indices(len(ids), t.batch_size, s, config.seed)], mesh)
    eval_images, eval_known = _eval_set(config, train_images_fn)
    sample_cfg = inpaint.InpaintConfig(
        decode=decoding.DecodeConfig(num_codes=vq_model.num_codes, total_iter=config.sample.total_iter,
                                     schedule=config.sample.schedule,
                                     choice_temperature=config.sample.choice_temperature),
        mean=tuple(config.data.mean), std=tuple(config.data.std))
    writer = MetricWriter(workdir, "transformer", enabled=jax.process_index() == 0)

    def on_sample(state, step):
        params = state.ema_params if state.ema_params is not None else state.params
        result = inpaint.inpaint(vq_model, vq_params, model, params, eval_images, eval_known,
                                 sample_cfg, jax.random.key(config.seed))
        masked = fill_holes(eval_images, eval_known)
        writer.image(step, "inpainting", image_grid([masked[:16], result.images[:16],
                                                     eval_images[:16]]))

    return _run("transformer", config, state, start, t, step_fn, make_batch, ckpt, writer,
                on_sample, progress).params


def train_and_evaluate(config, workdir: str | Path, progress: bool = True) -> None:
    """Trains the stages named in ``config.stages`` into ``workdir`` (resuming where it stopped)."""
    workdir = Path(workdir)
    stages = experiment.parse_stages(config.stages)
    if jax.process_index() == 0:
        experiment.save_config(config, workdir)
    mesh = mesh_lib.make_mesh()
    train_images_fn = functools.cache(lambda: _train_images(config))
    if "tokenizer" in stages:
        train_tokenizer(config, workdir, mesh, train_images_fn, progress)
    if "transformer" in stages:
        train_transformer(config, workdir, mesh, train_images_fn, progress)
