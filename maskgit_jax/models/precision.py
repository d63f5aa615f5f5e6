"""The floating-point types of the models: compute dtype, parameters, and the delicate parts.

Normalisation statistics, softmaxes, codebook distances, logits and losses run in float32 whatever
the compute dtype (bf16 is too coarse for them), and parameters are float32 (Adam's small updates
would vanish in bf16). With a float64 compute dtype (64-bit JAX, ``JAX_ENABLE_X64``) every one of
them is float64 instead: tests/test_distributed.py trains so, where float32 rounding would hide
what it checks. ``jnp.promote_types`` keeps float32 for bfloat16, float16 and float32.
"""

import jax.numpy as jnp


def at_least_float32(dtype):
    """The dtype of the delicate computations (and of the parameters) for compute ``dtype``."""
    return jnp.promote_types(dtype, jnp.float32)
