"""Affine equivariance of the forecasters and of the DSR estimator: a model fitted on ``a * y + b`` must forecast
``a * forecast(y) + b``, at any scale float64 holds.

Forecasts are compared after rescaling, ``(f - b) / a``, relative to the spread of the forecast of ``y``
(``a`` in {1e-4, 1e6}, ``b`` in {0, 1e7}, plus an amplitude of 1e30), with the same ``random_state``. Where an
estimator's math is not affine-equivariant (ridge's penalty, the DSR without ``standardize``), the test pins
down what it does instead, as the docs state.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import torch

from timeseries.arnet import ARNetForecaster, LagRegressor, lag_matrix
from timeseries.autotimes import AutoTimesForecaster
from timeseries.dynamics import DynamicsReconstructor, simulate_lorenz63

AFFINE = [(1e-4, 0.0), (1e6, 0.0), (1e-4, 1e7), (1e6, 1e7)]
AFFINE_IDS = [f"a={a:g},b={b:g}" for a, b in AFFINE]
RTOL = 1e-3
TINY_AUTOTIMES = dict(token_len=4, context_len=32, d_model=16, depth=1, mlp_hidden=32, batch_size=32, lr=3e-3,
                      epochs=2, max_windows_per_epoch=64, random_state=0)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def series(n: int = 160, seed: int = 0) -> np.ndarray:
    """A noisy AR(2) plus a slow sine: ``(n,)`` of unit scale."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    for t in range(2, n):
        y[t] = 0.6 * y[t - 1] - 0.2 * y[t - 2] + 0.3 * rng.standard_normal()
    return y + np.sin(2 * np.pi * np.arange(n) / 16)


def assert_equivariant(
    scaled: np.ndarray, base: np.ndarray, a: float, b: float, rtol: float = RTOL, float64_grid: bool = False
) -> None:
    """``(scaled - b) / a`` equals ``base`` to ``rtol`` of ``base``'s spread; with ``float64_grid``, plus the
    spacing of float64 numbers at the scaled forecast (no method can be closer than its output can be written:
    at ``b = 1e7`` that spacing is 1.9e-9, i.e. 1.9e-5 in the units of ``y`` for ``a = 1e-4``)."""
    scaled, base = np.asarray(scaled, dtype=float), np.asarray(base, dtype=float)
    assert np.isfinite(scaled).all(), "the forecast of a * y + b is not finite"
    grid = 4 * np.spacing(np.max(np.abs(scaled))) / a if float64_grid else 0.0
    error = np.max(np.abs((scaled - b) / a - base))
    limit = rtol * np.ptp(base) + grid
    assert error <= limit, (
        f"error relative to the forecast's spread {error / np.ptp(base):.3g} > {limit / np.ptp(base):.3g} "
        f"(a={a}, b={b})"
    )


# ------------------------------------------------------------------ AutoTimes


def autotimes(**kwargs) -> AutoTimesForecaster:
    return AutoTimesForecaster(**{**TINY_AUTOTIMES, **kwargs})


@pytest.fixture(scope="module")
def autotimes_base() -> np.ndarray:
    return autotimes().fit(series()).predict(12)


@pytest.mark.parametrize(("a", "b"), AFFINE, ids=AFFINE_IDS)
def test_autotimes_is_affine_equivariant(autotimes_base: np.ndarray, a: float, b: float) -> None:
    assert_equivariant(autotimes().fit(a * series() + b).predict(12), autotimes_base, a, b)


def test_autotimes_at_amplitude_1e30_is_finite_and_equivariant(autotimes_base: np.ndarray) -> None:
    assert_equivariant(autotimes().fit(1e30 * series()).predict(12), autotimes_base, 1e30, 0.0)


def test_autotimes_with_validation_at_amplitude_1e30() -> None:
    """The early-stopping path used to crash (``load_state_dict(None)``) when every loss was non-finite."""
    base = autotimes(validation_fraction=0.2).fit(series()).predict(8)
    model = autotimes(validation_fraction=0.2).fit(1e30 * series())
    assert np.isfinite(model.validation_history_).all()
    assert_equivariant(model.predict(8), base, 1e30, 0.0)


def test_autotimes_predict_from_a_rescaled_context(autotimes_base: np.ndarray) -> None:
    """Each window is normalized by its own statistics, so one fitted model forecasts any affine copy of a
    context (the per-window normalization of the paper, now exact at every scale)."""
    model = autotimes().fit(series())
    for a, b in AFFINE:
        assert_equivariant(model.predict(12, y=a * series() + b), autotimes_base, a, b, rtol=1e-5, float64_grid=True)


