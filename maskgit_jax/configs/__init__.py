"""Training configurations as code (ml_collections), one module per setup, each with get_config(arg).

    python train.py --config=configs/faces.py:small          # from a checkout
    maskgit-train --config=faces.py:small                    # installed: the package's copy
"""

from pathlib import Path


def resolve_config_flag(argv: list[str]) -> list[str]:
    """``argv`` with a ``--config`` that names no existing file but one of the package's configs
    (``faces.py:small``, ``faces:small`` or ``configs/faces.py:small`` run from another folder)
    replaced by that config's path; anything else is left to the flag parser to report."""
    out = []
    for arg in argv:
        if arg.startswith("--config="):
            path, colon, variant = arg[len("--config="):].partition(":")
            name = Path(path).name if Path(path).suffix == ".py" else Path(path).name + ".py"
            packaged = Path(__file__).with_name(name)
            if not Path(path).is_file() and packaged.is_file() and name != "__init__.py":
                arg = f"--config={packaged}{colon}{variant}"
        out.append(arg)
    return out
