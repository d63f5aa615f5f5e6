"""Training metrics to a JSONL file and TensorBoard event files (tensorboardX: no TensorFlow needed)."""

import json
import time
from pathlib import Path

import numpy as np


class MetricWriter:
    """Appends one JSON object per logged step to ``workdir/metrics_{stage}.jsonl`` and mirrors
    scalars and images to TensorBoard under ``workdir/tensorboard/{stage}``."""

    def __init__(self, workdir: str | Path, stage: str, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(workdir) / f"metrics_{stage}.jsonl"
        self.image_dir = Path(workdir) / "samples"
        self.stage = stage
        self._tb = None
        if enabled:
            from tensorboardX import SummaryWriter
            self._tb = SummaryWriter(str(Path(workdir) / "tensorboard" / stage))

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


def read_metrics(path: str | Path) -> list[dict]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]
