"""AR-Net: the LagRegressor as an sklearn estimator, the paper's claims on AR data, the forecaster contract."""
from __future__ import annotations

import pickle
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

from timeseries.arnet import ARNetForecaster, LagRegressor, lag_matrix, stpe

TRUE_AR3 = np.zeros(20)
TRUE_AR3[[0, 2, 9]] = [0.2, 0.3, -0.5]  # the paper's AR(3): lags 1, 3 and 10


def simulate_ar(coef: np.ndarray, n: int, seed: int, noise: float = 1.0, burn: int = 500) -> np.ndarray:
    """``(n,)`` samples of ``y_t = sum_k coef[k] y_{t-1-k} + noise * e_t`` after a burn-in."""
    rng = np.random.default_rng(seed)
    p = len(coef)
    y = np.zeros(n + burn + p)
    e = rng.normal(scale=noise, size=y.shape)
    for t in range(p, len(y)):
        y[t] = coef @ y[t - p:t][::-1] + e[t]
    return y[-n:]


def _failed_checks(estimator: LagRegressor) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SkipTestWarning for the array-API check
        results = check_estimator(estimator, on_fail=None)
    return [f"{r['check_name']}: {r['exception']!r}" for r in results if r["status"] == "failed"]


@pytest.mark.parametrize(
    "estimator",
    [
        LagRegressor(),
        LagRegressor(solver="ridge", alpha=0.5),
        LagRegressor(solver="sgd"),
        LagRegressor(solver="sgd", hidden_layers=(8,), sparsity=0.5, epochs=30, lr=0.01),
    ],
    ids=["lstsq", "ridge", "sgd", "sgd-hidden-sparse"],
)
def test_lag_regressor_passes_check_estimator(estimator: LagRegressor) -> None:
    assert _failed_checks(estimator) == []


def test_lag_matrix_layout() -> None:
    series = np.arange(10.0)[:, None] * np.array([1.0, 100.0])  # (10, 2)
    X, Y = lag_matrix(series, n_lags=3, n_forecasts=2)
    assert X.shape == (6, 6) and Y.shape == (6, 4)
    # first window: targets at t = 3, 4; lag 1 is t = 2, lag 3 is t = 0, channels interleaved
    np.testing.assert_array_equal(X[0], [2, 200, 1, 100, 0, 0])
    np.testing.assert_array_equal(Y[0], [3, 300, 4, 400])
    assert lag_matrix(np.arange(4.0), 3, 2)[0].shape == (0, 3)


