"""Training metrics to a JSONL file and TensorBoard event files (tensorboardX: no TensorFlow needed)."""

import json
import time
from pathlib import Path

import numpy as np


class MetricWriter:
    """Appends one JSON object per logged step to ``workdir/metrics_{stage}.jsonl`` and mirrors
    scalars and images to TensorBoard under ``workdir/tensorboard/{stage}``.

    A run resumed from the checkpoint of ``start_step`` logs the steps after it again, so the rows
    a killed run wrote past that step are dropped first (one value per step): the JSONL file is
    rewritten without them, and the new TensorBoard event file starts with a purge marker at
    ``start_step + 1``, which TensorBoard reads as "hide the earlier events from this step on".
    """

    def __init__(self, workdir: str | Path, stage: str, enabled: bool = True, start_step: int = 0):
        self.enabled = enabled
        self.path = Path(workdir) / f"metrics_{stage}.jsonl"
        self.image_dir = Path(workdir) / "samples"
        self.stage = stage
        self._tb = None
        if enabled:
            from tensorboardX import SummaryWriter
            _drop_rows_after(self.path, start_step)
            self._tb = SummaryWriter(str(Path(workdir) / "tensorboard" / stage),
                                     purge_step=start_step + 1)

    def scalars(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        row = {"step": int(step), "time": time.time(), **{k: float(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in metrics.items():
            self._tb.add_scalar(f"{self.stage}/{key}", float(value), int(step))

    def image(self, step: int, name: str, image_uint8: np.ndarray) -> Path | None:
        """Writes ``samples/{stage}_{name}_{step}.png`` and the same image to TensorBoard."""
        if not self.enabled:
            return None
        from maskgit_jax import imageio
        path = self.image_dir / f"{self.stage}_{name}_{int(step):07d}.png"
        imageio.write_image(path, image_uint8)
        self._tb.add_image(f"{self.stage}/{name}", image_uint8, int(step), dataformats="HWC")
        return path

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def _drop_rows_after(path: Path, step: int) -> None:
    """Rewrites ``path`` (atomically) without its rows of steps after ``step`` (nor a partial
    last row that a killed run left)."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)

    def keep(line: str) -> bool:
        try:
            return json.loads(line)["step"] <= step
        except (ValueError, KeyError, TypeError):
            return False

    kept = [line for line in lines if keep(line)]
    if len(kept) < len(lines):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept))
        tmp.replace(path)


def read_metrics(path: str | Path) -> list[dict]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]
