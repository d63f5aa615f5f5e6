"""Reads PyTorch checkpoint files without torch and without running code from them.

`torch.save` (since torch 1.6) writes a zip archive: `<root>/data.pkl` is a pickle whose tensors point
(through pickle "persistent ids") at raw little-endian storages `<root>/data/<key>`. TorchScript
archives (`torch.jit.save`) use the same layout, with the modules pickled as `__torch__.*` objects.
Older files (torch < 1.6, or `_use_new_zipfile_serialization=False`) are one stream: small header
pickles, the main pickle, the list of storage keys, then each storage as an int64 element count and
its raw bytes. Their storages come after the pickle that uses them, so tensors are allocated while
unpickling and filled once the storages have been read.

A pickle can name any Python callable, so we never use the stock unpickler: `_WhitelistUnpickler`
resolves only the handful of globals a weights file needs (tensor/parameter rebuild functions, storage
types, `OrderedDict`) plus `__torch__.*` module classes, which become inert `ScriptObject` records.
Anything else stops the load with an error naming the file and the global.

    tree = load("VQGAN.pt")            # nested dicts / ScriptObjects with NumPy arrays as leaves
    weights = state_dict("VQGAN.pt")   # flat {"encoder.model.0.weight": array, ...}
"""

import collections
import functools
import os
import pickle
import zipfile
import zlib
from typing import Any

import ml_dtypes
import numpy as np


class TorchZipError(ValueError):
    """A checkpoint file that cannot be read safely; the message names the file."""


# Storage class name -> element dtype. Storages are stored raw, little-endian.
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class ScriptObject:
    """A TorchScript module read as data: its class name (`qualname`) and attributes (`state`)."""
    qualname = "__torch__"

    def __init__(self):
        self.state = {}

    def __setstate__(self, state):
        # pickle's BUILD: TorchScript pickles a module's attributes as a dict.
        self.state = dict(state) if isinstance(state, dict) else {"__state__": state}

    def __repr__(self):
        return f"ScriptObject({self.qualname}, {sorted(self.state)})"


@functools.cache
def _script_class(qualname: str) -> type:
    """A ScriptObject subclass standing in for one `__torch__.*` class (pickle instantiates it)."""
    return type("ScriptObject", (ScriptObject,), {"qualname": qualname})


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    del requires_grad, backward_hooks, metadata
    flat, _dtype = storage
    return _copy_strided(flat, storage_offset, size, stride)


def _check_fits(numel: int, storage_offset: int, size: tuple, stride: tuple) -> None:
    """Refuses a tensor that would read outside its storage of `numel` elements."""
    if (len(size) != len(stride) or storage_offset < 0 or min(size, default=0) < 0
            or min(stride, default=0) < 0):
        raise pickle.UnpicklingError(
            f"tensor of size {size} stride {stride} offset {storage_offset} is malformed")
    needed = storage_offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if min(size, default=1) > 0 and needed > numel:
        raise pickle.UnpicklingError(
            f"tensor of size {size} stride {stride} offset {storage_offset} overruns its storage "
            f"of {numel} elements")


def _copy_strided(flat: np.ndarray, storage_offset: int, size, stride) -> np.ndarray:
    """The tensor (size, stride in elements, from storage_offset) of a flat storage, as its own array."""
    size, stride = tuple(size), tuple(stride)
    _check_fits(flat.size, storage_offset, size, stride)
    if not size:
        return flat[storage_offset].copy()
    view = np.lib.stride_tricks.as_strided(
        flat[storage_offset:], shape=size, strides=tuple(s * flat.itemsize for s in stride))
    return np.array(view, order="C")  # Own the memory, C-contiguous (a transposed view would stay F).


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_state):
    del requires_grad, backward_hooks
    return data


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    # TorchScript wraps typed lists and containers in these; as data they are plain lists/values.
    ("torch.jit._pickle", "build_intlist"): list,
    ("torch.jit._pickle", "build_doublelist"): list,
    ("torch.jit._pickle", "build_boollist"): list,
    ("torch.jit._pickle", "build_tensorlist"): list,
    ("torch.jit._pickle", "restore_type_tag"): lambda value, _type_name: value,
}


