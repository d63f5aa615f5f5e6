"""The MaskGIT model object: loading from a workdir or an exported folder, any-size pictures, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from maskgit_jax import inpaint, mesh as mesh_lib, model_files, pretrained, resizing
from maskgit_jax.data import faces
from maskgit_jax.export import export
from maskgit_jax.model_config import DecodingOptions
from maskgit_jax.pipeline import MaskGIT

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tiny_run):
    """Both stages of the tiny config (EMA on; its grids decode with T=3), exported to
    WORKDIR/model when stage 2 ends (conftest; read-only)."""
    return tiny_run


@pytest.fixture(scope="module")
def test_faces():
    return faces.faces_test_set(6, seed=3)


def test_exported_model_reproduces_the_workdir_exactly(workdir, test_faces):
    """Reference: the parameters restored through the trainer's own path (the whole train state)."""
    from maskgit_jax.models import from_config
    from maskgit_jax.train import experiment
    images, known = test_faces
    config = experiment.load_config(workdir)
    replicated = mesh_lib.replicated(mesh_lib.make_mesh())
    _, vq_params = experiment.restore_tokenizer(config, workdir, replicated)
    _, tr_params = experiment.restore_transformer(config, workdir, replicated, use_ema=True)
    cfg = DecodingOptions(schedule="square", total_iter=3).inpaint_config(
        config.vqgan.num_codes, tuple(config.data.mean), tuple(config.data.std))
    expected = inpaint.inpaint_batched(from_config.vqgan(config), vq_params,
                                       from_config.transformer(config), tr_params, images, known, cfg,
                                       jax.random.key(0), batch_size=4)

    from_workdir = MaskGIT.from_pretrained(workdir)
    exported = MaskGIT.from_pretrained(workdir / "model")  # written by train.py at the end of stage 2
    assert exported.config == from_workdir.config
    assert exported.config.about["ema"] is True and exported.config.about["transformer_step"] == 4
    for model in (from_workdir, exported):
        assert model.decoding == DecodingOptions(schedule="square", total_iter=3)  # config.sample
        out = model.inpaint(images, known, batch_size=4)
        np.testing.assert_array_equal(out.ids, expected.ids)
        np.testing.assert_array_equal(np.stack(out.images), expected.images)
    # The EMA parameters are the ones exported; the raw ones decode differently.
    raw = MaskGIT.from_pretrained(workdir, use_ema=False)
    assert not np.array_equal(raw.inpaint(images, known).ids, expected.ids)


def test_export_command_picks_a_step_and_never_overwrites(workdir, test_faces, tmp_path):
    images, known = test_faces
    folder = export(workdir, tmp_path / "step2", step=2)
    model = MaskGIT.from_pretrained(folder)
    assert model.config.about["transformer_step"] == 2
    latest = MaskGIT.from_pretrained(workdir)
    assert not np.array_equal(model.inpaint(images, known).ids, latest.inpaint(images, known).ids)
    with pytest.raises(model_files.ModelFileError, match="already holds a model"):
        export(workdir, folder)
    proc = subprocess.run([sys.executable, "-m", "maskgit_jax.export", f"--workdir={workdir}",
                           "--step=3", f"--out={tmp_path / 'x'}"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].endswith("no transformer checkpoint at step 3; "
                                                         "saved steps: [2, 4]")
    # Decoding defaults other than the run's config.sample, typed as DecodingOptions has them.
    tuned = MaskGIT.from_pretrained(export(workdir, tmp_path / "tuned",
                                           decoding={"code_kernel": 0.125, "schedule": "linear"}))
    assert tuned.decoding == latest.decoding.override(code_kernel=0.125, schedule="linear")
    assert tuned.decoding != latest.decoding
    with pytest.raises(ValueError, match="--decoding: unknown decoding option"):
        export(workdir, tmp_path / "bad", decoding={"kernel": 1})


def test_any_size_keeps_the_known_pixels_exactly(workdir):
    model = MaskGIT.from_pretrained(workdir / "model")
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (97, 131, 3), dtype=np.uint8)
    mask = np.full((97, 131), 255, np.uint8)
    mask[30:60, 40:100] = 0
    mask[0:5, 0:5] = 100    # below the threshold: missing
    mask[90:, 120:] = 200   # above: known
    known = mask >= 128
    out = model.inpaint(picture, mask).image  # the model's default: paste
    assert out.shape == picture.shape
    np.testing.assert_array_equal(out[known], picture[known])
    assert (out[~known] != picture[~known]).mean() > 0.5
    np.testing.assert_array_equal(model.inpaint(picture, known.astype(np.uint8)).image, out)  # 0/1
    # 'blend' mixes the 3 pixels beyond the holes' border and keeps every known pixel further out.
    near = ndimage.binary_dilation(~known, np.ones((3, 3), bool), iterations=3)
    blended = model.inpaint(picture, mask, composite="blend").image
    np.testing.assert_array_equal(blended[~near], picture[~near])
    assert (blended[near & known] != picture[near & known]).any()
    # 'seamless' keeps every known pixel too, at the picture's size, and shifts the fill to meet them.
    seamless = model.inpaint(picture, mask, composite="seamless").image
    np.testing.assert_array_equal(seamless[known], picture[known])
    assert (seamless[~known] != out[~known]).mean() > 0.5
    # PIL input, float masks, and pictures of different sizes in one call.
    pil = model.inpaint([Image.fromarray(picture), picture[:64, :64]],
                        [known.astype(np.float32), known[:64, :64]])
    np.testing.assert_array_equal(pil.images[0][known], picture[known])
    assert pil.images[1].shape == (64, 64, 3)


