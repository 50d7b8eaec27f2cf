"""Forecasters in scikit-learn's (and sktime's) model selection: ``score`` is the R^2 of rolling-origin forecasts
of the fold that follows the fitted series, higher is better, and drives GridSearchCV / cross_val_score with
TimeSeriesSplit. Closed-form AR-Net and tiny AutoTimes models keep the file at a few seconds."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold, TimeSeriesSplit, cross_val_score

from test_timeseries_arnet import simulate_ar
from timeseries import ARNetForecaster, AutoTimesForecaster, Forecaster, LagRegressor, lag_matrix

# AR(3) whose lag-3 term dominates: models with fewer lags miss it, many more lags overfit 100-300 steps.
AR3 = np.array([0.3, 0.0, 0.6])


@pytest.fixture(scope="module")
def ar3() -> np.ndarray:
    return simulate_ar(AR3, 300, seed=0)


def rolling_r2(model: Forecaster, train: np.ndarray, test: np.ndarray, steps: list[int]) -> float:
    """The definition of ``score``, spelled out with ``predict(y=...)``: every origin, every step inside ``test``."""
    forecasts, truths = [], []
    for origin in range(len(test)):
        ahead = [h for h in steps if origin + h <= len(test)]
        if ahead:
            path = model.predict(np.array(ahead), y=np.concatenate([train, test[:origin]]))
            forecasts.append(path.reshape(len(ahead), -1))
            truths.append(test[np.array(ahead) + origin - 1].reshape(len(ahead), -1))
    return r2_score(np.concatenate(truths), np.concatenate(forecasts))


@pytest.mark.parametrize(("n_forecasts", "fh"), [(1, None), (1, 3), (2, np.array([1, 3]))])
def test_score_is_the_r2_of_rolling_forecasts(ar3: np.ndarray, n_forecasts: int, fh) -> None:
    model = ARNetForecaster(n_lags=3, n_forecasts=n_forecasts).fit(ar3[:200])
    value = model.score(ar3[200:260], fh=fh)
    steps = [1] if fh is None else list(range(1, fh + 1)) if isinstance(fh, int) else list(fh)
    assert type(value) is float
    assert value == pytest.approx(rolling_r2(model, ar3[:200], ar3[200:260], steps), abs=1e-12)


def test_fh_given_to_fit_is_the_default_of_score(ar3: np.ndarray) -> None:
    model = ARNetForecaster(n_lags=3).fit(ar3[:200], fh=4)
    assert model.score(ar3[200:260]) == model.score(ar3[200:260], fh=4) != model.score(ar3[200:260], fh=1)


def test_one_step_score_equals_the_lag_regressors_r2(ar3: np.ndarray) -> None:
    """With n_forecasts=1 the rolling forecasts are the regressor's predictions on the test rows' lag windows."""
    model = ARNetForecaster(n_lags=3).fit(ar3[:200])
    X, Y = lag_matrix(ar3[200 - 3:], 3, 1)
    assert model.score(ar3[200:]) == pytest.approx(model.regressor_.score(X, Y), abs=1e-12)


def test_lag_regressor_score_is_sklearns_r2() -> None:
    X, Y = lag_matrix(np.random.default_rng(1).standard_normal((120, 2)).cumsum(axis=0), 4, 2)
    regressor = LagRegressor().fit(X[:80], Y[:80])
    value = regressor.score(X[80:], Y[80:])
    assert type(value) is float
    assert value == pytest.approx(r2_score(Y[80:], regressor.predict(X[80:]), multioutput="uniform_average"))


def test_higher_is_better(ar3: np.ndarray) -> None:
    right = ARNetForecaster(n_lags=3).fit(ar3[:200]).score(ar3[200:])
    too_few = ARNetForecaster(n_lags=1).fit(ar3[:200]).score(ar3[200:])
    # fitted on noise and told it continues there: coefficients near zero, forecasts near the noise's mean
    noise = ARNetForecaster(n_lags=3).fit(np.random.default_rng(2).standard_normal(200))
    noise.update(ar3[:200])  # the same context as the others, so only the model differs
    assert right > too_few and right > noise.score(ar3[200:])
    assert right > 0.3 and noise.score(ar3[200:]) < 0.05


def test_score_does_not_depend_on_the_units(ar3: np.ndarray) -> None:
    base = ARNetForecaster(n_lags=3).fit(ar3[:200]).score(ar3[200:])
    scaled = ARNetForecaster(n_lags=3).fit(1e6 * ar3[:200] + 1e7).score(1e6 * ar3[200:] + 1e7)
    assert scaled == pytest.approx(base, abs=1e-9)


def test_grid_search_with_time_series_split_picks_the_true_lag_count(ar3: np.ndarray) -> None:
    search = GridSearchCV(ARNetForecaster(), {"n_lags": [1, 2, 3, 8, 16]}, cv=TimeSeriesSplit(n_splits=3)).fit(ar3)
    assert search.best_params_ == {"n_lags": 3}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    # refit on all of y: forecasts continue after its end
    np.testing.assert_array_equal(search.predict(5), ARNetForecaster(n_lags=3).fit(ar3).predict(5))


def test_cross_val_score_gives_the_score_of_each_fold(ar3: np.ndarray) -> None:
    cv = TimeSeriesSplit(n_splits=3)
    scores = cross_val_score(ARNetForecaster(n_lags=3), ar3, cv=cv, params={"fh": 2})
    expected = [ARNetForecaster(n_lags=3).fit(ar3[train], fh=2).score(ar3[test]) for train, test in cv.split(ar3)]
    assert scores.dtype == np.float64 and np.all(np.isfinite(scores))
    np.testing.assert_array_equal(scores, expected)


def test_pandas_series_and_exogenous_x_through_cross_val_score() -> None:
    rng = np.random.default_rng(3)
    index = pd.date_range("2021-01-01", periods=240, freq="D")
    x = pd.DataFrame({"promo": rng.standard_normal(240)}, index=index)
    y = pd.Series(0.8 * x["promo"].to_numpy() + 0.3 * rng.standard_normal(240), index=index)
    # GridSearchCV.fit(y, X) passes our X as sklearn's y: fit(y_train, X_train), score(y_test, X_test)
    with_x = cross_val_score(ARNetForecaster(n_lags=2, n_forecasts=2), y, x, cv=TimeSeriesSplit(3))
    without = cross_val_score(ARNetForecaster(n_lags=2, n_forecasts=2), y, cv=TimeSeriesSplit(3))
    assert np.all(with_x > 0.8) and np.all(without < 0.1)


def test_a_list_of_series_pools_the_pairs(ar3: np.ndarray) -> None:
    other = simulate_ar(AR3, 300, seed=5)
    model = ARNetForecaster(n_lags=3).fit([ar3[:200], other[:200]])
    expected = r2_score(np.r_[ar3[200:], other[200:]], np.r_[
        [model.predict(1, y=ar3[:200 + o])[0] for o in range(100)],
        [model.predict(1, y=other[:200 + o])[0] for o in range(100)],
    ])
    assert model.score([ar3[200:], other[200:]]) == pytest.approx(expected, abs=1e-12)


def test_score_follows_update(ar3: np.ndarray) -> None:
    model = ARNetForecaster(n_lags=3).fit(ar3[:150]).update(ar3[150:200])
    assert model.score(ar3[200:]) == pytest.approx(rolling_r2(model, ar3[:200], ar3[200:], [1]), abs=1e-12)


def test_filled_values_are_context_but_never_scored(ar3: np.ndarray) -> None:
    test = ar3[200:260].copy()
    test[10] = np.nan
    model = ARNetForecaster(n_lags=3, missing="interpolate").fit(ar3[:200])
    filled = test.copy()
    filled[10] = 0.5 * (test[9] + test[11])
    forecasts = [model.predict(1, y=np.r_[ar3[:200], filled[:o]])[0] for o in range(60) if o != 10]
    assert model.score(test) == pytest.approx(r2_score(np.delete(test, 10), forecasts), abs=1e-12)


def test_folds_that_do_not_follow_the_training_fold_are_refused_when_the_index_shows_it(ar3: np.ndarray) -> None:
    y = pd.Series(ar3, index=pd.date_range("2020-01-01", periods=300, freq="D"))
    with pytest.raises(ValueError, match="must start right after the fitted series"):
        cross_val_score(ARNetForecaster(n_lags=3), y, cv=TimeSeriesSplit(3, gap=2), error_score="raise")
    with pytest.raises(ValueError, match="continue after the fitted series without overlap"):
        cross_val_score(ARNetForecaster(n_lags=3), y, cv=KFold(3), error_score="raise")


def test_non_finite_forecasts_score_minus_infinity(ar3: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    model = ARNetForecaster(n_lags=3).fit(ar3[:200])
    monkeypatch.setattr(model, "_forecast", lambda context, horizon, exog: np.full((horizon, 1), np.inf))
    assert model.score(ar3[200:]) == -math.inf


def test_score_bad_inputs(ar3: np.ndarray) -> None:
    with pytest.raises(NotFittedError):
        ARNetForecaster().score(ar3)
    model = ARNetForecaster(n_lags=3).fit(ar3[:200])
    with pytest.raises(ValueError, match="fitted without exogenous variables"):
        model.score(ar3[200:], X=np.zeros((100, 1)))
    with pytest.raises(ValueError, match="at least 2 forecasts inside y"):
        model.score(ar3[200:203], fh=np.array([3]))
    with pytest.raises(ValueError, match="fh must be >= 1"):
        model.score(ar3[200:], fh=0)
    with pytest.raises(ValueError, match="score has 2 channels"):
        model.score(np.zeros((50, 2)))
    with pytest.raises(ValueError, match="one new piece per fitted series"):
        model.score([ar3[200:], ar3[200:]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.score(np.r_[ar3[200:210], np.nan])
    exog = ARNetForecaster(n_lags=3).fit(ar3[:200], X=np.ones((200, 1)))
    with pytest.raises(ValueError, match="score needs X at the rows of y"):
        exog.score(ar3[200:])
    with pytest.raises(ValueError, match="X for score has 2 columns"):
        exog.score(ar3[200:], X=np.ones((100, 2)))


def test_autotimes_in_grid_search_prefers_training_over_one_epoch() -> None:
    y = np.sin(2 * np.pi * np.arange(400) / 16) + 0.1 * np.random.default_rng(0).standard_normal(400)
    model = AutoTimesForecaster(token_len=4, context_len=32, d_model=16, depth=1, mlp_hidden=32, lr=3e-3,
                                max_windows_per_epoch=64, random_state=0)
    search = GridSearchCV(model, {"epochs": [1, 6]}, cv=TimeSeriesSplit(3, test_size=40), refit=False).fit(y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"epochs": 6} and scores[1] > scores[0] + 0.2
    fitted = clone(model).set_params(epochs=2).fit(y[:360])
    value = fitted.score(y[360:])
    assert type(value) is float
    assert value == pytest.approx(rolling_r2(fitted, y[:360], y[360:], [1]), abs=1e-12)


@pytest.mark.filterwarnings("ignore:The default of config ``remember_data``:FutureWarning")
def test_sktime_forecasting_grid_search_through_the_adapter(ar3: np.ndarray) -> None:
    pytest.importorskip("sktime")
    from sktime.forecasting.model_selection import ForecastingGridSearchCV
    from sktime.performance_metrics.forecasting import MeanSquaredError
    from sktime.split import ExpandingWindowSplitter

    from timeseries.sktime import to_sktime

    cv = ExpandingWindowSplitter(initial_window=150, step_length=50, fh=[1, 2])
    search = ForecastingGridSearchCV(
        to_sktime(ARNetForecaster()), cv=cv, param_grid={"forecaster__n_lags": [1, 3, 16]}, scoring=MeanSquaredError(),
        backend=None,  # sequential: sktime's default spawns loky worker processes (seconds to start)
    ).fit(pd.Series(ar3))
    assert search.best_params_ == {"forecaster__n_lags": 3}
    assert search.predict(fh=[1, 2]).shape == (2,)
