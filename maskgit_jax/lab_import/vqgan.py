"""The course tokenizer `VQGAN.pt` (a bare state_dict) -> this project's VQGAN config and parameters.

Naming rule (see `models/vqgan.py`): flax ``encoder/model_3/block_2/kernel`` is torch
``encoder.model.3.block.2.weight``; ``kernel`` and GroupNorm ``scale`` are torch ``weight``; conv kernels
go OIHW -> HWIO; the codebook ``embedding`` (K, D) is ``codebook.embedding.weight`` unchanged.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.lab_import.vqgan_layout import infer_vqgan_config
from maskgit_jax.lab_import.weights import Weights
from maskgit_jax.models import vqgan as vq

_INDEXED = re.compile(r"^(.*)_(\d+)$")  # flax "model_3" <- torch "model.3"
_TORCH_LEAF = {"kernel": "weight", "scale": "weight", "bias": "bias"}


def torch_key(path: tuple[str, ...]) -> str:
    """The torch key of a flax VQGAN parameter path."""
    if path == ("codebook", "embedding"):
        return "codebook.embedding.weight"
    *modules, leaf = path
    names = [_INDEXED.sub(r"\1.\2", m) for m in modules]
    return ".".join(names + [_TORCH_LEAF[leaf]])


def _builder(weights: Weights):
    def build(path):
        key = torch_key(path)
        value = weights.take(key)
        if value is None:
            return None
        if path[-1] == "kernel" and value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        return key, value
    return build


def abstract_params(model: vq.VQGAN):
    """The parameter shapes of ``model`` (nothing is computed)."""
    size = model.img_resolution
    images = jnp.zeros((1, size, size, model.image_channels), jnp.float32)
    return jax.eval_shape(model.init, jax.random.key(0), images)["params"]


def convert_vqgan(weights: Weights, image_size: int = 64) -> tuple[dict, dict]:
    """(VQGAN constructor kwargs, float32 params) of a course VQGAN state_dict at ``image_size``.

    Raises ConversionError (naming the file) listing unplaced keys, missing keys and wrong shapes.
    """
    config = infer_vqgan_config(weights, image_size)
    params = weights.fill(abstract_params(vq.make_vqgan(config)), _builder(weights), "VQGAN")
    return config, jax.tree.map(np.asarray, params)
