"""The official decoder against google-research/maskgit's parallel_decode.decode (reference outputs)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.decoding import DecodeConfig
from maskgit_jax.models.official_transformer import OfficialTransformer
from maskgit_jax.official import decoding as official_decoding

from official_reference import TRANSFORMER, params, reference, tokenizer_functions


def _config(start_iter=0, **changes) -> DecodeConfig:
    ref = reference()
    values = dict(num_codes=int(ref["codebook_size"]), total_iter=int(ref["num_iter"]), schedule="cosine",
                  choice_temperature=float(ref["choice_temperature"]), sample_temperature=1.0,
                  confidence="logprob", decoder="official", start_iter=start_iter,
                  mask_token=int(ref["mask_token_id"]))
    return DecodeConfig(**{**values, **changes})


@functools.partial(jax.jit, static_argnames="cfg")
def _run(variables, ids, key, cfg):
    model = OfficialTransformer(**TRANSFORMER)
    return official_decoding.decode(ids, key, lambda seq: model.apply(variables, seq), cfg,
                                    return_history=True)


def _decode(inputs, rng, cfg):
    return _run({"params": params()[1]}, jnp.asarray(inputs), rng, cfg)


@pytest.mark.parametrize("case, start_iter", [("partial", 0), ("edit", 2), ("class", 0)])
def test_same_tokens_as_the_official_decoder(case, start_iter):
    ref = reference()
    rng_name = "decode_rng_class" if case == "class" else "decode_rng_partial"
    state = _decode(ref[f"decode_{case}_input"], jnp.asarray(ref[rng_name]), _config(start_iter))
    # history_prediction is the official final_seqs, rows before start_iter included.
    np.testing.assert_array_equal(np.asarray(state.history_prediction_SxBxL).swapaxes(0, 1),
                                  ref[f"decode_{case}_final_seqs"])
    np.testing.assert_array_equal(np.asarray(state.ids_BxL), ref[f"decode_{case}_final"])


def test_generate_samples_images():
    ref = reference()
    state = _decode(ref["tr_input"], jnp.asarray(ref["decode_rng_partial"]), _config())
    ids = np.asarray(state.ids_BxL)[:, 1:].reshape(ref["token_ids"].shape)
    images = tokenizer_functions()[1](ids)
    np.testing.assert_allclose(np.asarray(images), ref["generate_samples_partial_images"], rtol=0, atol=5e-5)


def test_per_example_keys_decode_each_example_as_a_batch_of_one():
    ref = reference()
    keys = jax.random.split(jax.random.key(7), 2)
    cfg = _config()
    together = np.asarray(_decode(ref["tr_input"], keys, cfg).ids_BxL)
    for i in range(2):
        alone = np.asarray(_decode(ref["tr_input"][i:i + 1], keys[i], cfg).ids_BxL)
        np.testing.assert_array_equal(together[i], alone[0])
    known = ref["tr_input"] != -1
    np.testing.assert_array_equal(together[known], ref["tr_input"][known])
    assert not np.any(together == -1)


def test_sweet_spot_stops_with_the_last_prediction():
    ref = reference()
    rng = jnp.asarray(ref["decode_rng_partial"])
    state = _decode(ref["tr_input"], rng, _config(sweet_spot=3))
    # The first three steps are the official ones; the result is the third step's prediction.
    np.testing.assert_array_equal(np.asarray(state.history_prediction_SxBxL).swapaxes(0, 1),
                                  ref["decode_partial_final_seqs"][:, :3])
    np.testing.assert_array_equal(np.asarray(state.ids_BxL), ref["decode_partial_final_seqs"][:, 2])


def test_bad_decoder_options_are_refused():
    from maskgit_jax.model_config import DecodingOptions
    with pytest.raises(ValueError, match=r"decoder must be one of \('maskgit_jax', 'official'\)"):
        DecodingOptions(decoder="upstream")
    with pytest.raises(ValueError, match=r"start_iter must be in \[0, 8\)"):
        DecodingOptions(total_iter=8, start_iter=8)
    with pytest.raises(ValueError, match=r"sampler must be one of \('confidence', 'halton'\)"):
        DecodingOptions(sampler="random")
