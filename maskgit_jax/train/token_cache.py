"""Stage 2 trains on token ids: the dataset is encoded once by the frozen tokenizer and cached.

Re-encoding every step would spend most of stage 2's compute in the VQGAN encoder. The cache holds
each image and, optionally, its mirror image, and records which tokenizer checkpoint made it.
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

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


def load_or_build(path: Path, tokenizer_step: int, model: VQGAN, params, images_fn, mean, std,
                  flips: bool) -> np.ndarray:
    """The cached ids at ``path`` if made by the same tokenizer step, else encode and save them.

    images_fn() -> uint8 images, called only when the cache must be (re)built.
    """
    if path.exists():
        with np.load(path) as cache:
            if int(cache["tokenizer_step"]) == tokenizer_step and bool(cache["flips"]) == flips:
                return cache["ids"]
    images = images_fn()
    if flips:
        images = np.concatenate([images, images[:, :, ::-1]])
    ids = encode_tokens(model, params, images, mean, std)
    if jax.process_index() != 0:
        return ids  # every process encodes the same ids; process 0 alone writes the file
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, ids=ids, tokenizer_step=tokenizer_step, flips=flips)
    tmp.replace(path)  # atomic: a killed run never leaves a half-written cache
    return ids
