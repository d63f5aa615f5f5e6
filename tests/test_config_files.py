"""The config files: every variant builds its two models, and the emoji course row shares the
default recipe's tokenizer (its workdir trains stage 2 on a copy of that tokenizer's checkpoints)."""

import json

import jax
import jax.numpy as jnp
import pytest

from maskgit_jax.configs import emoji, faces, lab
from maskgit_jax.models import from_config
from maskgit_jax.train import workdir_config

VARIANTS = [(faces, v) for v in faces.VARIANTS] + [(lab, v) for v in ("lab", "small", "tiny")] \
    + [(emoji, v) for v in emoji.VARIANTS]


@pytest.mark.parametrize("module,variant", VARIANTS, ids=[f"{m.__name__.split('.')[-1]}:{v}"
                                                          for m, v in VARIANTS])
def test_every_variant_builds_its_models(module, variant):
    config = module.get_config(variant)
    vqgan, transformer = from_config.vqgan(config), from_config.transformer(config)
    size = config.data.image_size
    grid = vqgan.latent_resolution
    assert size % grid == 0 and transformer.seq_len == grid * grid
    shapes = jax.eval_shape(transformer.init, jax.random.key(0), jnp.zeros((1, grid * grid), jnp.int32))
    assert shapes["params"]["tok_emb"]["embedding"].shape[0] == vqgan.num_codes + 1  # + [MASK]


@pytest.mark.parametrize("config", [emoji.get_config(), faces.get_config("small16")],
                         ids=["emoji", "faces:small16"])
def test_the_shipped_recipes_are_a_16x16_grid_of_512_codes(config):
    vqgan = from_config.vqgan(config)
    assert (vqgan.latent_resolution, vqgan.num_codes) == (16, 512)


def test_emoji_course_variant_keeps_the_default_tokenizer():
    default = workdir_config.flat(json.loads(emoji.get_config().to_json_best_effort()))
    course = workdir_config.flat(json.loads(emoji.get_config("course").to_json_best_effort()))
    tokenizer_fields = [k for k in default.keys() | course.keys()
                        if workdir_config._is_model_field(k, "tokenizer")]
    assert tokenizer_fields
    assert {k: default.get(k) for k in tokenizer_fields} == {k: course.get(k) for k in tokenizer_fields}
    assert course["stages"] == "transformer"
    # What makes it the course's stage 2 and not ours.
    assert (course["transformer.lr"], course["transformer.schedule"], course["transformer.blob_prob"],
            course["transformer.self_condition"], course["transformer.ema_decay"]) == \
        (1e-4, "cosine", 0.0, 0.0, 0.0)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="unknown variant 'big'"):
        emoji.get_config("big")
