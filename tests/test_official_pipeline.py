"""The official checkpoints through ``MaskGIT`` and sample.py (the reduced pair of tests/data/official)."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax import MaskGIT, imageio
from maskgit_jax.official import decoding as official_decoding

from official_reference import DATA, params

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))


def test_generate_decodes_each_example_as_the_official_decoder_alone():
    """Example i of a class-conditional generation holds the tokens the official decoder gives for
    [class token | all masked] with the key fold_in(key(seed), i)."""
    model = MaskGIT.from_pretrained(DATA)
    assert model.image_size == 64 and model.decoding.decoder == "official"
    labels, seed = [3, 7], 11
    out = model.generate(2, class_label=labels, seed=seed, total_iter=8)
    cfg = model.config.inpaint_config(model.decoding.override(total_iter=8)).decode
    alone = jax.jit(lambda sequence, key: official_decoding.decode(
        sequence, key, lambda ids: model.transformer.apply({"params": params()[1]}, ids), cfg).ids_BxL)
    for i, label in enumerate(labels):
        sequence = jnp.asarray([[64 + label] + [-1] * 16], jnp.int32)
        key = jax.random.fold_in(jax.random.key(seed), i)
        np.testing.assert_array_equal(out.ids[i], np.asarray(alone(sequence, key))[0, 1:])
    assert out.images[0].shape == (64, 64, 3)


def test_our_decoder_runs_the_official_model_too():
    model = MaskGIT.from_pretrained(DATA)
    out = model.generate(2, class_label=4, decoder="maskgit_jax", total_iter=4, seed=1)
    assert out.ids.shape == (2, 16) and out.ids.min() >= 0 and out.ids.max() < 64
    assert not np.array_equal(out.ids[0], out.ids[1])  # sampled at temperature 1, per-example keys


def test_class_labels_are_checked():
    model = MaskGIT.from_pretrained(DATA)
    with pytest.raises(ValueError, match=r"class-conditional: give a class label \(0..9\)"):
        model.generate(1)
    with pytest.raises(ValueError, match=r"class labels must be in \[0, 10\)"):
        model.generate(1, class_label=10)
    with pytest.raises(ValueError, match=r"one label or one per image \(2\)"):
        model.generate(2, class_label=[1, 2, 3])


def _run(*args):
    return subprocess.run([sys.executable, "sample.py", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("how", ["mask", "extend"])
def test_sample_py_inpaints_and_outpaints_an_odd_sized_picture(tmp_path, how):
    """sample.py with the reduced official model: a 37x53 picture inpainted under a mask, or
    outpainted on a canvas grown by 5 rows on top and 11 columns on the right; the known pixels
    come back byte for byte."""
    rs = np.random.RandomState(0)
    picture = rs.randint(0, 256, (37, 53, 3)).astype(np.uint8)
    imageio.write_image(tmp_path / "photo.png", picture)
    if how == "mask":
        known = np.ones((37, 53), bool)
        known[9:25, 14:40] = False
        imageio.write_mask(tmp_path / "mask.png", known)
        geometry, expected = f"--mask={tmp_path / 'mask.png'}", picture
    else:
        geometry = "--extend=5,0,0,11"
        known = np.zeros((42, 64), bool)
        known[5:, :53] = True
        expected = np.zeros((42, 64, 3), np.uint8)
        expected[5:, :53] = picture
    done = _run(f"--model={DATA}", f"--image={tmp_path / 'photo.png'}", geometry, "--class_label=5",
                f"--output={tmp_path / 'out.png'}")
    assert done.returncode == 0, done.stderr[-3000:]
    out = imageio.read_image(tmp_path / "out.png")
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out[known], expected[known])
    assert np.any(out[~known] != 128)  # generated, not the gray fill


def test_saved_official_model_loads_back(tmp_path):
    model = MaskGIT.from_official(DATA / "tokenizer_ckpt", DATA / "transformer_ckpt")
    model.save_pretrained(tmp_path / "saved")
    again = MaskGIT.from_pretrained(tmp_path / "saved")
    assert again.config.architecture == "official" and again.decoding == model.decoding
    assert type(again.transformer) is type(model.transformer)
    same = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)),
                        again.params, model.params)
    assert all(jax.tree.leaves(same))
