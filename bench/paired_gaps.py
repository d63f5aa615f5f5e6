"""Gaps between fills of the same test images, with their standard errors: is the model's default
decoding really ahead of T=1, T=1 of the mean-colour fill, the model of OpenCV's Telea?

    python -m bench.paired_gaps --model=faces-small --num=1024
    python -m bench.paired_gaps --model=emoji-small --input=emoji64/test --out=gaps.md

Fills, in this order: the model with its default decoding (the sweep's seed 0 and batches, so its
scores are the sweep's), the model at T=1, each image's mean known colour, and OpenCV's Telea with
radius 3 (when OpenCV is installed; bench.classical_inpaint's). For each fill: masked-region PSNR /
SSIM / L1 averaged over images (as the sweep and sample.py) and the FID against the ground truth.

For each pair "A - B" (every fill against the next one, and the model against Telea): the PSNR gap is
the mean of the per-image differences over the images where both are finite, and its standard error
is that of a paired mean (the per-image differences' standard deviation / sqrt(N)), far smaller than
either mean's own error, since both fills are scored on the same holes. The FID gap's standard error
comes from a paired bootstrap: --resamples draws of N image indices with replacement, each applied to
both fills and to the ground truth (the FID's reference set), the standard deviation of the gap over
the draws (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 6). A gap more than
two standard errors from 0 is one that another draw of test images would not reverse.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from maskgit_jax import fid, metrics, sampling
from maskgit_jax.cli import boundary
from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.fid.frechet import fid_from_features
from maskgit_jax.pipeline import MaskGIT

TELEA = "OpenCV Telea"
MEAN_FILL = "mean-colour fill"


def paired_gap(a_N: np.ndarray, b_N: np.ndarray) -> tuple[float, float, int]:
    """(mean of a - b, its standard error, how many images) over the images where both are finite
    (an image without holes scores NaN, one filled exactly +inf)."""
    both = np.isfinite(a_N) & np.isfinite(b_N)
    d = (a_N - b_N)[both]
    se = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), se, int(both.sum())


def bootstrap_indices(n: int, resamples: int, seed: int = 0) -> np.ndarray:
    """(resamples, n) image indices drawn with replacement; shared by every pair of fills."""
    return np.random.default_rng(seed).integers(0, n, (resamples, n))


def bootstrap_fids(features_NxD: np.ndarray, truth_NxD: np.ndarray, draws_RxN: np.ndarray) -> np.ndarray:
    """(R,) FID of each resample: the same image indices taken from the fill and the truth."""
    return np.array([fid_from_features(features_NxD[i], truth_NxD[i]) for i in draws_RxN])


def fills(model: MaskGIT, test, batch_size: int) -> dict:
    """{name: uint8 (N, H, W, 3)} in table order. The model decodes what the test set gives (the
    masked images, as the sweep), OpenCV the gray-filled truth (as bench.classical_inpaint)."""
    truth, known = test.ground_truth, test.known
    default = model.decoding
    decode = lambda **options: model.inpaint(test.images, known, seed=0, batch_size=batch_size,
                                             **options).model_images
    out = {f"model, {default.schedule} T={default.total_iter}": decode(),
           "model, T=1": decode(total_iter=1),
           MEAN_FILL: metrics.mean_fill(truth, known)}
    try:
        import cv2

        from bench.classical_inpaint import opencv_inpaint
    except ImportError:
        print("OpenCV is not installed: no Telea row (pip install opencv-python-headless)",
              file=sys.stderr)
        return out
    out[TELEA] = opencv_inpaint(fill_holes(truth, known), known, cv2.INPAINT_TELEA, 3)
    return out


def pairs(names: list[str]) -> list[tuple[str, str]]:
    """(default, T=1), (T=1, mean fill), and (default, Telea) when there is a Telea row."""
    default, one_step, mean_fill = names[:3]
    return [(default, one_step), (one_step, mean_fill)] + [(default, TELEA)] * (TELEA in names)


def report(filled: dict, truth: np.ndarray, known: np.ndarray, batch_size: int, resamples: int,
           fid_weights=None) -> str:
    """The two markdown tables: each fill's scores, and each pair's gaps with standard errors."""
    psnr = {name: metrics.masked_psnr(images, truth, known) for name, images in filled.items()}
    truth_features = fid.features_of_arrays(truth, batch_size, fid_weights)
    features = {name: fid.features_of_arrays(images, batch_size, fid_weights)
                for name, images in filled.items()}
    draws = bootstrap_indices(len(truth), resamples)
    fids = {name: fid_from_features(f, truth_features) for name, f in features.items()}
    boot = {name: bootstrap_fids(f, truth_features, draws) for name, f in features.items()}
    lines = ["| fill | PSNR dB | SSIM | L1 | FID |", "|---|---:|---:|---:|---:|"]
    for name, images in filled.items():
        s = sampling.pixel_scores(images, truth, known)  # None: an infinite mean (exact fills)
        cells = [("—" if s[k] is None else fmt.format(s[k])) for k, fmt in
                 (("psnr_masked", "{:.2f}"), ("ssim_masked", "{:.4f}"), ("l1_masked", "{:.2f}"))]
        lines.append(f"| {name} | {' | '.join(cells)} | {fids[name]:.2f} |")
    # Gaps are A - B: a positive PSNR gap and a negative FID gap are A ahead.
    lines += ["", "| A - B | PSNR gap dB | s.e. | images | FID gap | s.e. (bootstrap) |",
              "|---|---:|---:|---:|---:|---:|"]
    for a, b in pairs(list(filled)):
        gap, se, n = paired_gap(psnr[a], psnr[b])
        fid_se = float(np.std(boot[a] - boot[b], ddof=1))
        lines.append(f"| {a} - {b} | {gap:+.3f} | {se:.3f} | {n} | {fids[a] - fids[b]:+.2f} | "
                     f"{fid_se:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="a shipped name, an exported folder or a workdir")
    p.add_argument("--input", help="test set with ground truth (lab-layout folder, .npz, "
                                   "emoji64/test); default: the built-in test faces")
    p.add_argument("--num", type=int, default=1024, help="built-in test faces (without --input)")
    p.add_argument("--batch_size", type=int, default=128, help="images per decoding / Inception batch")
    p.add_argument("--resamples", type=int, default=100, help="bootstrap draws for the FID gaps")
    p.add_argument("--fid_weights", help="FID Inception weights (default: the cached download)")
    p.add_argument("--out", help="also write the tables to this markdown file")
    a = p.parse_args()
    start = time.perf_counter()
    with boundary.user_errors():
        model = MaskGIT.from_pretrained(a.model)
        test = sampling.test_set(sampling.SampleOptions(output="", input=a.input, num_builtin=a.num),
                                 model.image_size)
        if test.ground_truth is None:
            raise ValueError(f"{a.input}: no ground truth (gt/ or test_gt.csv) to score against")
        fid.inception_variables(a.fid_weights)  # bad weights fail before any decoding
    filled = fills(model, test, a.batch_size)
    print(f"fills: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    text = report(filled, test.ground_truth, test.known, a.batch_size, a.resamples, a.fid_weights)
    title = (f"{a.model} on {a.input or f'{len(test.ground_truth)} built-in test faces (seed 0)'}; "
             f"FID s.e. from {a.resamples} paired bootstrap draws "
             f"(`python -m bench.paired_gaps {' '.join(sys.argv[1:])}`, {time.perf_counter() - start:.0f} s)")
    print(f"{title}\n\n{text}")
    if a.out:
        Path(a.out).write_text(f"{title}\n\n{text}")


if __name__ == "__main__":
    main()
