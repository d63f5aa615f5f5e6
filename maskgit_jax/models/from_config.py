"""Builds the two models from a training config (the only place that reads config fields for them)."""

import jax
import jax.numpy as jnp
import ml_collections

from maskgit_jax.models.transformer import BidirectionalTransformer
from maskgit_jax.models.vqgan import VQGAN, make_vqgan

# float64 is for numerical checks (tests/test_distributed.py), with 64-bit JAX: see models.precision.
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16,
          "float64": jnp.float64}


def compute_dtype(name: str):
    try:
        dtype = DTYPES[name]
    except KeyError:
        raise ValueError(f"config.compute_dtype={name!r}; choose one of {sorted(DTYPES)}") from None
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        # Without it JAX makes every float64 array float32, with a warning only.
        raise ValueError("config.compute_dtype='float64' needs 64-bit JAX (JAX_ENABLE_X64=1)")
    return dtype


def param_dtype(name: str):
    """The parameters' dtype for compute dtype ``name``: float32, float64 for float64."""
    return jnp.float64 if compute_dtype(name) == jnp.float64 else jnp.float32


def vqgan(config: ml_collections.ConfigDict) -> VQGAN:
    return make_vqgan(config.vqgan.to_dict(), dtype=compute_dtype(config.compute_dtype),
                      param_dtype=param_dtype(config.compute_dtype))


def transformer(config: ml_collections.ConfigDict) -> BidirectionalTransformer:
    """The transformer over the tokenizer's grid: K codes, (latent resolution)^2 positions."""
    tokenizer = vqgan(config)
    return BidirectionalTransformer(num_codes=tokenizer.num_codes,
                                    seq_len=tokenizer.latent_resolution ** 2,
                                    dtype=compute_dtype(config.compute_dtype),
                                    param_dtype=param_dtype(config.compute_dtype),
                                    **config.transformer_model.to_dict())
