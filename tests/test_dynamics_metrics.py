"""Tests of the DSR evaluation measures against values derived by hand from their definitions."""
import numpy as np
import pytest
import torch

from timeseries.dynamics.metrics import (
    power_spectrum,
    power_spectrum_error,
    prediction_error,
    state_space_divergence,
)

ALPHA = 1e-5


def _smoothed(counts: np.ndarray) -> np.ndarray:
    return (counts + ALPHA) / (counts.sum() + ALPHA * counts.size)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(p * np.log(p / q)))


# Two clusters at 0 and 1: with std s (ddof=1) the box is [-0.1 s, 1 + 0.1 s]; with 4 bins of width
# (1 + 0.2 s) / 4 ~ 0.275, 0 lies in bin 0 and 1 in bin 3.
TWO_CLUSTERS = np.r_[np.zeros(500), np.ones(500)][:, None]
CLUSTER_STD = np.std(TWO_CLUSTERS, ddof=1)


def test_stsp_identical_data_is_zero():
    x = np.random.default_rng(0).standard_normal((2000, 3))
    assert state_space_divergence(x, x) == pytest.approx(0.0, abs=1e-12)


def test_stsp_known_bin_masses_and_kl_direction():
    x_gen = np.r_[np.zeros(250), np.ones(750)][:, None]
    expected = _kl(_smoothed(np.array([500.0, 0, 0, 500])), _smoothed(np.array([250.0, 0, 0, 750])))
    reverse = _kl(_smoothed(np.array([250.0, 0, 0, 750])), _smoothed(np.array([500.0, 0, 0, 500])))
    result = state_space_divergence(TWO_CLUSTERS, x_gen, n_bins=4)
    assert result == pytest.approx(expected, rel=1e-10)
    assert abs(result - reverse) > 1e-3


def test_stsp_laplace_smoothing_and_points_outside_the_box():
    # 600 generated points in bin 0; 100 far outside the box are ignored (not counted in the total).
    x_gen = np.r_[np.zeros(600), np.full(100, 5.0)][:, None]
    expected = _kl(_smoothed(np.array([500.0, 0, 0, 500])), _smoothed(np.array([600.0, 0, 0, 0])))
    assert state_space_divergence(TWO_CLUSTERS, x_gen, n_bins=4) == pytest.approx(expected, rel=1e-10)


def test_stsp_box_extends_by_a_tenth_of_the_std():
    inside, outside = -0.07 * CLUSTER_STD, -0.13 * CLUSTER_STD
    x_gen = np.r_[np.full(300, inside), np.full(300, outside), np.ones(300)][:, None]
    expected = _kl(_smoothed(np.array([500.0, 0, 0, 500])), _smoothed(np.array([300.0, 0, 0, 300])))
    assert state_space_divergence(TWO_CLUSTERS, x_gen, n_bins=4) == pytest.approx(expected, rel=1e-10)


def test_stsp_bins_are_closed_on_the_left():
    # A point exactly on the lower box edge is in bin 0; one exactly on the upper edge is outside.
    lo, hi = -0.1 * CLUSTER_STD, 1.0 + 0.1 * CLUSTER_STD
    x_gen = np.r_[np.full(300, lo), np.full(300, hi), np.ones(300)][:, None]
    expected = _kl(_smoothed(np.array([500.0, 0, 0, 500])), _smoothed(np.array([300.0, 0, 0, 300])))
    assert state_space_divergence(TWO_CLUSTERS, x_gen, n_bins=4) == pytest.approx(expected, rel=1e-10)


def test_stsp_no_generated_point_in_the_box_is_nan():
    assert np.isnan(state_space_divergence(TWO_CLUSTERS, np.full((10, 1), 7.0), n_bins=4))


def test_stsp_multidimensional_cells():
    # 2-D, 2 bins per axis: true mass on cells (0,0) and (1,1), generated on (0,0) and (0,1).
    x_true = np.array([[0.0, 0.0], [1.0, 1.0]] * 100)
    x_gen = np.array([[0.0, 0.0], [0.0, 1.0]] * 100)
    cells_true = np.array([100.0, 0, 0, 100])
    cells_gen = np.array([100.0, 100, 0, 0])
    expected = _kl(_smoothed(cells_true), _smoothed(cells_gen))
    assert state_space_divergence(x_true, x_gen, n_bins=2) == pytest.approx(expected, rel=1e-10)


@pytest.fixture(scope="module")
def gaussian_6d():
    rng = np.random.default_rng(0)
    return rng, rng.standard_normal((3000, 6))


def test_stsp_gmm_identical_data_is_zero(gaussian_6d):
    _, x = gaussian_6d
    assert state_space_divergence(x, x) == pytest.approx(0.0, abs=1e-12)


