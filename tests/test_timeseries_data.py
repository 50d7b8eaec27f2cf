"""Data loaders (CSV, ETTh1, statsmodels data sets), the sktime adapter and the forecasting example."""
from __future__ import annotations

import math
import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from scripts import load_script
from timeseries.arnet import ARNetForecaster
from timeseries.data import ETT_DEFAULT_PATH, load_co2, load_ett, load_sunspots, read_csv

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "timeseries" / "forecast.py"
ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
needs_ett = pytest.mark.skipif(
    not ETT_DEFAULT_PATH.is_file(), reason=f"ETTh1 not available at {ETT_DEFAULT_PATH} (../shared/data is absent)"
)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n")
    return path


HOURLY = """
date,a,b,c
2020-01-01 00:00,1.0,10,x1
2020-01-01 01:00,2.0,20,x2
2020-01-01 02:00,3.0,30,x3
2020-01-01 03:00,4.0,40,x4
"""


# ------------------------------------------------------------------ read_csv


def test_read_csv_infers_hourly_freq_and_selects_columns(tmp_path: Path) -> None:
    frame = read_csv(write_csv(tmp_path / "ok.csv", HOURLY), columns=["b", "a"])
    assert list(frame.columns) == ["b", "a"]
    assert frame.index.freqstr == "h" and isinstance(frame.index, pd.DatetimeIndex)
    assert frame.dtypes.eq(float).all()
    np.testing.assert_array_equal(frame["a"].to_numpy(), [1.0, 2.0, 3.0, 4.0])


def test_read_csv_keeps_nan_cells_as_missing_values(tmp_path: Path) -> None:
    text = "day,v\n2021-03-01,1\n2021-03-02,\n2021-03-03,3\n"
    frame = read_csv(write_csv(tmp_path / "nan.csv", text), time_column="day", freq="D")
    assert frame.index.freqstr == "D" and np.isnan(frame["v"].iloc[1])


@pytest.mark.parametrize(
    "text, kwargs, error, match",
    [
        (HOURLY, {"time_column": "time"}, KeyError, "no time column 'time'"),
        (HOURLY, {"columns": ["a", "zz"]}, KeyError, r"no column\(s\) \['zz'\]"),
        (HOURLY.replace("2020-01-01 02:00", "yesterday"), {"columns": ["a"]}, ValueError,
         "not dates.*row 2.*yesterday"),
        (HOURLY.replace("2020-01-01 02:00", "2020-01-01 01:00"), {"columns": ["a"]}, ValueError, "duplicated"),
        (HOURLY.replace("2020-01-01 02:00", "2019-12-31 02:00"), {"columns": ["a"]}, ValueError,
         "not increasing"),
        (HOURLY, {}, ValueError, r"\['c'\] are not numeric, e.g. 'x1'"),
        (HOURLY.replace("2020-01-01 03:00", "2020-01-01 05:00"), {"columns": ["a"]}, ValueError,
         "not regularly spaced"),
        (HOURLY, {"columns": ["a"], "freq": "D"}, ValueError, "do not follow freq='D'"),
    ],
    ids=["time-column", "value-column", "bad-date", "duplicate", "non-monotone", "non-numeric", "irregular",
         "wrong-freq"],
)
def test_read_csv_errors(tmp_path: Path, text: str, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        read_csv(write_csv(tmp_path / "bad.csv", text), **kwargs)


def test_read_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no CSV file"):
        read_csv(tmp_path / "absent.csv")


# ------------------------------------------------------------------ ETTh1 and statsmodels data


@needs_ett
def test_load_ett_standard_split() -> None:
    train = load_ett()
    assert train.shape == (8640, 7) and list(train.columns) == ETT_COLUMNS
    assert train.index.freqstr == "h" and train.index[0] == pd.Timestamp("2016-07-01 00:00")
    val, test = load_ett(split="val"), load_ett(split="test")
    assert val.shape == test.shape == (2880, 7)
    assert val.index[0] == train.index[-1] + pd.Timedelta(hours=1)
    assert test.index[0] == val.index[-1] + pd.Timedelta(hours=1) and test.index.freqstr == "h"
    assert len(load_ett(split=None)) == 17420


def test_load_ett_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="put it at .*ETTh1.csv"):
        load_ett(tmp_path / "ETTh1.csv")
    with pytest.raises(ValueError, match="split must be"):
        load_ett(split="training")


