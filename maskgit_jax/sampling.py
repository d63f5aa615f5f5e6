"""sample.py's library side: inpaint / generate / outpaint a test set with a trained workdir.

Writes ``output/image_XXX.png`` (the lab's naming), the per-step visualisations
``output/steps/image_XXX.png`` (latent mask and decoded image after each step), a ``grid.png``
overview and, when ground truth is known, ``metrics.json`` with the masked-region PSNR/L1 of the
result, of one-step decoding (T=1) and of filling the holes with the mean colour of the known pixels;
with ``fid=True`` also the FID against the ground truth of the result (and of T=1 and of the
gray-filled input when comparing).
"""

import dataclasses
import json
from pathlib import Path
from typing import Optional

import jax
import numpy as np

from maskgit_jax import decoding, fid, imageio, inpaint, metrics
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
    sweet_spot: Optional[int] = None  # None: the workdir config's sample.sweet_spot, else all steps
    choice_temperature: float = 4.5
    sample_temperature: float = 0.0
    composite: Optional[str] = None  # none | paste | blend; None: config sample.composite, else paste
    pixel_feedback: Optional[bool] = None  # None: config sample.pixel_feedback, else True
    dilate: int = 0
    batch_size: int = 64
    seed: int = 0
    use_ema: bool = True
    compare: bool = True            # also score T=1 and the mean-colour fill (needs ground truth)
    fid: bool = False               # FID against the ground truth (needs it)
    fid_weights: Optional[str] = None  # FID Inception weights file; None: maskgit_jax.fid.fetch's search


def test_set(opts: SampleOptions, image_size: int) -> imageio.LabTestSet:
    """The lab-layout folder ``opts.input``, or the built-in held-out test faces."""
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


def _configured(config, name: str, value, default):
    """A sample.py option left unset (None) takes the workdir config's ``sample.<name>``, else ``default``."""
    if value is not None:
        return value
    return config.get("sample", {}).get(name, default)


def _test_normalization(config) -> tuple[tuple, tuple]:
    """(mean, std) for test images and outputs: data.test_mean/test_std where the config has them (the
    lab normalises its test images, and de-normalises its outputs, with their own statistics)."""
    data = config.data
    return tuple(data.get("test_mean", data.mean)), tuple(data.get("test_std", data.std))


@dataclasses.dataclass(frozen=True)
class Trained:
    """A trained workdir's models and parameters, loaded once for any number of decoding runs."""
    config: object
    vq_model: object
    vq_params: object
    tr_model: object
    tr_params: object

    @property
    def normalization(self) -> tuple[tuple, tuple]:
        return _test_normalization(self.config)

    def with_defaults(self, opts: SampleOptions) -> SampleOptions:
        """``opts`` with the options left unset (None) taken from the workdir config's ``sample``
        section, else the defaults: composite 'paste', pixel feedback on."""
        return dataclasses.replace(
            opts, composite=_configured(self.config, "composite", opts.composite, "paste"),
            pixel_feedback=_configured(self.config, "pixel_feedback", opts.pixel_feedback, True))

    def inpaint(self, opts: SampleOptions, source: np.ndarray, known: np.ndarray,
                history: bool) -> inpaint.InpaintResult:
        """Decodes ``source`` uint8 (N,H,W,3) where ``known`` (N,H,W) is False, with opts' settings."""
        opts = self.with_defaults(opts)
        mean, std = self.normalization
        cfg = inpaint.InpaintConfig(
            decode=decoding.DecodeConfig(
                num_codes=self.vq_model.num_codes, total_iter=opts.total_iter,
                schedule=opts.schedule, sweet_spot=opts.sweet_spot,
                choice_temperature=opts.choice_temperature,
                sample_temperature=opts.sample_temperature),
            mean=mean, std=std, dilate=opts.dilate,
            composite=opts.composite, pixel_feedback=opts.pixel_feedback)
        return inpaint.inpaint_batched(self.vq_model, self.vq_params, self.tr_model, self.tr_params,
                                       source, known, cfg, jax.random.key(opts.seed), opts.batch_size,
                                       history)

    def encode(self, images: np.ndarray, batch_size: int) -> np.ndarray:
        """Token ids (N, L) of uint8 images, with the test normalisation."""
        mean, std = self.normalization
        return token_cache.encode_tokens(self.vq_model, self.vq_params, images, mean, std, batch_size)


