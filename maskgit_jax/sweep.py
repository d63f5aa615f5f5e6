"""Sweep report: inpaint one test set for every schedule x total_iter x sweet_spot and compare.

    python -m maskgit_jax.sweep --model=runs/faces --schedules=linear,cosine,square \
        --total_iters=1,4,8,12 --sweet_spots=0,6 [--input=lab_dir] [--fid]

(--model: a shipped name, an exported folder or a training workdir.)

Writes OUT/sweep.csv, OUT/sweep.md (a markdown table) and OUT/sweep.png (masked-region PSNR, and
FID when computed, against total_iter; one line per schedule and sweet spot). The models are loaded
and the test set read once; each (shape, T, schedule, sweet spot) compiles its decoder once.
"""

import csv
import dataclasses
import itertools
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from maskgit_jax import fid, inpaint, metrics, output_folder, sampling, schedules
from maskgit_jax.cli import boundary
from maskgit_jax.data import locate
from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.pipeline import MaskGIT

ONE_STEP = "any"   # the schedule column of the T=1 row
COLUMNS = ("schedule", "total_iter", "sweet_spot", "psnr_masked", "ssim_masked", "l1_masked",
           "token_accuracy", "fid", "seconds")


@dataclasses.dataclass(frozen=True)
class SweepOptions:
    model: str                         # a shipped name, an exported folder or a training workdir
    output: str
    schedules: Sequence[str] = ("linear", "cosine", "square")
    total_iters: Sequence[int] = (1, 4, 8, 12)
    sweet_spots: Sequence[int] = (0,)  # 0: all T steps; s > 0: stop after s steps (skipped where s >= T)
    input: Optional[str] = None        # test set (test_sets.read_test_set); None: the built-in test faces
    num_builtin: int = 64
    choice_temperature: Optional[float] = None  # None: the model's default
    sample_temperature: Optional[float] = None  # None: the model's default (0: argmax tokens)
    code_kernel: Optional[float] = None  # None: the model's default
    render_temperature: Optional[float] = None  # None: the model's default
    pixel_feedback: Optional[bool] = None  # None: the model's default
    composite: Optional[str] = None    # None: the model's default (inpaint.COMPOSITES)
    batch_size: int = 64
    seed: int = 0                      # the decoding noise
    test_seed: int = 0                 # which built-in test faces
    fid: bool = False
    fid_weights: Optional[str] = None
    overwrite: bool = False            # replace the report of an earlier run in ``output``


def settings(opts: SweepOptions) -> list[tuple[str, int, Optional[int]]]:
    """(schedule, T, sweet spot or None) in table order.

    T=1 reveals everything in one step whatever the schedule, so it appears once (schedule "any");
    a sweet spot >= T is the full run, so it is skipped.
    """
    for name in opts.schedules:
        schedules.get(name)  # an unknown name fails before any work, listing the valid ones
    out = []
    for name, total_iter, spot in itertools.product(opts.schedules, opts.total_iters, opts.sweet_spots):
        if total_iter < 1 or spot < 0:
            raise ValueError(f"total_iters must be >= 1 and sweet_spots >= 0, got T={total_iter}, "
                             f"sweet_spot={spot}")
        if total_iter == 1:
            name, spot = ONE_STEP, 0
        if (spot == 0 or spot < total_iter) and (name, total_iter, spot or None) not in out:
            out.append((name, total_iter, spot or None))
    return out


def _baselines(truth: np.ndarray, known: np.ndarray) -> dict[str, np.ndarray]:
    """Images to score next to the decoded ones: the holes filled gray (the masked input) and with
    each image's mean known colour."""
    return {"(gray-filled input)": fill_holes(truth, known),
            "(mean-colour fill)": metrics.mean_fill(truth, known)}


