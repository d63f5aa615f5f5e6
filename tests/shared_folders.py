"""Folders that several test modules read, made once per test run (across xdist workers)."""

import os
import shutil
from pathlib import Path

from filelock import FileLock


def built_once(tmp_path_factory, name: str, build) -> Path:
    """The folder ``name``, made by ``build(folder)`` once per test run, whichever xdist worker asks
    first; the other waits for it and reads the same folder. Tests treat it as read-only (they copy
    what they change). Training the tiny models is minutes of compilation on a 2-core CI machine,
    and a module fixture would train once per worker."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the workers of this run
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            build(folder)
            done.touch()
    return folder
