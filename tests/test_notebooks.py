"""The notebooks: each runs top to bottom with QUICK parameters (nbclient, a fresh kernel), their
code uses only public names, and their first cell installs something on Colab only."""

import ast
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbclient")
from IPython.core.inputtransformer2 import TransformerManager  # noqa: E402

from notebooks import run as notebooks  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^/]+/maskgit_jax/blob/main/notebooks/"
                   r"(\w+)\.ipynb")


def _code_cells(name: str) -> list[str]:
    notebook = nbformat.read(notebooks.path(name), as_version=4)
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("name", notebooks.NAMES)
def test_notebook_runs_top_to_bottom_with_quick_parameters(name, tmp_path):
    values = notebooks.parameters(name, quick=True, workdir=tmp_path)
    executed = notebooks.execute(name, values, tmp_path, timeout=600)  # raises on any cell's error
    assert all(cell.get("execution_count") for cell in executed.cells if cell.cell_type == "code")
    assert not any(output.output_type == "error" for cell in executed.cells
                   if cell.cell_type == "code" for output in cell.outputs)


def private_names(source: str) -> list[str]:
    """Names starting with one underscore (not dunders) that a cell imports or uses, also in the
    code a magic runs (``%time model._run()``)."""
    tree = ast.parse(TransformerManager().transform_cell(source))  # %magics become Python calls
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("run_line_magic", "run_cell_magic")
                and isinstance(node.args[-1], ast.Constant)):  # (an f-string's parts are walked below)
            try:
                found += private_names(node.args[-1].value)
            except SyntaxError:  # a magic whose argument is not code (e.g. %tensorboard --logdir x)
                pass
        if isinstance(node, ast.ImportFrom):
            names = (node.module or "").split(".") + [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [part for alias in node.names for part in alias.name.split(".")]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.Name):
            names = [node.id]
        else:
            continue
        found += [n for n in names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]
    return found


def test_private_names_are_found_in_imports_attributes_and_magics():
    assert private_names("from maskgit_jax.pipeline import _as_images") == ["_as_images"]
    assert private_names("import maskgit_jax._hidden as h") == ["_hidden"]
    assert private_names("%time out = model._run(a, b)") == ["_run"]
    assert private_names("x = __file__; model.inpaint(image, mask).image") == []


@pytest.mark.parametrize("name", notebooks.NAMES)
def test_notebook_code_uses_only_public_names(name):
    for source in _code_cells(name):
        assert private_names(source) == [], source


def _run_install_cell(source: str, monkeypatch, colab: bool, gpu: bool = False, tpu: bool = False):
    """Executes the cell with every way of running a program recorded instead of run."""
    calls = []
    record = lambda *args, **kwargs: calls.append(args[0])
    for name in ("run", "call", "check_call", "check_output", "Popen"):
        monkeypatch.setattr(subprocess, name, record)
    monkeypatch.setattr(os, "system", record)
    monkeypatch.setattr(shutil, "which", lambda program: f"/usr/bin/{program}" if gpu else None)
    if tpu:
        monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    else:
        monkeypatch.delenv("COLAB_TPU_ADDR", raising=False)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "install cell", "exec"), {})
    return calls


def test_the_install_cell_is_the_first_and_the_same_in_every_notebook():
    first = {name: _code_cells(name)[0] for name in notebooks.NAMES}
    assert len(set(first.values())) == 1
    source = first[notebooks.NAMES[0]]
    assert "google.colab" in source
    assert TransformerManager().transform_cell(source) == source + "\n"  # no !shell or %pip lines


def test_the_install_cell_does_nothing_outside_colab(monkeypatch):
    source = _code_cells(notebooks.NAMES[0])[0]
    assert _run_install_cell(source, monkeypatch, colab=False, gpu=True) == []


@pytest.mark.parametrize("gpu, tpu, extras", [(True, False, "notebooks,cuda12"),
                                              (False, True, "notebooks,tpu"),
                                              (False, False, "notebooks")])
def test_on_colab_the_install_cell_installs_the_jax_build_of_the_runtime(monkeypatch, gpu, tpu, extras):
    source = _code_cells(notebooks.NAMES[0])[0]
    calls = _run_install_cell(source, monkeypatch, colab=True, gpu=gpu, tpu=tpu)
    assert len(calls) == 1 and calls[0][:4] == [sys.executable, "-m", "pip", "install"]
    assert re.fullmatch(rf"maskgit_jax\[{extras}\] @ git\+https://github\.com/[^/]+/maskgit_jax",
                        calls[0][-1])


def test_each_notebook_has_its_badge_and_the_readme_all_of_them():
    for name in notebooks.NAMES:
        first = nbformat.read(notebooks.path(name), as_version=4).cells[0]
        assert first.cell_type == "markdown" and BADGE.findall(first.source) == [name]
        assert notebooks.PROVENANCE in first.source  # how the committed outputs were made
    assert sorted(set(BADGE.findall(README.read_text()))) == sorted(notebooks.NAMES)


@pytest.mark.parametrize("name", notebooks.NAMES)
def test_committed_notebooks_keep_the_outputs_of_one_whole_run(name):
    cells = [c for c in nbformat.read(notebooks.path(name), as_version=4).cells if c.cell_type == "code"]
    counts = [c.execution_count for c in cells]
    # Every cell ran, in order, in one kernel (the removed parameter cell left a gap after the 2nd).
    assert None not in counts and counts == sorted(set(counts)) and counts[0] == 1
    assert any("image/png" in o.get("data", {}) for c in cells for o in c.outputs)