def test_stpe() -> None:
    assert stpe([0.2, 0.0], [0.2, 0.0]) == 0.0
    assert stpe([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert stpe([1.0, 0.0], [0.0, 1.0]) == pytest.approx(100.0)
    assert stpe([0.1], [0.3]) == pytest.approx(50.0)


def test_hidden_layers_need_sgd() -> None:
    with pytest.raises(ValueError, match="solver='sgd'"):
        LagRegressor(hidden_layers=(4,)).fit(np.ones((5, 2)), np.ones(5))
    with pytest.raises(ValueError, match="sparsity"):
        LagRegressor(sparsity=1.5, solver="sgd").fit(np.ones((5, 2)), np.ones(5))


def test_lstsq_recovers_ar3() -> None:
    y = simulate_ar(TRUE_AR3[:10], 20_000, seed=0)
    X, Y = lag_matrix(y, 20, 1)
    coef = LagRegressor().fit(X, Y[:, 0]).coef_
    np.testing.assert_allclose(coef, TRUE_AR3, atol=0.03)


def test_unregularized_sgd_equals_least_squares() -> None:
    y = simulate_ar(TRUE_AR3[:10], 1_000, seed=1)
    X, Y = lag_matrix(y, 20, 1)
    exact = LagRegressor().fit(X, Y[:, 0])
    sgd = LagRegressor(solver="sgd", epochs=100, random_state=0).fit(X, Y[:, 0])
    np.testing.assert_allclose(sgd.coef_, exact.coef_, atol=5e-3)
    assert sgd.intercept_ == pytest.approx(exact.intercept_, abs=5e-3)


def test_sparse_arnet_beats_least_squares_on_ar3() -> None:
    """The paper's setup: AR(3), 20 lags, 1,000 samples; sparse AR-Net's sTPE is clearly below least squares'."""
    y = simulate_ar(TRUE_AR3[:10], 1_000, seed=0)
    X, Y = lag_matrix(y, 20, 1)
    ls = stpe(LagRegressor().fit(X, Y[:, 0]).coef_, TRUE_AR3)
    sparse = stpe(LagRegressor(solver="sgd", sparsity=0.05, random_state=0).fit(X, Y[:, 0]).coef_, TRUE_AR3)
    assert sparse < 0.75 * ls, (sparse, ls)


def test_sgd_random_state_repeatable() -> None:
    X, Y = lag_matrix(simulate_ar(TRUE_AR3[:10], 300, seed=2), 5, 1)
    a = LagRegressor(solver="sgd", epochs=5, hidden_layers=(4,), random_state=3).fit(X, Y).predict(X)
    b = LagRegressor(solver="sgd", epochs=5, hidden_layers=(4,), random_state=3).fit(X, Y).predict(X)
    np.testing.assert_array_equal(a, b)


# --- forecaster -------------------------------------------------------------------------------------------


def _ar_series(n: int = 400, seed: int = 0) -> np.ndarray:
    return simulate_ar(np.array([0.6, -0.2]), n, seed=seed, noise=0.1) + 5.0


def test_forecaster_fit_returns_self_and_coefficients() -> None:
    y = _ar_series(5_000)
    model = ARNetForecaster(n_lags=4, n_forecasts=2)
    assert model.fit(y) is model
    assert model.coef_.shape == (2, 4) and model.intercept_.shape == (2,)
    np.testing.assert_allclose(model.coef_[0], [0.6, -0.2, 0, 0], atol=0.05)
    ax = model.plot_coefficients()
    assert len(ax.lines) >= 2


def test_forecaster_direct_and_recursive() -> None:
    y = _ar_series()
    model = ARNetForecaster(n_lags=3, n_forecasts=2).fit(y)
    out = model.predict(5)
    assert out.shape == (5,)
    # steps 3..4 are the direct 2-step model applied to the context extended by the first block
    extended = np.concatenate([y, out[:2]])
    np.testing.assert_allclose(model.predict(2, y=extended), out[2:4])
    np.testing.assert_allclose(model.predict(np.array([1, 4])), out[[0, 3]])


def test_predict_before_fit() -> None:
    with pytest.raises(NotFittedError):
        ARNetForecaster().predict(3)


def test_clone_params_pickle() -> None:
    model = ARNetForecaster(n_lags=5, solver="ridge", alpha=0.1)
    params = model.get_params()
    assert params["n_lags"] == 5 and params["missing"] == "raise" and params["random_state"] is None
    assert clone(model).get_params() == params
    assert model.set_params(n_lags=6) is model and model.n_lags == 6
    y = _ar_series()
    model.fit(y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict(4), model.predict(4))


def test_random_state_repeatable() -> None:
    y = _ar_series(200)
    kwargs = dict(n_lags=4, solver="sgd", hidden_layers=(8,), epochs=3, random_state=7)
    a = ARNetForecaster(**kwargs).fit(y).predict(3)
    b = ARNetForecaster(**kwargs).fit(y).predict(3)
    np.testing.assert_array_equal(a, b)


def test_pandas_series_in_series_out() -> None:
    index = pd.date_range("2024-01-01", periods=100, freq="h")
    y = pd.Series(_ar_series(100), index=index, name="load")
    out = ARNetForecaster(n_lags=5).fit(y).predict(3)
    assert isinstance(out, pd.Series) and out.name == "load"
    assert list(out.index) == list(pd.date_range(index[-1], periods=4, freq="h")[1:])


def test_dataframe_multichannel() -> None:
    frame = pd.DataFrame({"a": _ar_series(200, 0), "b": _ar_series(200, 1)}, index=pd.RangeIndex(200))
    model = ARNetForecaster(n_lags=3, n_forecasts=2).fit(frame)
    assert model.coef_.shape == (2, 2, 3, 2) and model.intercept_.shape == (2, 2)
    out = model.predict(3)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["a", "b"] and list(out.index) == [200, 201, 202]


def test_list_in_list_out() -> None:
    series = [_ar_series(150, 0), _ar_series(90, 1)]
    out = ARNetForecaster(n_lags=4).fit(series).predict(2)
    assert isinstance(out, list) and len(out) == 2 and all(o.shape == (2,) for o in out)


def test_fh_validation() -> None:
    model = ARNetForecaster(n_lags=3).fit(_ar_series())
    assert model.predict(np.array([2, 5])).shape == (2,)
    for bad in (0, -1, np.array([0, 1])):
        with pytest.raises(ValueError, match="fh"):
            model.predict(bad)


def test_missing_values() -> None:
    y = _ar_series()
    y[10] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ARNetForecaster(n_lags=3).fit(y)
    assert np.isfinite(ARNetForecaster(n_lags=3, missing="interpolate").fit(y).predict(2)).all()


def test_too_short() -> None:
    with pytest.raises(ValueError, match="7 time steps, fewer than the 8 this model needs"):
        ARNetForecaster(n_lags=5, n_forecasts=3).fit(np.arange(7.0))
    model = ARNetForecaster(n_lags=5).fit(_ar_series())
    assert model.predict(2, y=np.arange(5.0)).shape == (2,)  # a forecast needs only n_lags values
    with pytest.raises(ValueError, match="fewer than"):
        model.predict(2, y=np.arange(4.0))


def _exog_series(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``y_t = 0.5 y_{t-1} + 2 x_t + noise`` with a known regressor ``x``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.5 * y[t - 1] + 2.0 * x[t] + 0.01 * rng.normal()
    return y, x


def test_exogenous_future_regressor() -> None:
    y, x = _exog_series()
    model = ARNetForecaster(n_lags=1, n_forecasts=1).fit(y, X=x[:, None])
    assert model.n_exog_ == 1 and model.exog_coef_.shape == (1, 1, 1)
    np.testing.assert_allclose(model.coef_[0, 0], 0.5, atol=0.01)
    np.testing.assert_allclose(model.exog_coef_[0, 0, 0], 2.0, atol=0.01)
    # The recursive forecast feeds each step's X in at its own step.
    future = np.array([[1.0], [-1.0], [0.5]])
    expected, last = [], y[-1]
    for value in future[:, 0]:
        last = model.intercept_[0] + model.coef_[0, 0] * last + model.exog_coef_[0, 0, 0] * value
        expected.append(last)
    np.testing.assert_allclose(model.predict(3, X=future), expected, rtol=1e-12)
    without = ARNetForecaster(n_lags=1).fit(y)
    truth_step = 0.5 * y[-1] + 2.0 * future[0, 0]
    assert abs(model.predict(1, X=future[:1])[0] - truth_step) < abs(without.predict(1)[0] - truth_step)


def test_exogenous_blocks_and_channels() -> None:
    y, x = _exog_series()
    exog = np.stack([x, x**2], axis=1)
    model = ARNetForecaster(n_lags=4, n_forecasts=3).fit(y, X=exog)
    assert model.exog_coef_.shape == (3, 3, 2)
    # A 4-step forecast runs two blocks of 3, so it reads 6 rows of X.
    with pytest.raises(ValueError, match="at least 6 rows"):
        model.predict(4, X=exog[:4])
    assert model.predict(4, X=exog[:6]).shape == (4,)
    joint = ARNetForecaster(n_lags=2, n_forecasts=2).fit(np.stack([y, -y], axis=1), X=exog)
    assert joint.coef_.shape == (2, 2, 2, 2) and joint.exog_coef_.shape == (2, 2, 2, 2)
    frame = pd.DataFrame(exog, index=pd.RangeIndex(len(y)))
    assert ARNetForecaster(n_lags=2).fit(pd.Series(y), X=frame).predict(2, X=frame.iloc[:2]).shape == (2,)


def test_exogenous_errors() -> None:
    y, x = _exog_series(100)
    with pytest.raises(ValueError, match="rows"):
        ARNetForecaster().fit(y, X=np.ones((len(y) - 1, 1)))
    model = ARNetForecaster(n_lags=3).fit(y, X=x[:, None])
    with pytest.raises(ValueError, match="predict needs X"):
        model.predict(2)
    with pytest.raises(ValueError, match="columns"):
        model.predict(2, X=np.ones((2, 2)))
    with pytest.raises(ValueError, match="columns"):
        model.update(np.ones(3), X=np.ones((3, 2)))
    with pytest.raises(ValueError, match="rows"):
        model.update(np.ones(3), X=np.ones((2, 1)))
    with pytest.raises(ValueError, match="NaN"):
        model.predict(1, X=np.array([[np.nan]]))
    plain = ARNetForecaster(n_lags=3).fit(y)
    with pytest.raises(ValueError, match="without exogenous"):
        plain.predict(2, X=np.ones((2, 1)))
    with pytest.raises(ValueError, match="without exogenous"):
        plain.update(np.ones(3), X=np.ones((3, 1)))


def test_bad_index() -> None:
    values = _ar_series(50)
    backwards = pd.Series(values, index=pd.date_range("2024-01-01", periods=50, freq="D")[::-1])
    with pytest.raises(ValueError, match="not increasing"):
        ARNetForecaster(n_lags=3).fit(backwards)
    duplicated = pd.Series(values, index=[0] * 2 + list(range(1, 49)))
    with pytest.raises(ValueError, match="duplicated"):
        ARNetForecaster(n_lags=3).fit(duplicated)


def test_update_moves_the_forecast_origin() -> None:
    y = _ar_series(300)
    model = ARNetForecaster(n_lags=3).fit(y[:250])
    coef = model.coef_.copy()
    np.testing.assert_allclose(model.update(y[250:]).predict(2), model.predict(2, y=y))
    np.testing.assert_array_equal(model.coef_, coef)  # update does not refit
