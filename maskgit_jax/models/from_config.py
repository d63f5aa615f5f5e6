"""Builds the two models from a training config (the only place that reads config fields for them)."""

import jax.numpy as jnp
import ml_collections

from maskgit_jax.models.transformer import BidirectionalTransformer
from maskgit_jax.models.vqgan import VQGAN, make_vqgan

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def compute_dtype(name: str):
    try:
        return DTYPES[name]
    except KeyError:
        raise ValueError(f"config.compute_dtype={name!r}; choose one of {sorted(DTYPES)}") from None


def vqgan(config: ml_collections.ConfigDict) -> VQGAN:
    return make_vqgan(config.vqgan.to_dict(), dtype=compute_dtype(config.compute_dtype))


def transformer(config: ml_collections.ConfigDict) -> BidirectionalTransformer:
    """The transformer over the tokenizer's grid: K codes, (latent resolution)^2 positions."""
    tokenizer = vqgan(config)
    return BidirectionalTransformer(num_codes=tokenizer.num_codes,
                                    seq_len=tokenizer.latent_resolution ** 2,
                                    dtype=compute_dtype(config.compute_dtype),
                                    **config.transformer_model.to_dict())
