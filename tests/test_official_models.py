"""The official MaskGIT architecture: parameter trees, checkpoint loading, outputs vs the official code."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.models.official_transformer import OfficialTransformer
from maskgit_jax.models.official_vqgan import OfficialVQGAN
from maskgit_jax.official import checkpoints

from official_reference import DATA, TOKENIZER, TRANSFORMER, params, reference, tokenizer_functions


def _tree_lines(tree) -> dict[str, tuple[int, ...]]:
    return {"params/" + "/".join(k.key for k in path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _official_listing(section: str) -> dict[str, tuple[int, ...]]:
    """{path: shape} of one section ('transformer' or 'tokenizer') of tree_256.txt."""
    out, current = {}, None
    for line in (DATA / "tree_256.txt").read_text().splitlines():
        if line.startswith("## "):
            current = line.split()[1]
        elif current == section and line.startswith("params/"):
            path, shape = line.split("\t")[:2]
            out[path] = tuple(int(n) for n in re.findall(r"\d+", shape))
    return out


def _full_trees(image_size: int):
    tok = OfficialVQGAN(**checkpoints.tokenizer_preset(image_size))
    tr = OfficialTransformer(**checkpoints.transformer_preset(image_size))
    key = jax.random.key(0)
    tok_tree = jax.eval_shape(tok.init, key, jnp.zeros((1, image_size, image_size, 3)))
    tr_tree = jax.eval_shape(tr.init, key, jnp.zeros((1, tr.seq_len + 1), jnp.int32))
    return _tree_lines(tok_tree["params"]), _tree_lines(tr_tree["params"])


def test_full_size_trees_equal_the_official_listing():
    tokenizer, transformer = _full_trees(256)
    assert transformer == _official_listing("transformer")
    assert tokenizer == _official_listing("tokenizer")
    count = lambda tree: sum(int(np.prod(s)) for s in tree.values())
    assert count(transformer) == 172_457_193 and count(tokenizer) == 54_515_587

    tokenizer_512, transformer_512 = _full_trees(512)
    assert tokenizer_512 == tokenizer
    changed = {k for k in transformer if transformer_512[k] != transformer[k]}
    assert changed == {"params/Embed_0/position_embeddings/embedding"}
    assert transformer_512["params/Embed_0/position_embeddings/embedding"] == (1025, 768)
    assert count(transformer_512) == 173_047_017


def test_architecture_read_off_the_checkpoints():
    tok_params, tr_params = params()
    tokenizer = checkpoints.tokenizer_architecture(tok_params, "tokenizer")
    assert tokenizer == {k: v for k, v in TOKENIZER.items() if k != "img_resolution"}
    assert checkpoints.transformer_architecture(tr_params, 64, "transformer") == TRANSFORMER


def test_tokenizer_reproduces_the_official_ids_and_reconstruction():
    ref = reference()
    encode, decode = tokenizer_functions()
    ids, features = encode(ref["images"])
    np.testing.assert_array_equal(np.asarray(ids), ref["token_ids"])
    np.testing.assert_allclose(np.asarray(features), ref["enc_features"], rtol=0, atol=5e-5)
    np.testing.assert_allclose(np.asarray(decode(ref["token_ids"])), ref["recon"], rtol=0, atol=5e-5)


def test_transformer_reproduces_the_official_logits():
    ref = reference()
    model = OfficialTransformer(**TRANSFORMER)
    variables = {"params": params()[1]}
    logits = np.asarray(jax.jit(model.apply)(variables, ref["tr_input"]))
    np.testing.assert_allclose(logits, ref["logits"], rtol=0, atol=2e-5)
    # The mask id -1 is the last embedding row.
    explicit = np.asarray(jax.jit(model.apply)(variables, ref["tr_input_explicit_mask"]))
    np.testing.assert_array_equal(explicit, logits)


def test_unreadable_checkpoints_name_the_file(tmp_path):
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\x00not msgpack at all")
    with pytest.raises(checkpoints.CheckpointError, match="garbage: not a flax msgpack"):
        checkpoints.read(garbage)
    with pytest.raises(checkpoints.CheckpointError, match="missing: cannot read"):
        checkpoints.read(tmp_path / "missing")
