"""uint8 images -> FID Inception pool3 features, batched on device.

Preprocessing is pytorch-fid's: x / 255, bilinear resize to 299x299 with half-pixel centres and no
antialiasing (torch `F.interpolate(mode="bilinear", align_corners=False)`), then 2x - 1.

Every batch is padded to the same size, so one compiled program serves all calls and an image's
features do not depend on the images batched with it. Batches are split over this host's devices
(a `data` axis) with the Inception variables replicated; on several hosts each host computes all
features itself (FID sets are small next to training data).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from maskgit_jax.fid.inception import FEATURES, FIDInceptionV3

INPUT_SIZE = 299


def preprocess(images_BxHxWx3: jax.Array) -> jax.Array:
    """uint8 (B, H, W, 3) -> float32 (B, 299, 299, 3) in [-1, 1], as pytorch-fid feeds its Inception."""
    x = images_BxHxWx3.astype(jnp.float32) / 255.0
    # antialias=False: plain bilinear taps like torch; JAX's default antialiasing widens the kernel
    # when shrinking images larger than 299.
    x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, 3), method="bilinear",
                         antialias=False)
    return 2.0 * x - 1.0


@jax.jit
def _features_BxD(variables: dict, images_BxHxWx3: jax.Array) -> jax.Array:
    return FIDInceptionV3().apply(variables, preprocess(images_BxHxWx3))


def check_images(images, what: str) -> np.ndarray:
    """`images` as a uint8 (N, H, W, 3) array, or a one-line ValueError naming `what`."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"{what}: FID needs uint8 RGB images (N, H, W, 3), got {images.dtype} "
                         f"{images.shape}")
    return images


class FeatureExtractor:
    """`extractor(images uint8 (N, H, W, 3)) -> float32 (N, 2048)`, in padded batches of `batch_size`."""

    def __init__(self, variables: dict, batch_size: int):
        if batch_size < 1:
            raise ValueError(f"FID batch_size must be >= 1, got {batch_size}")
        mesh = Mesh(np.asarray(jax.local_devices()), ("data",))
        devices = mesh.devices.size
        self.batch_size = -(-batch_size // devices) * devices  # split evenly over the devices
        self._batches = NamedSharding(mesh, P("data"))
        self._variables = jax.device_put(variables, NamedSharding(mesh, P()))

    def __call__(self, images_NxHxWx3: np.ndarray) -> np.ndarray:
        images = check_images(images_NxHxWx3, "images")
        n, b = len(images), self.batch_size
        outputs = []
        for start in range(0, n, b):
            batch = images[start:start + b]
            if len(batch) < b:  # pad with black images; their features are dropped below
                batch = np.concatenate([batch, np.zeros((b - len(batch),) + batch.shape[1:], np.uint8)])
            # Dispatch is asynchronous: the next batch is prepared while this one runs.
            outputs.append(_features_BxD(self._variables, jax.device_put(batch, self._batches)))
        if not outputs:
            return np.zeros((0, FEATURES), np.float32)
        return np.concatenate([np.asarray(o) for o in outputs])[:n]