def run(opts: SweepOptions) -> list[dict]:
    """Runs the sweep, writes the CSV, the table and the plot; returns the rows."""
    grid = settings(opts)
    model = MaskGIT.from_pretrained(opts.model)
    model.decoding.override(choice_temperature=opts.choice_temperature,  # a bad one fails now
                            sample_temperature=opts.sample_temperature,
                            code_kernel=opts.code_kernel, render_temperature=opts.render_temperature,
                            composite=opts.composite)
    test = sampling.test_set(sampling.SampleOptions(output=opts.output, input=opts.input,
                                                    num_builtin=opts.num_builtin,
                                                    test_seed=opts.test_seed),
                             model.image_size)
    if test.ground_truth is None:
        raise ValueError(f"{opts.input}: the sweep needs ground truth (a gt/ folder or test_gt.csv)")
    if opts.fid:
        fid.inception_variables(opts.fid_weights)  # bad weights fail before any decoding
    read = locate.resolve(opts.input) if opts.input else None  # emoji64/test: the shipped file
    out = output_folder.prepare_folder(opts.output, [read], opts.overwrite)
    # Decoded from what the test set gives (the masked images); the truth is only scored against.
    images, truth, known = test.images, test.ground_truth, test.known
    true_ids = model.encode(truth, opts.batch_size)
    rows, outputs = [], []  # outputs[i]: the images scored in rows[i], kept for the FID at the end
    for name, total_iter, spot in grid:
        start = time.perf_counter()
        decode_as = opts.schedules[0] if name == ONE_STEP else name
        result = model.inpaint(images, known, seed=opts.seed, batch_size=opts.batch_size,
                               schedule=decode_as, total_iter=total_iter, sweet_spot=spot or 0,
                               choice_temperature=opts.choice_temperature,
                               sample_temperature=opts.sample_temperature,
                               code_kernel=opts.code_kernel,
                               render_temperature=opts.render_temperature,
                               pixel_feedback=opts.pixel_feedback, composite=opts.composite)
        seconds = time.perf_counter() - start
        rows.append({"schedule": name, "total_iter": total_iter, "sweet_spot": spot or "",
                     **sampling.scores(result, truth, known, true_ids), "seconds": round(seconds, 3)})
        outputs.append(result.model_images)
        _print(rows[-1])
    for name, filled in _baselines(truth, known).items():
        rows.append({"schedule": name, "total_iter": "", "sweet_spot": "",
                     **sampling.pixel_scores(filled, truth, known)})
        outputs.append(filled)
        _print(rows[-1])
    if opts.fid:
        fids = sampling.fids(dict(enumerate(outputs)), truth, opts)
        for i, row in enumerate(rows):
            row["fid"] = fids[i]
            print(f"fid {row['schedule']} {row['total_iter']} {row['sweet_spot']}: {fids[i]:.4f}")
    output_folder.record(out, ["sweep.csv", "sweep.md", "sweep.png"])
    write_csv(out / "sweep.csv", rows)
    (out / "sweep.md").write_text(markdown_table(rows))
    plot(out / "sweep.png", rows)
    return rows


def _print(row: dict) -> None:
    print(" ".join(f"{k}={_fmt(row[k])}" for k in COLUMNS if k in row), flush=True)


def _fmt(value) -> str:
    """A table cell; None (a score with nothing to score) is left empty."""
    return f"{value:.4f}" if isinstance(value, float) else "" if value is None else str(value)


