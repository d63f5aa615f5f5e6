"""The lab's test_gt.csv: a header row, then one row of H*W*3 uint8 values (HWC order) per image."""

import numpy as np
import pytest

from maskgit_jax import imageio

SIZE = 8


def _images(n=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def _write_rows(path, rows, header="header"):
    path.write_text("\n".join([header] + rows) + "\n")
    return path


def test_round_trip_is_exact_and_hwc(tmp_path):
    images = _images()
    imageio.write_gt_csv(tmp_path / "test_gt.csv", images)
    np.testing.assert_array_equal(imageio.read_gt_csv(tmp_path / "test_gt.csv", SIZE, count=3), images)
    # HWC order: value k of a row is pixel (k // (W*3), (k // 3) % W), channel k % 3.
    row = np.arange(SIZE * SIZE * 3) % 256
    path = _write_rows(tmp_path / "order.csv", [",".join(map(str, row))])
    image = imageio.read_gt_csv(path, SIZE)[0]
    assert image[0, 1, 2] == 5 and image[1, 0, 0] == SIZE * 3


def test_lab_layout_reads_test_gt_csv(tmp_path):
    images = _images(seed=1)
    known = np.ones((3, SIZE, SIZE), bool)
    known[:, 2:5, 2:5] = False
    imageio.write_lab_layout(tmp_path, images, known)
    for f in (tmp_path / "gt").iterdir():
        f.unlink()
    (tmp_path / "gt").rmdir()
    assert imageio.read_lab_layout(tmp_path, SIZE).ground_truth is None
    imageio.write_gt_csv(tmp_path / "test_gt.csv", images)
    np.testing.assert_array_equal(imageio.read_lab_layout(tmp_path, SIZE).ground_truth, images)
    imageio.write_gt_csv(tmp_path / "test_gt.csv", images[:2])
    with pytest.raises(imageio.ImageError, match=r"2 ground-truth rows but 3 masked images: .*test_gt\.csv"):
        imageio.read_lab_layout(tmp_path, SIZE)


@pytest.mark.parametrize("bad, shown", [("256", "'256'"), ("-1", "'-1'"), ("1.5", "'1.5'"),
                                        ("x", "'x'"), ("", "''"), ("99999999999999999999", "'9999")])
def test_non_integer_values_name_line_and_value(tmp_path, bad, shown):
    values = [str(v) for v in _images(1).reshape(-1)]
    values[7] = bad
    path = _write_rows(tmp_path / "gt.csv", [",".join(map(str, _images(1).reshape(-1))), ",".join(values)])
    with pytest.raises(imageio.ImageError) as err:
        imageio.read_gt_csv(path, SIZE)
    message = str(err.value)
    assert "line 3, value 8" in message and shown in message and message.endswith("gt.csv")


def test_wrong_row_length_and_empty_file(tmp_path):
    row = ",".join(["1"] * (SIZE * SIZE * 3 - 1))  # one value short
    path = _write_rows(tmp_path / "short.csv", [row])
    n = SIZE * SIZE * 3
    expected = rf"line 2 has {n - 1} values, expected {n} \({SIZE}x{SIZE}x3, HWC\)"
    with pytest.raises(imageio.ImageError, match=expected + r": .*short\.csv"):
        imageio.read_gt_csv(path, SIZE)
    with pytest.raises(imageio.ImageError, match=r"no image rows after the header: .*empty\.csv"):
        imageio.read_gt_csv(_write_rows(tmp_path / "empty.csv", []), SIZE)
    with pytest.raises(imageio.ImageError, match=r"no such file: .*absent\.csv"):
        imageio.read_gt_csv(tmp_path / "absent.csv", SIZE)
