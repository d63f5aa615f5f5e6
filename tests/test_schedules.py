import math

import numpy as np
import pytest

from maskgit_jax import schedules

N = 200  # unknown tokens, for log and exp

# Independent float64 formulas of the mask schedules (MaskGIT, Chang et al. 2022, sec. 3.2, and the
# course lab's list: linear, cosine, square, ...).
REFERENCE = {
    "linear": lambda r: 1 - r,
    "cosine": lambda r: math.cos(math.pi * r / 2),
    "square": lambda r: 1 - r * r,
    "cubic": lambda r: 1 - r**3,
    "sqrt": lambda r: 1 - math.sqrt(r),
    "arccos": lambda r: 2 / math.pi * math.acos(r),
    "log": lambda r: 1.0 if r == 0 else min(max(-math.log2(r) / math.log2(N), 0.0), 1.0),
    "exp": lambda r: min(max(1 - 2 ** (-math.log2(N) * (1 - r)), 0.0), 1.0),
    "sine_linear": lambda r: (1 - r) * (1 - 0.75 * math.sin(2 * math.pi * r)),
    "constant": lambda r: 0.0,
}
POINTS = [0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 1.0]


def test_every_required_schedule_is_registered():
    assert set(REFERENCE) <= set(schedules.names())


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_formula_at_several_points(name):
    got = np.asarray(schedules.gamma(name, np.array(POINTS), N))
    want = np.array([REFERENCE[name](r) for r in POINTS])
    np.testing.assert_allclose(got, want, atol=2e-6)


@pytest.mark.parametrize("name", ["linear", "cosine", "square", "cubic", "sqrt", "arccos", "log",
                                  "sine_linear"])
def test_endpoints(name):
    got = np.asarray(schedules.gamma(name, np.array([0.0, 1.0]), N))
    np.testing.assert_allclose(got, [1.0, 0.0], atol=1e-6)


def test_exp_endpoints_follow_its_formula():
    # exp starts at 1 - 1/N: one token is already revealed at r = 0.
    got = np.asarray(schedules.gamma("exp", np.array([0.0, 1.0]), N))
    np.testing.assert_allclose(got, [1 - 1 / N, 0.0], atol=1e-6)


@pytest.mark.parametrize("name", ["linear", "cosine", "square", "cubic", "sqrt", "arccos", "log", "exp"])
def test_monotone_decreasing(name):
    r = np.linspace(0, 1, 501)
    g = np.asarray(schedules.gamma(name, r, N))
    assert np.all(np.diff(g) <= 1e-6)
    assert g[0] > g[-1]


def test_log_and_exp_depend_on_the_number_of_unknown_tokens():
    r = np.array([0.5, 0.5])
    got = np.asarray(schedules.gamma("log", r, np.array([16, 256])))
    np.testing.assert_allclose(got, [1 / 4, 1 / 8], atol=1e-6)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown schedule 'squares'.*square"):
        schedules.get("squares")