def _columns(rows: list[dict]) -> list[str]:
    return [c for c in COLUMNS if any(c in row for row in rows)]


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_columns(rows))
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(rows: list[dict]) -> str:
    columns = _columns(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot(path: Path, rows: list[dict]) -> None:
    """PSNR (and FID) against T: one line per (schedule, sweet spot); T=1 and the baselines level."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("the sweep plot needs matplotlib: pip install matplotlib") from None
    curves = [r for r in rows if r["total_iter"] != "" and r["schedule"] != ONE_STEP]
    levels = [r for r in rows if r not in curves]
    metric_names = [m for m in ("psnr_masked", "fid") if any(m in row for row in rows)]
    fig, axes = plt.subplots(1, len(metric_names), figsize=(5.5 * len(metric_names), 4), squeeze=False)
    for ax, metric in zip(axes[0], metric_names):
        key = lambda r: (r["schedule"], str(r["sweet_spot"]))
        for (name, spot), group in itertools.groupby(sorted(curves, key=key), key=key):
            group = sorted(group, key=lambda r: r["total_iter"])
            ax.plot([r["total_iter"] for r in group], [r[metric] for r in group], marker="o",
                    linestyle="--" if spot else "-",
                    label=name + (f" (sweet spot {spot})" if spot else ""))
        for color, row in zip(("black", "tab:gray", "tab:brown"), levels):
            label = "T=1" if row["schedule"] == ONE_STEP else row["schedule"].strip("()")
            ax.axhline(row[metric], color=color, linestyle=":", label=label)
        ax.set_xlabel("total_iter T")
        ax.set_ylabel({"psnr_masked": "masked-region PSNR (dB)", "fid": "FID"}[metric])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    import argparse
    p = boundary.ArgumentParser(prog="maskgit-sweep", description=__doc__.split("\n")[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="a shipped model name, an exported model folder or a workdir")
    which.add_argument("--workdir", help="a training workdir (the same as --model=PATH)")
    p.add_argument("--output", help="where the report goes, a new or empty folder outside --input "
                                    "(default: MODEL/sweep for a folder, else sweep_MODEL)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the report of an earlier run in --output")
    p.add_argument("--input", help="test set: a lab-layout folder, an .npz test set or emoji64/test "
                                   "(shipped); default: built-in test faces")
    p.add_argument("--schedules", default="linear,cosine,square")
    p.add_argument("--total_iters", default="1,4,8,12")
    p.add_argument("--sweet_spots", default="0", help="0 = all steps")
    p.add_argument("--num", type=int, default=64, help="built-in test faces")
    p.add_argument("--choice_temperature", type=float, help="default: the model's")
    p.add_argument("--sample_temperature", type=float, help="0: argmax tokens; t > 0: sampled from "
                   "softmax(logits / t) (default: the model's)")
    p.add_argument("--code_kernel", type=float, help="0: the most probable code; w > 0: the code "
                   "with the most probability around it (default: the model's)")
    p.add_argument("--render_temperature", type=float, help="0: predicted tokens drawn as their "
                   "codes; > 0: as expected code vectors at this temperature (default: the model's)")
    p.add_argument("--pixel_feedback", action=argparse.BooleanOptionalAction,
                   help="re-encode tokens over partly known patches (default: the model's)")
    p.add_argument("--composite", choices=inpaint.COMPOSITES,
                   help="how the fill meets the picture (default: the model's)")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="the decoding noise")
    p.add_argument("--test_seed", type=int, default=0, help="which built-in test faces")
    p.add_argument("--fid", action="store_true", help="also the FID against the ground truth")
    p.add_argument("--fid_weights", help="FID Inception weights file (default: fetched once)")
    a = p.parse_args(argv)
    ints = lambda text, flag: [_int(v, flag) for v in text.split(",") if v]
    model = a.model or a.workdir
    output = a.output or str(Path(model) / "sweep" if Path(model).is_dir() else f"sweep_{model}")
    with boundary.user_errors():
        rows = run(SweepOptions(
            model=model, output=output, input=a.input,
            schedules=[s for s in a.schedules.split(",") if s],
            total_iters=ints(a.total_iters, "--total_iters"),
            sweet_spots=ints(a.sweet_spots, "--sweet_spots"), num_builtin=a.num,
            choice_temperature=a.choice_temperature, sample_temperature=a.sample_temperature,
            code_kernel=a.code_kernel,
            render_temperature=a.render_temperature,
            pixel_feedback=a.pixel_feedback, composite=a.composite,
            batch_size=a.batch_size, seed=a.seed, test_seed=a.test_seed, fid=a.fid,
            fid_weights=a.fid_weights, overwrite=a.overwrite))
    print(f"wrote {len(rows)} rows to {output}/sweep.csv, sweep.md, sweep.png")


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{flag}: {text!r} is not an integer") from None


if __name__ == "__main__":
    main()
