"""Course PyTorch checkpoints convert to flax parameters that compute the same thing.

The reference is an independent PyTorch implementation of the course architecture (tests/torch_course.py)
with random non-trivial weights (GroupNorm/LayerNorm affine included), saved as the course does
(`torch.save(model.state_dict())`) and read back without torch. Small sizes keep this fast; one test
checks the exact lab key list and shapes.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from maskgit_jax.configs import faces as faces_config, lab as lab_config  # noqa: E402
from maskgit_jax import convert_lab, imageio, model_files  # noqa: E402
from maskgit_jax.lab_import.transformer import convert_transformer  # noqa: E402
from maskgit_jax.lab_import.vqgan import convert_vqgan  # noqa: E402
from maskgit_jax.lab_import.weights import ConversionError, Weights  # noqa: E402
from maskgit_jax.models import vqgan as vq  # noqa: E402
from maskgit_jax.models.transformer import BidirectionalTransformer, lab_transformer_config  # noqa: E402
from maskgit_jax.pipeline import MaskGIT  # noqa: E402
from maskgit_jax.sampling import SampleOptions, run as run_sampling  # noqa: E402
from maskgit_jax.train.main import train_and_evaluate  # noqa: E402
from tests import torch_course as tc  # noqa: E402

IMAGE = 16
# Widths >= 128: the course's GroupNorm(32) and the flax VQGAN then agree on the group count.
# Downsampling 16 -> 8 -> 4 (16 tokens); attention at 8 puts NonLocal inside an encoder and a decoder level.
SMALL_VQGAN = dict(enc_channels=(128, 128, 256), dec_channels=(128, 256), enc_num_res_blocks=1,
                   dec_num_res_blocks=2, enc_downsample_levels=(0, 1), dec_upsample_levels=(0, 1),
                   attn_resolutions=(8,), img_resolution=IMAGE, latent_dim=32, num_codebook_vectors=64)
TOKENS, CODES, HEADS = 16, 64, 4
SMALL_TRANSFORMER = dict(num_image_tokens=TOKENS, num_codebook_vectors=CODES, dim=64, n_layers=2,
                         hidden_dim=96, num_heads=HEADS)


def _save(state_dict, path) -> str:
    torch.save(state_dict, path)
    return str(path)


@pytest.fixture(scope="module")
def course_vqgan():
    return tc.randomize_(tc.VQGAN(**SMALL_VQGAN), seed=1)


@pytest.fixture(scope="module")
def vqgan_file(course_vqgan, tmp_path_factory):
    return _save(course_vqgan.state_dict(), tmp_path_factory.mktemp("course") / "VQGAN.pt")


@pytest.fixture(scope="module")
def transformer_file(tmp_path_factory):
    model = tc.randomize_(tc.BidirectionalTransformer(**SMALL_TRANSFORMER), seed=2)
    return _save(model.state_dict(), tmp_path_factory.mktemp("course") / "transformer.pt")


def _zeros(state_dict) -> dict:
    """Values that cost no memory: only the keys and shapes matter for the layout."""
    return {k: np.broadcast_to(np.float32(0), tuple(t.shape)) for k, t in state_dict.items()}


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(seed))


def _nhwc(x: torch.Tensor) -> jnp.ndarray:
    return jnp.asarray(x.numpy().transpose(0, 2, 3, 1))


# --- numerical parity ---------------------------------------------------------------------------

def test_vqgan_tokens_and_decoder_match_torch(course_vqgan, vqgan_file):
    config, params = convert_vqgan(Weights.read(vqgan_file), IMAGE)
    assert config["enc_channels"] == (128, 128, 256) and config["dec_channels"] == (128, 256)
    assert config["attn_resolutions"] == (8,) and config["num_codes"] == CODES
    model = vq.make_vqgan(config)
    variables = {"params": params}
    x = _images(4, seed=3)
    with torch.no_grad():
        _, torch_ids, _ = course_vqgan.encode(x)
        torch_ids = torch_ids.reshape(4, -1)
        torch_images = course_vqgan.decode_indices(torch_ids, 4).numpy().transpose(0, 2, 3, 1)
    _, ids, _ = model.apply(variables, _nhwc(x), method=model.encode)
    ids = np.asarray(ids).reshape(4, -1)
    assert len(np.unique(ids)) >= 8  # a meaningful comparison, not one code everywhere
    np.testing.assert_array_equal(ids, torch_ids.numpy())

    images = np.asarray(model.apply(variables, jnp.asarray(ids.reshape(4, 4, 4)),
                                    method=model.decode_indices))
    assert torch_images.std() > 0.1
    max_abs = np.abs(images - torch_images).max()
    assert max_abs < 1e-4, max_abs


def _renamed(state_dict: dict, renames: dict) -> dict:
    out = {}
    for key, value in state_dict.items():
        for old, new in renames.items():
            key = key.replace(old, new)
        out[key] = value
    return out


# The torch module's naming, and key renames giving further layouts (nn.MultiheadAttention's names).
VARIANTS = [(naming, bias, {}) for naming in tc.ATTENTION_NAMINGS for bias in (True, False)] + [
    ("qkv+linear", True, {"Attention.qkv.weight": "Attention.in_proj_weight",
                          "Attention.qkv.bias": "Attention.in_proj_bias",
                          "Attention.linear.": "Attention.out_proj."}),
]


@pytest.mark.parametrize("naming, bias, renames", VARIANTS,
                         ids=[f"{n}-{'bias' if b else 'nobias'}{'-renamed' if r else ''}"
                              for n, b, r in VARIANTS])
def test_transformer_logits_match_torch(naming, bias, renames, tmp_path):
    model = tc.randomize_(tc.BidirectionalTransformer(**SMALL_TRANSFORMER, attention=naming,
                                                      attn_bias=bias), seed=4)
    path = _save(_renamed(model.state_dict(), renames), tmp_path / "ckpt.pt")
    config, params = convert_transformer(Weights.read(path), heads=HEADS)
    assert (config["dim"], config["depth"], config["mlp_dim"], config["seq_len"]) == (64, 2, 96, TOKENS)
    ids = torch.randint(0, CODES + 1, (3, TOKENS), generator=torch.Generator().manual_seed(5))
    ids[0, :5] = CODES  # [MASK] tokens too
    with torch.no_grad():
        expected = model(ids).numpy()
    logits = np.asarray(BidirectionalTransformer(**config).apply({"params": params},
                                                                 jnp.asarray(ids.numpy())))
    relative = np.abs(logits - expected).max() / np.abs(expected).max()
    assert expected.std() > 0.5 and relative < 1e-4, relative


def test_training_wrapper_prefix_is_dropped(transformer_file, tmp_path):
    """nn.DataParallel saves every key as module.<key>; the weights are the same."""
    plain = torch.load(transformer_file)
    wrapped = _save({f"module.{k}": v for k, v in plain.items()}, tmp_path / "dp.pt")
    _, expected = convert_transformer(Weights.read(transformer_file), heads=HEADS)
    _, params = convert_transformer(Weights.read(wrapped), heads=HEADS)
    jax.tree.map(np.testing.assert_array_equal, params, expected)


def test_lab_checkpoint_layout_maps_completely():
    """The lab's exact keys and shapes (no values needed: built on the meta device)."""
    with torch.device("meta"):
        vq_sd = tc.VQGAN().state_dict()
        tr_sd = tc.BidirectionalTransformer(attention="qkv+linear").state_dict()
    assert len(vq_sd) == 315 and sum(t.numel() for t in vq_sd.values()) == 70_775_299
    assert list(tr_sd)[:3] == ["pos_emb", "bias", "tok_emb.weight"]
    config, params = convert_vqgan(Weights(_zeros(vq_sd), "VQGAN.pt"))
    assert config == vq.lab_vqgan_config()
    leaves = jax.tree.leaves(params)
    assert len(leaves) == 315 and sum(leaf.size for leaf in leaves) == 70_775_299
    assert params["encoder"]["model_0"]["kernel"].shape == (3, 3, 3, 128)  # OIHW -> HWIO

    config, params = convert_transformer(Weights(_zeros(tr_sd), "transformer.pt"))
    assert config == lab_transformer_config()
    assert sum(leaf.size for leaf in jax.tree.leaves(params)) == sum(t.numel() for t in tr_sd.values())
    assert params["blocks_0"]["Attention"]["query"]["kernel"].shape == (768, 16, 48)


