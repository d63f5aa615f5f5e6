"""Where the commands that write (sample.py, the sweep) put their files, without losing anything.

An output folder may not be, lie inside, or hold a folder or file that the command reads, and must
be new or empty. With ``overwrite`` it may also hold what maskgit_jax wrote there before, which is
removed first: each folder records the files written into it in ``MANIFEST`` (before writing them),
so a file that is not on that list is a user's, and the command stops naming it instead of
deleting it. A single output file may not be an input and may not exist unless ``overwrite``.
"""

import os
from pathlib import Path
from typing import Iterable

MANIFEST = ".maskgit_outputs"  # the files that maskgit_jax wrote into a folder, one relative path a line


class OutputError(ValueError):
    """An output path that would lose or mix up files; the message names the option and the path."""


def _overlap(target: Path, inputs: Iterable, flag: str) -> None:
    """Refuses a target that is an input, lies inside an input folder, or holds an input."""
    resolved = target.resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if resolved == source:
            raise OutputError(f"{flag}={target}: is the input {given}; choose another path")
        if source in resolved.parents:
            raise OutputError(f"{flag}={target}: lies inside the input {given}; choose a path "
                              "outside it")
        if resolved in source.parents:
            raise OutputError(f"{flag}={target}: holds the input {given}; choose another folder")


def _files(folder: Path) -> list[str]:
    """Every file under ``folder`` (links included, not followed), as sorted relative paths."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            found.append(Path(root, name).relative_to(folder).as_posix())
    return sorted(found)


def _recorded(folder: Path) -> set[str]:
    try:
        return set((folder / MANIFEST).read_text().splitlines())
    except FileNotFoundError:
        return set()
    except (OSError, UnicodeDecodeError) as e:
        raise OutputError(f"{folder / MANIFEST}: cannot read the list of earlier outputs "
                          f"({e})") from None


def prepare_folder(folder, inputs: Iterable = (), overwrite: bool = False,
                   flag: str = "--output") -> Path:
    """Makes ``folder`` ready for a command's outputs (see the module docstring); with
    ``overwrite`` removes the outputs that an earlier run left there. ``inputs``: the files and
    folders that the command reads (None entries are skipped)."""
    folder = Path(folder)
    _overlap(folder, inputs, flag)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag}={folder}: exists and is not a folder")
    existing = _files(folder) if folder.is_dir() else []
    if existing:
        if not overwrite:
            raise OutputError(f"{flag}={folder}: is not empty; choose a new folder, or pass "
                              "--overwrite to replace the outputs of an earlier run there")
        ours = _recorded(folder) | {MANIFEST}
        foreign = [name for name in existing if name not in ours]
        if foreign:
            raise OutputError(f"{flag}={folder}: holds {folder / foreign[0]}, which maskgit_jax did "
                              f"not write ({len(foreign)} such file(s)); not overwriting, choose "
                              "another folder")
        for name in existing:
            (folder / name).unlink()
        emptied = {parent for name in existing for parent in Path(name).parents} - {Path(".")}
        for sub in sorted(emptied, key=lambda p: len(p.parts), reverse=True):  # deepest first
            if not any((folder / sub).iterdir()):
                (folder / sub).rmdir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def record(folder, names: Iterable[str]) -> None:
    """Adds files (relative to ``folder``) to its list of outputs; call it before writing them."""
    folder = Path(folder)
    names = [Path(name).as_posix() for name in names]
    with open(folder / MANIFEST, "a") as f:
        f.writelines(name + "\n" for name in names)


def prepare_file(path, inputs: Iterable = (), overwrite: bool = False, flag: str = "--output") -> Path:
    """Checks a single output file: not an input, and new unless ``overwrite``."""
    path = Path(path)
    _overlap(path, inputs, flag)
    if path.is_dir():
        raise OutputError(f"{flag}={path}: is a folder; give a file name for one picture")
    if path.exists() and not overwrite:
        raise OutputError(f"{flag}={path}: exists; choose a new file name, or pass --overwrite")
    return path