def _footprint_missing(known_HxW: np.ndarray, size: int) -> np.ndarray:
    """Reference for the model-size mask: a model pixel is missing iff a picture pixel whose area
    overlaps its box is missing (float64 box edges)."""
    h, w = known_HxW.shape
    rows = [(int(np.floor(i * h / size)), int(np.ceil((i + 1) * h / size))) for i in range(size)]
    cols = [(int(np.floor(j * w / size)), int(np.ceil((j + 1) * w / size))) for j in range(size)]
    return np.array([[(~known_HxW[r0:r1, c0:c1]).any() for c0, c1 in cols] for r0, r1 in rows])


def test_model_size_mask_follows_the_pixel_footprints():
    rng = np.random.default_rng(1)
    for h, w in ((97, 131), (128, 128), (40, 200)):
        known = rng.random((h, w)) > 0.02
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        small, small_known = resizing.to_model_size(image, known, 64)
        np.testing.assert_array_equal(~small_known, _footprint_missing(known, 64))
        assert (small[~small_known] == 128).all()


def test_inference_does_not_import_training(workdir):
    code = (f"import sys, numpy as np\n"
            f"from maskgit_jax import MaskGIT\n"
            f"for source in ({str(workdir)!r}, {str(workdir / 'model')!r}):\n"
            f"    m = MaskGIT.from_pretrained(source)\n"
            f"    m.inpaint(np.zeros((70, 50, 3), np.uint8), np.eye(70, 50, dtype=bool), total_iter=2)\n"
            f"print(sorted(k for k in sys.modules if k.startswith(('maskgit_jax.train', 'optax'))))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_batches_are_split_over_devices(workdir, tmp_path):
    """Two host CPU devices: each decodes half of every batch (what MaskGIT.inpaint hands the jitted
    core), and the tokens are the one-device ones."""
    images, known = faces.faces_test_set(5, seed=2)
    np.savez(tmp_path / "faces.npz", images=images, known=known)
    one = MaskGIT.from_pretrained(workdir / "model").inpaint(images, known, batch_size=4)
    np.save(tmp_path / "one_device_ids.npy", one.ids)
    one_encoded = MaskGIT.from_pretrained(workdir / "model").encode(images).tolist()
    code = f"""
import numpy as np
from maskgit_jax import inpaint
from maskgit_jax.pipeline import MaskGIT
core, seen = inpaint._inpaint_core, []
def recording_core(vqgan, vq_vars, transformer, tr_params, filled, known, rng, **kw):
    seen.append(sorted((s.device.id, s.data.shape[0]) for s in filled.addressable_shards))
    return core(vqgan, vq_vars, transformer, tr_params, filled, known, rng, **kw)
inpaint._inpaint_core = recording_core
m = MaskGIT.from_pretrained({str(workdir / 'model')!r})
assert len(m.mesh.devices.flat) == 2
data = np.load({str(tmp_path / 'faces.npz')!r})
out = m.inpaint(data["images"], data["known"], batch_size=4)
assert np.array_equal(out.ids, np.load({str(tmp_path / 'one_device_ids.npy')!r}))
assert np.array_equal(m.encode(data["images"]), {one_encoded!r}), "sharded encode"
print(seen)
"""
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # 5 images: a batch of 4 split 2 + 2 over the devices, the fifth image in a batch of 2 (the
    # next power of two, rounded up to the device count) split 1 + 1.
    assert proc.stdout.strip().splitlines()[-1] == "[[(0, 2), (1, 2)], [(0, 1), (1, 1)]]"


def test_decoding_options_override_only_what_is_given():
    base = DecodingOptions(schedule="cosine", total_iter=8, sweet_spot=6, composite="none")
    assert base.override(schedule=None, composite=None) == base
    assert base.override(choice_temperature=2.0).sweet_spot == 6
    assert base.override(total_iter=12).sweet_spot is None  # a sweet spot belongs to its T
    assert base.override(sweet_spot=0).sweet_spot is None
    with pytest.raises(TypeError, match="unknown decoding option.*'steps'"):
        base.override(steps=3)
    with pytest.raises(ValueError, match="must be one of"):
        base.override(composite="soft")


def test_bad_model_files_give_one_line(workdir, tmp_path):
    with pytest.raises(ValueError, match=r"'no-such-model' is neither a shipped model \(.*faces-small"):
        MaskGIT.from_pretrained("no-such-model")
    folder = tmp_path / "copy"
    MaskGIT.from_pretrained(workdir / "model").save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())

    (folder / "params.msgpack").write_bytes(b"\x93not msgpack at all")
    with pytest.raises(model_files.ModelFileError, match=r"params\.msgpack: its sha256 is not the one"):
        MaskGIT.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({k: v for k, v in config.items()
                                                    if k != "params_sha256"}))  # an older export
    with pytest.raises(model_files.ModelFileError, match=r"params\.msgpack: not a readable parameter file"):
        MaskGIT.from_pretrained(folder)

    MaskGIT.from_pretrained(workdir / "model").save_pretrained(folder, overwrite=True)
    (folder / "config.json").write_text(json.dumps(dict(config, format_version=1)))
    MaskGIT.from_pretrained(folder)  # models of format version 1 (0.2.0) are read as before
    (folder / "config.json").write_text(json.dumps(dict(config, format_version=99)))
    with pytest.raises(ValueError, match="model format version 99; this maskgit_jax reads versions 1, 2"):
        MaskGIT.from_pretrained(folder)

    wider = dict(config, transformer=dict(config["transformer"], dim=32))
    (folder / "config.json").write_text(json.dumps(wider))
    with pytest.raises(ValueError, match=r"transformer: parameters do not fit the config: \['LN'\]\['bias'\] is \(16,\), "
                                         r"expected \(32,\);.*\(and 19 more\)"):
        MaskGIT.from_pretrained(folder)
    with pytest.raises(ValueError, match="neither an exported model"):
        MaskGIT.from_pretrained(tmp_path)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "params.msgpack").unlink()  # an interrupted copy
    with pytest.raises(model_files.ModelFileError, match=r"params\.msgpack: not found"):
        MaskGIT.from_pretrained(folder)
    with pytest.raises(model_files.ModelFileError, match="not an exported model's .a training workdir"):
        MaskGIT.from_pretrained(workdir).save_pretrained(workdir, overwrite=True)


def test_shipped_models_load_offline_and_inpaint():
    assert {"faces-small", "emoji-small"} <= set(pretrained.names())
    for name in pretrained.names():
        model = MaskGIT.from_pretrained(name)
        about = model.config.about
        assert about["name"] == name and about["data"] and about["license"]
        images, known = faces.faces_test_set(2, seed=0)
        out = model.inpaint(images, known, total_iter=2)
        np.testing.assert_array_equal(out.model_images[known], images[known])
    size = sum(f.stat().st_size for f in Path(pretrained.__file__).parent.rglob("*") if f.is_file())
    assert size < 20e6
