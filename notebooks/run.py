"""Executes the notebooks top to bottom and (by default) writes their outputs back into them.

    python -m notebooks.run --quick                       # all four, QUICK parameters (CI size)
    python -m notebooks.run inpainting_quickstart         # one, with its own parameters
    python -m notebooks.run --quick --check               # execute only; the files stay as they are

Each notebook runs in a fresh kernel in a scratch folder (``--workdir``, default a temporary one),
so what it writes (runs/, models/, ...) never lands in the repository. Parameters are set as
papermill does: a cell holding the values is run right after the cell tagged ``parameters``; it is
removed again before the notebook is saved, and the first markdown cell's ``*Outputs:*`` line
says how, where and with which parameters the saved outputs were made.

course_lab needs the course's ``VQGAN.pt`` and ``transformer.pt``: ``--course_dir`` names a folder
with yours; without it a random course-style pair is written (tests/torch_course.py, needs torch),
so the pictures are noise but every cell runs. imagenet_maskgit with ``--quick`` falls back to the
reduced official-format checkpoints of the tests when the real ones are not in the cache.
"""

import argparse
import datetime
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

FOLDER = Path(__file__).resolve().parent
REPO = FOLDER.parent
NAMES = ("inpainting_quickstart", "train_your_own", "course_lab", "imagenet_maskgit")
PROVENANCE = "*Outputs:*"  # the first markdown cell's line that says how the outputs were made
TIMEOUT_S = 3600           # per cell


def path(name: str) -> Path:
    return FOLDER / f"{name}.ipynb"


def parameters(name: str, quick: bool, workdir: Path, course_dir: Path | None = None) -> dict:
    """The values set after the notebook's ``parameters`` cell."""
    values = {"QUICK": True} if quick else {}
    if name == "imagenet_maskgit":
        values["REDUCED"] = str(REPO / "tests" / "data" / "official")
    if name == "course_lab":
        folder = course_dir or _random_course_pair(workdir / "course_checkpoints")
        values.update(VQGAN_PT=str(folder / "VQGAN.pt"), TRANSFORMER_PT=str(folder / "transformer.pt"))
    return values


def _random_course_pair(folder: Path) -> Path:
    """A course-style VQGAN.pt and transformer.pt with random weights, 64x64 pixels (8x8 tokens)
    and small widths, saved as the course saves them (``torch.save(model.state_dict())``)."""
    import torch
    sys.path.insert(0, str(REPO))
    from tests import torch_course

    folder.mkdir(parents=True, exist_ok=True)
    vqgan = torch_course.VQGAN(
        enc_channels=(128, 128, 128, 256), dec_channels=(128, 128, 256), enc_num_res_blocks=1,
        dec_num_res_blocks=1, enc_downsample_levels=(0, 1, 2), dec_upsample_levels=(0, 1, 2),
        attn_resolutions=(8,), img_resolution=64, latent_dim=32, num_codebook_vectors=64)
    transformer = torch_course.BidirectionalTransformer(
        num_image_tokens=64, num_codebook_vectors=64, dim=64, n_layers=2, hidden_dim=96, num_heads=16)
    torch.save(torch_course.randomize_(vqgan, seed=1).state_dict(), folder / "VQGAN.pt")
    torch.save(torch_course.randomize_(transformer, seed=2).state_dict(), folder / "transformer.pt")
    return folder


def _parameter_cell(notebook) -> int:
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(tagged)}")
    return tagged[0]


def execute(name: str, values: dict, workdir: Path, timeout: int = TIMEOUT_S):
    """Runs notebook ``name`` in ``workdir`` with ``values`` injected; returns the executed
    notebook without the injected cell. Raises nbclient's CellExecutionError on any error."""
    notebook = nbformat.read(path(name), as_version=4)
    at = _parameter_cell(notebook) + 1
    source = "# Injected by notebooks/run.py\n" + "".join(f"{k} = {v!r}\n" for k, v in values.items())
    notebook.cells.insert(at, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    workdir.mkdir(parents=True, exist_ok=True)
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    del notebook.cells[at]
    return notebook


def _device() -> str:
    import jax
    device = jax.devices()[0]
    kind = device.device_kind if device.platform != "cpu" else f"CPU ({os.cpu_count()} cores)"
    return f"{len(jax.devices())} x {kind}, jax {jax.__version__}"


def record(notebook, command: str, values: dict, note: str = "") -> None:
    """Rewrites the first markdown cell's ``*Outputs:*`` line: the command, date, device, parameters."""
    shown = {k: v for k, v in values.items() if k in ("QUICK",)} or "the notebook's own"
    line = (f"{PROVENANCE} made by `{command}` on {datetime.date.today().isoformat()}, "
            f"{_device()}; parameters: {shown}{note}.")
    cell = next(c for c in notebook.cells if c.cell_type == "markdown")
    lines = [l for l in cell.source.splitlines() if not l.startswith(PROVENANCE)]
    cell.source = "\n".join(lines).rstrip() + "\n\n" + line


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m notebooks.run", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help=f"notebooks to run (default: all of {', '.join(NAMES)})")
    p.add_argument("--quick", action="store_true", help="QUICK parameters: small and fast (CI)")
    p.add_argument("--check", action="store_true", help="execute only; leave the files unchanged")
    p.add_argument("--workdir", help="scratch folder the notebooks run in (default: a temporary one)")
    p.add_argument("--course_dir", help="folder with your VQGAN.pt and transformer.pt (course_lab)")
    a = p.parse_args(argv)
    unknown = [n for n in a.names if n not in NAMES]
    if unknown:
        print(f"error: unknown notebook {unknown[0]!r}; choose from {', '.join(NAMES)}", file=sys.stderr)
        return 1
    course_dir = Path(a.course_dir) if a.course_dir else None
    if course_dir and not all((course_dir / f).is_file() for f in ("VQGAN.pt", "transformer.pt")):
        print(f"error: --course_dir={course_dir}: must hold VQGAN.pt and transformer.pt", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(a.workdir or scratch)
        for name in a.names or NAMES:
            values = parameters(name, a.quick, root / name, course_dir)
            start = datetime.datetime.now()
            notebook = execute(name, values, root / name)
            seconds = (datetime.datetime.now() - start).total_seconds()
            if not a.check:
                command = "python -m notebooks.run" + (" --quick" if a.quick else "") + f" {name}"
                random_pair = name == "course_lab" and course_dir is None
                record(notebook, command, values, "; VQGAN.pt and transformer.pt: a random course-style "
                       "pair (so the pictures are noise)" if random_pair else "")
                nbformat.write(notebook, path(name))
            print(f"{name}: ran in {seconds:.0f} s" + ("" if a.check else f", wrote {path(name)}"),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