def test_stsp_gmm_is_deterministic_given_the_seed(gaussian_6d):
    rng, x = gaussian_6d
    y = x[::-1] + 0.5
    assert state_space_divergence(x, y, random_state=3) == state_space_divergence(x, y, random_state=3)


def test_stsp_gmm_approximates_kl_of_the_smoothed_gaussians(gaussian_6d):
    # The mixtures are the data densities convolved with N(0, scaling I): N(0, (1 + s) I) and
    # N(mu, (1 + s) I), whose KL is |mu|^2 / (2 (1 + s)); s is a variance, not a standard deviation.
    rng, x = gaussian_6d
    mu = np.r_[1.0, 1.0, 0, 0, 0, 0]
    y = rng.standard_normal(x.shape) + mu
    assert state_space_divergence(x, y) == pytest.approx(2 / 4, abs=0.06)
    assert state_space_divergence(x, y, scaling=4.0) == pytest.approx(2 / 10, abs=0.05)


def test_stsp_gmm_direction(gaussian_6d):
    # Smoothed p = N(0, 2I), q = N(0, 5I): KL(p||q) ~ 0.95 while KL(q||p) ~ 1.75.
    rng, x = gaussian_6d
    wide = 2.0 * rng.standard_normal(x.shape)
    kl_pq = 0.5 * 6 * (2 / 5 - 1 + np.log(5 / 2))
    assert state_space_divergence(x, wide) == pytest.approx(kl_pq, abs=0.12)


def test_stsp_switches_to_gmm_at_six_dimensions(gaussian_6d):
    _, x = gaussian_6d
    y = x + 0.3
    five = x[:, :5], y[:, :5]
    assert state_space_divergence(*five, random_state=0) == state_space_divergence(*five, random_state=1)
    assert state_space_divergence(x, y, random_state=0) != state_space_divergence(x, y, random_state=1)


T_SPEC = 4096
t = np.arange(T_SPEC)


def _sine(cycles: int, phase: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * cycles * t / T_SPEC + phase)


