"""Exports a training workdir's model: the folder that MaskGIT.from_pretrained and maskgit-sample read.

    python -m maskgit_jax.export --workdir=runs/faces                    # -> runs/faces/model/
    python -m maskgit_jax.export --workdir=runs/faces --step=3000 --out=faces_3000
    python -m maskgit_jax.export --workdir=runs/faces --about license=CC-BY-4.0 --about data="..."
    python -m maskgit_jax.export --workdir=runs/emoji --decoding code_kernel=0.125   # another default

Writes config.json (the model's architecture, normalisation and decoding defaults, with a format
version) and params.msgpack (tokenizer and transformer parameters; the EMA ones where the run kept
them; nothing of the optimizer). The decoding defaults are the run's ``config.sample``; --decoding
replaces any of them (a ``DecodingOptions`` field). train.py does the same into WORKDIR/model/
whenever stage 2 ends (rewriting it), so a model meant to keep its --about facts goes to a folder of
its own (--out).
"""

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Optional

from maskgit_jax import model_files
from maskgit_jax.cli import boundary


def export(workdir: str | os.PathLike, out: Optional[str | os.PathLike] = None,
           step: Optional[int] = None, use_ema: bool = True, overwrite: bool = False,
           about: Optional[dict] = None, decoding: Optional[dict] = None) -> Path:
    """Writes the model of ``workdir`` (the transformer checkpoint at ``step``, default the latest)
    to ``out`` (default WORKDIR/model); ``about`` adds facts for people (name, data, licence);
    ``decoding`` replaces decoding defaults (``DecodingOptions`` fields)."""
    config, params = model_files.read_workdir(workdir, step, use_ema)
    if about:
        config = dataclasses.replace(config, about={**config.about, **about})
    if decoding:
        try:
            config = dataclasses.replace(config, decoding=config.decoding.override(**decoding))
        except (TypeError, ValueError) as e:
            raise ValueError(f"--decoding: {e}") from None
    return model_files.save(Path(workdir) / "model" if out is None else out, config, params, overwrite)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _decoding_option(text: str) -> tuple[str, object]:
    """KEY=VALUE with VALUE read as JSON where it is (0.125, 8, true, null), else as a string."""
    key, value = _key_value(text)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv=None) -> None:
    p = boundary.ArgumentParser(prog="maskgit-export", description=__doc__.split("\n")[0])
    p.add_argument("--workdir", required=True, help="a training workdir (train.py --workdir)")
    p.add_argument("--out", help="the model folder to write (default: WORKDIR/model)")
    p.add_argument("--step", type=int, help="the transformer checkpoint's step (default: the latest)")
    p.add_argument("--no_ema", action="store_true", help="the raw parameters even where EMA ones exist")
    p.add_argument("--overwrite", action="store_true", help="replace a model already in --out")
    p.add_argument("--about", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                   help="a fact for the model's users, stored in config.json (repeatable)")
    p.add_argument("--decoding", type=_decoding_option, action="append", default=[],
                   metavar="KEY=VALUE", help="a decoding default instead of the run's config.sample "
                   "one, e.g. code_kernel=0.125 (repeatable)")
    a = p.parse_args(argv)
    with boundary.user_errors():
        folder = export(a.workdir, a.out, a.step, not a.no_ema, a.overwrite, dict(a.about),
                        dict(a.decoding))
    print(f"wrote {folder}")


if __name__ == "__main__":
    main()
