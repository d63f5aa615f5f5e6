"""Where in the holes a fill is wrong: the mean squared error of the missing pixels, by their
distance to the nearest known pixel, for a model's fills next to OpenCV's Telea.

    python -m bench.hole_distance --model=emoji-small --input=emoji64/test
    python -m bench.hole_distance --model=emoji-small --input=emoji64/test --composites=paste,seamless

A fill that loses near the border (1-2 pixels from known pixels) loses on how it meets the picture
(colour steps where the pasted pixels begin); one that loses deep inside loses on content. Distances
are Euclidean (scipy.ndimage.distance_transform_edt), squared errors averaged over the 3 channels
(0-255 scale) and over every missing pixel of the bin, all images together.
"""

import argparse
import sys

import numpy as np
from scipy import ndimage

from maskgit_jax import inpaint, sampling
from maskgit_jax.cli import boundary
from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.pipeline import MaskGIT

BINS = ((0.5, 1.5), (1.5, 2.5), (2.5, 4.5), (4.5, 8.5), (8.5, np.inf))  # pixels to the nearest known


def distance_to_known(known_NxHxW: np.ndarray) -> np.ndarray:
    """float (N,H,W): Euclidean distance of each pixel to the nearest known pixel (0 on known)."""
    return np.stack([ndimage.distance_transform_edt(~k) for k in known_NxHxW])


def error_by_distance(fill_NxHxWx3, truth_NxHxWx3, distance_NxHxW) -> list[float]:
    """Mean squared error of the pixels of each bin of BINS."""
    se = ((fill_NxHxWx3.astype(np.float64) - truth_NxHxWx3) ** 2).mean(-1)
    return [float(se[(distance_NxHxW > lo) & (distance_NxHxW <= hi)].mean()) for lo, hi in BINS]


def table(fills: dict, truth: np.ndarray, known: np.ndarray) -> str:
    distance = distance_to_known(known)
    missing = (distance > 0).sum()
    bin_name = lambda a, b: f"{a:g} px" if a == b else f"{a:g}-{b:g} px"
    heads = [bin_name(lo + .5, hi - .5) if np.isfinite(hi) else f"> {lo - .5:g} px" for lo, hi in BINS]
    shares = [((distance > lo) & (distance <= hi)).sum() / missing for lo, hi in BINS]
    lines = ["| fill | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(BINS),
             "| share of the missing pixels | " + " | ".join(f"{s:.1%}" for s in shares) + " |"]
    for name, images in fills.items():
        errors = error_by_distance(images, truth, distance)
        lines.append(f"| {name} | " + " | ".join(f"{e:.0f}" for e in errors) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="a shipped name, an exported folder or a workdir")
    p.add_argument("--input", help="test set with ground truth; default: the built-in test faces")
    p.add_argument("--num", type=int, default=1024, help="built-in test faces (without --input)")
    p.add_argument("--composites", default="paste", help="comma-separated, of "
                   f"{', '.join(inpaint.COMPOSITES)}: one model row each")
    p.add_argument("--batch_size", type=int, default=100)
    a = p.parse_args()
    composites = [c for c in a.composites.split(",") if c]
    with boundary.user_errors():
        for c in composites:
            if c not in inpaint.COMPOSITES:
                raise ValueError(f"--composites: unknown {c!r}; use {', '.join(inpaint.COMPOSITES)}")
        model = MaskGIT.from_pretrained(a.model)
        test = sampling.test_set(sampling.SampleOptions(output="", input=a.input, num_builtin=a.num),
                                 model.image_size)
        if test.ground_truth is None:
            raise ValueError(f"{a.input}: no ground truth (gt/ or test_gt.csv) to score against")
    try:
        import cv2

        from bench.classical_inpaint import opencv_inpaint
    except ImportError:
        sys.exit("bench.hole_distance needs OpenCV: pip install opencv-python-headless")
    truth, known = test.ground_truth, test.known
    fills = {f"{a.model}, {model.decoding.schedule} T={model.decoding.total_iter}, {c}":
             model.inpaint(test.images, known, seed=0, batch_size=a.batch_size,
                           composite=c).model_images for c in composites}
    fills["OpenCV Telea"] = opencv_inpaint(fill_holes(truth, known), known, cv2.INPAINT_TELEA, 3)
    print(f"Mean squared error of the missing pixels by distance to the nearest known pixel "
          f"(`python -m bench.hole_distance {' '.join(sys.argv[1:])}`)\n")
    print(table(fills, truth, known))


if __name__ == "__main__":
    main()
