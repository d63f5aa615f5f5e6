"""sample.py's library side: a model inpaints (generates, outpaints) a test set or a user's pictures.

``run`` takes a test set (a lab-layout folder, or the built-in held-out test faces) and writes
``output/image_XXX.png`` (the lab's naming), the per-step visualisations ``output/steps/image_XXX.png``
(latent mask and decoded image after each step), a ``grid.png`` overview and ``metrics.json``: with
ground truth, the masked-region PSNR/SSIM/L1 of the result, of one-step decoding (T=1) and of filling
the holes with the mean colour of the known pixels; with ``fid=True`` also the FIDs.

``run_pictures`` inpaints pictures of any size with masks of the same size (a file each, or a folder
each, paired by name) and writes one output image per picture.

Outputs never go into (or replace) the inputs, and a folder of earlier outputs is replaced only with
``overwrite`` (see ``maskgit_jax.output_folder``). A lab-layout folder is decoded from what it gives
(masked_image/ and mask64/); its ground truth (gt/ or test_gt.csv) is only scored against.
"""

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any, Optional

import numpy as np

from maskgit_jax import canvas, fid, imageio, metrics, output_folder
from maskgit_jax.data import faces, locate, test_sets
from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.model_config import DecodingOptions
from maskgit_jax.pipeline import InpaintOutput, MaskGIT, centre_square
from maskgit_jax.visualize import image_grid, step_strip

DEFAULT_MODEL = "faces-small"


@dataclasses.dataclass(frozen=True)
class SampleOptions:
    """What sample.py's flags set. Decoding options left None take the model's own defaults."""
    output: str
    model: str = DEFAULT_MODEL      # a shipped name, an exported model folder or a training workdir
    input: Optional[str] = None     # test set (test_sets.read_test_set); None: the built-in test faces
    num_builtin: int = 64           # how many built-in test faces
    mode: str = "inpaint"           # inpaint | generate | outpaint
    schedule: Optional[str] = None
    total_iter: Optional[int] = None
    sweet_spot: Optional[int] = None
    choice_temperature: Optional[float] = None
    sample_temperature: Optional[float] = None
    code_kernel: Optional[float] = None
    render_temperature: Optional[float] = None
    composite: Optional[str] = None  # none | paste | blend
    pixel_feedback: Optional[bool] = None
    dilate: Optional[int] = None
    decoder: Optional[str] = None
    start_iter: Optional[int] = None
    sampler: Optional[str] = None
    class_label: Any = None         # class-conditional models: one label, or one per image
    batch_size: int = 64
    seed: int = 0                   # the decoding noise
    test_seed: int = 0              # which built-in test faces and masks (fixed, so runs compare)
    use_ema: bool = True
    compare: bool = True            # also score T=1 and the mean-colour fill (needs ground truth)
    fid: bool = False               # FID against the ground truth (needs it)
    fid_weights: Optional[str] = None  # FID Inception weights file; None: maskgit_jax.fid.fetch's search
    overwrite: bool = False         # replace the outputs of an earlier run in ``output``

    def decoding(self) -> dict:
        """The decoding options given (None: the model's default)."""
        return {name: getattr(self, name) for name in DecodingOptions.names() if hasattr(self, name)}


def test_set(opts: SampleOptions, image_size: int) -> imageio.LabTestSet:
    """The test set ``opts.input`` (a lab-layout folder, an .npz test set, emoji64/test), or the
    built-in held-out test faces."""
    if opts.input:
        return test_sets.read_test_set(opts.input, image_size)
    images, known = faces.faces_test_set(opts.num_builtin, seed=opts.test_seed)
    names = [f"image_{i:03d}.png" for i in range(len(images))]
    return imageio.LabTestSet(names=names, images=fill_holes(images, known), known=known,
                              ground_truth=images)


def _mean(per_image: np.ndarray) -> Optional[float]:
    """The mean over the images that have missing pixels (the others score NaN); None when no image
    has any, or when the mean is not finite (an exact match's infinite PSNR): JSON has no NaN."""
    defined = per_image[~np.isnan(per_image)]
    mean = float(np.mean(defined)) if defined.size else math.nan
    return mean if math.isfinite(mean) else None


def pixel_scores(images: np.ndarray, truth: np.ndarray, known: np.ndarray) -> dict:
    """Masked-region PSNR (dB), SSIM and L1 ([0, 255] units) of uint8 images, averaged over the
    images with missing pixels (None where there are none)."""
    return {
        "psnr_masked": _mean(metrics.masked_psnr(images, truth, known)),
        "ssim_masked": _mean(metrics.masked_ssim(images, truth, known)),
        "l1_masked": _mean(metrics.masked_l1(images, truth, known)),
    }


