"""The benchmark's report arithmetic: the matmul ceiling set against a target, by hand."""

from bench import report


def test_ceiling_note_against_a_hand_computed_case():
    # 0.2 TFLOP/s over 1 GFLOP per image: at most 200 images/s; PyTorch at 50 images/s -> 4.00x.
    above = report.ceiling_note("small", "float32", 0.2, 1e9, torch_rate=50.0, target=5.0)
    assert "200 images/s = 4.00x PyTorch's rate" in above
    assert "the 5x target (250 images/s) lies above that ceiling" in above
    within = report.ceiling_note("small", "float32", 0.2, 1e9, torch_rate=50.0, target=2.0)
    assert "the 2x target (100 images/s) lies within that ceiling" in within
    both = report.ceiling_note("small", "float32", 0.2, 1e9, torch_rate=50.0, target=5.0,
                               more_targets=((1.5, 120.0, "batched PyTorch"),))
    assert both.endswith("; the 5x target (250 images/s) lies above that ceiling; the 1.5x "
                         "batched PyTorch target (180 images/s) lies within that ceiling.")


def test_ceiling_note_without_a_pytorch_rate_or_a_target():
    note = report.ceiling_note("lab", "bfloat16", 400.0, 4e11, torch_rate=None, target=2.0)
    assert note.endswith("no implementation exceeds 1,000 images/s.")
    note = report.ceiling_note("lab", "bfloat16", 400.0, 4e11, torch_rate=250.0, target=None)
    assert note.endswith("1,000 images/s = 4.00x PyTorch's rate.")


def test_ratio_and_number_formatting():
    assert report.ratio(300.0, 100.0) == "3.00x"
    assert report.ratio(None, 100.0) is None
    assert report.fmt(12345.6) == "12,346" and report.fmt(0.012345) == "0.0123"
    assert report.fmt(None) == "—" and report.fmt(float("nan")) == "—"
