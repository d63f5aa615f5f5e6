"""Speed of the official ImageNet MaskGIT (full size, random weights: speed does not depend on them)
through ``MaskGIT.generate``: one call with compilation, then the same shapes again.

    python -m bench.official_speed                       # 256 px, one image, T=12 (CPU row)
    python -m bench.official_speed --batch=8             # the accelerator row (a batch of 8)

Prints a markdown row; the numbers go to bench/RESULTS.md by hand with the date and the device.
"""

import argparse
import time

import jax
import numpy as np

from bench import device
from maskgit_jax import MaskGIT
from maskgit_jax.model_config import ModelConfig
from maskgit_jax.official import checkpoints


def random_model(image_size: int, seed: int = 0) -> MaskGIT:
    """The released architecture with N(0, 0.02) parameters (drawn with NumPy, no flax init)."""
    config = ModelConfig(tokenizer=dict(checkpoints.tokenizer_preset(image_size), img_resolution=image_size),
                         transformer=checkpoints.transformer_preset(image_size), mean=(0.0,) * 3,
                         std=(1.0,) * 3, decoding=checkpoints.DECODING, architecture="official")
    rng = np.random.default_rng(seed)
    draw = lambda leaf: (0.02 * rng.standard_normal(leaf.shape)).astype(np.float32)
    vqgan, transformer = config.vqgan(), config.bidirectional_transformer()
    key = jax.random.key(0)
    shapes = {"tokenizer": jax.eval_shape(vqgan.init, key, np.zeros((1, image_size, image_size, 3),
                                                                    np.float32))["params"],
              "transformer": jax.eval_shape(transformer.init, key,
                                            np.zeros((1, transformer.seq_len + 1), np.int32))["params"]}
    return MaskGIT(config, jax.tree.map(draw, shapes), where="random official model")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image_size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--total_iter", type=int, default=12)
    args = parser.parse_args()
    model = random_model(args.image_size)
    run = lambda seed: model.generate(args.batch, class_label=207, seed=seed, total_iter=args.total_iter,
                                      batch_size=args.batch).images
    start = time.perf_counter()
    run(0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    run(1)
    again = time.perf_counter() - start
    info = device.describe()
    print("| device | image size | batch | T | first call (compile included) | again (compile excluded) |")
    print("|---|---|---|---|---|---|")
    print(f"| {info['summary']}; {info['cpu']} | {args.image_size} | "
          f"{args.batch} | {args.total_iter} | {first:.1f} s | {again:.1f} s |")


if __name__ == "__main__":
    main()
