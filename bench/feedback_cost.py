"""What pixel feedback costs next to inpainting without it, and what fixes that cost.

    python -m bench.feedback_cost                                  # tiny, small, faces-small
    python -m bench.feedback_cost --models=small --total_iter=8 --out=bench/RESULTS.md

Prints two tables (and appends them to ``--out``):
- the inpainting pass (``inpaint.inpaint_batched``) timed without and with pixel feedback, side by
  side in one run, their ratio, the ratio the FLOPs alone imply (feedback adds one VQ decode and
  encode per step: 1 + T (D + E) / (E + T F + D) with E, D, F the FLOPs of a VQ encode, a VQ
  decode and a transformer step), and the share of (example, step) pairs whose step fixes a token
  over a partly known patch (the only pairs whose feedback is used);
- per model, what one step's feedback must recompute: FLOPs per image (XLA's cost analysis), how
  far the convolutions alone spread one token's or one pixel's dependence (walking the layer
  lists), and how many layers mix the whole image (GroupNorm statistics, attention).

Models are variants of configs/faces.py with random weights (speed does not depend on them) or
shipped models by name (``maskgit_jax.pretrained``; the share of steps needing feedback depends on
the weights). Decoding: the square schedule, choice temperature 4.5 (sample.py's defaults).
"""

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from bench import device, models, report, timing
from maskgit_jax import decoding, inpaint, masking, pretrained
from maskgit_jax.data import faces
from maskgit_jax.models import vqgan as vqgan_lib

CONFIG_VARIANTS = ("tiny", "small", "lab")


@dataclasses.dataclass
class Model:
    name: str
    vqgan: Any
    vq_params: Any
    transformer: Any
    tr_params: Any
    cfg: inpaint.InpaintConfig  # T is set per row


def load(name: str) -> Model:
    """A config variant with random weights, or a shipped model."""
    if name in CONFIG_VARIANTS:
        m = models.jax_models(name, "float32")
        decode = decoding.DecodeConfig(num_codes=m.num_codes, schedule="square")
        cfg = inpaint.InpaintConfig(decode=decode, mean=tuple(m.config.data.mean),
                                    std=tuple(m.config.data.std))
        return Model(f"{name} (random weights)", m.vqgan, m.vq_params, m.transformer, m.tr_params,
                     cfg)
    from maskgit_jax.pipeline import MaskGIT
    m = MaskGIT.from_pretrained(name)
    return Model(name, m.vqgan, m.params["tokenizer"], m.transformer, m.params["transformer"],
                 m.config.inpaint_config(m.decoding.override(schedule="square")))


def conv_reach(layers: Sequence[vqgan_lib.LayerSpec]) -> int:
    """Width, in units of the layer list's input, of the inputs one output element depends on
    through the convolutions alone (GroupNorm statistics and attention, which reach everything,
    aside): walked back from one output element, a 3x3 conv widens an interval of w by 2, a
    ResidualBlock (two of them) by 4, a stride-2 Downsample turns w outputs into 2w + 1 inputs, and
    an Upsample (nearest x2, then a 3x3 conv) w outputs into (w + 2) // 2 + 1 inputs at most."""
    width = 1
    for spec in reversed(layers):
        if spec.kind == "conv":
            width += 2
        elif spec.kind == "res":
            width += 4
        elif spec.kind == "down":
            width = 2 * width + 1
        elif spec.kind == "up":
            width = (width + 2) // 2 + 1
    return width


def layer_lists(vq) -> tuple[list, list]:
    """(encoder, decoder) layer lists of a VQGAN module, as its ``setup`` builds them."""
    encoder = vqgan_lib.encoder_layers(vq.image_channels, vq.enc_channels, vq.enc_num_res_blocks,
                                       vq.enc_downsample_levels, vq.attn_resolutions,
                                       vq.mid_attention, vq.img_resolution, vq.latent_dim)
    decoder = vqgan_lib.decoder_layers(vq.image_channels, vq.dec_channels, vq.dec_num_res_blocks,
                                       vq.dec_upsample_levels, vq.attn_resolutions,
                                       vq.mid_attention, vq.latent_resolution, vq.latent_dim)
    return encoder, decoder


