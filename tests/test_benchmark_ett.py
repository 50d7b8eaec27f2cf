"""benchmarks/ett.py: the test windows, the metrics and the DLinear-style baseline on small synthetic series."""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from scripts import load_script
from timeseries.data import ETT_DEFAULT_PATH

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ett.py"


@pytest.fixture(scope="module")
def ett() -> ModuleType:
    """The benchmark script as a module (benchmarks/ is not a package)."""
    return load_script(SCRIPT, "benchmark_ett")


def test_origins_match_the_loader_convention(ett: ModuleType) -> None:
    # Autoformer's test set: seg = data[test_start - L : test_end], windows i in range(len(seg) - L - h + 1).
    test_start, test_end, lookback = 50, 80, 12
    for horizon in (1, 5, 30):
        expected = test_start + np.arange((test_end - test_start + lookback) - lookback - horizon + 1)
        np.testing.assert_array_equal(ett.origins(test_start, test_end, horizon, 1), expected)
    np.testing.assert_array_equal(ett.origins(test_start, test_end, 5, 10), [50, 60, 70])


def test_gather_takes_context_before_and_targets_from_the_origin(ett: ModuleType) -> None:
    values = np.arange(40.0)[:, None] * np.array([1.0, -1.0])  # (40, 2), value = row index per channel
    starts = np.array([10, 13])
    context = ett.gather(values, starts, -4, 4)
    target = ett.gather(values, starts, 0, 3)
    np.testing.assert_array_equal(context[:, :, 0], [[6, 7, 8, 9], [9, 10, 11, 12]])
    np.testing.assert_array_equal(target[:, :, 1], -np.array([[10, 11, 12], [13, 14, 15]]))
    with pytest.raises(ValueError, match="outside"):
        ett.gather(values, np.array([38]), 0, 3)


def test_evaluate_scores_each_horizon_on_its_own_windows(ett: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ett, "HORIZONS", (2, 4))
    monkeypatch.setattr(ett, "MAX_HORIZON", 4)
    values = np.zeros((30, 1))
    values[-1] = 1.0  # only the last row is non-zero: only windows that reach it err

    def zeros(contexts: np.ndarray) -> np.ndarray:
        return np.zeros((len(contexts), 4, contexts.shape[2]))

    scores, _ = ett.evaluate(values, test_start=20, test_end=30, lookback=5, stride=1, forecast=zeros)
    # Horizon 2: origins 20..28 (9 windows x 2 steps), one error of 1. Horizon 4: origins 20..26, one error.
    assert scores[2] == pytest.approx((1 / 18, 1 / 18))
    assert scores[4] == pytest.approx((1 / 28, 1 / 28))


def test_seasonal_naive_repeats_the_last_day(ett: ModuleType) -> None:
    contexts = np.random.default_rng(0).normal(size=(3, 48, 2))
    out = ett.seasonal_naive(contexts)
    assert out.shape == (3, ett.MAX_HORIZON, 2)
    np.testing.assert_array_equal(out[:, :24], contexts[:, -24:])
    np.testing.assert_array_equal(out[:, 24:48], contexts[:, -24:])


def test_moving_average_replicates_the_ends(ett: ModuleType) -> None:
    x = np.arange(10.0)
    trend = ett.moving_average(x, kernel=3)
    assert trend.shape == x.shape
    np.testing.assert_allclose(trend[1:-1], x[1:-1])  # a line is its own centred average
    np.testing.assert_allclose([trend[0], trend[-1]], [1 / 3, 9 - 1 / 3])  # padded with x[0] and x[-1]
    # Seasonal + trend gives back the input.
    parts = ett.decompose(x)
    np.testing.assert_allclose(parts[:10] + parts[10:], x)


def test_dlinear_recovers_a_linear_recurrence(ett: ModuleType) -> None:
    # A noiseless sum of two sinusoids obeys a linear recurrence, so the least-squares map forecasts it exactly.
    t = np.arange(400.0)
    series = np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24 + 0.3) + 0.5 * np.sin(t / 7)], axis=1)
    model = ett.DLinear(lookback=48, horizon=12, alpha=1e-8).fit(series[:300])
    assert model.weight_.shape == (96, 12)
    starts = np.array([320, 333, 350])
    predicted = model.predict(ett.gather(series, starts, -48, 48))
    np.testing.assert_allclose(predicted, ett.gather(series, starts, 0, 12), atol=1e-5)


def test_per_channel_splits_and_reassembles_channels(ett: ModuleType) -> None:
    contexts = np.random.default_rng(1).normal(size=(4, 10, 3))

    def last_value(flat: np.ndarray) -> np.ndarray:
        assert flat.shape == (12, 10, 1)
        return np.repeat(flat[:, -1:], ett.MAX_HORIZON, axis=1)

    out = ett.per_channel(last_value)(contexts)
    np.testing.assert_array_equal(out, np.repeat(contexts[:, -1:], ett.MAX_HORIZON, axis=1))


@pytest.mark.skipif(not ETT_DEFAULT_PATH.is_file(), reason=f"ETTh1 not available at {ETT_DEFAULT_PATH}")
def test_real_split_is_scaled_on_train_only(ett: ModuleType) -> None:
    values, test_start, test_end = ett.load_scaled()
    assert values.shape == (14400, 7) and (test_start, test_end) == (11520, 14400)
    np.testing.assert_allclose(values[:8640].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(values[:8640].std(axis=0), 1.0)
    assert len(ett.origins(test_start, test_end, 96, 1)) == 2785


def test_autotimes_holds_out_exactly_the_val_split(ett: ModuleType) -> None:
    from timeseries.autotimes import AutoTimesForecaster
    from timeseries.data import ETT_SPLITS

    model = AutoTimesForecaster(validation_fraction=ett.VAL_FRACTION)
    train_and_val = ETT_SPLITS["val"][1]
    assert train_and_val - model._held_out(train_and_val) == ETT_SPLITS["train"][1]


@pytest.mark.skipif(not Path(ETT_DEFAULT_PATH).is_file(), reason=f"ETTh1 not found at {ETT_DEFAULT_PATH}")
def test_quick_run_scores_every_model_on_etth1(ett: ModuleType, capsys: pytest.CaptureFixture) -> None:
    rows = ett.main(["--quick"])
    names = [name for name, *_ in rows]
    assert len(rows) == 4 and names[-1].startswith("AutoTimes")
    for _, scores, _, _ in rows:
        assert set(scores) == set(ett.HORIZONS)
        assert all(np.isfinite(mse) and 0 < mse < 2 for mse, _ in scores.values())
    # The seasonal-naive row is exact arithmetic, so it pins the windows and the scaling (every 96th test
    # window here; all windows give 0.512).
    assert rows[0][1][96][0] == pytest.approx(0.5528, abs=1e-4)
    assert "### Published" in capsys.readouterr().out
