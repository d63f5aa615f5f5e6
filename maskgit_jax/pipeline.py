"""``MaskGIT``: a trained model (config + tokenizer and transformer parameters), one call per task.

    from maskgit_jax import MaskGIT
    model = MaskGIT.from_pretrained("faces-small")       # a shipped name, an exported folder, a workdir
    out = model.inpaint(image, mask)                     # uint8 (H, W, 3) or PIL, any size; mask 1 = known
    out.image                                            # uint8 (H, W, 3); with composite="paste"
                                                         # (the default) known pixels are the input's
    out = model.inpaint(images, masks, schedule="cosine", total_iter=12, return_steps=True)
    model.generate(16).images; model.outpaint(image).image
    model.save_pretrained("my_model")

Decoding options not given take the model's own defaults (``model.decoding``: the course's protocol
for a converted course checkpoint, the recommended settings for this project's models). Batches are
split over every device (data-sharded inference); the parameters are replicated once at load time.
Nothing here imports the training code or builds an optimizer.
"""

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional

import jax
import numpy as np
from PIL import Image

from maskgit_jax import compile_cache, inpaint, mesh as mesh_lib, model_files, pretrained, resizing
from maskgit_jax.model_config import DecodingOptions, ModelConfig
from maskgit_jax.official import checkpoints as official_checkpoints, download as official_download

MASK_THRESHOLD = 128  # uint8 masks (0-255): values >= 128 are known pixels (float masks: >= 0.5)

# The tokenizer alone, compiled once per model and batch shape (parameters are arguments).
_encode = jax.jit(inpaint.encode_images, static_argnums=(0, 3))
_decode = jax.jit(inpaint.decode_images, static_argnums=(0, 3))


@dataclasses.dataclass
class InpaintOutput:
    """What one inpainting / generation / outpainting call returns.

    images: one uint8 (H, W, 3) array per input, at the input's own size.
    model_images: uint8 (N, S, S, 3), the composited outputs at the model's size S.
    ids: (N, L) the final token ids; unknown_tokens: (N, L) bool, the tokens that were decoded.
    step_masks: (steps, N, L) bool, still masked after each step; step_images: (steps, N, S, S, 3),
      each step's prediction decoded (both only with ``return_steps=True``).
    options: the decoding options used (the model's defaults with the call's overrides).
    """
    images: list[np.ndarray]
    model_images: np.ndarray
    ids: np.ndarray
    unknown_tokens: np.ndarray
    options: DecodingOptions
    step_masks: Optional[np.ndarray] = None
    step_images: Optional[np.ndarray] = None

    @property
    def image(self) -> np.ndarray:
        """The first (or only) output image."""
        return self.images[0]


