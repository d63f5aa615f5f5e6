"""The reduced official checkpoints and reference outputs of tests/data/official (see its README)."""

import functools
from pathlib import Path

import jax
import numpy as np

from maskgit_jax.models.official_vqgan import OfficialVQGAN
from maskgit_jax.official import checkpoints

DATA = Path(__file__).parent / "data" / "official"
TOKENIZER_FILE = DATA / "tokenizer_ckpt"
TRANSFORMER_FILE = DATA / "transformer_ckpt"

# The reduced models of make_reference.py: the official config with smaller sizes.
TOKENIZER = dict(img_resolution=64, filters=32, channel_multipliers=(1, 1, 2, 2, 4), num_res_blocks=2,
                 embedding_dim=32, num_codes=64)
TRANSFORMER = dict(codebook_size=64, num_classes=10, seq_len=16, hidden_size=64, num_layers=2,
                   num_heads=4, intermediate_size=128)


@functools.lru_cache(maxsize=None)
def reference() -> dict:
    with np.load(DATA / "reference.npz", allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


@functools.lru_cache(maxsize=None)
def params() -> tuple[dict, dict]:
    """(tokenizer params, transformer params) read from the reduced checkpoint files."""
    return checkpoints.read(TOKENIZER_FILE), checkpoints.read(TRANSFORMER_FILE)


@functools.lru_cache(maxsize=None)
def tokenizer_functions():
    """Jitted (encode: images -> (ids, encoder features), decode: ids -> images) of the reduced
    tokenizer, compiled once for every test that needs them."""
    model = OfficialVQGAN(**TOKENIZER)
    variables = {"params": params()[0]}
    encode = jax.jit(lambda x: (model.apply(variables, x, method=model.encode)[1],
                                model.apply(variables, x, method=model.encoder_features)))
    decode = jax.jit(lambda ids: model.apply(variables, ids, method=model.decode_indices))
    return encode, decode
