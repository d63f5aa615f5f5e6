"""sample.py's library side: inpaint / generate / outpaint a test set with a trained workdir.

Writes ``output/image_XXX.png`` (the lab's naming), the per-step visualisations
``output/steps/image_XXX.png`` (latent mask and decoded image after each step), a ``grid.png``
overview and, when ground truth is known, ``metrics.json`` with the masked-region PSNR/L1 of the
result, of one-step decoding (T=1) and of filling the holes with the mean colour of the known pixels.
"""

import dataclasses
import json
from pathlib import Path
from typing import Optional

import jax
import numpy as np

from maskgit_jax import decoding, imageio, inpaint, metrics
from maskgit_jax.data import faces
from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.models import from_config
from maskgit_jax.train import experiment, mesh as mesh_lib, token_cache
from maskgit_jax.visualize import image_grid, step_strip


@dataclasses.dataclass(frozen=True)
class SampleOptions:
    """What sample.py's flags set."""
    workdir: str
    output: str
    input: Optional[str] = None     # lab-layout folder; None: the built-in held-out test faces
    num_builtin: int = 64           # how many built-in test faces
    mode: str = "inpaint"           # inpaint | generate | outpaint
    schedule: str = "square"
    total_iter: int = 8
    sweet_spot: Optional[int] = None
    choice_temperature: float = 4.5
    sample_temperature: float = 0.0
    composite: str = "paste"        # none | paste | blend
    dilate: int = 0
    batch_size: int = 64
    seed: int = 0
    use_ema: bool = True
    compare: bool = True            # also score T=1 and the mean-colour fill (needs ground truth)


def _test_set(opts: SampleOptions, image_size: int) -> imageio.LabTestSet:
    if opts.input:
        return imageio.read_lab_layout(opts.input, image_size)
    images, known = faces.faces_test_set(opts.num_builtin, seed=opts.seed)
    names = [f"image_{i:03d}.png" for i in range(len(images))]
    return imageio.LabTestSet(names=names, images=fill_holes(images, known), known=known,
                              ground_truth=images)


def _outpaint_region(known_BxHxW: np.ndarray) -> np.ndarray:
    """For outpainting: a centre square (half the side) is the region kept; the rest is generated.

    masks_for_mode('outpaint') inverts its input, so this returns the centre as missing.
    """
    h, w = known_BxHxW.shape[1:]
    region = np.ones_like(known_BxHxW)
    region[:, h // 4: h - h // 4, w // 4: w - w // 4] = False
    return region


def run(opts: SampleOptions) -> dict:
    """Runs the whole sampling job; returns the metrics (also written to output/metrics.json)."""
    workdir, output = Path(opts.workdir), Path(opts.output)
    config = experiment.load_config(workdir)
    mesh = mesh_lib.make_mesh()
    vq_model, tr_model = from_config.vqgan(config), from_config.transformer(config)
    _, vq_params = experiment.restore_tokenizer(config, workdir, mesh_lib.replicated(mesh))
    _, tr_params = experiment.restore_transformer(config, workdir, mesh_lib.replicated(mesh),
                                                  opts.use_ema)

    test = _test_set(opts, config.data.image_size)
    given = _outpaint_region(test.known) if opts.mode == "outpaint" else test.known
    known = inpaint.masks_for_mode(opts.mode, given)
    # The masked input as the user sees it; for outpainting/generation the truth supplies the pixels kept.
    source = test.ground_truth if test.ground_truth is not None else test.images

    def run_with(total_iter: int, sweet_spot, history: bool):
        cfg = inpaint.InpaintConfig(
            decode=decoding.DecodeConfig(
                num_codes=vq_model.num_codes, total_iter=total_iter, schedule=opts.schedule,
                sweet_spot=sweet_spot, choice_temperature=opts.choice_temperature,
                sample_temperature=opts.sample_temperature),
            mean=tuple(config.data.mean), std=tuple(config.data.std), dilate=opts.dilate,
            composite=opts.composite)
        return inpaint.inpaint_batched(vq_model, vq_params, tr_model, tr_params, source, known, cfg,
                                       jax.random.key(opts.seed), opts.batch_size, history)

    result = run_with(opts.total_iter, opts.sweet_spot, history=True)
    masked_input = fill_holes(source, known)
    for name, image, step_masks, step_images, masked in zip(
            test.names, result.images, result.step_masks.swapaxes(0, 1),
            result.step_images.swapaxes(0, 1), masked_input):
        imageio.write_image(output / name, image)
        imageio.write_image(output / "steps" / name, step_strip(step_masks, step_images, masked))
    rows = [masked_input[:16], result.images[:16]]
    if test.ground_truth is not None:
        rows.append(test.ground_truth[:16])
    imageio.write_image(output / "grid.png", image_grid(rows))

    report = {"images": len(test.names), "mode": opts.mode, "schedule": opts.schedule,
              "total_iter": opts.total_iter, "sweet_spot": opts.sweet_spot,
              "composite": opts.composite}
    if test.ground_truth is not None and opts.mode != "generate":
        truth = test.ground_truth
        report["psnr_masked"] = float(np.nanmean(metrics.masked_psnr(result.images, truth, known)))
        report["l1_masked"] = float(np.nanmean(metrics.masked_l1(result.images, truth, known)))
        true_ids = token_cache.encode_tokens(vq_model, vq_params, truth, tuple(config.data.mean),
                                             tuple(config.data.std), opts.batch_size)
        report["token_accuracy"] = metrics.token_accuracy(result.ids, true_ids, result.unknown_tokens)
        if opts.compare:
            one_step = run_with(1, None, history=False)
            report["psnr_masked_T1"] = float(np.nanmean(
                metrics.masked_psnr(one_step.images, truth, known)))
            report["psnr_masked_mean_fill"] = float(np.nanmean(
                metrics.masked_psnr(metrics.mean_fill(truth, known), truth, known)))
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(report, indent=2))
    return report