def scores(result: InpaintOutput, truth: np.ndarray, known: np.ndarray, true_ids: np.ndarray) -> dict:
    """``pixel_scores`` of a decoding result, and its accuracy on the unknown tokens (``true_ids``:
    the truth's tokens)."""
    accuracy = metrics.token_accuracy(result.ids, true_ids, result.unknown_tokens)
    return {**pixel_scores(result.model_images, truth, known),
            "token_accuracy": None if math.isnan(accuracy) else accuracy}


def fids(candidates: dict, truth: np.ndarray, opts) -> dict:
    """{key: FID of those uint8 (N, H, W, 3) images against the truth}, the truth's features once.
    ``opts``: anything with ``batch_size`` and ``fid_weights``."""
    truth_features = fid.features_of_arrays(truth, opts.batch_size, opts.fid_weights)
    return {name: fid.fid_from_features(fid.features_of_arrays(images, opts.batch_size, opts.fid_weights),
                                        truth_features)
            for name, images in candidates.items()}


def _known_for_mode(mode: str, known: np.ndarray) -> np.ndarray:
    """The pixels the model is given: the test masks, nothing (generate), or the centre square of
    each image (outpaint: the surroundings are generated)."""
    if mode == "inpaint":
        return known
    if mode == "generate":
        return np.zeros_like(known)
    if mode == "outpaint":
        return np.broadcast_to(centre_square(known.shape[1:]), known.shape).copy()
    raise ValueError(f"--mode must be inpaint, generate or outpaint, got {mode!r}")


def _source(mode: str, test: imageio.LabTestSet) -> np.ndarray:
    """The pixels the model decodes from: what the test set gives (the masked images) when
    inpainting; the truth's centre when outpainting, where the test masks do not apply."""
    if mode == "outpaint" and test.ground_truth is not None:
        return test.ground_truth
    return test.images


