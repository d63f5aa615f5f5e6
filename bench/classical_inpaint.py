"""Classical inpainting baselines on a test set: the rows to set next to a model's scores.

    python -m bench.classical_inpaint --input=emoji64/test --fid
    python -m bench.classical_inpaint --num=1024 --fid --out=faces_classical.md
    python -m bench.classical_inpaint --input=DIR --radius=5 --save_images=/tmp/telea --out=FILE.csv

Baselines: the gray-filled input (holes 128, what the model is given), each image's mean known
colour (`metrics.mean_fill`, the sweep's baseline), and OpenCV's Telea (fast marching) and
Navier-Stokes inpainting with radius --radius. OpenCV sees only the gray-filled input, never the
truth under the holes. Scores are sample.py's and the sweep's: masked-region PSNR / SSIM / L1
averaged over images with np.nanmean (as `sampling.pixel_scores`), "PSNR s.e." the standard error
of that mean over images, and with --fid the FID against the ground truth. An image whose holes
come back exactly has PSNR +inf and makes that mean +inf (Navier-Stokes on one emoji64 test image);
a note under the table then gives the mean over the other images.

Test sets: --input, a folder in the lab layout with ground truth (gt/ or test_gt.csv), an .npz
test set with gt (emoji64/test: the one shipped with the package), or the
built-in held-out test faces with brush masks (--num of them, seed 0: sample.py's test faces).
OpenCV is needed only here: pip install opencv-python-headless.
"""

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from maskgit_jax import fid, imageio, metrics, sampling
from maskgit_jax.data import faces, test_sets
from maskgit_jax.data.normalize import fill_holes

try:
    import cv2
except ImportError:
    sys.exit("bench.classical_inpaint needs OpenCV: pip install opencv-python-headless")

COLUMNS = ("baseline", "psnr_masked", "psnr_se", "ssim_masked", "l1_masked", "fid", "exact",
           "psnr_others", "psnr_others_se")  # the table shows the first six, the others as notes
HEADERS = ("baseline", "PSNR dB", "PSNR s.e.", "SSIM", "L1 (0-255)", "FID")
FORMATS = ("{}", "{:.2f}", "{:.2f}", "{:.4f}", "{:.2f}", "{:.2f}")
TELEA = "OpenCV Telea"


def test_set(input_dir: str | None, num: int, image_size: int):
    """(names, truth uint8 (N,H,W,3), known bool (N,H,W)) of a test set (a lab-layout folder, an
    .npz test set, emoji64/test) or the built-in faces."""
    if input_dir:
        test = test_sets.read_test_set(input_dir, image_size)
        if test.ground_truth is None:
            sys.exit(f"{input_dir}: no ground truth (gt/ or test_gt.csv) to score against")
        return test.names, test.ground_truth, test.known
    truth, known = faces.faces_test_set(num, seed=0)
    return [f"image_{i:03d}.png" for i in range(num)], truth, known


def opencv_inpaint(masked_NxHxWx3: np.ndarray, known_NxHxW: np.ndarray, method: int,
                   radius: float) -> np.ndarray:
    """cv2.inpaint of each RGB image (uint8 in and out); asserts the known pixels come back unchanged."""
    out_NxHxWx3 = np.empty_like(masked_NxHxWx3)
    for i, (image_HxWx3, known_HxW) in enumerate(zip(masked_NxHxWx3, known_NxHxW)):
        fill_HxW = np.where(known_HxW, 0, 255).astype(np.uint8)  # OpenCV: nonzero = pixel to fill
        # OpenCV images are BGR. Both methods treat the channels alike, so the flips change nothing,
        # but they keep the call right as written.
        bgr = np.ascontiguousarray(image_HxWx3[..., ::-1])
        out_NxHxWx3[i] = cv2.inpaint(bgr, fill_HxW, radius, method)[..., ::-1]
    assert np.array_equal(out_NxHxWx3[known_NxHxW], masked_NxHxWx3[known_NxHxW]), \
        "cv2.inpaint changed known pixels"
    return out_NxHxWx3


def baselines(truth: np.ndarray, known: np.ndarray, radius: float) -> dict[str, np.ndarray]:
    """{name: uint8 (N,H,W,3) filled images}, in table order."""
    masked = fill_holes(truth, known)
    return {"gray-filled input": masked,
            "mean-colour fill": metrics.mean_fill(truth, known),
            TELEA: opencv_inpaint(masked, known, cv2.INPAINT_TELEA, radius),
            "OpenCV Navier-Stokes": opencv_inpaint(masked, known, cv2.INPAINT_NS, radius)}


