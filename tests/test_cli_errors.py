"""Every command line answers a user's mistake with one line: exit status 1, `error: ...` naming the
option or file, no traceback (one table per command, each run as the console script's module).

The cases fail before any model is compiled where the command allows it; the shipped faces-small
model stands in where a model must be loaded.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from maskgit_jax import imageio, pretrained
from maskgit_jax.data import faces

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
ENV.pop("MASKGIT_TRACEBACK", None)


def flip_byte_inside_member(archive: Path, member_suffix: str) -> None:
    """Corrupts one byte of a stored zip member's data, so that only its CRC-32 tells."""
    with zipfile.ZipFile(archive) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(member_suffix))
    data = bytearray(archive.read_bytes())
    with open(archive, "rb") as f:  # the local header's name and extra lengths locate the data
        f.seek(info.header_offset + 26)
        name_len, extra_len = np.frombuffer(f.read(4), "<u2")
    data[info.header_offset + 30 + int(name_len) + int(extra_len) + info.compress_size // 2] ^= 0xFF
    archive.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> Path:
    """The inputs of the tables below, built once."""
    torch = pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("inputs")
    imageio.write_image(d / "pic.png", np.zeros((40, 30, 3), np.uint8))
    imageio.write_mask(d / "mask.png", np.ones((40, 30), bool))
    imageio.write_image(d / "existing.png", np.zeros((4, 4, 3), np.uint8))
    for folder in ("pics", "masks"):
        imageio.write_image(d / folder / "photo.png", np.full((40, 30, 3), 255, np.uint8))
    imageio.write_image(d / "pics_dup" / "image_001.png", np.zeros((8, 8, 3), np.uint8))
    imageio.write_image(d / "pics_dup" / "IMAGE_001.png", np.zeros((8, 8, 3), np.uint8))
    imageio.write_image(d / "masks_dup" / "mask_001.png", np.zeros((8, 8, 3), np.uint8))
    truth, known = faces.faces_test_set(2, seed=0)
    imageio.write_lab_layout(d / "lab", truth, known)
    shutil.copytree(d / "lab", d / "lab_dup")
    masked = d / "lab_dup" / "masked_image"
    shutil.copy(masked / "image_001.png", masked / "IMAGE_001.png")
    (d / "nonempty").mkdir()
    (d / "nonempty" / "notes.txt").write_text("the user's")
    (d / "empty").mkdir()
    (d / "afile").write_text("a file")
    (d / "notes.txt").write_text("not weights")
    torch.save({"a.weight": torch.arange(4096, dtype=torch.float32)}, d / "crc.pt")
    flip_byte_inside_member(d / "crc.pt", "data/0")
    (d / "foreign_config").mkdir()
    (d / "foreign_config" / "config.json").write_text('{"another": "program"}')
    (d / "exported").mkdir()
    shutil.copy(pretrained.path("faces-small") / "config.json", d / "exported")
    (d / "cfgonly").mkdir()
    (d / "cfgonly" / "config.json").write_text("{}")
    return d


def one_line_error(module: str, args: str, d: Path, env: dict = ENV) -> str:
    """Runs ``python -m module args`` ({d}: the inputs folder) in a fresh folder; returns its one
    stderr line after checking the exit status and that there is no traceback."""
    argv = [a.format(d=d) for a in args.split()]
    cwd = d / "cwd"
    cwd.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(lines) == 1, (
        proc.returncode, proc.stderr[-3000:])
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


SAMPLE = [
    ("--image={d}/pic.png", "--image needs --mask"),
    ("--image={d}/pic.png --mask={d}/mask.png --output={d}/pic.png", "is the input"),
    ("--image={d}/pic.png --mask={d}/mask.png --output={d}/mask.png", "is the input"),
    ("--image={d}/pic.png --mask={d}/mask.png --output={d}/existing.png", "exists; choose a new file"),
    ("--image={d}/pics --mask={d}/masks --output={d}/pics/filled", "lies inside the input"),
    ("--image={d}/pics --mask={d}/masks --output={d}/masks", "is the input"),
    ("--image={d}/pics_dup --mask={d}/masks_dup --output={d}/o", "pairs under the same name as"),
    ("--input={d}/lab --output={d}/lab/masked_image", "lies inside the input"),
    ("--input={d}/lab --output={d}", "holds the input"),
    ("--input={d}/lab_dup --output={d}/o", "two files for number 001"),
    ("--input={d}/notes.txt --output={d}/o", "cannot read array file: "),  # not a folder: an .npz
    ("--num=2 --output={d}/nonempty", "is not empty; choose a new folder, or pass --overwrite"),
    ("--num=2 --output={d}/nonempty --overwrite", "notes.txt, which maskgit_jax did not write"),
    ("--choice_temperature=-1 --output={d}/o", "choice_temperature must be a finite number >= 0"),
    ("--sample_temperature=-1 --output={d}/o", "sample_temperature must be a finite number >= 0"),
    ("--input={d}/lab --fid --fid_weights={d}/crc.pt --output={d}/o", "crc.pt: corrupt torch zip"),
    ("--model=faces-large", "neither a shipped model"),
    ("--noema --num=2 --output={d}/o", "an exported model holds one set of parameters"),
    ("--step=3 --num=2 --output={d}/o", "an exported model holds one set of parameters"),
    ("--num=abc", "flag --num=abc"),
]


@pytest.mark.parametrize("args, message", SAMPLE)
def test_sample(d, args, message):
    assert message in one_line_error("maskgit_jax.cli.sample", args, d)
    assert not (d / "o").exists()  # nothing written for a refused command


EMOJI64 = [
    ("--build {d}/pics --into {d}/o", "missing folder: "),
    ("--check {d}", "missing folder: "),
    ("--export {d}/pics", "is not empty"),
    ("", "one of the arguments --build --export --check is required"),
]


@pytest.mark.parametrize("args, message", EMOJI64)
def test_emoji64_files(d, args, message):
    assert message in one_line_error("maskgit_jax.data.emoji64", args, d)
    assert not (d / "o").exists()


TRAIN = [  # each case with its own workdir ({d}/w_INDEX); the batch case runs on two virtual devices
    ("--config.tokenizer.lrr=1", "--config.tokenizer.lrr: no such config field; Did you mean \"lr\""),
    ("--config.stages=tokenizr", "config.stages='tokenizr'"),
    ("--config=faces.py:huge", "unknown variant 'huge'"),
    ("--config.tokenizer.batch_size=3", "must be divisible by the number of devices (2)"),
    ("--workdir={d}/afile/run", "afile/run"),   # a workdir that cannot be made
    ("--config.data.source={d}/empty", "no images under"),  # before anything is written
    ("--on_unreadable_tokenizer=later", "flag --on_unreadable_tokenizer=later"),
]


@pytest.mark.parametrize("index, case", enumerate(TRAIN))
def test_train(d, index, case):
    args, message = case
    base = f"--config=faces.py:tiny --workdir={{d}}/w_{index} " if "--config=" not in args else \
        f"--workdir={{d}}/w_{index} "
    env = dict(ENV, XLA_FLAGS="--xla_force_host_platform_device_count=2") if "batch" in args else ENV
    assert message in one_line_error("maskgit_jax.cli.train", base + args, d, env)
    if "source" in args:
        assert not (d / f"w_{index}").exists()  # a bad data folder is found before the workdir is made


EXPORT = [
    ("", "the following arguments are required: --workdir"),
    ("--workdir={d}/missing", "missing/config.json not found"),
    ("--workdir={d}/cfgonly --step=x", "argument --step: invalid int value: 'x'"),
    ("--workdir={d}/cfgonly", "no tokenizer checkpoint"),
    ("--workdir={d}/cfgonly --about=novalue", "expected KEY=VALUE"),
    ("--workdir={d}/cfgonly --decoding=novalue", "expected KEY=VALUE"),
]


@pytest.mark.parametrize("args, message", EXPORT)
def test_export(d, args, message):
    assert message in one_line_error("maskgit_jax.export", args, d)


SWEEP = [
    ("--output={d}/o", "one of the arguments --model --workdir is required"),
    ("--model=faces-small --schedules=nope --output={d}/o", "unknown schedule 'nope'"),
    ("--model=faces-small --total_iters=1,a --output={d}/o", "--total_iters: 'a' is not an integer"),
    ("--model=faces-small --choice_temperature=-1 --output={d}/o", "choice_temperature must be"),
    ("--model=faces-small --input={d}/lab --output={d}/lab/sweep", "lies inside the input"),
    ("--model=faces-small --num=2 --output={d}/nonempty", "is not empty"),
]


@pytest.mark.parametrize("args, message", SWEEP)
def test_sweep(d, args, message):
    assert message in one_line_error("maskgit_jax.sweep", args, d)
    assert not (d / "o").exists()


CONVERT = [
    ("--out={d}/o", "--vqgan"),
    ("--vqgan={d}/notes.txt --out={d}/o", "notes.txt: not a torch checkpoint"),
    ("--vqgan={d}/crc.pt --out={d}/o", "crc.pt: corrupt torch zip archive (Bad CRC-32"),
    ("--vqgan={d}/notes.txt --out={d}/afile", "afile: exists and is not a folder"),
    ("--vqgan={d}/notes.txt --out={d}/foreign_config", "config.json: is not an exported model's"),
    ("--vqgan={d}/notes.txt --out={d}/exported", "already holds a model; choose another folder, or"),
]


@pytest.mark.parametrize("args, message", CONVERT)
def test_convert_lab(d, args, message):
    assert message in one_line_error("maskgit_jax.convert_lab", args, d)
    assert (d / "foreign_config" / "config.json").read_text() == '{"another": "program"}'


FID = [
    ("{d}/pics", "expected two image folders"),
    ("{d}/empty {d}/pics", "empty: no image files"),
    ("{d}/pics {d}/masks --weights={d}/crc.pt", "crc.pt: corrupt torch zip archive"),
    ("{d}/pics {d}/masks --weights={d}/pic.png", "pic.png: not a torch checkpoint"),
    ("{d}/pics {d}/masks --weights={d}/missing.pt", "no such FID weights file"),
    ("--batch_size=x {d}/pics {d}/masks", "flag --batch_size=x"),
]


@pytest.mark.parametrize("args, message", FID)
def test_fid(d, args, message):
    assert message in one_line_error("maskgit_jax.fid", args, d)


@pytest.mark.parametrize("module, args, extra", [
    ("maskgit_jax.cli.sample", ["--model=faces-large", "--verbosity=1"], {}),
    ("maskgit_jax.cli.sample", ["--model=faces-large"], {"MASKGIT_TRACEBACK": "1"}),
    ("maskgit_jax.export", ["--workdir=missing"], {"MASKGIT_TRACEBACK": "1"}),
])
def test_traceback_when_asked_for(tmp_path, module, args, extra):
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path,
                          env=dict(ENV, **extra), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback (most recent call last)" in proc.stderr