def load_trained(workdir: str | Path, use_ema: bool = True) -> Trained:
    """The tokenizer and transformer of a workdir (train.py or convert_lab), on every device."""
    workdir = Path(workdir)
    config = experiment.load_config(workdir)
    replicated = mesh_lib.replicated(mesh_lib.make_mesh())
    _, vq_params = experiment.restore_tokenizer(config, workdir, replicated)
    _, tr_params = experiment.restore_transformer(config, workdir, replicated, use_ema)
    return Trained(config, from_config.vqgan(config), vq_params, from_config.transformer(config),
                   tr_params)


def pixel_scores(images: np.ndarray, truth: np.ndarray, known: np.ndarray) -> dict:
    """Masked-region PSNR (dB), SSIM and L1 ([0, 255] units) of uint8 images, averaged over images."""
    return {
        "psnr_masked": float(np.nanmean(metrics.masked_psnr(images, truth, known))),
        "ssim_masked": float(np.nanmean(metrics.masked_ssim(images, truth, known))),
        "l1_masked": float(np.nanmean(metrics.masked_l1(images, truth, known))),
    }


def scores(result: inpaint.InpaintResult, truth: np.ndarray, known: np.ndarray,
           true_ids: np.ndarray) -> dict:
    """``pixel_scores`` of a decoding result, and its accuracy on the unknown tokens (``true_ids``:
    the truth's tokens)."""
    return {**pixel_scores(result.images, truth, known),
            "token_accuracy": metrics.token_accuracy(result.ids, true_ids, result.unknown_tokens)}


def fids(candidates: dict, truth: np.ndarray, opts: SampleOptions) -> dict:
    """{key: FID of those uint8 (N, H, W, 3) images against the truth}, the truth's features once."""
    truth_features = fid.features_of_arrays(truth, opts.batch_size, opts.fid_weights)
    return {name: fid.fid_from_features(fid.features_of_arrays(images, opts.batch_size, opts.fid_weights),
                                        truth_features)
            for name, images in candidates.items()}


def run(opts: SampleOptions) -> dict:
    """Runs the whole sampling job; returns the metrics (also written to output/metrics.json)."""
    output = Path(opts.output)
    trained = load_trained(opts.workdir, opts.use_ema)
    test = test_set(opts, trained.config.data.image_size)
    if opts.fid and test.ground_truth is None:
        raise ValueError(f"{opts.input}: --fid needs ground truth (a gt/ folder or test_gt.csv)")
    given = _outpaint_region(test.known) if opts.mode == "outpaint" else test.known
    known = inpaint.masks_for_mode(opts.mode, given)
    # The masked input as the user sees it; for outpainting/generation the truth supplies the pixels kept.
    source = test.ground_truth if test.ground_truth is not None else test.images
    opts = trained.with_defaults(opts)
    sweet_spot = _configured(trained.config, "sweet_spot", opts.sweet_spot, None)
    # Generation has no known pixels to feed back.
    opts = dataclasses.replace(opts, sweet_spot=sweet_spot,
                               pixel_feedback=opts.pixel_feedback and opts.mode != "generate")

    result = trained.inpaint(opts, source, known, history=True)
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
              "total_iter": opts.total_iter, "sweet_spot": sweet_spot,
              "composite": opts.composite, "pixel_feedback": opts.pixel_feedback}
    one_step = None
    if test.ground_truth is not None and opts.mode != "generate":
        truth = test.ground_truth
        report.update(scores(result, truth, known, trained.encode(truth, opts.batch_size)))
        if opts.compare:
            one_step = trained.inpaint(dataclasses.replace(opts, total_iter=1, sweet_spot=None),
                                       source, known, history=False)
            # The same scores for T=1 and the mean-colour fill: {psnr,ssim,l1}_masked_{T1,mean_fill}.
            for suffix, images in (("T1", one_step.images), ("mean_fill", metrics.mean_fill(truth, known))):
                report.update({f"{name}_{suffix}": value
                               for name, value in pixel_scores(images, truth, known).items()})
    if opts.fid:
        candidates = {"fid": result.images}
        if one_step is not None:
            candidates.update(fid_T1=one_step.images, fid_masked_input=masked_input)
        report.update(fids(candidates, test.ground_truth, opts))
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(report, indent=2))
    return report