def mean_and_se(values_N: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error over the values that are not NaN."""
    values_N = values_N[~np.isnan(values_N)]
    with np.errstate(invalid="ignore"):  # an infinite value gives a NaN s.e., shown as a dash
        se = np.std(values_N, ddof=1) / np.sqrt(len(values_N)) if len(values_N) > 1 else np.nan
    return float(np.mean(values_N)), float(se)


def pixel_scores(images: np.ndarray, truth: np.ndarray, known: np.ndarray) -> dict:
    """`sampling.pixel_scores` (sample.py's and the sweep's), the standard error of the PSNR mean,
    and the count of images whose holes came back exactly (PSNR +inf, which makes the mean +inf)
    with the PSNR mean over the others."""
    psnr_N = metrics.masked_psnr(images, truth, known)
    exact_N = np.isposinf(psnr_N)
    _, psnr_se = mean_and_se(psnr_N)
    finite, finite_se = mean_and_se(np.where(exact_N, np.nan, psnr_N))
    return {**sampling.pixel_scores(images, truth, known), "psnr_se": psnr_se,
            "exact": int(exact_N.sum()), "psnr_others": finite, "psnr_others_se": finite_se}


def _cell(value, fmt: str) -> str:
    """A dash for a missing value (no --fid) or NaN (the s.e. of an infinite mean)."""
    return "—" if value is None or (isinstance(value, float) and np.isnan(value)) else fmt.format(value)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * (len(HEADERS) - 1)]
    lines += ["| " + " | ".join(_cell(row.get(c), fmt) for c, fmt in zip(COLUMNS, FORMATS)) + " |"
              for row in rows]
    lines += [""] + [f"- {row['baseline']}: {row['exact']} image(s) with the holes filled exactly "
                     f"(PSNR +inf); PSNR over the others {row['psnr_others']:.2f} ± "
                     f"{row['psnr_others_se']:.2f} dB" for row in rows if row["exact"]]
    return "\n".join(lines).rstrip() + "\n"


def write(path: Path, rows: list[dict], title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(f"{title}\n\n`{' '.join(['python -m bench.classical_inpaint', *sys.argv[1:]])}`"
                        f"\n\n{markdown_table(rows)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", default=None, help="test set with ground truth (lab-layout folder, .npz, emoji64/test); default: the "
                   "built-in held-out test faces")
    p.add_argument("--num", type=int, default=1024, help="how many built-in test faces (without --input)")
    p.add_argument("--image_size", type=int, default=64, help="image side of the --input folder")
    p.add_argument("--radius", type=float, default=3, help="OpenCV inpaint radius (pixels)")
    p.add_argument("--fid", action="store_true", help="also the FID against the ground truth")
    p.add_argument("--fid_weights", default=None, help="FID Inception weights (default: maskgit_jax.fid's "
                   "cached download)")
    p.add_argument("--batch_size", type=int, default=50, help="images per Inception batch")
    p.add_argument("--out", default=None, help="also write the table to FILE.csv or FILE.md")
    p.add_argument("--save_images", default=None, help="write the Telea outputs as PNGs into this folder")
    args = p.parse_args()
    if args.out and Path(args.out).suffix not in (".csv", ".md"):
        p.error(f"--out must end in .csv or .md, got {args.out}")

    start = time.perf_counter()
    names, truth, known = test_set(args.input, args.num, args.image_size)
    title = (f"Classical inpainting baselines: {args.input or 'built-in test faces (seed 0)'}, "
             f"{len(names)} images, {np.mean(~known):.1%} of pixels missing, "
             f"OpenCV inpaint radius {args.radius:g}")
    outputs = baselines(truth, known, args.radius)
    rows = [{"baseline": name, **pixel_scores(images, truth, known)} for name, images in outputs.items()]
    print(f"inpainting and pixel scores: {time.perf_counter() - start:.1f} s", flush=True)
    if args.fid:
        truth_features = fid.features_of_arrays(truth, args.batch_size, args.fid_weights)
        for row, images in zip(rows, outputs.values()):
            row["fid"] = fid.fid_from_features(
                fid.features_of_arrays(images, args.batch_size, args.fid_weights), truth_features)
        print(f"with FID: {time.perf_counter() - start:.1f} s", flush=True)
    if args.save_images:
        for name, image in zip(names, outputs[TELEA]):
            imageio.write_image(Path(args.save_images) / name, image)
    print(f"\n{title}\n\n{markdown_table(rows)}")
    if args.out:
        write(Path(args.out), rows, title)


if __name__ == "__main__":
    main()
