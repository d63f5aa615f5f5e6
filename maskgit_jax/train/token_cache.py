"""Stage 2 trains on token ids: the dataset is encoded once by the frozen tokenizer and cached.

Re-encoding every step would spend most of stage 2's compute in the VQGAN encoder. The cache holds
each image and, optionally, its mirror image and copies moved by random offsets (``augment``), and
records everything that made it (``cache_key``): any change rebuilds it.
"""

import hashlib
import json
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from maskgit_jax.data import normalize as norm
from maskgit_jax.models.vqgan import VQGAN


def encode_ids(model: VQGAN, params, images_uint8_BxHxWx3, mean, std):
    """Token ids (B, L) of uint8 images (B, H, W, 3), row-major; traceable (use inside ``jax.jit``)."""
    _, ids_Bxhxw, _ = model.apply({"params": params}, norm.normalize(images_uint8_BxHxWx3, mean, std),
                                  method=model.encode)
    return ids_Bxhxw.reshape(ids_Bxhxw.shape[0], -1)


# The parameters are an argument, not constants baked into the compiled function.
_encode_ids = jax.jit(encode_ids, static_argnums=(0, 3, 4))


def encode_tokens(model: VQGAN, params, images_uint8: np.ndarray, mean, std,
                  batch_size: int = 256) -> np.ndarray:
    """Token ids (N, L) int32 of uint8 images (N, H, W, 3), in fixed-size batches (one compile).

    Every batch is dispatched before any result is fetched, so the device never waits for the host.
    """
    n = len(images_uint8)
    outs = []
    for start in range(0, n, batch_size):
        batch = images_uint8[start: start + batch_size]
        pad = batch_size - len(batch) if n > batch_size else 0
        batch = np.concatenate([batch, np.zeros((pad,) + batch.shape[1:], batch.dtype)])
        outs.append((_encode_ids(model, params, jnp.asarray(batch), tuple(mean), tuple(std)),
                     len(batch) - pad))
    return np.concatenate([np.asarray(ids)[:count] for ids, count in outs]).astype(np.int32)


def params_digest(params) -> str:
    """SHA-256 of a parameter tree (paths, dtypes, shapes and values): which tokenizer this is,
    wherever it came from (a checkpoint of this workdir, config.init_from)."""
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        # Replicated arrays: this process's copy is the whole array.
        array = np.asarray(leaf.addressable_data(0) if isinstance(leaf, jax.Array) else leaf)
        digest.update(f"{jax.tree_util.keystr(path)} {array.dtype} {array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def cache_key(config, tokenizer_params, flips: bool, shifts: int = 0, max_shift: int = 0) -> dict:
    """Everything that determines the cached ids: the tokenizer (its parameters, architecture and
    compute dtype) and the images (source, split, count, size, the seed that renders or picks
    them, the held-out count, normalisation, mirrored and shifted copies). A folder's files are
    named, not hashed: replacing the images of a folder in place is not seen."""
    d = config.data
    return {"tokenizer_params_sha256": params_digest(tokenizer_params),
            "vqgan": json.loads(config.vqgan.to_json_best_effort()),
            "compute_dtype": config.compute_dtype,
            "data.source": d.source, "data.train_split": d.train_split,
            "data.num_train": d.num_train, "data.image_size": d.image_size,
            # a folder without a held-out sub-folder leaves its last num_eval images out of training
            "data.num_eval": d.num_eval,
            "data.mean": list(d.mean), "data.std": list(d.std), "seed": config.seed,
            "flips": flips, "shifts": [shifts, max_shift if shifts else 0]}


def _cached(path: Path, key: dict) -> tuple[np.ndarray | None, list[str]]:
    """(the cached ids, []) when the cache at ``path`` was made with ``key``, else (None, why not:
    the fields that differ). A cache that cannot be read is rebuilt, not an error."""
    if not path.exists():
        return None, ["(no cache yet)"]
    try:
        with np.load(path) as cache:
            if "key" not in cache.files:
                return None, ["(made by an older version)"]
            saved = json.loads(str(cache["key"]))
            changed = [field for field in sorted(saved.keys() | key.keys())
                       if saved.get(field) != key.get(field)]
            return (None, changed) if changed else (cache["ids"], [])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        return None, [f"(unreadable: {type(e).__name__})"]


def shifted(image_HxWxC: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The image moved down by dy and right by dx pixels (negative: up, left), the uncovered border
    filled by repeating the edge pixels (the background, for an emoji on white)."""
    h, w = image_HxWxC.shape[:2]
    pad = max(abs(dy), abs(dx))
    padded = np.pad(image_HxWxC, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return padded[pad - dy: pad - dy + h, pad - dx: pad - dx + w]


def augment(images_NxHxWxC: np.ndarray, flips: bool, shifts: int, max_shift: int,
            seed: int) -> np.ndarray:
    """The images, then their mirrors (``flips``), then ``shifts`` copies of all of those, each image
    moved by its own offset drawn uniformly from [-max_shift, max_shift] on each axis."""
    if flips:
        images_NxHxWxC = np.concatenate([images_NxHxWxC, images_NxHxWxC[:, :, ::-1]])
    rng = np.random.default_rng(seed)
    copies = [images_NxHxWxC]
    for _ in range(shifts):
        offsets = rng.integers(-max_shift, max_shift + 1, size=(len(images_NxHxWxC), 2))
        copies.append(np.stack([shifted(image, dy, dx)
                                for image, (dy, dx) in zip(images_NxHxWxC, offsets)]))
    return np.concatenate(copies)


def load_or_build(path: Path, key: dict, model: VQGAN, params, images_fn, mean, std,
                  flips: bool, shifts: int = 0, max_shift: int = 0, seed: int = 0) -> np.ndarray:
    """The cached ids at ``path`` if made with the same ``key`` (``cache_key``), else encode and
    save them, saying in one line why a cache there was not used.

    images_fn() -> uint8 images, called only when the cache must be (re)built.
    """
    ids, stale = _cached(path, key)
    if ids is not None:
        return ids
    if path.exists():
        logging.warning("%s: rebuilding the token cache: %s changed", path, ", ".join(stale))
    images = augment(images_fn(), flips, shifts, max_shift, seed)
    ids = encode_tokens(model, params, images, mean, std)
    if jax.process_index() != 0:
        return ids  # every process encodes the same ids; process 0 alone writes the file
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, ids=ids, key=json.dumps(key))
    tmp.replace(path)  # atomic: a killed run never leaves a half-written cache
    return ids
