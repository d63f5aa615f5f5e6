"""What the page's button does, without the page: load a model (once), inpaint, picture the steps.

No gradio here: every user mistake is a ValueError (or OSError) whose message the page shows.
"""

import dataclasses
import itertools
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import numpy as np

from maskgit_jax import imageio, pretrained, resizing, visualize
from maskgit_jax.demo import editor
from maskgit_jax.official import download as official_download

STEP_SIDE = 128  # the strip's pictures are enlarged to at least this side (nearest neighbour)
MAX_MODELS = 2   # models kept loaded (an ImageNet one holds about 0.9 GB); the oldest goes first


def model_choices() -> list[str]:
    """The models the page offers by name: the shipped ones, then the official ImageNet ones
    (fetched on first use, about 0.9 GB each)."""
    return pretrained.names() + list(official_download.NAMES)


@dataclasses.dataclass
class Result:
    image: np.ndarray                         # uint8 (H, W, 3), the picture with the fill
    steps: np.ndarray                         # uint8, the decoding steps as one strip
    still_masked: list[int]                   # tokens still masked after each step
    seconds: float                            # the inpainting call, compilation included
    file: Path                                # the result as a PNG, for the download


class Session:
    """The models loaded so far (by name or path) and the folder the results are written to."""

    def __init__(self, output_dir: Optional[str] = None, only: Optional[set[str]] = None):
        """``only``: the model names and paths this session may load (None: any). A page that
        others can reach must not let them read the server's folders or start downloads."""
        self._only = only
        self._models: dict[str, object] = {}  # in the order they were last used
        self._lock = threading.Lock()  # gradio runs the page's events on several threads
        self._outputs = Path(output_dir or tempfile.mkdtemp(prefix="maskgit-demo-"))
        self._count = itertools.count(1)

    def model(self, name_or_path: str):
        """The MaskGIT for a name or a path, loaded on first use; ValueError / OSError name it."""
        key = name_or_path.strip()
        if not key:
            raise ValueError("no model: choose one, or give the path of an exported model folder")
        if self._only is not None and key not in self._only:
            raise ValueError(f"model {key!r}: this page serves only {', '.join(sorted(self._only))} "
                             "(start it with --allow_paths to load other models)")
        with self._lock:
            if key not in self._models:
                from maskgit_jax.pipeline import MaskGIT  # jax and the models load with the first
                while len(self._models) >= MAX_MODELS:
                    self._models.pop(next(iter(self._models)))
                self._models[key] = MaskGIT.from_pretrained(key)
            self._models[key] = self._models.pop(key)  # now the most recently used
            return self._models[key]

    def inpaint(self, name_or_path: str, editor_value: Optional[dict], *, class_label: int = 0,
                seed: int = 0, **decoding) -> Result:
        """Fills the painted region of the editor's picture; ``decoding``: DecodingOptions fields
        (``sweet_spot`` 0: all steps)."""
        picture, known = editor.picture_and_known(editor_value)
        model = self.model(name_or_path)
        editor.check_size(picture, model.vqgan.latent_resolution)
        official = model.config.architecture == "official"  # class-conditional ImageNet models
        start = time.perf_counter()
        out = model.inpaint(picture, known, seed=int(seed), return_steps=True,
                            class_label=int(class_label) if official else None, **decoding)
        seconds = time.perf_counter() - start
        hole_gray = model.config.inpaint_config(out.options).hole_gray
        masked_input, _ = resizing.to_model_size(picture, known, model.image_size, hole_gray)
        file = self._outputs / f"inpainted-{next(self._count):03d}.png"
        imageio.write_image(file, out.image)
        masks = out.step_masks[:, 0]
        return Result(out.image, step_strip(masks, out.step_images[:, 0], masked_input),
                      [int(m.sum()) for m in masks], seconds, file)


def step_strip(step_masks_SxL: np.ndarray, step_images_SxHxWx3: np.ndarray,
               masked_input_HxWx3: np.ndarray) -> np.ndarray:
    """The lab's strip (``visualize.step_strip``: the masked input, then per step the latent mask,
    black = still masked, above the step's decoded image), enlarged for the page."""
    strip = visualize.step_strip(step_masks_SxL, step_images_SxHxWx3, masked_input_HxWx3)
    zoom = max(1, -(-STEP_SIDE // masked_input_HxWx3.shape[0]))
    return np.repeat(np.repeat(strip, zoom, axis=0), zoom, axis=1)
