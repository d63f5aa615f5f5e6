"""A picture of the first test images: the input, OpenCV's Telea fill, each model's fill, the truth.

    python -m bench.compare_figure --model=emoji-small --input=emoji64/test --out=bench/emoji64_inpainting.png
    python -m bench.compare_figure --model=faces-small --model=runs/faces --num=8 --out=faces.png

One row each, --num columns. The models decode with their default options (the shipped models:
square schedule, T=8, pixel feedback, seamless compositing), the decoding seed 0, the same images
and masks as bench.classical_inpaint and the sweep.
"""

import argparse

import cv2
import numpy as np

from bench import classical_inpaint
from maskgit_jax import imageio, visualize
from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.cli import boundary
from maskgit_jax.pipeline import MaskGIT


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", required=True,
                   help="workdir, exported folder or shipped name; repeat for several rows")
    p.add_argument("--input", default=None, help="lab-layout folder with ground truth; default: the "
                   "built-in held-out test faces")
    p.add_argument("--num", type=int, default=8, help="images (columns)")
    p.add_argument("--out", required=True, help="the PNG to write")
    args = p.parse_args()

    with boundary.user_errors():  # a bad --model or --input: one line
        models = [MaskGIT.from_pretrained(name) for name in args.model]
        _, truth, known = classical_inpaint.test_set(args.input, args.num, models[0].image_size)
        truth, known = truth[:args.num], known[:args.num]
        masked = fill_holes(truth, known)
        rows = [masked, classical_inpaint.opencv_inpaint(masked, known, cv2.INPAINT_TELEA, 3)]
        rows += [model.inpaint(list(masked), list(known), seed=0).model_images for model in models]
        imageio.write_image(args.out, visualize.image_grid(rows + [truth]))
        print(f"{args.out}: rows input, Telea, {', '.join(args.model)}, truth")


if __name__ == "__main__":
    main()
