"""``MaskGIT.from_pretrained("imagenet256" | "imagenet512")``: the official files, fetched once.

Where the pair of files comes from, first match wins:
1. $MASKGIT_JAX_OFFICIAL_DIR: a folder holding the two files under their released names (nothing
   is downloaded; a missing file is an error naming it). ``--model=FOLDER`` also loads such a folder.
2. the cache, CACHE/official/ (``maskgit_jax.downloads.cache_dir()``, ~/.cache/maskgit_jax);
3. a download of the missing files from google-research/maskgit's public bucket (or the mirror
   $MASKGIT_JAX_OFFICIAL_URL) into the cache, atomically (``downloads.fetch_url``).

Every file is checked against its pinned size (and sha256 where pinned) before use. The sizes are
those of the released parameter trees in flax's msgpack encoding (the reduced test pair has the
sizes the same computation gives). The sha256 column is None until someone with the files pins
them: until then a download is checked by its size, and the parameters by their names and shapes.
"""

import os
import sys
from pathlib import Path
from typing import NamedTuple, Optional

from maskgit_jax import downloads

BASE_URL = "https://storage.googleapis.com/maskgit-public/checkpoints"
ENV_DIR = "MASKGIT_JAX_OFFICIAL_DIR"
ENV_URL = "MASKGIT_JAX_OFFICIAL_URL"


class Pin(NamedTuple):
    size: int
    sha256: Optional[str]


# file name -> pinned size and sha256 of the released file
PINS = {
    "tokenizer_imagenet256_checkpoint": Pin(218_068_642, None),
    "maskgit_imagenet256_checkpoint": Pin(689_843_608, None),
    "tokenizer_imagenet512_checkpoint": Pin(218_068_642, None),
    "maskgit_imagenet512_checkpoint": Pin(692_202_904, None),
}
NAMES = ("imagenet256", "imagenet512")


def file_names(name: str) -> tuple[str, str]:
    """(tokenizer, transformer) file names of an official model name."""
    return f"tokenizer_{name}_checkpoint", f"maskgit_{name}_checkpoint"


def folder() -> Path:
    return downloads.cache_dir() / "official"


def files(name: str) -> tuple[Path, Path]:
    """The verified (tokenizer, transformer) files of ``name`` (see the module docstring)."""
    if name not in NAMES:
        raise ValueError(f"{name!r}: not an official model; choose one of {', '.join(NAMES)}")
    wanted = file_names(name)
    local = os.environ.get(ENV_DIR)
    if local:
        paths = tuple(Path(local).expanduser() / f for f in wanted)
        for path in paths:
            if not path.is_file():
                raise downloads.DownloadError(f"{path}: not found ({ENV_DIR}={local} must hold "
                                              f"{' and '.join(wanted)})")
            downloads.check(path, *PINS[path.name], str(path))
        return paths
    base = os.environ.get(ENV_URL) or BASE_URL
    return tuple(_cached_or_fetched(f, base) for f in wanted)


def _cached_or_fetched(file_name: str, base: str) -> Path:
    target = folder() / file_name
    pin = PINS[file_name]
    if target.is_file():
        downloads.check(target, *pin, str(target))
        return target
    url = f"{base.rstrip('/')}/{file_name}"
    print(f"downloading {url} ({pin.size / 1e6:.0f} MB) into {target.parent}", file=sys.stderr)
    try:
        return downloads.fetch_url(url, target, *pin)
    except downloads.DownloadError as e:
        raise downloads.DownloadError(
            f"{e}; download {url} yourself and put it in {target.parent} (or in a folder named by "
            f"{ENV_DIR}, or pass that folder as the model path)") from None
