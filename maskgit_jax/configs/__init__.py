"""Training configurations as code (ml_collections), one module per setup, each with get_config(arg).

    python train.py --config=configs/faces.py:small          # from a checkout
    maskgit-train --config=faces.py:small                    # installed: the package's copy
"""

from pathlib import Path


def resolve_config_flag(argv: list[str]) -> list[str]:
    """``argv`` with a ``--config`` that names no existing file but one of the package's configs
    (``faces.py:small``, ``faces:small`` or ``configs/faces.py:small`` run from another folder)
    replaced by that config's path; anything else is left to the flag parser to report."""
    out = list(argv)
    for i, arg in enumerate(out):
        if arg.startswith("--config="):
            out[i] = "--config=" + _packaged(arg[len("--config="):])
        elif arg == "--config" and i + 1 < len(out):  # the "--config VALUE" spelling
            out[i + 1] = _packaged(out[i + 1])
    return out


def _packaged(value: str) -> str:
    path, colon, variant = value.partition(":")
    name = Path(path).name if Path(path).suffix == ".py" else Path(path).name + ".py"
    packaged = Path(__file__).with_name(name)
    if Path(path).is_file() or not packaged.is_file() or name == "__init__.py":
        return value
    return f"{packaged}{colon}{variant}"