class MaskGIT:
    """A VQGAN tokenizer and a bidirectional transformer with their parameters.

    config: the ``ModelConfig`` (architecture, normalisation, decoding defaults).
    params: {"tokenizer": ..., "transformer": ...} parameter trees (the transformer may be absent for
      a tokenizer alone, which can encode and decode but not inpaint).
    """

    def __init__(self, config: ModelConfig, params: dict, where: str = "model"):
        compile_cache.enable()  # this model's programs compile once per machine, not per process
        self.config = config
        self.vqgan = config.vqgan()
        self.transformer = config.bidirectional_transformer()
        _check_params(self.vqgan, params.get("tokenizer"), f"{where}: tokenizer")
        if self.transformer is not None:
            _check_params(self.transformer, params.get("transformer"), f"{where}: transformer")
        self.mesh = mesh_lib.make_mesh()
        replicated = mesh_lib.replicated(self.mesh)
        self.params = {part: jax.device_put(params[part], replicated) for part in params
                       if part in ("tokenizer", "transformer")}

    # --- loading and saving --------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, step: Optional[int] = None,
                        use_ema: bool = True) -> "MaskGIT":
        """A shipped model by name (``pretrained.names()``), an official ImageNet model by name
        ("imagenet256", "imagenet512": fetched once, see ``official.download``), an exported
        folder, a folder holding a pair of official google-research/maskgit checkpoints
        (``from_official``), or a training workdir (its latest checkpoints, or the transformer's
        checkpoint at ``step``; the EMA parameters unless ``use_ema=False``). Raises ValueError
        naming the path and the problem."""
        path = Path(name_or_path)
        if not path.exists() and str(name_or_path) in official_download.NAMES:
            return cls.from_official(*official_download.files(str(name_or_path)))
        if not path.exists():
            path = pretrained.path(str(name_or_path))
        official_pair = official_checkpoints.find_pair(path) if path.is_dir() else None
        if official_pair:
            return cls.from_official(*official_pair)
        if model_files.is_exported(path):
            if step is not None or not use_ema:
                raise ValueError(f"{path}: an exported model holds one set of parameters; step and "
                                 "use_ema choose among a training workdir's checkpoints")
            config, params = model_files.load(path)
        elif (path / model_files.CONFIG_FILE).is_file():  # a workdir (read_workdir says what lacks)
            config, params = model_files.read_workdir(path, step, use_ema)
        else:
            raise model_files.ModelFileError(
                f"{path}: neither an exported model ({model_files.CONFIG_FILE} + "
                f"{model_files.PARAMS_FILE}) nor a training workdir ({model_files.CONFIG_FILE} + "
                "checkpoints/)")
        return cls(config, params, where=str(path))

    @classmethod
    def from_official(cls, tokenizer: str | os.PathLike, transformer: str | os.PathLike) -> "MaskGIT":
        """The official google-research/maskgit checkpoints: a tokenizer and a transformer file
        (e.g. ``tokenizer_imagenet256_checkpoint`` and ``maskgit_imagenet256_checkpoint``).
        Class-conditional: ``generate`` and ``inpaint`` take ``class_label``."""
        config, params = official_checkpoints.load_pair(tokenizer, transformer)
        return cls(config, params, where=f"{tokenizer} + {transformer}")

    def save_pretrained(self, folder: str | os.PathLike, overwrite: bool = False) -> Path:
        """Writes the exported model (config.json + params.msgpack) to ``folder``."""
        return model_files.save(folder, self.config, self.params, overwrite)

    @property
    def decoding(self) -> DecodingOptions:
        """The model's decoding defaults."""
        return self.config.decoding

    @property
    def image_size(self) -> int:
        return self.config.image_size

    # --- tasks ---------------------------------------------------------------------------------

    def inpaint(self, images, masks, *, seed: int = 0, batch_size: int = 64,
                return_steps: bool = False, options: Optional[DecodingOptions] = None,
                class_label=None, **decoding) -> InpaintOutput:
        """Fills the missing pixels of each image.

        images: a uint8 array (H, W, 3) or (N, H, W, 3), a PIL image, or a list of them (sizes may
          differ). masks: the same count, 1 / True = known pixel: bool, 0/1 integers, uint8 gray
          (>= 128 known, e.g. 255 = known, 0 = missing), float (>= 0.5 known), or PIL (as gray).
          ``decoding``: any ``DecodingOptions`` field (schedule, total_iter, sweet_spot,
          choice_temperature, sample_temperature, confidence, composite, pixel_feedback, dilate,
          decoder, start_iter, sampler, code_kernel, render_temperature; ``sweet_spot=0``: all
          steps); the rest are the model's defaults, or ``options``' where given.
        class_label: for a class-conditional model (the official ImageNet ones), one label for every
          image or one per image.
        Example i decodes with the key ``fold_in(key(seed), i)``: the output of an image does not
        depend on the others in the call or on ``batch_size``.
        """
        pictures, knowns = _as_images(images), _as_masks(masks)
        if len(pictures) != len(knowns):
            raise ValueError(f"{len(pictures)} images but {len(knowns)} masks")
        for i, (picture, known) in enumerate(zip(pictures, knowns)):
            if picture.shape[:2] != known.shape:
                raise ValueError(f"image {i} is {picture.shape[0]}x{picture.shape[1]} but its mask "
                                 f"is {known.shape[0]}x{known.shape[1]}")
        options = (options or self.decoding).override(**decoding)
        return self._run(pictures, knowns, options, seed, batch_size, return_steps,
                         _labels(class_label, len(pictures)))

    def outpaint(self, images, keep=None, **kwargs) -> InpaintOutput:
        """Keeps the region ``keep`` (masks, 1 = kept; default: the centre square of half the side)
        and generates everything around it. Takes ``inpaint``'s keyword arguments."""
        pictures = _as_images(images)
        if keep is None:
            keep = [centre_square(p.shape[:2]) for p in pictures]
        return self.inpaint(pictures, keep, **kwargs)

    def generate(self, n: int, *, seed: int = 0, batch_size: int = 64, return_steps: bool = False,
                 class_label=None, **decoding) -> InpaintOutput:
        """``n`` images generated from nothing (every token decoded; no pixel feedback);
        ``class_label``: one label, or one per image, for a class-conditional model."""
        if n < 1:
            raise ValueError(f"generate: n must be >= 1, got {n}")
        size = self.image_size
        blank = [np.zeros((size, size, 3), np.uint8)] * n
        nothing = [np.zeros((size, size), bool)] * n
        options = self.decoding.override(**decoding)
        options = dataclasses.replace(options, pixel_feedback=False, composite="none")
        return self._run(blank, nothing, options, seed, batch_size, return_steps,
                         _labels(class_label, n))

    def encode(self, images, batch_size: int = 256) -> np.ndarray:
        """Token ids (N, L) int32 of images at the model's size (uint8 (N, S, S, 3) or a list)."""
        pictures = np.stack(_as_images(images))
        self._check_model_size(pictures)
        cfg = self.config.inpaint_config(self.decoding)
        return self._tokenizer_batches(_encode, pictures, cfg, batch_size).astype(np.int32)

    def decode(self, ids_NxL, batch_size: int = 256) -> np.ndarray:
        """uint8 images (N, S, S, 3) of token ids (N, L)."""
        ids_NxL = np.asarray(ids_NxL, np.int32)
        tokens = self.vqgan.latent_resolution ** 2
        if ids_NxL.ndim != 2 or ids_NxL.shape[1] != tokens:
            raise ValueError(f"ids must have shape (N, {tokens}), got {ids_NxL.shape}")
        if ids_NxL.size and not 0 <= ids_NxL.min() <= ids_NxL.max() < self.vqgan.num_codes:
            raise ValueError(f"ids must be codes in [0, {self.vqgan.num_codes})")
        cfg = self.config.inpaint_config(self.decoding)
        return self._tokenizer_batches(_decode, ids_NxL, cfg, batch_size)

    # --- internals -----------------------------------------------------------------------------

    def _tokenizer_batches(self, fn, inputs_N: np.ndarray, cfg, batch_size: int) -> np.ndarray:
        """``fn(vqgan, variables, batch, cfg)`` over batches split across the devices, in the
        sizes of ``inpaint.batch_plan`` (a few compilations serve every call)."""
        count = len(inputs_N)
        if count == 0:
            raise ValueError("no inputs given")
        batches = inpaint.batch_plan(count, batch_size, self.mesh.devices.size)
        split = mesh_lib.batch_sharded(self.mesh)
        outs = [fn(self.vqgan, {"params": self.params["tokenizer"]},
                   jax.device_put(inputs_N[take], split), cfg) for take in batches]
        return np.concatenate(jax.device_get(outs))[:count]

    def _check_model_size(self, images_NxHxWx3: np.ndarray) -> None:
        size = self.image_size
        if images_NxHxWx3.shape[1:] != (size, size, 3):
            raise ValueError(f"images must be {size}x{size} RGB for this model, "
                             f"got shape {images_NxHxWx3.shape[1:]}")

    def _run(self, pictures: list[np.ndarray], knowns: list[np.ndarray], options: DecodingOptions,
             seed: int, batch_size: int, return_steps: bool,
             labels: Optional[np.ndarray] = None) -> InpaintOutput:
        if self.transformer is None:
            raise ValueError("this model holds a tokenizer only: train a transformer on it first "
                             "(train.py --config.init_from=MODEL)")
        cfg = self.config.inpaint_config(options)
        # At another size than the model's, the whole output would be an upscaled model-size image:
        # the fill is pasted into the picture instead ('none' acts as 'paste' there).
        resized_cfg = cfg if cfg.composite != "none" else dataclasses.replace(cfg, composite="paste")
        size = self.image_size
        small = [resizing.to_model_size(p, k, size, cfg.hole_gray) for p, k in zip(pictures, knowns)]
        result = inpaint.inpaint_batched(
            self.vqgan, self.params["tokenizer"], self.transformer, self.params["transformer"],
            np.stack([s[0] for s in small]), np.stack([s[1] for s in small]), cfg,
            jax.random.key(seed), batch_size, return_steps, mesh=self.mesh, labels_N=labels)
        images = [composited if picture.shape[:2] == (size, size)
                  else resizing.to_picture_size(decoded, picture, known, resized_cfg)
                  for picture, known, composited, decoded
                  in zip(pictures, knowns, result.images, result.decoded)]
        return InpaintOutput(images=images, model_images=result.images, ids=result.ids,
                             unknown_tokens=result.unknown_tokens, options=options,
                             step_masks=result.step_masks, step_images=result.step_images)