def test_load_sunspots_and_co2_have_regular_freq() -> None:
    sunspots, co2 = load_sunspots(), load_co2()
    assert len(sunspots) == 309 and sunspots.index.freqstr.startswith("YS")
    assert sunspots.index[0] == pd.Timestamp("1700-01-01")
    assert co2.index.freqstr == "W-SAT" and len(co2) == 2284
    assert not co2.isna().any() and not sunspots.isna().any()


# ------------------------------------------------------------------ sktime adapter


def test_sktime_module_imports_without_sktime() -> None:
    # A fresh interpreter, because blocking sktime here would poison this process's cached adapter class.
    code = (
        "import sys; sys.modules['sktime'] = None\n"
        "from timeseries.base import Forecaster\n"
        "from timeseries.sktime import to_sktime\n"
        "try:\n    to_sktime(Forecaster())\nexcept ImportError as err:\n    print(err)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pip install sktime" in result.stdout


# sktime's time-index checks run every index type x horizon x update combination (336 of ~690 cases, ~80% of
# the ~10 s the full check takes on an idle core, 45 s on a busy one); the fast run leaves them to the slow
# test, and test_sktime_adapter_matches_the_wrapped_forecaster covers the horizon handling.
SLOW_SKTIME_CHECKS = [
    "test_update_predict_predicted_index", "test_predict_time_index", "test_predict_time_index_with_X",
]


def run_sktime_checks(**kwargs: object) -> dict[str, object]:
    """sktime's ``check_estimator`` on the adapter class; returns ``{case: result}``."""
    pytest.importorskip("sktime", reason="sktime is not installed (pip install sktime)")
    from sktime.utils.estimator_checks import check_estimator

    from timeseries.sktime import SktimeForecaster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return check_estimator(SktimeForecaster, raise_exceptions=False, verbose=False, **kwargs)


def test_sktime_adapter_passes_fast_checks() -> None:
    results = run_sktime_checks(tests_to_exclude=SLOW_SKTIME_CHECKS)
    failed = {name: result for name, result in results.items() if result != "PASSED"}
    assert len(results) > 300 and not failed, failed


@pytest.mark.slow
def test_sktime_adapter_passes_check_estimator() -> None:
    results = run_sktime_checks()
    failed = {name: result for name, result in results.items() if result != "PASSED"}
    assert len(results) > 600 and not failed, failed


def test_sktime_update_takes_overlapping_rows_and_refuses_revisions() -> None:
    """sktime's update_predict passes rows already seen: they are skipped when they repeat what fit saw, and a
    changed past value is a named error, not dropped."""
    pytest.importorskip("sktime", reason="sktime is not installed (pip install sktime)")
    from timeseries import ARNetForecaster
    from timeseries.sktime import to_sktime

    y = pd.Series(np.sin(np.arange(40) / 3.0), index=pd.period_range("2020-01", periods=40, freq="M"))
    overlapping = to_sktime(ARNetForecaster(n_lags=3)).fit(y[:30]).update(y[25:35], update_params=False)
    fresh = to_sktime(ARNetForecaster(n_lags=3)).fit(y[:30]).update(y[30:35], update_params=False)
    pd.testing.assert_series_equal(overlapping.predict(fh=[1, 2]), fresh.predict(fh=[1, 2]))
    revised = y[28:38].copy()
    revised.iloc[0] += 1.0
    with pytest.raises(ValueError, match=r"steps already seen with other values \(first: Period\('2022-05'"):
        overlapping.update(revised, update_params=False)


def test_sktime_adapter_matches_the_wrapped_forecaster() -> None:
    pytest.importorskip("sktime", reason="sktime is not installed (pip install sktime)")
    from sktime.forecasting.base import ForecastingHorizon

    from timeseries.sktime import to_sktime

    rng = np.random.default_rng(0)
    index = pd.date_range("2024-01-01", periods=120, freq="h")
    y = pd.DataFrame(np.sin(np.arange(120) / 5)[:, None] + 0.1 * rng.normal(size=(120, 2)), index=index,
                     columns=["p", "q"])
    inner = ARNetForecaster(n_lags=6, n_forecasts=2)
    adapter = to_sktime(inner).fit(y)
    forecast = adapter.predict(fh=[1, 3, 4])
    expected = inner.fit(y).predict(fh=np.array([1, 3, 4]))
    pd.testing.assert_frame_equal(forecast, expected, check_freq=False)
    assert pickle.loads(pickle.dumps(adapter)).predict(fh=[1]).shape == (1, 2)

    univariate = to_sktime(ARNetForecaster(n_lags=6)).fit(y["p"])
    fh = ForecastingHorizon([1, 2], is_relative=True)
    assert univariate.predict(fh).index.equals(pd.date_range(index[-1], periods=3, freq="h")[1:])
    with pytest.raises(NotImplementedError, match="in-sample"):
        univariate.predict(fh=[0, 1])


def test_sktime_adapter_keeps_timestamps_for_calendar_features() -> None:
    pytest.importorskip("sktime", reason="sktime is not installed (pip install sktime)")
    from timeseries.autotimes import AutoTimesForecaster
    from timeseries.sktime import to_sktime

    params = dict(token_len=4, context_len=8, d_model=16, depth=1, num_heads=2, mlp_hidden=16, epochs=1,
                  timestamp_features="calendar", random_state=0)
    periods = pd.period_range("2020-01", periods=40, freq="M")
    y = pd.Series(np.sin(np.arange(40) / 3.0), index=periods)
    adapter = to_sktime(AutoTimesForecaster(**params)).fit(y)
    forecast = adapter.predict(fh=[1, 2, 5])
    expected = AutoTimesForecaster(**params).fit(pd.Series(y.to_numpy(), index=periods.to_timestamp()))
    np.testing.assert_allclose(forecast.to_numpy(), expected.predict(np.array([1, 2, 5])).to_numpy())
    assert forecast.index.equals(pd.period_range("2023-05", periods=5, freq="M")[[0, 1, 4]])
    later = pd.Series([0.1, 0.2], index=pd.period_range("2023-05", periods=2, freq="M"))
    assert adapter.update(later, update_params=False).predict(fh=[1]).index[0] == pd.Period("2023-07", "M")


# ------------------------------------------------------------------ example


def load_example() -> ModuleType:
    return load_script(EXAMPLE, "forecast_example")


def test_example_quick_on_sunspots_writes_plot(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rows = load_example().main(["--quick", "--series", "sunspots", "--model", "arnet", "--out", str(tmp_path)])
    assert [row["model"] for row in rows] == ["seasonal_naive", "arnet"]
    assert all(math.isfinite(row["mae"]) and row["mse"] >= row["mae"] ** 2 - 1e-9 for row in rows)
    assert rows[1]["mae_vs_naive"] < 1.0  # AR on the solar cycle beats repeating the last cycle
    assert (tmp_path / "forecast_sunspots_h11.png").stat().st_size > 0
    assert "| arnet |" in capsys.readouterr().out


def test_example_on_a_csv_file(tmp_path: Path) -> None:
    index = pd.date_range("2022-01-01", periods=200, freq="D")
    values = 10 + np.sin(2 * np.pi * np.arange(200) / 7) + 0.01 * np.arange(200)
    pd.DataFrame({"date": index, "load": values}).to_csv(tmp_path / "load.csv", index=False)
    rows = load_example().main(["--series", str(tmp_path / "load.csv"), "--horizon", "14", "--out", str(tmp_path)])
    assert rows[0]["model"] == "seasonal_naive" and rows[0]["horizon"] == 14
    assert rows[1]["mae"] < 0.1  # a noiseless weekly sine plus trend is almost exactly autoregressive
    assert (tmp_path / "forecast_load_h14.png").is_file()
