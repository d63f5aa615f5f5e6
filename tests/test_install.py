"""A non-editable install, used from another folder: the console scripts, the shipped model and the
packaged configs work without the checkout."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maskgit_jax import imageio

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``pip install .`` (a built wheel, not a link to the checkout) into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                           str(target), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (target / "maskgit_jax" / "pretrained" / "faces-small" / "params.msgpack").is_file()
    return target


def _env(installed: Path) -> dict:
    return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(installed))


def _run(installed: Path, cwd: Path, script: str, *args: str) -> str:
    """One of the installed console scripts (pip wrote it to TARGET/bin), run from ``cwd``."""
    proc = subprocess.run([sys.executable, str(installed / "bin" / script), *args], cwd=cwd,
                          env=_env(installed), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_installed_package_inpaints_trains_and_exports_elsewhere(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-c", "import maskgit_jax; print(maskgit_jax.__file__)"],
                          cwd=elsewhere, env=_env(installed), capture_output=True, text=True)
    assert proc.stdout.startswith(str(installed)), proc.stdout + proc.stderr  # not the checkout
    picture = np.random.default_rng(0).integers(0, 256, (97, 131, 3), dtype=np.uint8)
    known = np.ones((97, 131), bool)
    known[10:60, 50:120] = False
    imageio.write_image(elsewhere / "face.png", picture)
    imageio.write_mask(elsewhere / "mask.png", known)

    _run(installed, elsewhere, "maskgit-sample", "--model=faces-small", "--image=face.png",
         "--mask=mask.png", "--output=out.png")
    out = imageio.read_image(elsewhere / "out.png")
    np.testing.assert_array_equal(out[known], picture[known])  # byte-identical known pixels
    assert (out[~known] != picture[~known]).mean() > 0.5

    # The packaged config by name, then the export train.py writes, then sampling with it.
    _run(installed, elsewhere, "maskgit-train", "--config=faces.py:tiny", "--workdir=run")
    _run(installed, elsewhere, "maskgit-export", "--workdir=run", "--step=2", "--out=exported")
    _run(installed, elsewhere, "maskgit-sample", "--model=exported", "--num=3", "--output=samples")
    assert (elsewhere / "run" / "model" / "params.msgpack").is_file()
    assert sorted(p.name for p in (elsewhere / "samples").glob("image_*.png")) == [
        "image_000.png", "image_001.png", "image_002.png"]


def test_installed_package_ships_emoji64_and_its_attribution(installed, tmp_path):
    """A pip install has the emoji64 splits (read by name from a folder without one) and their
    CC-BY notice, next to the files and in the package metadata."""
    script = ("from maskgit_jax.data import locate, test_sets; print(locate.resolve('emoji64'), "
              "len(test_sets.read_test_set('emoji64/test')))")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_env(installed),
                          capture_output=True, text=True, timeout=300)
    assert proc.stdout.split() == [str(installed / "maskgit_jax" / "data" / "emoji64"), "400"], proc.stderr
    shipped = installed / "maskgit_jax" / "data" / "emoji64"
    assert {p.name for p in shipped.iterdir()} >= {"train.npz", "val.npz", "test.npz", "README.md"}
    notices = list(installed.glob("maskgit_jax-*.dist-info/licenses/maskgit_jax/data/emoji64/README.md"))
    assert len(notices) == 1 and "CC-BY 4.0" in notices[0].read_text()
