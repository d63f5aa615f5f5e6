"""torch_zip reads real `torch.save` / `torch.jit.save` files exactly, and refuses unsafe or broken ones."""

import collections
import os
import zipfile

import ml_dtypes
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from maskgit_jax import torch_zip  # noqa: E402


def _save(obj, path):
    torch.save(obj, path)
    return str(path)


def test_state_dict_of_a_module_is_exact_and_ordered(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.GroupNorm(2, 4),
                                torch.nn.Linear(5, 2))
    expected = model.state_dict()
    assert isinstance(expected, collections.OrderedDict)
    loaded = torch_zip.state_dict(_save(expected, tmp_path / "m.pt"))
    assert list(loaded) == list(expected)  # key order kept (the course's checkpoints are ordered)
    for key, tensor in expected.items():
        assert loaded[key].dtype == np.float32
        np.testing.assert_array_equal(loaded[key], tensor.numpy())


def test_views_offsets_and_strides(tmp_path):
    base = torch.arange(100, dtype=torch.float32)
    tensors = {
        "offset": base[10:30].view(4, 5),        # storage offset 10
        "transposed": torch.arange(24.0).reshape(4, 6).t(),  # strides (1, 6)
        "stepped": base[1::3],                   # stride 3, offset 1
        "expanded": torch.arange(3.0).expand(4, 3),  # stride 0
        "permuted": torch.arange(60.0).reshape(3, 4, 5).permute(2, 0, 1),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    assert not tensors["transposed"].is_contiguous()
    loaded = torch_zip.load(_save(tensors, tmp_path / "views.pt"))
    for key, tensor in tensors.items():
        assert loaded[key].shape == tuple(tensor.shape), key
        np.testing.assert_array_equal(loaded[key], tensor.numpy(), err_msg=key)
        assert loaded[key].flags.c_contiguous and loaded[key].flags.owndata or loaded[key].ndim == 0


def test_views_sharing_one_storage_stay_independent_copies(tmp_path):
    base = torch.arange(12, dtype=torch.float32)
    loaded = torch_zip.load(_save({"a": base[:6], "b": base[6:].view(2, 3)}, tmp_path / "s.pt"))
    np.testing.assert_array_equal(loaded["a"], np.arange(6))
    np.testing.assert_array_equal(loaded["b"], np.arange(6, 12).reshape(2, 3))
    loaded["a"][0] = -1  # must not write through into "b" or a read-only buffer
    assert loaded["b"][0, 0] == 6


@pytest.mark.parametrize("dtype, np_dtype", [
    (torch.float16, np.float16), (torch.bfloat16, ml_dtypes.bfloat16), (torch.float64, np.float64),
    (torch.int64, np.int64), (torch.int32, np.int32), (torch.uint8, np.uint8), (torch.bool, np.bool_),
])
def test_dtypes(tmp_path, dtype, np_dtype):
    values = torch.tensor([[0, 1, 2], [3, 1, 0]]).to(dtype)
    loaded = torch_zip.load(_save({"x": values}, tmp_path / "d.pt"))["x"]
    assert loaded.dtype == np_dtype
    np.testing.assert_array_equal(loaded.astype(np.float64), values.to(torch.float64).numpy())


def test_fp16_values_are_exact(tmp_path):
    values = (torch.randn(7, 5, generator=torch.Generator().manual_seed(1)) * 100).half()
    loaded = torch_zip.state_dict(_save({"w": values}, tmp_path / "h.pt"))["w"]
    np.testing.assert_array_equal(loaded, values.numpy())


def test_wrapped_state_dict_and_nested_keys(tmp_path):
    inner = collections.OrderedDict(a=torch.ones(2), b=torch.zeros(1))
    path = _save({"state_dict": inner, "epoch": 3}, tmp_path / "w.pt")
    assert sorted(torch_zip.state_dict(path)) == ["a", "b"]
    nested = _save({"encoder": {"w": torch.ones(1)}, "decoder": {"w": torch.zeros(1)}}, tmp_path / "n.pt")
    assert sorted(torch_zip.state_dict(nested)) == ["decoder.w", "encoder.w"]


def test_torchscript_archive_parameters(tmp_path):
    model = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2)))
    path = tmp_path / "ts.pt"
    torch.jit.save(model, str(path))
    loaded = torch_zip.state_dict(path)
    np.testing.assert_array_equal(loaded["0.weight"], model.state_dict()["0.weight"].numpy())
    np.testing.assert_array_equal(loaded["0.bias"], model.state_dict()["0.bias"].numpy())


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = _save({"weight": torch.ones(2), "payload": _Exploit(marker)}, tmp_path / "evil.pt")
    with pytest.raises(torch_zip.TorchZipError) as err:
        torch_zip.state_dict(path)
    message = str(err.value)
    assert str(path) in message and "system" in message and "\n" not in message
    assert not marker.exists()


def test_arbitrary_class_is_refused(tmp_path):
    path = _save({"w": torch.ones(1), "opt": collections.Counter(a=1)}, tmp_path / "c.pt")
    with pytest.raises(torch_zip.TorchZipError, match=r"c\.pt.*collections\.Counter"):
        torch_zip.load(path)


def test_legacy_stream_format_is_read_and_checked_too(tmp_path):
    base = torch.arange(20, dtype=torch.float32)
    tensors = {"offset": base[4:16].view(3, 4), "transposed": base[:12].view(3, 4).t(),
               "half": torch.ones(2, dtype=torch.float16)}
    legacy = tmp_path / "legacy.pt"
    torch.save(tensors, legacy, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(legacy)
    loaded = torch_zip.load(legacy)
    for key, tensor in tensors.items():
        np.testing.assert_array_equal(loaded[key], tensor.numpy(), err_msg=key)
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil_legacy.pt"
    torch.save({"payload": _Exploit(marker)}, evil, _use_new_zipfile_serialization=False)
    with pytest.raises(torch_zip.TorchZipError, match=r"evil_legacy\.pt: .*system"):
        torch_zip.load(evil)
    assert not marker.exists()


def test_not_a_checkpoint_and_missing_files(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(torch_zip.TorchZipError, match=r"notes\.txt: not a torch") as err:
        torch_zip.state_dict(text)
    assert "\n" not in str(err.value)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(torch_zip.TorchZipError, match=r"noise\.pt: "):
        torch_zip.load(noise)
    with pytest.raises(torch_zip.TorchZipError, match=r"absent\.pt: no such file"):
        torch_zip.load(tmp_path / "absent.pt")


def _rewrite_zip(src, dst, keep):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if keep(item.filename):
                zout.writestr(item, zin.read(item.filename))


def test_missing_storage_and_empty_archive(tmp_path):
    good = _save({"w": torch.ones(3)}, tmp_path / "good.pt")
    broken = tmp_path / "broken.pt"
    _rewrite_zip(good, broken, keep=lambda name: "/data/" not in name)
    with pytest.raises(torch_zip.TorchZipError, match=r"broken\.pt: storage .*/data/0 is missing"):
        torch_zip.load(broken)
    no_pickle = tmp_path / "nopkl.pt"
    _rewrite_zip(good, no_pickle, keep=lambda name: not name.endswith("data.pkl"))
    with pytest.raises(torch_zip.TorchZipError, match=r"nopkl\.pt: expected one <root>/data.pkl"):
        torch_zip.load(no_pickle)
    no_tensors = _save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(torch_zip.TorchZipError, match=r"meta\.pt: holds no tensors"):
        torch_zip.state_dict(no_tensors)