def test_autotimes_constant_series_forecasts_the_constant() -> None:
    """Documented: a constant context (or channel) is forecast as that constant, exactly."""
    flat = np.full(80, 1e7 + 0.1)
    np.testing.assert_array_equal(autotimes().fit(flat).predict(9), np.full(9, 1e7 + 0.1))
    model = autotimes().fit(series())
    np.testing.assert_array_equal(model.predict(5, y=np.full(40, -3.25)), np.full(5, -3.25))


def test_autotimes_flat_window_in_a_varying_context_stays_equivariant(autotimes_base: np.ndarray) -> None:
    """A flat lookback inside a varying context is scaled by the context's spread (the relative epsilon)."""
    model = autotimes().fit(series())
    context = np.r_[series(), np.full(32, series()[-1])]
    base = model.predict(12, y=context)
    assert np.isfinite(base).all() and np.ptp(base) > 0
    for a, b in AFFINE:
        assert_equivariant(model.predict(12, y=a * context + b), base, a, b, rtol=1e-5, float64_grid=True)


# ------------------------------------------------------------------ AR-Net and LagRegressor

EQUIVARIANT_ARNET = {
    "lstsq": dict(solver="lstsq"),
    "sgd": dict(solver="sgd", epochs=5),
    "sgd-hidden-sparse": dict(solver="sgd", epochs=5, hidden_layers=(8,), sparsity=0.5),
}


@pytest.mark.parametrize("params", EQUIVARIANT_ARNET.values(), ids=EQUIVARIANT_ARNET.keys())
def test_arnet_is_affine_equivariant(params: dict) -> None:
    base = ARNetForecaster(n_lags=5, n_forecasts=2, random_state=0, **params).fit(series(300)).predict(10)
    for a, b in [*AFFINE, (1e30, 0.0)]:
        model = ARNetForecaster(n_lags=5, n_forecasts=2, random_state=0, **params).fit(a * series(300) + b)
        # 1e-4: at a=1e-4, b=1e7 the data themselves keep only about 5 digits of y.
        assert_equivariant(model.predict(10), base, a, b, rtol=1e-4)


def test_ridge_is_translation_equivariant_and_scales_with_alpha() -> None:
    """Documented: ridge's penalty ``alpha ||w||^2`` is in the units of ``y^2``, so shifting ``y`` leaves the fit
    unchanged and scaling ``y`` by ``a`` is matched by scaling ``alpha`` by ``a^2``."""
    base = ARNetForecaster(n_lags=5, solver="ridge", alpha=2.0).fit(series(300)).predict(10)
    for a, b in AFFINE:
        model = ARNetForecaster(n_lags=5, solver="ridge", alpha=2.0 * a**2).fit(a * series(300) + b)
        assert_equivariant(model.predict(10), base, a, b)
    shifted = ARNetForecaster(n_lags=5, solver="ridge", alpha=2.0).fit(series(300) + 1e7).predict(10)
    assert_equivariant(shifted, base, 1.0, 1e7)
    unscaled = ARNetForecaster(n_lags=5, solver="ridge", alpha=2.0).fit(1e-4 * series(300)).predict(10)
    assert np.max(np.abs(unscaled / 1e-4 - base)) / np.ptp(base) > 0.1  # the same alpha shrinks much harder


@pytest.mark.parametrize("solver", ["lstsq", "sgd"])
def test_lag_regressor_is_equivariant_per_column(solver: str) -> None:
    """Each input column and the target get their own affine map: the predictions follow the target's."""
    X, Y = lag_matrix(series(300), 4, 1)
    rng = np.random.default_rng(1)
    col_a, col_b = 10.0 ** rng.uniform(-4, 6, X.shape[1]), rng.choice([0.0, 1e7], X.shape[1])
    base = LagRegressor(solver=solver, epochs=5, random_state=0).fit(X, Y[:, 0]).predict(X)
    for a, b in AFFINE:
        model = LagRegressor(solver=solver, epochs=5, random_state=0).fit(col_a * X + col_b, a * Y[:, 0] + b)
        assert_equivariant(model.predict(col_a * X + col_b), base, a, b)


def test_arnet_constant_series_forecasts_the_constant() -> None:
    for solver in ("lstsq", "ridge", "sgd"):
        flat = np.full(50, 1e7 + 0.1)
        forecast = ARNetForecaster(n_lags=3, solver=solver, epochs=2, random_state=0).fit(flat).predict(4)
        np.testing.assert_array_equal(forecast, np.full(4, 1e7 + 0.1))


