"""Per-channel image normalisation between uint8 pixels and the models' input space."""

import jax.numpy as jnp
import numpy as np


def normalize(images_uint8, mean, std):
    """uint8 (..., 3) -> float32 (x / 255 - mean) / std."""
    x = jnp.asarray(images_uint8, jnp.float32) / 255.0
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def denormalize(x, mean, std):
    """The inverse of ``normalize``, rounded and clipped to uint8."""
    pixels = (jnp.asarray(x, jnp.float32) * jnp.asarray(std, jnp.float32)
              + jnp.asarray(mean, jnp.float32)) * 255.0
    return jnp.clip(jnp.round(pixels), 0, 255).astype(jnp.uint8)


def fill_holes(images_uint8: np.ndarray, known_BxHxW: np.ndarray, gray: int = 128) -> np.ndarray:
    """Missing pixels set to ``gray`` (the lab's masked images hold gray holes)."""
    return np.where(known_BxHxW[..., None], images_uint8, np.uint8(gray)).astype(np.uint8)
