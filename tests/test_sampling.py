"""sample.py's library side decodes what the user gave, scores against the truth only, writes valid
JSON, checks its FID weights before decoding and never mixes or loses outputs.

One shipped model (faces-small) and one batch shape (2 images of 64x64, T=2) for every decode, so
the decoder compiles once for the module.
"""

import json
import warnings

import numpy as np
import pytest

from maskgit_jax import imageio, output_folder, sampling
from maskgit_jax.data import array_files, faces
from maskgit_jax.data.normalize import fill_holes
from maskgit_jax.pipeline import MaskGIT


@pytest.fixture(scope="module")
def model():
    return MaskGIT.from_pretrained("faces-small")


def _options(output, lab, **changes) -> sampling.SampleOptions:
    values = dict(output=str(output), input=str(lab), total_iter=2, batch_size=2, compare=False,
                  composite="paste")
    return sampling.SampleOptions(**{**values, **changes})


def test_the_built_in_test_set_does_not_move_with_the_decoding_seed():
    test = lambda **seeds: sampling.test_set(
        sampling.SampleOptions(output="-", num_builtin=3, **seeds), 64)
    np.testing.assert_array_equal(test(seed=0).ground_truth, test(seed=7).ground_truth)
    np.testing.assert_array_equal(test(seed=0).known, test(seed=7).known)
    assert not np.array_equal(test(test_seed=0).ground_truth, test(test_seed=1).ground_truth)


def test_a_lab_folder_is_decoded_from_its_masked_images_not_its_ground_truth(model, tmp_path):
    truth, known = faces.faces_test_set(2, seed=3)
    imageio.write_lab_layout(tmp_path / "lab", truth, known)
    other = 255 - truth  # ground truth that disagrees with the masked images everywhere
    for i, image in enumerate(other):
        imageio.write_image(tmp_path / "lab" / "gt" / f"image_{i:03d}.png", image)
    report = sampling.run(_options(tmp_path / "out", tmp_path / "lab"), model)
    for i in range(2):
        out = imageio.read_image(tmp_path / "out" / f"image_{i:03d}.png")
        # composite=paste keeps the known pixels of the input: the user's, not the truth's
        np.testing.assert_array_equal(out[known[i]], truth[i][known[i]])
    assert report["l1_masked"] > 60  # and it is scored against that (inverted) truth


def test_an_npz_test_set_is_an_input_that_outputs_never_replace(model, tmp_path):
    """--input=DIR/set reads DIR/set.npz, like a lab folder; the output may not be that file."""
    truth, known = faces.faces_test_set(2, seed=3)
    imageio.write_lab_layout(tmp_path / "lab", truth, known)
    lab = imageio.read_lab_layout(tmp_path / "lab")
    array_files.write(tmp_path / "set.npz", array_files.test_set_arrays(lab))
    from_npz = sampling.test_set(_options(tmp_path / "out", tmp_path / "set"), 64)
    np.testing.assert_array_equal(from_npz.images, fill_holes(truth, known))
    np.testing.assert_array_equal(from_npz.ground_truth, truth)
    with pytest.raises(output_folder.OutputError, match=r"set.npz: is the input"):
        sampling.run(_options(tmp_path / "set.npz", tmp_path / "set"), model)


def test_all_known_masks_give_valid_json_without_numpy_warnings(model, tmp_path):
    truth, _ = faces.faces_test_set(2, seed=3)
    imageio.write_lab_layout(tmp_path / "lab", truth, np.ones(truth.shape[:3], bool))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Mean of empty slice" and friends
        report = sampling.run(_options(tmp_path / "out", tmp_path / "lab", compare=True), model)
    written = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert written["psnr_masked"] is None and written["psnr_masked_T1"] is None
    assert written["token_accuracy"] is None and report["l1_masked"] is None


def test_bad_fid_weights_stop_the_job_before_decoding(model, tmp_path, monkeypatch):
    truth, known = faces.faces_test_set(2, seed=3)
    imageio.write_lab_layout(tmp_path / "lab", truth, known)
    (tmp_path / "weights.pt").write_bytes(b"not weights")
    monkeypatch.setattr(model, "inpaint", lambda *a, **k: pytest.fail("decoded before the FID check"))
    with pytest.raises(ValueError, match="weights.pt: not a torch checkpoint"):
        sampling.run(_options(tmp_path / "out", tmp_path / "lab", fid=True,
                              fid_weights=str(tmp_path / "weights.pt")), model)
    assert not (tmp_path / "out").exists()


def test_overwrite_replaces_an_earlier_run_without_stale_files(model, tmp_path):
    truth, known = faces.faces_test_set(3, seed=3)
    imageio.write_lab_layout(tmp_path / "three", truth, known)
    imageio.write_lab_layout(tmp_path / "two", truth[:2], known[:2])
    sampling.run(_options(tmp_path / "out", tmp_path / "three"), model)
    assert (tmp_path / "out" / "steps" / "image_002.png").is_file()
    with pytest.raises(output_folder.OutputError, match="is not empty"):
        sampling.run(_options(tmp_path / "out", tmp_path / "two"), model)
    sampling.run(_options(tmp_path / "out", tmp_path / "two", overwrite=True), model)
    assert sorted(p.name for p in (tmp_path / "out").glob("image_*.png")) == [
        "image_000.png", "image_001.png"]  # the earlier run's third image is gone
    assert not (tmp_path / "out" / "steps" / "image_002.png").exists()
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["images"] == 2