class _WhitelistUnpickler(pickle.Unpickler):
    """Resolves only `_ALLOWED_GLOBALS`, storage types and `__torch__.*` records."""

    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        if module.startswith("__torch__"):
            return _script_class(f"{module}.{name}")
        raise TorchZipError(
            f"{self._path}: refuses to load the Python global '{module}.{name}'; only tensors, "
            "storages, OrderedDict and TorchScript module records are allowed in a weights file")


class _ZipUnpickler(_WhitelistUnpickler):
    """`<root>/data.pkl` of a zip archive; storages are read from `<root>/data/<key>` on demand."""

    def __init__(self, file, archive: zipfile.ZipFile, root: str, path: str):
        super().__init__(file, path)
        self._archive = archive
        self._root = root
        self._storages = {}

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise TorchZipError(f"{self._path}: unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid
        if dtype not in _STORAGE_DTYPES.values():
            raise TorchZipError(f"{self._path}: unsupported storage type {dtype!r}")
        key = str(key)
        if key not in self._storages:
            name = f"{self._root}/data/{key}"
            try:
                raw = self._archive.read(name)
            except KeyError:
                raise TorchZipError(f"{self._path}: storage {name} is missing from the archive") from None
            flat = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
            if flat.size < numel:
                raise TorchZipError(
                    f"{self._path}: storage {name} holds {flat.size} elements, expected {numel}")
            self._storages[key] = (flat, dtype)
        return self._storages[key]


class _PlainUnpickler(pickle.Unpickler):
    """For the legacy format's header and key-list pickles: numbers, strings and containers only."""

    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path

    def find_class(self, module, name):
        raise TorchZipError(f"{self._path}: refuses to load the Python global '{module}.{name}' "
                            "in a legacy torch file header")


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
_LEGACY_PROTOCOL = 1001


class _LegacyUnpickler(_WhitelistUnpickler):
    """The main pickle of a legacy file. Its storages follow it in the stream, so each tensor is
    allocated here and recorded in `pending`; `_load_legacy` fills them after reading the storages."""

    def __init__(self, file, path: str):
        super().__init__(file, path)
        self.storages = {}  # key -> (dtype, numel)
        self.pending = []   # (array to fill, storage key, offset, stride)

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return self._deferred_tensor
        return super().find_class(module, name)

    def persistent_load(self, pid):
        # ("storage", storage type, key, location, numel, view metadata (key, offset, size) or None)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise TorchZipError(f"{self._path}: unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel, view = pid
        if dtype not in _STORAGE_DTYPES.values():
            raise TorchZipError(f"{self._path}: unsupported storage type {dtype!r}")
        key = str(key)
        if self.storages.setdefault(key, (dtype, int(numel)))[0] is not dtype:
            raise TorchZipError(f"{self._path}: storage {key} is used with two element types")
        return key, (int(view[1]) if view is not None else 0)

    def _deferred_tensor(self, storage, storage_offset, size, stride, *_unused):
        key, view_offset = storage
        dtype, numel = self.storages[key]
        size, stride, offset = tuple(size), tuple(stride), view_offset + storage_offset
        _check_fits(numel, offset, size, stride)  # before allocating what the file asks for
        out = np.empty(size, dtype)
        self.pending.append((out, key, offset, stride))
        return out


def _load_legacy(path: str, f) -> Any:
    """Reads a legacy `torch.save` stream from `f` (positioned after the magic number)."""
    header = _PlainUnpickler(f, path)
    if header.load() != _LEGACY_PROTOCOL:
        raise TorchZipError(f"{path}: unsupported legacy torch protocol version")
    sys_info = header.load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise TorchZipError(f"{path}: big-endian files are not supported")
    unpickler = _LegacyUnpickler(f, path)
    result = unpickler.load()
    flats = {}
    for key in _PlainUnpickler(f, path).load():
        key = str(key)
        if key not in unpickler.storages:
            raise TorchZipError(f"{path}: storage {key} is not used by the pickle")
        dtype, numel = unpickler.storages[key]
        count = np.frombuffer(f.read(8), "<i8")
        nbytes = numel * np.dtype(dtype).itemsize
        raw = f.read(nbytes)
        if count.size != 1 or int(count[0]) != numel or len(raw) != nbytes:
            raise TorchZipError(f"{path}: storage {key} is truncated or has the wrong size")
        flats[key] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    for out, key, offset, stride in unpickler.pending:
        if key not in flats:
            raise TorchZipError(f"{path}: storage {key} is missing from the file")
        out[...] = _copy_strided(flats[key], offset, out.shape, stride)
    return result


def _is_legacy(f) -> bool:
    """Whether `f` starts with the legacy magic number; leaves `f` just after it when it does."""
    try:
        return _PlainUnpickler(f, "").load() == _LEGACY_MAGIC
    except Exception:  # any bytes that are not that one pickled integer
        return False


def _open(path: str) -> tuple[zipfile.ZipFile, str]:
    path = os.fspath(path)
    archive = zipfile.ZipFile(path)
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise TorchZipError(f"{path}: expected one <root>/data.pkl in the archive, found {pickles}")
    root = pickles[0].split("/")[0]
    order = f"{root}/byteorder"
    if order in archive.namelist() and archive.read(order).strip() != b"little":
        raise TorchZipError(f"{path}: big-endian archives are not supported")
    return archive, root


def load(path) -> Any:
    """Unpickles `path` safely: tensors become NumPy arrays, modules become `ScriptObject`s.

    Reads zip archives (torch >= 1.6, TorchScript) and the legacy `torch.save` stream.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise TorchZipError(f"{path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            archive, root = _open(path)
            with archive, archive.open(f"{root}/data.pkl") as f:
                return _ZipUnpickler(f, archive, root, path).load()
        with open(path, "rb") as f:
            if not _is_legacy(f):
                raise TorchZipError(
                    f"{path}: not a torch checkpoint (neither a torch zip archive nor a legacy "
                    "torch.save file)")
            return _load_legacy(path, f)
    except TorchZipError:
        raise
    except (zipfile.BadZipFile, zlib.error, NotImplementedError) as e:  # a CRC-corrupt member, ...
        raise TorchZipError(f"{path}: corrupt torch zip archive ({e})") from None
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, KeyError, OverflowError,
            MemoryError) as e:  # MemoryError: a length field asking for more than there is
        detail = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise TorchZipError(f"{path}: malformed checkpoint pickle ({detail})") from None


def _flatten(obj, prefix: str, out: dict):
    if isinstance(obj, np.ndarray) or np.isscalar(obj) and isinstance(obj, np.generic):
        out[prefix] = np.asarray(obj)
    elif isinstance(obj, ScriptObject):
        _flatten(getattr(obj, "state", {}), prefix, out)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)


def state_dict(path) -> dict[str, np.ndarray]:
    """The arrays of a checkpoint as a flat dict with dotted torch names.

    Accepts a bare state_dict, a dict wrapping one under `state_dict` / `model` (common training
    scripts), or a TorchScript module (its parameters and buffers by attribute path).
    """
    tree = load(path)
    if isinstance(tree, dict) and not any(isinstance(v, np.ndarray) for v in tree.values()):
        for wrapper in ("state_dict", "model", "model_state_dict"):
            if isinstance(tree.get(wrapper), dict):
                tree = tree[wrapper]
                break
    out: dict[str, np.ndarray] = {}
    _flatten(tree, "", out)
    if not out:
        raise TorchZipError(f"{path}: holds no tensors")
    return out