COURSE_LAYOUTS = [  # (torch constructor kwargs, image size)
    (dict(enc_channels=(128, 256, 256, 512), dec_channels=(128, 256, 512), enc_num_res_blocks=3,
          dec_num_res_blocks=1, enc_downsample_levels=(0, 1, 2), dec_upsample_levels=(0, 1, 2),
          attn_resolutions=(8, 16), img_resolution=64, latent_dim=64, num_codebook_vectors=512), 64),
    (dict(enc_channels=(128, 128), dec_channels=(256,), enc_num_res_blocks=2, dec_num_res_blocks=2,
          enc_downsample_levels=(0,), dec_upsample_levels=(0,), attn_resolutions=(),
          img_resolution=32, latent_dim=16, num_codebook_vectors=128), 32),
]


@pytest.mark.parametrize("kwargs, size", COURSE_LAYOUTS)
def test_layout_inference_recovers_course_configs(kwargs, size):
    with torch.device("meta"):
        sd = tc.VQGAN(**kwargs).state_dict()
    config, params = convert_vqgan(Weights(_zeros(sd), "VQGAN.pt"), size)
    for name in ("enc_channels", "dec_channels", "enc_num_res_blocks", "dec_num_res_blocks",
                 "enc_downsample_levels", "dec_upsample_levels", "attn_resolutions", "latent_dim"):
        assert tuple(np.atleast_1d(config[name])) == tuple(np.atleast_1d(kwargs[name])), name
    assert config["num_codes"] == kwargs["num_codebook_vectors"] and config["img_resolution"] == size
    assert len(jax.tree.leaves(params)) == len(sd)