def test_spectrum_is_the_truncated_gaussian_kernel_around_a_sine():
    sigma, k = 20.0, 500
    ps = power_spectrum(_sine(k)[:, None], sigma)[:, 0]
    assert ps.shape == (T_SPEC // 2 + 1,)
    assert ps.sum() == pytest.approx(1.0)
    j = np.arange(-80, 81)
    kernel = np.exp(-0.5 * (j / sigma) ** 2)
    np.testing.assert_allclose(ps[k + j], kernel / kernel.sum(), rtol=1e-9, atol=1e-15)
    assert np.all(ps[: k - 80] < 1e-20) and np.all(ps[k + 81 :] < 1e-20)


def test_spectrum_edges_mirror_without_repeating_the_end_bin():
    # One cycle puts all power in bin 1. Mirroring about bin 0 (Julia's "reflect") adds an image of it at
    # bin -1, so bin i gets w(i - 1) + w(i + 1); repeating the end bin (scipy's "reflect") would put it at -2.
    sigma = 2.0
    ps = power_spectrum(np.sin(2 * np.pi * np.arange(64) / 64)[:, None], sigma)[:, 0]
    i = np.arange(12)

    def w(d):  # the kernel, truncated at 4 sigma = 8 bins
        return np.exp(-0.5 * (d / sigma) ** 2) * (np.abs(d) <= 8)

    weight = w(i - 1) + w(i + 1)
    np.testing.assert_allclose(ps[:12] / ps[1], weight / weight[1], rtol=1e-9, atol=1e-20)


def test_pse_identical_and_phase_shifted_sines_are_zero():
    x = np.c_[_sine(200), _sine(700)]
    assert power_spectrum_error(x, x) == pytest.approx(0.0, abs=1e-12)
    assert power_spectrum_error(x, np.c_[_sine(200, 1.0), _sine(700, 2.5)]) == pytest.approx(0.0, abs=1e-6)


def test_pse_disjoint_and_half_overlapping_spectra():
    # Peaks 400 bins apart have disjoint smoothed spectra (support +-80 bins): Hellinger distance 1.
    # Against an equal mix of both sines the Bhattacharyya coefficient is sqrt(1/2): H = sqrt(1 - 1/sqrt 2).
    single = _sine(200)[:, None]
    assert power_spectrum_error(single, _sine(600)[:, None]) == pytest.approx(1.0, abs=1e-6)
    mix = (_sine(200) + _sine(600, 0.3))[:, None]
    assert power_spectrum_error(single, mix) == pytest.approx(np.sqrt(1 - 1 / np.sqrt(2)), abs=1e-6)


def test_pse_averages_over_dimensions():
    x = np.c_[_sine(200), _sine(200)]
    y = np.c_[_sine(200, 0.7), _sine(600)]
    assert power_spectrum_error(x, y) == pytest.approx(0.5, abs=1e-6)


def test_pse_is_scale_and_offset_invariant():
    x = np.c_[_sine(200) + 0.1 * _sine(900)]
    assert power_spectrum_error(x, 5.0 * x + 3.0) == pytest.approx(0.0, abs=1e-12)


T_PE = 200


def _counter() -> np.ndarray:
    return np.arange(T_PE, dtype=float)[:, None]


def _counter_model(x0, n):
    return np.asarray(x0)[:, None, :] + np.arange(1, n + 1)[None, :, None]


def test_pe_exact_predictions_are_zero():
    assert prediction_error(_counter_model, _counter(), n=20) == 0.0


def test_pe_scores_the_last_step_only():
    def wrong_until_last(x0, n):
        trajectory = _counter_model(x0, n)
        trajectory[:, :-1] += 100.0
        return trajectory

    assert prediction_error(wrong_until_last, _counter(), n=5) == 0.0


def test_pe_on_a_decaying_linear_model():
    # The model x -> 0.5 x predicts t * 0.5^n for the counter's value t + n.
    n = 3
    starts = np.arange(T_PE - n, dtype=float)
    expected = np.mean((starts * 0.5**n - (starts + n)) ** 2)

    def decay(x0, steps):
        return np.asarray(x0)[:, None, :] * 0.5 ** np.arange(1, steps + 1)[None, :, None]

    assert prediction_error(decay, _counter(), n=n) == pytest.approx(expected, rel=1e-12)


def test_pe_on_a_rotation_with_torch_model():
    angle = 0.3
    rotation = torch.tensor([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    states = [torch.tensor([1.0, 0.0], dtype=torch.float64)]
    for _ in range(99):
        states.append(rotation @ states[-1])
    x = torch.stack(states)

    def rotate(x0, n, matrix=rotation):
        assert isinstance(x0, torch.Tensor)
        out, z = [], x0
        for _ in range(n):
            z = z @ matrix.T
            out.append(z)
        return torch.stack(out, dim=1)

    assert prediction_error(rotate, x, n=10) == pytest.approx(0.0, abs=1e-20)
    # A rotation by a slightly wrong angle is off by the chord between the two n-step angles on the unit circle.
    slower = torch.tensor([[np.cos(0.25), -np.sin(0.25)], [np.sin(0.25), np.cos(0.25)]])
    chord_sq = 2 - 2 * np.cos(10 * (0.3 - 0.25))
    assert prediction_error(lambda x0, n: rotate(x0, n, slower), x, n=10) == pytest.approx(chord_sq / 2, rel=1e-9)


def test_torch_inputs_match_numpy():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((512, 2)), rng.standard_normal((512, 2))
    assert state_space_divergence(torch.from_numpy(x), torch.from_numpy(y)) == state_space_divergence(x, y)
    assert power_spectrum_error(torch.from_numpy(x).float(), y) == pytest.approx(power_spectrum_error(x, y), abs=1e-5)


@pytest.mark.parametrize(
    "x_true, x_gen, message",
    [
        (np.zeros(10), np.zeros((10, 1)), "x_true must be a 2-D"),
        (np.zeros((10, 2)), np.zeros((10, 3)), "same number of dimensions"),
        (np.zeros((10, 1)), np.full((10, 1), np.nan), "x_gen contains non-finite"),
        (np.zeros((0, 1)), np.zeros((10, 1)), "at least one time step"),
    ],
)
def test_bad_inputs_raise(x_true, x_gen, message):
    with pytest.raises(ValueError, match=message):
        state_space_divergence(x_true, x_gen)
    with pytest.raises(ValueError, match=message):
        power_spectrum_error(x_true, x_gen)


def test_bad_arguments_raise():
    x = np.random.default_rng(0).standard_normal((50, 2))
    with pytest.raises(ValueError, match="same shape"):
        power_spectrum_error(x, x[:40])
    with pytest.raises(ValueError, match="at least 2 time steps"):
        state_space_divergence(x[:1], x)
    with pytest.raises(ValueError, match="more than n"):
        prediction_error(_counter_model, x[:5], n=5)
    with pytest.raises(ValueError, match="n must be >= 1"):
        prediction_error(_counter_model, x, n=0)
    with pytest.raises(ValueError, match=r"\(P, n, N\)"):
        prediction_error(lambda x0, n: np.asarray(x0), x, n=2)
