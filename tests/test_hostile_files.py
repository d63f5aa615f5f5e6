"""A hostile-input pass over every file reader: images, masks, .npz image sets, course checkpoints, FID weights,
exported models and official MaskGIT checkpoints, each truncated, corrupted inside (a CRC-checked zip member or PNG chunk, a
structural msgpack byte), of the wrong type, and with a header asking for an absurd size. Each must
be a ValueError (what every command line turns into one line) naming the file, on one line.

The hostile files are made here from small valid ones: an image and a mask written by the test, a
small torch file saved by torch, and a copy of the shipped faces-small model.
"""

import io
import json
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from maskgit_jax import imageio, pretrained
from maskgit_jax.data import array_files
from maskgit_jax.fid import weights as fid_weights
from maskgit_jax.lab_import.weights import Weights
from maskgit_jax.pipeline import MaskGIT
from tests.test_cli_errors import flip_byte_inside_member

PNG_BYTES = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --- images and masks ----------------------------------------------------------------------------

def _image(path: Path, how: str) -> Path:
    imageio.write_mask(path, np.random.default_rng(0).random((32, 32)) < 0.5)  # valid image and mask
    if how == "truncated":
        _half(path)
    elif how == "corrupt":  # a byte inside the compressed pixel data (IDAT)
        data = bytearray(path.read_bytes())
        start = data.index(b"IDAT") + 4
        data[start + 10] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "wrong type":
        path.write_text('{"a": "json file named .png"}')
    elif how == "huge header":  # a valid PNG header declaring 2**31-1 x 2**31-1 pixels
        header = struct.pack(">IIBBBBB", 2**31 - 1, 2**31 - 1, 8, 0, 0, 0, 0)
        path.write_bytes(PNG_BYTES + _png_chunk(b"IHDR", header)
                         + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))
    return path


# --- torch files (course checkpoints, FID weights) --------------------------------------------------

def _torch_file(path: Path, how: str) -> Path:
    torch = pytest.importorskip("torch")
    torch.save({"encoder.weight": torch.arange(4096, dtype=torch.float32)}, path)
    if how == "truncated":
        _half(path)
    elif how == "corrupt":
        flip_byte_inside_member(path, "data/0")
    elif how == "wrong type":
        _image(path.with_suffix(".png"), "valid").rename(path)
    elif how == "huge header":  # data.pkl opens a 2**62-byte bytes object (BINBYTES8)
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", b"\x80\x02\x8e" + struct.pack("<Q", 2**62))
    return path


# --- .npz image sets (the data sources' array files) ------------------------------------------------

def _array_file(path: Path, how: str) -> Path:
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    array_files.write_images(path, images, [f"{i}.png" for i in range(4)])
    if how == "truncated":
        _half(path)
    elif how == "corrupt":
        flip_byte_inside_member(path, "images.npy")
    elif how == "wrong type":
        _image(path.with_suffix(".png"), "valid").rename(path)
    elif how == "huge header":  # an .npy header announcing 2**40 bytes over 64 bytes of data
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                      "shape": (2**40,)})
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("images.npy", header.getvalue() + bytes(64))
    return path


# --- exported models -----------------------------------------------------------------------------

def _model(folder: Path, how: str) -> Path:
    shutil.copytree(pretrained.path("faces-small"), folder)
    params, config = folder / "params.msgpack", folder / "config.json"
    values = json.loads(config.read_text())
    if how in ("truncated", "wrong type", "huge header"):
        # as a model saved before config.json recorded the digest: the parser itself must refuse
        config.write_text(json.dumps({k: v for k, v in values.items() if k != "params_sha256"}))
    if how == "truncated":
        _half(params)
    elif how == "corrupt":  # one bit of one weight: msgpack still parses it, the digest differs
        data = bytearray(params.read_bytes())
        data[len(data) // 2] ^= 0x01
        params.write_bytes(bytes(data))
    elif how == "wrong type":
        _image(folder / "image.png", "valid").rename(params)
    elif how == "huge header":  # a map32 header announcing 2**32-1 entries
        params.write_bytes(b"\xdf" + struct.pack(">I", 2**32 - 1))
    elif how == "truncated config":
        _half(config)
    elif how == "wrong format":
        config.write_text(json.dumps(dict(values, format="someone.else")))
    elif how == "huge config":  # an image side of 2**62 pixels
        config.write_text(json.dumps(dict(values, tokenizer=dict(values["tokenizer"],
                                                                 img_resolution=2**62))))
    return folder


# --- official MaskGIT checkpoints (flax msgpack, no checksum of their own) ------------------------

OFFICIAL = Path(__file__).resolve().parent / "data" / "official"


def _official(folder: Path, how: str) -> Path:
    """A folder with the reduced official pair, its transformer file damaged (it is named)."""
    folder.mkdir()
    shutil.copy(OFFICIAL / "tokenizer_ckpt", folder / "tokenizer_ckpt")
    path = shutil.copy(OFFICIAL / "transformer_ckpt", folder / "transformer_ckpt")
    if how == "truncated":
        _half(path)
    elif how == "corrupt":  # the top map's header
        data = bytearray(path.read_bytes())
        data[0] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "wrong type":
        _image(folder / "image.png", "valid").rename(path)
    elif how == "huge header":  # a map32 header announcing 2**32-1 entries
        path.write_bytes(b"\xdf" + struct.pack(">I", 2**32 - 1))
    return folder


READERS = {  # name: (make the hostile file, read it)
    "image": (_image, imageio.read_image, ".png"),
    "array file": (_array_file, array_files.read_images, ".npz"),
    "mask": (_image, imageio.read_mask, ".png"),
    "course checkpoint": (_torch_file, Weights.read, ".pt"),
    "FID weights": (_torch_file, fid_weights.load_variables, ".pt"),
    "exported model": (_model, MaskGIT.from_pretrained, ""),
    "official checkpoint": (_official, MaskGIT.from_pretrained, ""),
}
DAMAGE = ("truncated", "corrupt", "wrong type", "huge header")
CONFIG_DAMAGE = ("truncated config", "wrong format", "huge config")
CASES = [(reader, how) for reader in READERS for how in DAMAGE] + [
    ("exported model", how) for how in CONFIG_DAMAGE]


@pytest.mark.parametrize("reader, how", CASES)
def test_each_hostile_file_is_a_one_line_error_naming_it(tmp_path, reader, how):
    make, read, suffix = READERS[reader]
    path = make(tmp_path / f"hostile{suffix}", how)
    with pytest.raises(ValueError) as caught:
        read(path)
    message = str(caught.value)
    if reader == "exported model":  # the damaged file of the folder is the one named
        path = path / ("config.json" if how in CONFIG_DAMAGE else "params.msgpack")
    if reader == "official checkpoint":
        path = path / "transformer_ckpt"
    assert "\n" not in message and str(path) in message, message


@pytest.mark.parametrize("reader", READERS)
def test_the_valid_originals_are_read(tmp_path, reader):
    """The hostile files above differ from readable ones only by the damage."""
    make, read, suffix = READERS[reader]
    if reader == "FID weights":  # the small torch file is not an Inception: refused by its names
        with pytest.raises(ValueError, match="not FID Inception weights"):
            read(make(tmp_path / f"valid{suffix}", "valid"))
        return
    read(make(tmp_path / f"valid{suffix}", "valid"))