# --- errors -----------------------------------------------------------------------------------

def test_extra_and_missing_keys_are_listed(course_vqgan, tmp_path):
    sd = dict(course_vqgan.state_dict())
    del sd["decoder.model.3.block.0.gn.bias"]
    sd["encoder.model.4.extra.weight"] = torch.ones(2)
    sd["ema.decay"] = torch.ones(1)
    path = _save(sd, tmp_path / "VQGAN.pt")
    with pytest.raises(ConversionError) as err:
        convert_vqgan(Weights.read(path), IMAGE)
    message = str(err.value)
    assert message.startswith(path) and "\n" not in message
    for key in ("decoder.model.3.block.0.gn.bias", "encoder.model.4.extra.weight", "ema.decay"):
        assert key in message
    assert "2 unplaced" in message and "1 missing" in message


def test_unknown_attention_naming_is_listed(tmp_path):
    model = tc.BidirectionalTransformer(**SMALL_TRANSFORMER, attention="Wq/Wk/Wv+out")
    sd = _renamed(model.state_dict(), {"Attention.Wq.": "Attention.Qmat.",
                                       "Attention.out.": "Attention.final."})
    path = _save(sd, tmp_path / "ckpt.pt")
    with pytest.raises(ConversionError) as err:
        convert_transformer(Weights.read(path), heads=HEADS)
    message = str(err.value)
    assert message.startswith(path) and "\n" not in message
    assert "blocks.0.Attention.Qmat.weight" in message and "blocks.0.Attention.final.weight" in message
    assert "query/key/value" in message  # says which namings it knows


def test_shape_and_pairing_errors(vqgan_file, transformer_file, tmp_path):
    with pytest.raises(ConversionError, match="not divisible by 5 attention heads"):
        convert_transformer(Weights.read(transformer_file), heads=5)
    other = tc.BidirectionalTransformer(**dict(SMALL_TRANSFORMER, num_codebook_vectors=32))
    with pytest.raises(ConversionError, match=r"other\.pt: does not fit .*VQGAN\.pt.*32 codes"):
        convert_lab.convert(vqgan_file, str(tmp_path / "wd"), lab_config.get_config("tiny"),
                            _save(other.state_dict(), tmp_path / "other.pt"), heads=HEADS)
    narrow = tc.VQGAN(**dict(SMALL_VQGAN, enc_channels=(64, 64, 128)))
    with pytest.raises(ConversionError, match=r"narrow\.pt: GroupNorm over \[64\] channels"):
        convert_vqgan(Weights.read(_save(narrow.state_dict(), tmp_path / "narrow.pt")), IMAGE)