def _labels(class_label, count: int) -> Optional[np.ndarray]:
    """(count,) class labels from one label or one per image; None stays None."""
    if class_label is None:
        return None
    labels = np.asarray(class_label)
    if labels.ndim == 0:
        labels = np.full(count, labels)
    if labels.shape != (count,):
        raise ValueError(f"class_label: give one label or one per image ({count}), got {labels.size}")
    return labels


def _arrays(items, single_ndim: int, pil_mode: str) -> list[np.ndarray]:
    """A list of arrays from one array (with ``single_ndim`` axes), a PIL image, or a sequence of
    them (a batch array included); PIL images converted to ``pil_mode`` first."""
    if isinstance(items, Image.Image) or (isinstance(items, np.ndarray) and items.ndim == single_ndim):
        items = [items]
    return [np.asarray(x.convert(pil_mode)) if isinstance(x, Image.Image) else np.asarray(x)
            for x in items]


def _as_images(images) -> list[np.ndarray]:
    """A list of uint8 (H, W, 3) arrays from an array, a PIL image or a list of either."""
    out = []
    for i, image in enumerate(_arrays(images, 3, "RGB")):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image {i}: expected uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
        out.append(image)
    if not out:
        raise ValueError("no images given")
    return out


def _as_masks(masks) -> list[np.ndarray]:
    """A list of bool (H, W) known masks (see ``MaskGIT.inpaint`` for the thresholds)."""
    out = []
    for i, mask in enumerate(_arrays(masks, 2, "L")):
        if mask.ndim != 2:
            raise ValueError(f"mask {i}: expected (H, W), got shape {mask.shape}")
        integer = np.issubdtype(mask.dtype, np.integer)
        if mask.dtype == bool:
            out.append(mask)
        elif integer and mask.size and 0 <= mask.min() and mask.max() <= 1:  # a 0/1 mask
            out.append(mask == 1)
        elif mask.dtype == np.uint8:
            out.append(mask >= MASK_THRESHOLD)
        elif np.issubdtype(mask.dtype, np.floating):
            out.append(mask >= 0.5)
        else:
            raise ValueError(f"mask {i}: expected bool, 0/1 integers, uint8 (0-255) or float (0-1) "
                             f"values, got {mask.dtype} from {mask.min()} to {mask.max()}")
    return out