def test_sktime_adapter_is_affine_equivariant() -> None:
    pytest.importorskip("sktime")
    from timeseries.sktime import to_sktime

    index = pd.period_range("2000-01", periods=300, freq="M")
    base = to_sktime(ARNetForecaster(n_lags=5)).fit(pd.Series(series(300), index=index)).predict(fh=list(range(1, 11)))
    for a, b in AFFINE:
        y = pd.Series(a * series(300) + b, index=index)
        forecast = to_sktime(ARNetForecaster(n_lags=5)).fit(y).predict(fh=list(range(1, 11)))
        assert list(forecast.index) == list(base.index)
        assert_equivariant(forecast.to_numpy(), base.to_numpy(), a, b)


# ------------------------------------------------------------------ DynamicsReconstructor

DSR_TINY = dict(hidden_dim=10, epochs=2, batches_per_epoch=4, sequence_length=20, batch_size=4, random_state=0)


@pytest.fixture(scope="module")
def lorenz_raw() -> np.ndarray:
    return simulate_lorenz63(800, random_state=0)


def test_dsr_standardized_generation_is_affine_equivariant(lorenz_raw: np.ndarray) -> None:
    """With ``standardize=True`` the model sees z-scored data, so generation (in the original units) follows
    any per-dimension affine map of the data, started from the mapped initial state."""
    base = DynamicsReconstructor(standardize=True, **DSR_TINY).fit(lorenz_raw)
    x0 = lorenz_raw[100]
    reference = base.generate(60, x0=x0)
    for a, b in [*AFFINE, (1e30, 0.0)]:
        a, b = a * np.array([1.0, 10.0, 0.1]), b * np.array([1.0, -1.0, 0.5])  # one map per dimension
        model = DynamicsReconstructor(standardize=True, **DSR_TINY).fit(a * lorenz_raw + b)
        generated = model.generate(60, x0=a * x0 + b)
        assert_equivariant(generated, reference, a, b)
        assert_equivariant(model.predict((a * x0 + b)[None], 5)[0], base.predict(x0[None], 5)[0], a, b)


def test_dsr_standardize_equals_fitting_the_z_scored_data(lorenz_raw: np.ndarray) -> None:
    """``standardize=True`` on ``a * x + b`` is ``standardize=False`` on the z-scored data, mapped back."""
    z = (lorenz_raw - lorenz_raw.mean(0)) / lorenz_raw.std(0)
    raw = DynamicsReconstructor(**DSR_TINY).fit(z).generate(60, x0=z[100])
    a, b = 1e6, 1e7
    model = DynamicsReconstructor(standardize=True, **DSR_TINY).fit(a * lorenz_raw + b)
    mapped = (model.generate(60, x0=a * lorenz_raw[100] + b) - model.mean_) / model.scale_
    assert_equivariant(mapped, raw, 1.0, 0.0)


@pytest.mark.parametrize(("a", "b"), [(1e-4, 0.0), (1.0, 1e7), (1e6, 0.0)], ids=["small", "offset", "large"])
def test_dsr_without_standardize_warns_on_data_far_from_unit_scale(lorenz_raw: np.ndarray, a: float, b: float) -> None:
    """Documented: without ``standardize`` the data are used as given (as the Julia code does), which is not
    affine-equivariant; data far from unit scale get a warning that names ``standardize=True``."""
    z = (lorenz_raw - lorenz_raw.mean(0)) / lorenz_raw.std(0)
    with pytest.warns(UserWarning, match="standardize=True"):
        try:
            DynamicsReconstructor(**DSR_TINY).fit(a * z + b)
        except FloatingPointError:
            pass  # at a large scale training may also diverge, with its own named error


def test_dsr_without_standardize_is_quiet_on_z_scored_data(lorenz_raw: np.ndarray) -> None:
    import warnings

    z = (lorenz_raw - lorenz_raw.mean(0)) / lorenz_raw.std(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = DynamicsReconstructor(**DSR_TINY).fit(z)
    np.testing.assert_array_equal(model.mean_, 0.0)
    np.testing.assert_array_equal(model.scale_, 1.0)


def test_dsr_standardize_rejects_a_constant_dimension_under_an_offset(lorenz_raw: np.ndarray) -> None:
    """A constant dimension is refused even when float rounding of its mean leaves a tiny nonzero std."""
    x = lorenz_raw.copy()
    x[:, 1] = 1e7 + 0.1
    with pytest.raises(ValueError, match="constant dimension"):
        DynamicsReconstructor(standardize=True, **DSR_TINY).fit(x)
