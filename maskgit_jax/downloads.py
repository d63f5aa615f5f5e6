"""Files fetched once into the cache folder: where it is, their sha256, and atomic writes.

CACHE = $XDG_CACHE_HOME/maskgit_jax (default ~/.cache/maskgit_jax). A file arrives under its real
name only complete and verified: it is written to a private ``*.part`` file in the same folder,
checked (size, sha256), then renamed (``os.replace``, atomic), so an interrupted or corrupt
transfer never leaves a file that a later run would use, and concurrent fetches never see a
half-written one. Used by the FID weights (``maskgit_jax.fid.fetch``) and the official MaskGIT
checkpoints (``maskgit_jax.official.download``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import BinaryIO, Iterator, Optional


class DownloadError(ValueError):
    """A file that cannot be fetched or trusted; the message names it and what to do."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "maskgit_jax"


def sha256(path: str | os.PathLike, member: str | None = None) -> str:
    """Hex sha256 of a file (or of one `member` of a zip file), remembered per (path, size, mtime):
    checking a large file on every use would show."""
    st = os.stat(path)
    return _sha256(os.path.abspath(path), member, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, member: str | None, _size: int, _mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(open(path, "rb"))
        if member is not None:
            f = stack.enter_context(stack.enter_context(zipfile.ZipFile(f)).open(member))
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_file(final: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """Yields (open file, its path) of a private ``.part`` file next to ``final``; when the block
    ends without an exception the part becomes ``final`` (readable by all), otherwise it is removed.
    The caller verifies the part inside the block."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=final.name + ".", suffix=".part")
    part = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out, part
        os.chmod(part, 0o644)  # mkstemp creates private files; the cache holds plain ones
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)


def check(path: Path, size: Optional[int], digest: Optional[str], origin: str) -> None:
    """DownloadError unless ``path`` has the pinned size and sha256 (None: not pinned)."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise DownloadError(f"{origin}: {actual_size} bytes, expected {size} (an incomplete or "
                            "different file)")
    if digest is not None:
        actual = sha256(path)
        if actual != digest:
            raise DownloadError(f"{origin}: sha256 {actual} does not match the expected {digest} "
                                "(a corrupt or different file)")


def fetch_url(url: str, final: Path, size: Optional[int], digest: Optional[str],
              timeout: float = 60.0) -> Path:
    """Downloads ``url`` to ``final`` through ``atomic_file``, checked against the pinned size and
    sha256; ``final`` is only ever the complete, verified file."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_file(final) as (out, part):
            shutil.copyfileobj(response, out, 1 << 20)
            out.flush()
            check(part, size, digest, url)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # offline, refused,
        # cut off (IncompleteRead), disk full
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"cannot download {url} ({reason})") from None
    return final
