"""train.py and sample.py end to end on the tiny config, as a user runs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maskgit_jax import imageio
from maskgit_jax import metrics as metrics_lib
from maskgit_jax.data import faces

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))


def run(*args):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_train_then_sample_builtin_and_lab_layout(tmp_path):
    workdir = tmp_path / "run"
    # The tiny config as it is: its programs are those of the tests' shared tiny run (conftest),
    # read from the run's compilation cache by whichever of the two comes second.
    run("train.py", "--config=configs/faces.py:tiny", f"--workdir={workdir}")
    assert (workdir / "checkpoints" / "transformer" / "2").is_dir()

    out = run("sample.py", f"--workdir={workdir}", "--schedule=square", "--num=5", "--batch_size=4",
              "--total_iter=4", f"--output={tmp_path / 'out'}")
    assert "masked-region PSNR, square T=4" in out and "mean-colour fill" in out
    names = sorted(p.name for p in (tmp_path / "out").glob("image_*.png"))
    assert names == [f"image_{i:03d}.png" for i in range(5)]
    assert imageio.read_image(tmp_path / "out" / "image_000.png").shape == (64, 64, 3)
    strip = imageio.read_image(tmp_path / "out" / "steps" / "image_000.png")
    assert strip.shape[1] > 64 * 5  # the input and one column per step
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["images"] == 5 and np.isfinite(metrics["psnr_masked"])
    assert metrics["pixel_feedback"] is True  # the faces config's sample.pixel_feedback
    assert "masked-region PSNR, T=1:" in out
    # T=1 and the mean-colour fill get the same three scores; the fill's, computed here, agree.
    for suffix in ("T1", "mean_fill"):
        assert all(np.isfinite(metrics[f"{m}_masked_{suffix}"]) for m in ("psnr", "ssim", "l1"))
    truth, known = faces.faces_test_set(5, seed=0)
    fill = metrics_lib.mean_fill(truth, known)
    assert metrics["psnr_masked_mean_fill"] == pytest.approx(
        np.nanmean(metrics_lib.masked_psnr(fill, truth, known)), abs=1e-9)
    assert metrics["l1_masked_mean_fill"] == pytest.approx(
        np.nanmean(metrics_lib.masked_l1(fill, truth, known)), abs=1e-9)

    # A user's picture of any size with its mask, then folders of them paired by name.
    picture = np.random.default_rng(0).integers(0, 256, (97, 131, 3), dtype=np.uint8)
    known = np.ones((97, 131), bool)
    known[20:70, 30:100] = False
    imageio.write_image(tmp_path / "pics" / "photo.png", picture)
    imageio.write_mask(tmp_path / "masks" / "photo.png", known)
    out = run("sample.py", f"--model={workdir}", f"--image={tmp_path / 'pics' / 'photo.png'}",
              f"--mask={tmp_path / 'masks' / 'photo.png'}", f"--output={tmp_path / 'filled.png'}")
    filled = imageio.read_image(tmp_path / "filled.png")
    np.testing.assert_array_equal(filled[known], picture[known])
    assert (filled[~known] != picture[~known]).mean() > 0.5
    run("sample.py", f"--model={workdir}", f"--image={tmp_path / 'pics'}",
        f"--mask={tmp_path / 'masks'}", f"--output={tmp_path / 'filled'}", "--total_iter=2")
    np.testing.assert_array_equal(imageio.read_image(tmp_path / "filled" / "photo.png")[known],
                                  picture[known])

    # A folder in the lab layout, written with the lab's naming.
    images, known = faces.faces_test_set(3, seed=4)
    imageio.write_lab_layout(tmp_path / "lab", images, known)
    run("sample.py", f"--workdir={workdir}", f"--input={tmp_path / 'lab'}", "--composite=none",
        "--total_iter=3", "--sweet_spot=2", "--nopixel_feedback", f"--output={tmp_path / 'lab_out'}")
    assert sorted(p.name for p in (tmp_path / "lab_out").glob("image_*.png")) == [
        "image_000.png", "image_001.png", "image_002.png"]
    lab_metrics = json.loads((tmp_path / "lab_out" / "metrics.json").read_text())
    assert lab_metrics["pixel_feedback"] is False and lab_metrics["composite"] == "none"

    # The sweep report over the same workdir: T=1 once (any schedule), a sweet spot >= T skipped,
    # then the two baselines.
    out = run("-m", "maskgit_jax.sweep", f"--workdir={workdir}", "--schedules=linear,square",
              "--total_iters=1,3", "--sweet_spots=0,2", "--num=4", "--batch_size=4",
              f"--output={tmp_path / 'sweep'}")
    lines = (tmp_path / "sweep" / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("schedule,total_iter,sweet_spot,psnr_masked,ssim_masked,l1_masked")
    assert [line.split(",")[:3] for line in lines[1:]] == [
        ["any", "1", ""], ["linear", "3", ""], ["linear", "3", "2"], ["square", "3", ""],
        ["square", "3", "2"], ["(gray-filled input)", "", ""], ["(mean-colour fill)", "", ""]]
    table = (tmp_path / "sweep" / "sweep.md").read_text().splitlines()
    assert len(table) == 2 + 7 and table[0].startswith("| schedule | total_iter |")
    assert imageio.read_image(tmp_path / "sweep" / "sweep.png").shape[2] == 3


def _error(*args) -> str:
    """The last line of a command that must fail with one line and no traceback."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return proc.stderr.strip().splitlines()[-1]


def test_picture_errors_are_one_line(tmp_path):
    image = tmp_path / "photo.png"
    imageio.write_image(image, np.zeros((40, 30, 3), np.uint8))
    imageio.write_mask(tmp_path / "mask.png", np.ones((30, 40), bool))
    assert _error("sample.py", f"--image={image}") == (
        "error: --image needs --mask (white = known pixels, black = pixels to fill), --extend or --box")
    assert _error("sample.py", f"--image={image}", f"--mask={tmp_path / 'mask.png'}") == (
        f"error: {tmp_path / 'mask.png'}: is 30x40 but {image} is 40x30")
    assert _error("sample.py", f"--image={image}", f"--mask={tmp_path / 'mask.png'}",
                  f"--output={image}") == f"error: --output={image}: is the input {image}; choose another path"
    (tmp_path / "masks").mkdir()
    assert _error("sample.py", f"--image={tmp_path}", f"--mask={tmp_path / 'masks'}").startswith(
        f"error: {tmp_path / 'mask.png'}: has no partner in {tmp_path / 'masks'}")


def test_bad_options_give_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "sample.py", f"--workdir={tmp_path / 'nothing'}"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith(f"error: --workdir={tmp_path / 'nothing'}: no such folder")
    assert _error("sample.py", "--model=faces-large") == (
        "error: 'faces-large' is neither a shipped model (emoji-small, faces-small) nor an existing folder")
    proc = subprocess.run([sys.executable, "train.py", "--config=configs/faces.py:tiny",
                           "--config.stages=tokeniser", f"--workdir={tmp_path / 'w'}"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "config.stages='tokeniser'" in proc.stderr