def test_cli_error_is_one_line(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not weights")
    proc = subprocess.run([sys.executable, "-m", "maskgit_jax.convert_lab", f"--vqgan={notes}",
                           f"--out={tmp_path / 'wd'}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {notes}: not a torch")


# --- end to end: converted model -> MaskGIT, sampling, stage-2 training --------------------------

def test_converted_model_samples_the_lab_layout(course_vqgan, vqgan_file, transformer_file, tmp_path):
    folder = tmp_path / "lab_model"
    config = convert_lab.convert(vqgan_file, str(folder), lab_config.get_config("lab"),
                                 transformer_file, heads=HEADS)
    assert config.image_size == IMAGE and config.transformer["dim"] == 64
    model = MaskGIT.from_pretrained(folder)
    # The course's protocol comes with the model: its test statistics, decoding and no compositing.
    assert model.config.mean == (0.4868, 0.4341, 0.3844)
    assert (model.decoding.schedule, model.decoding.composite, model.decoding.pixel_feedback) == (
        "cosine", "none", False)
    np.testing.assert_array_equal(
        np.asarray(model.params["tokenizer"]["decoder"]["model_0"]["kernel"]),
        course_vqgan.decoder.model[0].weight.detach().numpy().transpose(2, 3, 1, 0))

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (3, IMAGE, IMAGE, 3), dtype=np.uint8)
    # The loaded model tokenises as the PyTorch course model does (lab test normalisation).
    mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in (model.config.mean, model.config.std))
    with torch.no_grad():
        x = (torch.from_numpy(truth).permute(0, 3, 1, 2).float() / 255 - mean) / std
        _, torch_ids, _ = course_vqgan.encode(x)
    np.testing.assert_array_equal(model.encode(truth), torch_ids.reshape(3, -1).numpy())

    known = np.ones((3, IMAGE, IMAGE), bool)
    known[:, 4:9, 2:13] = False
    test_dir = tmp_path / "lab_test"
    imageio.write_lab_layout(test_dir, truth, known)
    for gt in (test_dir / "gt").iterdir():  # ground truth as the lab ships it: test_gt.csv
        gt.unlink()
    (test_dir / "gt").rmdir()
    imageio.write_gt_csv(test_dir / "test_gt.csv", truth)

    output = tmp_path / "out"
    report = run_sampling(SampleOptions(model=str(folder), output=str(output), input=str(test_dir),
                                        total_iter=3, batch_size=3, compare=False))
    assert report["composite"] == "none" and report["schedule"] == "cosine" and report["images"] == 3
    assert "psnr_masked" in report  # the ground truth came from test_gt.csv
    for i in range(3):
        image = imageio.read_image(output / f"image_{i:03d}.png")
        assert image.shape == (IMAGE, IMAGE, 3)
        steps = imageio.read_image(output / "steps" / f"image_{i:03d}.png")
        assert steps.shape[1] > 3 * IMAGE  # the per-step strip: masks and images of 3 steps


def test_tokenizer_only_then_stage_2_from_it(vqgan_file, tmp_path):
    folder = tmp_path / "vqgan_only"
    convert_lab.convert(vqgan_file, str(folder), lab_config.get_config("lab"), image_size=IMAGE)
    tokenizer_only = MaskGIT.from_pretrained(folder)
    assert tokenizer_only.transformer is None
    with pytest.raises(ValueError, match="tokenizer only"):
        tokenizer_only.inpaint(np.zeros((IMAGE, IMAGE, 3), np.uint8), np.ones((IMAGE, IMAGE), bool))
    with pytest.raises(model_files.ModelFileError, match="already holds a model"):
        convert_lab.convert(vqgan_file, str(folder), lab_config.get_config("lab"), image_size=IMAGE)
    (folder / "params.msgpack").write_bytes(b"stale")  # replaced when asked for
    convert_lab.convert(vqgan_file, str(folder), lab_config.get_config("lab"), image_size=IMAGE,
                        overwrite=True)
    assert MaskGIT.from_pretrained(folder).transformer is None

    # The course's main task: train stage 2 on its tokenizer (init_from), then load the export.
    config = lab_config.get_config("tiny")
    config.init_from = str(folder)
    config.transformer.update(steps=2, batch_size=4, warmup_steps=1)
    config.data.num_train, config.data.num_eval = 8, 2
    config.data.source = str(tmp_path / "images")  # a folder of images of the course model's size
    for i, image in enumerate(np.random.default_rng(1).integers(0, 256, (8, IMAGE, IMAGE, 3), np.uint8)):
        imageio.write_image(tmp_path / "images" / f"{i}.png", image)
    workdir = tmp_path / "run"
    train_and_evaluate(config, workdir, progress=False)
    trained = MaskGIT.from_pretrained(workdir / "model")
    assert trained.config.tokenizer == tokenizer_only.config.tokenizer  # the course's architecture
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(trained.params["tokenizer"]),
                 jax.device_get(tokenizer_only.params["tokenizer"]))
    assert trained.config.about["transformer_step"] == 2
    out = trained.inpaint(np.zeros((IMAGE, IMAGE, 3), np.uint8), np.eye(IMAGE, dtype=bool))
    assert out.image.shape == (IMAGE, IMAGE, 3)

    # Resuming from another starting model, or starting with other normalisation, is refused.
    other = MaskGIT.from_pretrained(folder)
    other.params["tokenizer"] = jax.tree.map(lambda x: x + 1, other.params["tokenizer"])
    other.save_pretrained(tmp_path / "other")
    config.init_from = str(tmp_path / "other")
    with pytest.raises(ValueError, match="was started from another model"):
        train_and_evaluate(config, workdir, progress=False)
    faces = faces_config.get_config("tiny")
    faces.init_from = str(folder)
    with pytest.raises(ValueError, match=r"the model normalises with mean \(0\.4868"):
        train_and_evaluate(faces, tmp_path / "faces_run", progress=False)