def run(opts: SampleOptions, model: Optional[MaskGIT] = None) -> dict:
    """Runs the whole sampling job; returns the metrics (also written to output/metrics.json).
    Every input (model, options, test set, FID weights, output folder) is checked before decoding."""
    model = model or MaskGIT.from_pretrained(opts.model, use_ema=opts.use_ema)
    options = model.decoding.override(**opts.decoding())
    test = test_set(opts, model.image_size)
    if opts.fid and test.ground_truth is None:
        raise ValueError(f"{opts.input}: --fid needs ground truth (a gt/ folder or test_gt.csv)")
    if opts.fid:
        fid.inception_variables(opts.fid_weights)  # read (and kept) now: bad weights fail here
    # the file or folder read (emoji64/test: the shipped test.npz), not the name
    read = locate.resolve(opts.input) if opts.input else None
    output = output_folder.prepare_folder(opts.output, [read], opts.overwrite)
    known = _known_for_mode(opts.mode, test.known)
    source = _source(opts.mode, test)
    if opts.mode == "generate":  # no known pixels to feed back
        options = dataclasses.replace(options, pixel_feedback=False)
    decode = lambda **changes: model.inpaint(source, known, seed=opts.seed, batch_size=opts.batch_size,
                                             options=options, class_label=opts.class_label, **changes)

    result = decode(return_steps=True)
    masked_input = fill_holes(source, known)
    output_folder.record(output, [*test.names, *(f"steps/{name}" for name in test.names), "grid.png",
                                  "metrics.json"])
    for name, image, step_masks, step_images, masked in zip(
            test.names, result.model_images, result.step_masks.swapaxes(0, 1),
            result.step_images.swapaxes(0, 1), masked_input):
        imageio.write_image(output / name, image)
        imageio.write_image(output / "steps" / name, step_strip(step_masks, step_images, masked))
    rows = [masked_input[:16], result.model_images[:16]]
    if test.ground_truth is not None:
        rows.append(test.ground_truth[:16])
    imageio.write_image(output / "grid.png", image_grid(rows))

    report = {"images": len(test.names), "mode": opts.mode, **dataclasses.asdict(options),
              "about": model.config.about}
    one_step = None
    if test.ground_truth is not None and opts.mode != "generate":
        truth = test.ground_truth
        report.update(scores(result, truth, known, model.encode(truth, opts.batch_size)))
        if opts.compare:
            one_step = decode(total_iter=1, sweet_spot=0).model_images
            # The same scores for T=1 and the mean-colour fill: {psnr,ssim,l1}_masked_{T1,mean_fill}.
            for suffix, images in (("T1", one_step), ("mean_fill", metrics.mean_fill(truth, known))):
                report.update({f"{name}_{suffix}": value
                               for name, value in pixel_scores(images, truth, known).items()})
    if opts.fid:
        candidates = {"fid": result.model_images}
        if one_step is not None:
            candidates.update(fid_T1=one_step, fid_masked_input=masked_input)
        report.update(fids(candidates, test.ground_truth, opts))
    (output / "metrics.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    return report


# --- a user's own pictures ---------------------------------------------------------------------

def picture_pairs(image: str, mask: str) -> list[tuple[str, Path, Path]]:
    """(name, image file, mask file) for one picture and its mask, or for a folder of pictures and a
    folder of masks paired by name (``photo.png`` with ``photo.png``, or the lab's ``image_XXX`` with
    ``mask_XXX``); an unpaired file is an error naming it."""
    image_path, mask_path = Path(image), Path(mask)
    if not image_path.exists():
        raise ValueError(f"--image: no such file or folder: {image_path}")
    if not mask_path.exists():
        raise ValueError(f"--mask: no such file or folder: {mask_path}")
    if image_path.is_dir() != mask_path.is_dir():
        raise ValueError(f"--image={image_path} and --mask={mask_path}: give two files or two folders")
    if not image_path.is_dir():
        return [(image_path.name, image_path, mask_path)]
    images, masks = _by_key(image_path), _by_key(mask_path)
    if not images:
        raise ValueError(f"--image: no files in {image_path}")
    unpaired = sorted(set(images) ^ set(masks))
    if unpaired:
        first = images.get(unpaired[0]) or masks[unpaired[0]]
        other = mask_path if first.parent == image_path else image_path
        raise ValueError(f"{first}: has no partner in {other} ({len(unpaired)} unpaired file(s))")
    return [(images[k].name, images[k], masks[k]) for k in sorted(images)]


def _by_key(folder: Path) -> dict[str, Path]:
    """{pairing key: file} of a folder's files: the name without its extension, without a leading
    ``image_`` / ``mask_`` and without case (file systems differ on it), so two files with one key
    (``photo.png`` and ``photo.jpg``, ``image_001.png`` and ``IMAGE_001.png``) are an error, never
    one of them dropped."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            key = re.sub(r"^(image|mask)_", "", path.stem.lower())
            if key in found:
                raise ValueError(f"{path}: pairs under the same name as {found[key].name}; rename or "
                                 "remove one of them")
            found[key] = path
    return found


def run_pictures(model: MaskGIT, image: str, mask: str, output: str, batch_size: int = 64,
                 seed: int = 0, overwrite: bool = False, class_label=None, **decoding) -> list[Path]:
    """Inpaints ``image`` (a file or a folder) where ``mask`` (white = known, black = missing, gray
    threshold 128) is black; writes PNGs to ``output`` (a file for one picture, else a new folder,
    or one of earlier outputs with ``overwrite``). ``class_label``: one label, or one per picture
    (in name order), for class-conditional models. Returns the paths written."""
    pairs = picture_pairs(image, mask)
    single = not Path(image).is_dir()
    if single:  # a check only; an output folder is made (or cleared) once the inputs have been read
        target = output_folder.prepare_file(output, [image, mask], overwrite)
    pictures = [imageio.read_image(path) for _, path, _ in pairs]
    masks = [imageio.read_gray(path) for _, _, path in pairs]
    for (name, image_path, mask_path), picture, known in zip(pairs, pictures, masks):
        if picture.shape[:2] != known.shape:
            raise ValueError(f"{mask_path}: is {known.shape[0]}x{known.shape[1]} but {image_path} is "
                             f"{picture.shape[0]}x{picture.shape[1]}")
    if single:
        targets = [target]
    else:
        names = [Path(name).stem + ".png" for name, _, _ in pairs]
        out = output_folder.prepare_folder(output, [image, mask], overwrite)
        output_folder.record(out, names)
        targets = [out / name for name in names]
    result = model.inpaint(pictures, masks, seed=seed, batch_size=batch_size, class_label=class_label,
                           **decoding)
    for target, picture in zip(targets, result.images):
        imageio.write_image(target, picture)
    return targets


def run_edit(model: MaskGIT, image: str, output: str, *, extend=None, box=None, batch_size: int = 64,
             seed: int = 0, overwrite: bool = False, class_label=None, **decoding) -> Path:
    """Outpaints ``image`` on a canvas grown by ``extend`` = (top, bottom, left, right) pixels, or
    regenerates its ``box`` = (x0, y0, x1, y1); writes the PNG ``output`` (not an existing file
    unless ``overwrite``) and returns its path."""
    target = output_folder.prepare_file(output, [image], overwrite)
    picture = imageio.read_image(Path(image))
    if extend is not None:
        picture, known = canvas.extend(picture, *extend)
    else:
        known = canvas.box_known(picture.shape[:2], box)
    result = model.inpaint(picture, known, seed=seed, batch_size=batch_size, class_label=class_label,
                           **decoding)
    imageio.write_image(target, result.image)
    return target
