"""What a tokenizer lets the transformer reach: the test set's true tokens decoded, known pixels pasted.

    python -m bench.tokenizer_ceiling --model=runs/emoji --input=emoji64/test --fid
    python -m bench.tokenizer_ceiling --model=faces-small --num=1024

A transformer that predicted every missing token exactly would score this; no decoding choice can
beat it. So it measures a tokenizer idea (grid, codebook, width, adversarial loss, updates) without
training a transformer on it: the same scores as sample.py and the sweep (masked-region PSNR / SSIM
/ L1 averaged over images, PSNR standard error, FID against the ground truth) on the same test sets
as bench.classical_inpaint, with `paste` compositing (known pixels kept). --model: a workdir (its
latest tokenizer, or --step), an exported folder or a shipped name.
"""

import argparse
import time

import numpy as np

from bench import classical_inpaint
from maskgit_jax import fid
from maskgit_jax.cli import boundary
from maskgit_jax.pipeline import MaskGIT


def ceiling_images(model: MaskGIT, truth_NxHxWx3: np.ndarray, known_NxHxW: np.ndarray) -> np.ndarray:
    """The ground truth encoded and decoded, its known pixels pasted back (uint8)."""
    decoded = model.decode(model.encode(truth_NxHxWx3))
    return np.where(known_NxHxW[..., None], truth_NxHxWx3, decoded)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="workdir, exported folder or shipped name")
    p.add_argument("--step", type=int, default=None, help="a workdir's checkpoint: the tokenizer's "
                   "while it has no transformer checkpoint (default: the latest)")
    p.add_argument("--input", default=None, help="lab-layout folder with ground truth; default: the "
                   "built-in held-out test faces")
    p.add_argument("--num", type=int, default=1024, help="how many built-in test faces (without --input)")
    p.add_argument("--fid", action="store_true", help="also the FID against the ground truth")
    p.add_argument("--fid_weights", default=None, help="FID Inception weights (default: maskgit_jax.fid's "
                   "cached download)")
    args = p.parse_args()

    with boundary.user_errors():  # a bad --model or --input: one line
        start = time.perf_counter()
        model = MaskGIT.from_pretrained(args.model, step=args.step)
        names, truth, known = classical_inpaint.test_set(args.input, args.num, model.image_size)
        images = ceiling_images(model, truth, known)
        row = {"baseline": f"tokenizer ceiling: {args.model}" + (f" step {args.step}" if args.step else ""),
               **classical_inpaint.pixel_scores(images, truth, known)}
        if args.fid:
            row["fid"] = fid.fid_from_features(fid.features_of_arrays(images, 50, args.fid_weights),
                                               fid.features_of_arrays(truth, 50, args.fid_weights))
        print(f"{len(names)} images, {time.perf_counter() - start:.1f} s\n")
        print(classical_inpaint.markdown_table([row]))


if __name__ == "__main__":
    main()
