"""A course state_dict being placed into a flax parameter tree, and the one error listing what did not fit.

The converters ask for torch keys (`take`, `optional`); every key asked for and found is "placed".
`fill` walks the expected flax tree (shapes from `jax.eval_shape`), builds each leaf from the torch
tensors, and raises a single `ConversionError` naming the file with all unplaced keys (in the file,
never used), missing keys (needed, absent) and shape mismatches, instead of failing at the first one.
"""

from typing import Callable, Optional

import numpy as np
from flax import traverse_util

from maskgit_jax import torch_zip

# Leaf builder: flax path -> (torch key(s) for messages, float32 array) or None when a key is missing.
Builder = Callable[[tuple[str, ...]], Optional[tuple[str, np.ndarray]]]

_LISTED = 8  # names shown per problem kind; the rest are counted
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class ConversionError(ValueError):
    """A checkpoint that does not fit the course layout; the one-line message names the file."""


class Weights:
    """The tensors of one checkpoint file (flat dotted torch keys) with bookkeeping."""

    def __init__(self, arrays: dict[str, np.ndarray], path: str):
        self.arrays = arrays
        self.path = path
        self.placed: set[str] = set()
        self.missing: list[str] = []
        self.wrong_shapes: list[str] = []

    @classmethod
    def read(cls, path) -> "Weights":
        """Reads a torch checkpoint (no torch, no code execution); errors name the file.

        A prefix every key shares because of a training wrapper (nn.DataParallel's ``module.``,
        torch.compile's ``_orig_mod.``) is dropped.
        """
        try:
            arrays = torch_zip.state_dict(path)
        except torch_zip.TorchZipError as e:
            raise ConversionError(str(e)) from None
        for wrapper in _WRAPPER_PREFIXES:
            if all(key.startswith(wrapper) for key in arrays):
                arrays = {key[len(wrapper):]: value for key, value in arrays.items()}
        return cls(arrays, str(path))

    def has(self, key: str) -> bool:
        return key in self.arrays

    def keys_under(self, prefix: str) -> list[str]:
        """The key suffixes after ``prefix`` (which should end with '.')."""
        return [k[len(prefix):] for k in self.arrays if k.startswith(prefix)]

    def shape(self, key: str) -> Optional[tuple[int, ...]]:
        return tuple(self.arrays[key].shape) if key in self.arrays else None

    def optional(self, key: str) -> Optional[np.ndarray]:
        """The tensor as float32 (and mark it placed), or None without complaint."""
        if key not in self.arrays:
            return None
        self.placed.add(key)
        return np.asarray(self.arrays[key], np.float32)

    def take(self, key: str) -> Optional[np.ndarray]:
        """The tensor as float32 (and mark it placed), or None after recording it as missing."""
        value = self.optional(key)
        if value is None:
            self.missing.append(key)
        return value

    def fail(self, message: str) -> ConversionError:
        return ConversionError(f"{self.path}: {message}")

    def fill(self, abstract_params, build: Builder, what: str, hint: Optional[tuple[str, str]] = None):
        """The params tree shaped like ``abstract_params`` with each leaf from ``build``; raises
        ConversionError listing unplaced / missing keys and wrong shapes if anything does not fit.
        hint: (text, advice): the advice is added when a problem key contains the text."""
        leaves = traverse_util.flatten_dict(abstract_params)
        out = {}
        for path, leaf in leaves.items():
            built = build(path)
            if built is None:
                continue
            source, value = built
            if tuple(value.shape) != tuple(leaf.shape):
                self.wrong_shapes.append(f"{source} {tuple(value.shape)} -> {'/'.join(path)} "
                                         f"{tuple(leaf.shape)}")
                continue
            out[path] = value.astype(leaf.dtype, copy=False)
        self.check(what, hint)
        return traverse_util.unflatten_dict(out)

    def check(self, what: str, hint: Optional[tuple[str, str]] = None) -> None:
        unplaced = [k for k in self.arrays if k not in self.placed]
        problems = [(f"{len(unplaced)} unplaced key(s)", unplaced),
                    (f"{len(self.missing)} missing key(s)", self.missing),
                    (f"{len(self.wrong_shapes)} wrong shape(s)", self.wrong_shapes)]
        listed = [f"{title}: {_first(names)}" for title, names in problems if names]
        if hint is not None and any(hint[0] in name for _, names in problems for name in names):
            listed.append(hint[1])
        if listed:
            raise self.fail(f"does not fit the course {what}: " + "; ".join(listed))


def _first(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" (and {len(names) - _LISTED} more)" if len(names) > _LISTED else "")
