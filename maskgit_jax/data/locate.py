"""What a data path given on a command line names: a file or folder of the user's, or a data set
shipped inside the package.

    emoji64               the shipped emoji64 set (maskgit_jax/data/emoji64/: train.npz, val.npz, test.npz)
    emoji64/test          its test split
    DIR/test              the folder DIR/test, or else the array file DIR/test.npz

Precedence: a path that exists is the user's and always wins, so a folder named ``emoji64`` in the
current directory is read instead of the shipped set (as before the set was shipped); the shipped
set is then still reachable by its full path (``SHIPPED``). A path inside such a folder that does
not exist is an error naming both, never a silent switch to the shipped set. ``X`` stands for
``X.npz`` when there is no ``X``; ``X`` and ``X.npz`` both existing is an error (which one is meant
is not clear).
"""

import os
from pathlib import Path

from maskgit_jax.data import emoji64

SHIPPED = {"emoji64": emoji64.FOLDER}  # name: its folder


def file_or_npz(path: Path) -> Path | None:
    """``path`` when it exists, else ``path``.npz when that exists, else None."""
    npz = path.with_name(path.name + ".npz")
    if path.exists() and npz.exists():
        raise ValueError(f"both {path} and {npz} exist: remove or rename one, or give the full "
                         "name of the one to read")
    return path if path.exists() else npz if npz.exists() else None


def resolve(text: str) -> Path:
    """The existing file or folder that ``text`` names (see the module docstring); the path as
    given when nothing matches, for the caller's own "not found" message."""
    path = Path(os.path.expanduser(text))
    found = file_or_npz(path)
    if found is not None or path.is_absolute() or not path.parts:
        return found or path
    name, rest = path.parts[0], path.parts[1:]
    if name not in SHIPPED:
        return path
    if Path(name).exists():  # the user's own folder hides the shipped set of that name
        raise FileNotFoundError(f"{text}: not found in the folder ./{name}, which hides the shipped "
                                f"data set {name} (that one is at {SHIPPED[name]})")
    return file_or_npz(SHIPPED[name].joinpath(*rest)) or path