def flops(fn, *args) -> float:
    """XLA's FLOP count of ``fn(*args)``."""
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    return float((cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"])


def flops_per_image(m: Model) -> dict[str, float]:
    """FLOPs of one image's VQ encode, VQ decode and transformer step."""
    size, tokens = m.vqgan.img_resolution, m.vqgan.latent_resolution ** 2
    image = jnp.zeros((1, size, size, 3), jnp.uint8)
    ids = jnp.zeros((1, tokens), jnp.int32)
    vq = {"params": m.vq_params}
    return dict(
        encode=flops(lambda v, x: inpaint.encode_images(m.vqgan, v, x, m.cfg), vq, image),
        decode=flops(lambda v, i: inpaint.decode_images(m.vqgan, v, i, m.cfg), vq, ids),
        step=flops(lambda p, i: m.transformer.apply({"params": p}, i), m.tr_params, ids))


def flop_ratio(f: dict[str, float], total_iter: int) -> float:
    """Time with / without feedback if every FLOP ran at the same rate."""
    without = f["encode"] + total_iter * f["step"] + f["decode"]
    return (without + total_iter * (f["decode"] + f["encode"])) / without


def share_needing_feedback(m: Model, cfg: inpaint.InpaintConfig, images, known, batch: int) -> float:
    """Share of (example, step) pairs whose step fixes a token over a partly known patch."""
    out = inpaint.inpaint_batched(m.vqgan, m.vq_params, m.transformer, m.tr_params, images, known,
                                  cfg, jax.random.key(0), batch, return_history=True)
    grid = m.vqgan.latent_resolution
    partly_known = out.unknown_tokens & np.asarray(masking.pixel_to_token_unknown(~known, grid))
    masked_before = np.concatenate([out.unknown_tokens[None], out.step_masks[:-1]])
    fixed = masked_before & ~out.step_masks
    return float(np.mean(np.any(fixed & partly_known[None], axis=-1)))


def tables() -> tuple[report.Table, report.Table]:
    cost = report.Table(
        "Pixel feedback: the inpainting pass without and with it",
        ["model", "T", "images", "batch", "seconds without", "seconds with", "with / without",
         "with / without by FLOPs", "(example, step) pairs with a fed-back token"],
        notes=["Both passes timed in this run (median of the repeats, compilation excluded). 'by "
               "FLOPs': the ratio if every FLOP ran at one rate; feedback as it is defined "
               "(a full VQ decode and encode of every example at every step) cannot cost less "
               "on any device where VQ and transformer FLOPs run at similar rates."])
    work = report.Table(
        "Pixel feedback: what one step's feedback recomputes, per image",
        ["model", "VQ encode GFLOP", "VQ decode GFLOP", "transformer step GFLOP",
         "encoder: pixels one token's convolutions read / image side",
         "decoder: tokens one pixel's convolutions read / grid side",
         "GroupNorms / attention blocks (encoder + decoder)"],
        notes=["Every ResidualBlock holds GroupNorms, whose mean and variance are taken over "
               "the whole image: a token's code depends on every pixel, so decoding and "
               "re-encoding a window around the fed-back tokens cannot give the same ids."])
    return cost, work


def measure(m: Model, cost: report.Table, work: report.Table, images, known, batch: int,
            total_iters: Sequence[int], repeats: int) -> None:
    f = flops_per_image(m)
    encoder, decoder = layer_lists(m.vqgan)
    kinds = [s.kind for s in encoder + decoder]
    # A ResidualBlock holds two GroupNorms, an attention block one.
    norms = 2 * kinds.count("res") + kinds.count("groupnorm") + kinds.count("nonlocal")
    work.add(m.name, f["encode"] / 1e9, f["decode"] / 1e9, f["step"] / 1e9,
             f"{conv_reach(encoder)} / {m.vqgan.img_resolution}",
             f"{conv_reach(decoder)} / {m.vqgan.latent_resolution}",
             f"{norms} / {kinds.count('nonlocal')}")
    for total_iter in total_iters:
        cfg = dataclasses.replace(m.cfg, decode=dataclasses.replace(m.cfg.decode,
                                                                    total_iter=total_iter,
                                                                    sweet_spot=None))
        seconds = {}
        for feedback in (False, True):
            run_cfg = dataclasses.replace(cfg, pixel_feedback=feedback)
            seconds[feedback] = timing.seconds(lambda: inpaint.inpaint_batched(
                m.vqgan, m.vq_params, m.transformer, m.tr_params, images, known, run_cfg,
                jax.random.key(0), batch).ids, repeats=repeats)
        share = share_needing_feedback(m, dataclasses.replace(cfg, pixel_feedback=True), images,
                                       known, batch)
        cost.add(m.name, total_iter, len(images), batch, seconds[False], seconds[True],
                 f"{seconds[True] / seconds[False]:.2f}x", f"{flop_ratio(f, total_iter):.2f}x",
                 f"{share:.0%}")


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench.feedback_cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="tiny,small,faces-small",
                   help="config variants (random weights) and shipped models, comma-separated")
    p.add_argument("--total_iter", default="1,8", help="decoding steps T, comma-separated")
    p.add_argument("--num_images", type=int, default=128, help="built-in test faces")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="", help="append the tables to this file (e.g. bench/RESULTS.md)")
    args = p.parse_args(argv)
    known_names = CONFIG_VARIANTS + tuple(pretrained.names())
    unknown = [n for n in args.models.split(",") if n not in known_names]
    if unknown:
        p.error(f"--models: unknown {unknown}; use any of {', '.join(known_names)}")
    try:
        args.total_iter = [int(t) for t in args.total_iter.split(",")]
    except ValueError:
        p.error(f"--total_iter: comma-separated integers, got {args.total_iter!r}")
    for option in ("num_images", "batch", "repeats"):
        if getattr(args, option) < 1:
            p.error(f"--{option} must be >= 1, got {getattr(args, option)}")
    if args.out and not Path(args.out).parent.is_dir():
        p.error(f"--out: {args.out}: its folder does not exist")
    if min(args.total_iter) < 1:
        p.error(f"--total_iter: every T must be >= 1, got {args.total_iter}")
    return args


def main(argv=None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    command = "python -m bench.feedback_cost " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    images, known = faces.faces_test_set(args.num_images)
    cost, work = tables()
    for name in args.models.split(","):
        print(f"[bench] {name}", file=sys.stderr, flush=True)
        measure(load(name), cost, work, images, known, min(args.batch, len(images)),
                args.total_iter, args.repeats)
    info = device.describe()
    info["test set"] = f"{len(images)} built-in held-out faces with brush masks"
    text = report.header(command, info) + "\n" + cost.markdown() + "\n" + work.markdown()
    report.publish(text, args.out)


if __name__ == "__main__":
    main()
