"""Hold out the last H points of a series, forecast them, and compare with a seasonal-naive baseline.

    python examples/timeseries/forecast.py --series sunspots --horizon 11
    python examples/timeseries/forecast.py --series co2 --model arnet autotimes --horizon 52
    python examples/timeseries/forecast.py --series ett --horizon 24          # ETTh1 target OT
    python examples/timeseries/forecast.py --series my.csv --column load --horizon 48
    python examples/timeseries/forecast.py --quick                             # seconds (``make demo``)

Each model is fitted on everything before the last ``--horizon`` points and forecasts them in one go. The
seasonal-naive baseline repeats the last observed season (``--season`` steps; defaults: sunspots 11 years, CO2
52 weeks, ETTh1 24 hours, CSV files from their frequency). The script prints a markdown table of MAE and MSE
(and MAE relative to the baseline: below 1 beats it) and saves a plot of the recent history, the held-out
truth and every forecast to ``--out``. ``autotimes`` is offered when :mod:`timeseries.autotimes` imports.
"""
from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any, Callable

from seqcore.extras import require_extra

require_extra("examples", "examples/timeseries/forecast.py")  # matplotlib and tqdm: name the extra, not a bare ModuleNotFoundError

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only: the script must run without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from seqcore.atomic import atomic_write  # noqa: E402
from timeseries.arnet import ARNetForecaster  # noqa: E402
from timeseries.base import Forecaster  # noqa: E402
from timeseries.data import load_co2, load_ett, load_sunspots, read_csv  # noqa: E402

BUILTIN_SERIES = {"sunspots": (load_sunspots, 11), "co2": (load_co2, 52)}
DEFAULT_HORIZON = {"sunspots": 11, "co2": 52, "ett": 24}
# Seasonal period by pandas frequency prefix, for CSV files (a guess the user can override with --season).
SEASON_BY_FREQ = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4, "QE": 4}
QUICK_POINTS = 1000  # --quick keeps only this much history so every model fits in seconds


def _arnet(season: int, horizon: int, quick: bool) -> Forecaster:
    # Two seasons of lags see the cycle twice; direct outputs for the whole horizon avoid recursive drift.
    return ARNetForecaster(n_lags=max(2 * season, 8), n_forecasts=horizon, solver="ridge", alpha=1.0)


def _autotimes(season: int, horizon: int, quick: bool) -> Forecaster:
    from timeseries.autotimes import AutoTimesForecaster

    # One season per token and four tokens of context: the paper's shape, scaled down to these series.
    token = max(season, 2)
    return AutoTimesForecaster(
        token_len=token, context_len=4 * token, d_model=16 if quick else 64, depth=1 if quick else 2,
        epochs=2 if quick else 20, max_windows_per_epoch=64 if quick else 512, random_state=0,
    )


def available_models() -> dict[str, Callable[[int, int, bool], Forecaster]]:
    """Model builders ``(season, horizon, quick) -> Forecaster``; ``autotimes`` only where it imports."""
    models: dict[str, Callable[[int, int, bool], Forecaster]] = {"arnet": _arnet}
    try:
        importlib.import_module("timeseries.autotimes")
    except ImportError:
        return models
    models["autotimes"] = _autotimes
    return models


def load_series(name: str, column: str | None) -> tuple[pd.Series, int]:
    """The named series (or a CSV file's ``column``, default its last) and its default seasonal period."""
    if name in BUILTIN_SERIES:
        loader, season = BUILTIN_SERIES[name]
        return loader(), season
    if name == "ett":
        frame, season = load_ett(split=None), 24
    else:
        frame = read_csv(name)
        season = SEASON_BY_FREQ.get(frame.index.freqstr.lstrip("0123456789").split("-")[0], 1)
    target = frame.columns[-1] if column is None else column
    if target not in frame.columns:
        raise SystemExit(f"--column {target!r} is not in {list(frame.columns)}")
    return frame[target], season


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last ``season`` values: ``forecast[h] = history[T - season + h mod season]``."""
    return history[len(history) - season + np.arange(horizon) % season]


def plot_forecasts(history: pd.Series, truth: pd.Series, forecasts: dict[str, np.ndarray], path: Path) -> None:
    """History, held-out truth and each forecast on the truth's time stamps, saved to ``path``."""
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(history.index, history.to_numpy(), color="black", linewidth=1, label="history")
    ax.plot(truth.index, truth.to_numpy(), color="black", linestyle="--", linewidth=1, label="truth")
    for name, forecast in forecasts.items():
        ax.plot(truth.index, forecast, linewidth=1.5, label=name)
    ax.set_title(f"{history.name}: last {len(truth)} points held out")
    ax.legend()
    fig.tight_layout()
    with atomic_write(path) as handle:
        fig.savefig(handle, dpi=100, format="png")
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    models = available_models()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", default="sunspots", help="sunspots, co2, ett or a path to a CSV file")
    parser.add_argument("--column", default=None, help="value column of a CSV file or ETTh1 (default: the last)")
    parser.add_argument("--model", nargs="+", default=["arnet"], choices=sorted(models), help="forecasters to fit")
    parser.add_argument("--horizon", type=int, default=None,
                        help="points held out and forecast (default: sunspots 11, co2 52, ett 24, CSV one season)")
    parser.add_argument("--season", type=int, default=None, help="seasonal period of the naive baseline")
    parser.add_argument("--out", type=Path, default=Path("runs/forecast"), help="folder for the plot")
    parser.add_argument("--quick", action="store_true", help=f"last {QUICK_POINTS} points, small models")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the comparison; returns one metrics row per model (the baseline first)."""
    args = parse_args(argv)
    series, season = load_series(args.series, args.column)
    season = args.season or season
    horizon = args.horizon or DEFAULT_HORIZON.get(args.series, season)
    if args.quick:
        series = series.iloc[-QUICK_POINTS:]
    if horizon < 1 or len(series) <= horizon + season:
        raise SystemExit(f"--horizon {horizon} leaves too little history of the {len(series)} points")
    train, truth = series.iloc[:-horizon], series.iloc[-horizon:]
    target = truth.to_numpy()

    forecasts = {"seasonal_naive": seasonal_naive(train.to_numpy(), horizon, season)}
    builders = available_models()
    for name in tqdm(args.model, desc="fitting", disable=len(args.model) == 1):
        model = builders[name](season, horizon, args.quick).fit(train)
        forecasts[name] = np.asarray(model.predict(horizon), dtype=float)

    naive_mae = float(np.mean(np.abs(forecasts["seasonal_naive"] - target)))
    rows = []
    for name, forecast in forecasts.items():
        mae = float(np.mean(np.abs(forecast - target)))
        rows.append({"series": str(series.name), "model": name, "horizon": horizon, "mae": mae,
                     "mse": float(np.mean((forecast - target) ** 2)), "mae_vs_naive": mae / naive_mae})

    print(f"\n{series.name}: {len(train)} training points, horizon {horizon}, season {season}\n")
    print("| model | MAE | MSE | MAE / naive |\n|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['model']} | {row['mae']:.4g} | {row['mse']:.4g} | {row['mae_vs_naive']:.3f} |")

    args.out.mkdir(parents=True, exist_ok=True)
    plot_path = args.out / f"forecast_{series.name}_h{horizon}.png"
    # Four horizons (or seasons) of history give the forecast its context without squashing it.
    plot_forecasts(train.iloc[-4 * max(horizon, season):], truth, forecasts, plot_path)
    print(f"\nplot: {plot_path}")
    return rows


if __name__ == "__main__":
    main()