def centre_square(shape_HxW: tuple[int, int]) -> np.ndarray:
    """bool (H, W), True on the centre square of half the side: the region outpainting keeps."""
    h, w = shape_HxW
    keep = np.zeros((h, w), bool)
    keep[h // 4: h - h // 4, w // 4: w - w // 4] = True
    return keep


def _check_params(model, params: Any, where: str) -> None:
    """One ValueError listing the parameters that are missing, unexpected or of the wrong shape."""
    if params is None:
        raise ValueError(f"{where}: no parameters")
    size = getattr(model, "img_resolution", None)
    # Shapes only, nothing allocated: a config.json with absurd sizes costs no memory here.
    dummy = (jax.ShapeDtypeStruct((1, size, size, model.image_channels), np.float32)
             if size is not None else jax.ShapeDtypeStruct((1, model.seq_len), np.int32))
    try:
        expected = jax.eval_shape(model.init, jax.random.key(0), dummy)["params"]
    except (ValueError, TypeError, OverflowError) as e:
        raise ValueError(f"{where}: the config's sizes do not make a model "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    shapes = lambda tree: {jax.tree_util.keystr(path): tuple(np.shape(leaf))
                           for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}
    want, got = shapes(expected), shapes(params)
    problems = [f"missing {k}" for k in want if k not in got]
    problems += [f"unexpected {k}" for k in got if k not in want]
    problems += [f"{k} is {got[k]}, expected {want[k]}" for k in want if k in got and got[k] != want[k]]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(f"{where}: parameters do not fit the config: {'; '.join(problems[:5])}{more}")
