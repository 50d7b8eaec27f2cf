"""Bad inputs to every public entry point of ``timeseries``: one table, one row per case.

Each row names the entry point, the input, and either the expected exception with a regex for its message or
the documented result. Classes covered: wrong shapes and ranks, dtypes (strings, complex, dates), devices (a
``meta`` tensor stands in for data on a device the numpy estimators cannot read), NaN and inf, empty inputs,
out-of-range values, malformed files (including pickles that would run code when loaded: every such row
also checks that the marker file the pickle would write does not exist afterwards) and non-bool flags.
"""
from __future__ import annotations

import functools
import json
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError

from crafted import WritesMarker

from timeseries.arnet import ARNetForecaster, LagRegressor, lag_matrix, stpe
from timeseries.autotimes import AutoTimesForecaster
from timeseries.data import load_ett, read_csv
from timeseries.dynamics import (
    AffineObservation,
    DynamicsReconstructor,
    IdentityObservation,
    ShallowPLRNN,
    gtf_forward,
    load_dsr,
    power_spectrum,
    power_spectrum_error,
    prediction_error,
    state_space_divergence,
    train_gtf,
)
from timeseries.dynamics.data import DSR_FILES

AUTOTIMES = dict(token_len=4, context_len=16, d_model=8, depth=1, num_heads=2, mlp_hidden=16, batch_size=16,
                 epochs=1, max_windows_per_epoch=16, random_state=0)
DSR = dict(hidden_dim=5, epochs=1, batches_per_epoch=2, sequence_length=10, batch_size=2, random_state=0)
HOURLY = "date,a,b\n" + "".join(f"2020-01-01 {h:02d}:00,{h},{2 * h}\n" for h in range(6))
GPT2 = {"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 64, "vocab_size": 8,
        "bos_token_id": 0, "eos_token_id": 0}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------ inputs and fitted models


def sine(n: int, channels: int | None = None) -> np.ndarray:
    y = np.sin(2 * np.pi * np.arange(n) / 12) + 0.05 * np.cos(np.arange(n))
    return y if channels is None else np.stack([y * (c + 1) for c in range(channels)], axis=1)


def with_value(y: np.ndarray, value: float, at: int = 5) -> np.ndarray:
    y = np.array(y, dtype=float)
    y[at] = value
    return y


def lorenz_like(n: int = 200) -> np.ndarray:
    t = np.arange(n) / 10
    return np.stack([np.sin(t), np.cos(1.3 * t), np.sin(0.7 * t + 1)], axis=1)


@functools.lru_cache(maxsize=None)
def arnet() -> ARNetForecaster:
    return ARNetForecaster(n_lags=3).fit(sine(60))


@functools.lru_cache(maxsize=None)
def arnet_exog() -> ARNetForecaster:
    return ARNetForecaster(n_lags=3, n_forecasts=2).fit(sine(60), X=np.cos(np.arange(60))[:, None])


@functools.lru_cache(maxsize=None)
def lag_regressor() -> LagRegressor:
    X, Y = lag_matrix(sine(60), 3, 1)
    return LagRegressor().fit(X, Y[:, 0])


@functools.lru_cache(maxsize=None)
def autotimes() -> AutoTimesForecaster:
    return AutoTimesForecaster(**AUTOTIMES).fit(sine(60))


@functools.lru_cache(maxsize=None)
def dsr() -> DynamicsReconstructor:
    return DynamicsReconstructor(**DSR).fit(lorenz_like())


@dataclass
class Ctx:
    tmp: Path

    @property
    def marker(self) -> Path:
        return self.tmp / "marker"

    def text(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def dsr_dir(self, array: Any = None, raw: bytes | None = None, pickled: Any = None) -> Path:
        """A DSR data folder whose Lorenz-63 train file holds ``array`` (np.save), ``raw`` bytes or a pickle."""
        folder = self.tmp / "dsr"
        folder.mkdir(exist_ok=True)
        path = folder / DSR_FILES["lorenz63"]["train"]
        if raw is not None:
            path.write_bytes(raw)
        elif pickled is not None:
            path.write_bytes(pickle.dumps(pickled))
        else:
            np.save(path, array, allow_pickle=True)
        return folder

    def hf_dir(self, config: dict | str | None = GPT2, weights: Any = None, files: dict[str, str] | None = None) -> Path:
        """A local Hugging Face model folder: ``config.json``, ``pytorch_model.bin`` holding ``weights``."""
        folder = self.tmp / "hf"
        folder.mkdir(exist_ok=True)
        if config is not None:
            (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
        if weights is not None:
            torch.save(weights, folder / "pytorch_model.bin")
        for name, content in (files or {}).items():
            (folder / name).write_text(content)
        return folder


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Row:
    entry: str
    case: str
    call: Callable[[Ctx], Any]
    error: type[BaseException] | None
    match: str  # regex the message must match, or what the documented result is
    check: Callable[[Any], bool] | None = None


def raises(entry: str, case: str, call: Callable[[Ctx], Any], error: type[BaseException], match: str) -> Row:
    return Row(entry, case, call, error, match)


def documented(entry: str, case: str, call: Callable[[Ctx], Any], check: Callable[[Any], bool], what: str) -> Row:
    return Row(entry, case, call, None, what, check)


def at_fit(**params: Any) -> Callable[[Ctx], Any]:
    return lambda c: AutoTimesForecaster(**{**AUTOTIMES, **params}).fit(sine(60))


def dsr_fit(X: Any = None, inputs: Any = None, **params: Any) -> Callable[[Ctx], Any]:
    return lambda c: DynamicsReconstructor(**{**DSR, **params}).fit(lorenz_like() if X is None else X, inputs=inputs)


def shallow() -> ShallowPLRNN:
    return ShallowPLRNN(3, 4)


META = torch.zeros(60, device="meta")
NAN_AT = "NaN or infinite values"

ROWS = [
    # ---------------------------------------------------------- ARNetForecaster.fit
    raises("ARNet.fit", "y 3-D", lambda c: ARNetForecaster(n_lags=3).fit(np.zeros((20, 2, 2))), ValueError,
           r"y must be 1-D \(T,\) or 2-D \(T, C\)"),
    raises("ARNet.fit", "y strings", lambda c: ARNetForecaster(n_lags=3).fit(np.array(["1.5"] * 20)), TypeError,
           "y must hold real numbers, got dtype <U3"),
    raises("ARNet.fit", "y pandas strings", lambda c: ARNetForecaster(n_lags=3).fit(pd.Series(["1"] * 20)), TypeError,
           "y must hold real numbers, got non-numeric"),
    raises("ARNet.fit", "y complex", lambda c: ARNetForecaster(n_lags=3).fit(sine(20) + 1j), TypeError,
           "y must hold real numbers, got dtype complex128"),
    raises("ARNet.fit", "y dates", lambda c: ARNetForecaster(n_lags=3).fit(np.arange(20).astype("M8[D]")), TypeError,
           "y must hold real numbers, got dtype datetime64"),
    raises("ARNet.fit", "y None", lambda c: ARNetForecaster(n_lags=3).fit(None), TypeError, "y must be numeric"),
    raises("ARNet.fit", "y meta tensor", lambda c: ARNetForecaster(n_lags=3).fit(META), ValueError,
           "y is a tensor on the meta device"),
    raises("ARNet.fit", "y NaN", lambda c: ARNetForecaster(n_lags=3).fit(with_value(sine(20), np.nan)), ValueError,
           rf"y contains 1 {NAN_AT} \(first rows \[5\]\)"),
    raises("ARNet.fit", "y inf", lambda c: ARNetForecaster(n_lags=3).fit(with_value(sine(20), np.inf)), ValueError,
           f"y contains 1 {NAN_AT}"),
    raises("ARNet.fit", "y None entry (NaN)", lambda c: ARNetForecaster(n_lags=3).fit([1.0, None] * 10), ValueError,
           f"y contains 10 {NAN_AT}"),
    documented("ARNet.fit", "y NaN with missing='interpolate'",
               lambda c: ARNetForecaster(n_lags=3, missing="interpolate").fit(with_value(sine(40), np.nan)).predict(3),
               lambda f: np.isfinite(f).all(), "NaN is filled by linear interpolation; the forecast is finite"),
    raises("ARNet.fit", "y empty", lambda c: ARNetForecaster(n_lags=3).fit(np.array([])), ValueError,
           r"y is empty \(shape \(0, 1\)\)"),
    raises("ARNet.fit", "y no channels", lambda c: ARNetForecaster(n_lags=3).fit(np.zeros((20, 0))), ValueError,
           "y is empty"),
    raises("ARNet.fit", "y shorter than n_lags + n_forecasts", lambda c: ARNetForecaster(n_lags=5, n_forecasts=2).fit(sine(6)),
           ValueError, "y has 6 time steps, fewer than the 7 this model needs"),
    raises("ARNet.fit", "list with one short series", lambda c: ARNetForecaster(n_lags=5).fit([sine(30), sine(4)]),
           ValueError, r"y\[1\] has 4 time steps"),
    raises("ARNet.fit", "series with different channels", lambda c: ARNetForecaster(n_lags=3).fit([sine(30), sine(30, 2)]),
           ValueError, "same number of channels"),
    raises("ARNet.fit", "X NaN", lambda c: ARNetForecaster(n_lags=3).fit(sine(30), X=with_value(sine(30), np.nan)[:, None]),
           ValueError, f"X contains 1 {NAN_AT}"),
    raises("ARNet.fit", "X wrong length", lambda c: ARNetForecaster(n_lags=3).fit(sine(30), X=np.zeros((29, 1))),
           ValueError, "X has 29 rows but the series has 30 time steps"),
    raises("ARNet.fit", "scikit-learn order fit(X, y)", lambda c: ARNetForecaster(n_lags=3).fit(sine(30, 3), sine(30)),
           ValueError, r"takes the target series first.*\(30, 3\).*fit\(y=target, X=features\)"),
    raises("ARNet.fit", "scikit-learn order, pandas", lambda c: ARNetForecaster(n_lags=3).fit(
        pd.DataFrame(sine(30, 2)), pd.Series(sine(30))), ValueError, "takes the target series first"),
    raises("ARNet.fit", "n_lags 0", lambda c: ARNetForecaster(n_lags=0).fit(sine(30)), ValueError,
           "n_lags must be >= 1, got 0"),
    raises("ARNet.fit", "n_lags float", lambda c: ARNetForecaster(n_lags=2.5).fit(sine(30)), TypeError,
           "n_lags must be an int >= 1, got float 2.5"),
    raises("ARNet.fit", "n_lags bool", lambda c: ARNetForecaster(n_lags=True).fit(sine(30)), TypeError,
           "n_lags must be an int >= 1, got bool True"),
    raises("ARNet.fit", "n_forecasts string", lambda c: ARNetForecaster(n_forecasts="2").fit(sine(30)), TypeError,
           "n_forecasts must be an int >= 1, got str '2'"),
    raises("ARNet.fit", "unknown solver", lambda c: ARNetForecaster(solver="adam").fit(sine(30)), ValueError,
           "solver must be 'lstsq', 'ridge' or 'sgd', got 'adam'"),
    raises("ARNet.fit", "unknown missing", lambda c: ARNetForecaster(missing="drop").fit(sine(30)), ValueError,
           "missing must be 'raise' or 'interpolate', got 'drop'"),
    raises("ARNet.fit", "hidden layer float", lambda c: ARNetForecaster(solver="sgd", hidden_layers=(2.5,)).fit(sine(30)),
           TypeError, r"hidden_layers\[i\] must be an int >= 1, got float 2.5"),
    raises("ARNet.fit", "hidden_layers int", lambda c: ARNetForecaster(solver="sgd", hidden_layers=8).fit(sine(30)),
           ValueError, "hidden_layers must be a tuple"),
    raises("ARNet.fit", "ridge alpha NaN", lambda c: ARNetForecaster(solver="ridge", alpha=np.nan).fit(sine(30)),
           ValueError, "alpha must be a finite number >= 0"),
    raises("ARNet.fit", "sgd lr inf", lambda c: ARNetForecaster(solver="sgd", lr=np.inf).fit(sine(30)), ValueError,
           "lr must be a finite number > 0, got inf"),
    raises("ARNet.fit", "sgd epochs float", lambda c: ARNetForecaster(solver="sgd", epochs=2.5).fit(sine(30)), TypeError,
           "epochs must be an int >= 1, got float 2.5"),
    raises("ARNet.fit", "sparsity out of range", lambda c: ARNetForecaster(solver="sgd", sparsity=1.5).fit(sine(30)),
           ValueError, r"sparsity must be None or in \(0, 1\]"),
    raises("ARNet.fit", "c2 zero", lambda c: ARNetForecaster(solver="sgd", sparsity=0.5, c2=0).fit(sine(30)), ValueError,
           "c2 must be a finite number > 0, got 0"),
    # ---------------------------------------------------------- ARNetForecaster.predict / update
    raises("ARNet.predict", "before fit", lambda c: ARNetForecaster().predict(3), NotFittedError, "not fitted"),
    raises("ARNet.predict", "fh 0", lambda c: arnet().predict(0), ValueError, "fh must be >= 1, got 0"),
    raises("ARNet.predict", "fh float", lambda c: arnet().predict(1.5), ValueError, "fh must be an int or a non-empty"),
    raises("ARNet.predict", "fh bool", lambda c: arnet().predict(True), ValueError, "fh must be an int or a non-empty"),
    raises("ARNet.predict", "fh empty", lambda c: arnet().predict([]), ValueError, "fh must be an int or a non-empty"),
    raises("ARNet.predict", "fh negative step", lambda c: arnet().predict([1, -2]), ValueError, r"fh steps must be >= 1"),
    raises("ARNet.predict", "fh missing", lambda c: arnet().predict(), ValueError, r"fh \(the forecasting horizon\) is required"),
    raises("ARNet.predict", "context too short", lambda c: arnet().predict(2, y=sine(2)), ValueError,
           "y has 2 time steps, fewer than the 3"),
    raises("ARNet.predict", "context NaN", lambda c: arnet().predict(2, y=with_value(sine(10), np.nan)), ValueError,
           f"y contains 1 {NAN_AT}"),
    raises("ARNet.predict", "context channels", lambda c: arnet().predict(2, y=sine(10, 2)), ValueError,
           "y has 2 channels, the model was fitted on 1"),
    raises("ARNet.predict", "X without exogenous fit", lambda c: arnet().predict(2, X=np.zeros((2, 1))), ValueError,
           "fitted without exogenous variables"),
    raises("ARNet.predict", "exogenous X missing", lambda c: arnet_exog().predict(3), ValueError,
           "predict needs X for the next 4 steps"),
    raises("ARNet.predict", "exogenous X too short", lambda c: arnet_exog().predict(3, X=np.zeros((3, 1))), ValueError,
           r"at least 4 rows and 1 columns, got \(3, 1\)"),
    raises("ARNet.predict", "exogenous X NaN", lambda c: arnet_exog().predict(2, X=np.full((2, 1), np.nan)), ValueError,
           f"X contains 2 {NAN_AT}"),
    raises("ARNet.update", "NaN", lambda c: ARNetForecaster(n_lags=3).fit(sine(30)).update(with_value(sine(8), np.nan)),
           ValueError, f"y contains 1 {NAN_AT}"),
    raises("ARNet.update", "empty", lambda c: ARNetForecaster(n_lags=3).fit(sine(30)).update([]), ValueError, "y is empty"),
    raises("ARNet.update", "channels", lambda c: ARNetForecaster(n_lags=3).fit(sine(30)).update(sine(5, 2)), ValueError,
           "update has 2 channels"),
    raises("ARNet.update", "X without exogenous fit", lambda c: ARNetForecaster(n_lags=3).fit(sine(30)).update(
        sine(5), X=np.zeros((5, 1))), ValueError, "X was given to update"),
    raises("ARNet.score", "before fit", lambda c: ARNetForecaster().score(sine(10)), NotFittedError, "not fitted"),
    raises("ARNet.score", "NaN", lambda c: arnet().score(with_value(sine(10), np.nan)), ValueError,
           f"y contains 1 {NAN_AT}"),
    raises("ARNet.score", "strings", lambda c: arnet().score(np.array(["1", "2", "3"])), TypeError,
           "y must hold real numbers"),
    raises("ARNet.score", "channels", lambda c: arnet().score(sine(10, 2)), ValueError, "score has 2 channels"),
    raises("ARNet.score", "fh 0", lambda c: arnet().score(sine(10), fh=0), ValueError, "fh must be >= 1, got 0"),
    raises("ARNet.score", "too short for fh", lambda c: arnet().score(sine(3), fh=np.array([3])), ValueError,
           "at least 2 forecasts inside y"),
    raises("ARNet.score", "X without exogenous fit", lambda c: arnet().score(sine(10), X=np.zeros((10, 1))), ValueError,
           "X was given to score"),
    raises("ARNet.score", "exogenous X missing", lambda c: arnet_exog().score(sine(10)), ValueError,
           "score needs X at the rows of y"),
    raises("ARNet.score", "gap after the fitted index", lambda c: ARNetForecaster(n_lags=3).fit(
        pd.Series(sine(30), index=pd.RangeIndex(30))).score(pd.Series(sine(10), index=pd.RangeIndex(31, 41))),
        ValueError, "must start right after the fitted series, at 30"),
    # ---------------------------------------------------------- LagRegressor (scikit-learn's own validation)
    raises("LagRegressor.fit", "X 1-D", lambda c: LagRegressor().fit(np.zeros(10), np.zeros(10)), ValueError, "Expected 2D"),
    raises("LagRegressor.fit", "X NaN", lambda c: LagRegressor().fit(np.full((10, 2), np.nan), np.zeros(10)), ValueError,
           "Input X contains NaN"),
    raises("LagRegressor.fit", "y inf", lambda c: LagRegressor().fit(np.zeros((10, 2)), np.full(10, np.inf)), ValueError,
           "Input y contains infinity"),
    raises("LagRegressor.fit", "X complex", lambda c: LagRegressor().fit(np.zeros((10, 2)) + 1j, np.zeros(10)), ValueError,
           "Complex data not supported"),
    raises("LagRegressor.fit", "lengths differ", lambda c: LagRegressor().fit(np.zeros((10, 2)), np.zeros(9)), ValueError,
           "inconsistent numbers of samples"),
    raises("LagRegressor.fit", "empty", lambda c: LagRegressor().fit(np.zeros((0, 2)), np.zeros(0)), ValueError,
           "0 sample"),
    raises("LagRegressor.fit", "batch_size 0", lambda c: LagRegressor(solver="sgd", batch_size=0).fit(np.zeros((10, 2)),
           np.zeros(10)), ValueError, "batch_size must be >= 1, got 0"),
    raises("LagRegressor.predict", "wrong width", lambda c: lag_regressor().predict(np.zeros((4, 5))), ValueError,
           "5 features"),
    raises("LagRegressor.predict", "NaN", lambda c: lag_regressor().predict(np.full((4, 3), np.nan)), ValueError,
           "Input X contains NaN"),
    # ---------------------------------------------------------- AutoTimesForecaster
    raises("AutoTimes.fit", "too short", lambda c: AutoTimesForecaster(**AUTOTIMES).fit(sine(19)), ValueError,
           "y has 19 time steps, fewer than the 20"),
    raises("AutoTimes.fit", "y NaN", lambda c: AutoTimesForecaster(**AUTOTIMES).fit(with_value(sine(60), np.nan)),
           ValueError, f"y contains 1 {NAN_AT}"),
    raises("AutoTimes.fit", "y 3-D", lambda c: AutoTimesForecaster(**AUTOTIMES).fit(np.zeros((60, 1, 1))), ValueError,
           "y must be 1-D"),
    raises("AutoTimes.fit", "y complex", lambda c: AutoTimesForecaster(**AUTOTIMES).fit(sine(60) * 1j), TypeError,
           "y must hold real numbers"),
    raises("AutoTimes.fit", "X given", lambda c: AutoTimesForecaster(**AUTOTIMES).fit(sine(60), X=np.zeros((60, 1))),
           ValueError, "does not use exogenous X"),
    raises("AutoTimes.fit", "verbose not a bool", at_fit(verbose="no"), TypeError, "verbose must be a bool"),
    raises("AutoTimes.fit", "token_len float", at_fit(token_len=2.5), TypeError, "token_len must be an int >= 1, got float"),
    raises("AutoTimes.fit", "epochs 0", at_fit(epochs=0), ValueError, "epochs must be >= 1, got 0"),
    raises("AutoTimes.fit", "context not a multiple", at_fit(context_len=18), ValueError,
           r"context_len \(18\) must be a multiple of token_len \(4\)"),
    raises("AutoTimes.fit", "lr NaN", at_fit(lr=np.nan), ValueError, "lr must be a finite number > 0"),
    raises("AutoTimes.fit", "weight_decay negative", at_fit(weight_decay=-1.0), ValueError,
           "weight_decay must be a finite number >= 0"),
    raises("AutoTimes.fit", "dropout 1", at_fit(dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
    raises("AutoTimes.fit", "validation_fraction 1.5", at_fit(validation_fraction=1.5), ValueError,
           r"validation_fraction must be None or in \(0, 1\)"),
    raises("AutoTimes.fit", "unknown rollout", at_fit(rollout="beam"), ValueError, "rollout must be"),
    raises("AutoTimes.fit", "pretrained of the wrong type", at_fit(pretrained=42), TypeError, "pretrained must be None"),
    raises("AutoTimes.fit", "values overflow float64", lambda c: AutoTimesForecaster(**AUTOTIMES).fit(
        1.7e308 * np.sign(sine(60) + 1e-9)), ValueError, "y reaches 1.7e\\+308: its mean or spread overflows float64"),
    documented("AutoTimes.fit", "amplitude 1e30", lambda c: AutoTimesForecaster(**AUTOTIMES).fit(1e30 * sine(60)).predict(4),
               lambda f: np.isfinite(f).all() and np.allclose(f / 1e30, autotimes().predict(4), rtol=1e-3, atol=1e-3),
               "finite, and 1e30 times the forecast of the unscaled series (see test_timeseries_scale.py)"),
    documented("AutoTimes.fit", "constant series", lambda c: AutoTimesForecaster(**AUTOTIMES).fit(np.full(60, 7.5)).predict(4),
               lambda f: np.array_equal(f, np.full(4, 7.5)), "forecast is the constant, exactly"),
    raises("AutoTimes.predict", "fh 0", lambda c: autotimes().predict(0), ValueError, "fh must be >= 1"),
    raises("AutoTimes.predict", "context too short", lambda c: autotimes().predict(4, y=sine(3)), ValueError,
           "y has 3 time steps, fewer than the 4"),
    raises("AutoTimes.predict", "context inf", lambda c: autotimes().predict(4, y=with_value(sine(20), -np.inf)),
           ValueError, f"y contains 1 {NAN_AT}"),
    raises("AutoTimes.predict", "context channels", lambda c: autotimes().predict(4, y=sine(20, 2)), ValueError,
           "y has 2 channels"),
    raises("AutoTimes.predict", "X given", lambda c: autotimes().predict(4, X=np.zeros((4, 1))), ValueError,
           "fitted without exogenous"),
    raises("AutoTimes.predict", "context overflows float64", lambda c: autotimes().predict(
        4, y=1.7e308 * np.sign(sine(20) + 1e-9)), ValueError, "overflows float64"),
    raises("AutoTimes.predict_in_context", "prompt too short", lambda c: autotimes().predict_in_context(sine(3), 4),
           ValueError, r"prompt\[0\] must have >= 4 steps"),
    raises("AutoTimes.predict_in_context", "prompt NaN", lambda c: autotimes().predict_in_context(
        with_value(sine(8), np.nan), 4), ValueError, f"prompt contains 1 {NAN_AT}"),
    raises("AutoTimes.update", "NaN", lambda c: AutoTimesForecaster(**AUTOTIMES).fit(sine(40)).update(
        with_value(sine(8), np.nan)), ValueError, f"y contains 1 {NAN_AT}"),
    # ---------------------------------------------------------- AutoTimes: a local Hugging Face model directory
    raises("AutoTimes.fit(pretrained=dir)", "crafted pytorch_model.bin", lambda c: AutoTimesForecaster(
        **AUTOTIMES, rollout="sliding", pretrained=str(c.hf_dir(weights={"wte.weight": WritesMarker(c.marker)}))).fit(sine(60)),
        ValueError, r"refusing to load the weights in .*hf.*Unsupported global"),
    raises("AutoTimes.fit(pretrained=dir)", "custom model code in config", lambda c: AutoTimesForecaster(
        **AUTOTIMES, rollout="sliding", pretrained=str(c.hf_dir(
            config={**GPT2, "model_type": "evil", "auto_map": {"AutoConfig": "evil.Config", "AutoModel": "evil.Model"}},
            files={"evil.py": f"open({str(c.marker)!r}, 'w').close()\n"}))).fit(sine(60)),
        ValueError, "contains custom code"),
    raises("AutoTimes.fit(pretrained=dir)", "corrupt pytorch_model.bin", lambda c: AutoTimesForecaster(
        **AUTOTIMES, rollout="sliding", pretrained=str(c.hf_dir(files={"pytorch_model.bin": "garbage"}))).fit(sine(60)),
        ValueError, "refusing to load the weights"),
    raises("AutoTimes.fit(pretrained=dir)", "corrupt model.safetensors", lambda c: AutoTimesForecaster(
        **AUTOTIMES, rollout="sliding", pretrained=str(c.hf_dir(files={"model.safetensors": "garbage"}))).fit(sine(60)),
        ValueError, "cannot read the safetensors weights"),
    raises("AutoTimes.fit(pretrained=dir)", "config.json not JSON", lambda c: AutoTimesForecaster(
        **AUTOTIMES, rollout="sliding", pretrained=str(c.hf_dir(config="{not json"))).fit(sine(60)),
        OSError, r"config.json' is not a valid JSON file"),
    raises("AutoTimes.fit(pretrained=dir)", "no weights", lambda c: AutoTimesForecaster(
        **AUTOTIMES, rollout="sliding", pretrained=str(c.hf_dir())).fit(sine(60)), OSError, "no file named"),
    raises("AutoTimes.fit(pretrained=dir)", "missing directory", lambda c: AutoTimesForecaster(
        **AUTOTIMES, rollout="sliding", pretrained=str(c.tmp / "absent")).fit(sine(60)), FileNotFoundError,
        "no Hugging Face model directory"),
    # ---------------------------------------------------------- DynamicsReconstructor.fit
    raises("DSR.fit", "X 1-D", dsr_fit(np.zeros(300)), ValueError, r"X must be a 2-D \(T, N\) array"),
    raises("DSR.fit", "X 3-D", dsr_fit(np.zeros((30, 3, 1))), ValueError, r"X must be a 2-D \(T, N\) array"),
    raises("DSR.fit", "X NaN", dsr_fit(with_value(lorenz_like(), np.nan)), ValueError, "X contains NaN or inf"),
    raises("DSR.fit", "X inf", dsr_fit(with_value(lorenz_like(), np.inf)), ValueError, "X contains NaN or inf"),
    raises("DSR.fit", "X strings", dsr_fit(np.full((30, 3), "1.0")), TypeError, "X must hold real numbers"),
    raises("DSR.fit", "X complex", dsr_fit(lorenz_like() + 1j), TypeError, "X must hold real numbers"),
    raises("DSR.fit", "X meta tensor", dsr_fit(torch.zeros(30, 3, device="meta")), ValueError, "meta device"),
    raises("DSR.fit", "X empty list", dsr_fit([]), ValueError, "X must not be empty"),
    raises("DSR.fit", "X no rows", dsr_fit(np.zeros((0, 3))), ValueError, "X has 0 samples, fewer than"),
    raises("DSR.fit", "X too short", dsr_fit(lorenz_like(10)), ValueError, "fewer than sequence_length \\+ 1 = 11"),
    raises("DSR.fit", "series of different widths", dsr_fit([lorenz_like(), lorenz_like()[:, :2]]), ValueError,
           r"X\[1\] has 2 dimensions"),
    raises("DSR.fit", "inputs NaN", dsr_fit(inputs=np.full((200, 1), np.nan)), ValueError, "inputs contains NaN or inf"),
    raises("DSR.fit", "inputs wrong length", dsr_fit(inputs=np.zeros((150, 1))), ValueError, "inputs must hold one"),
    raises("DSR.fit", "partial not a bool", dsr_fit(partial="no"), TypeError, "partial must be a bool"),
    raises("DSR.fit", "standardize not a bool", dsr_fit(standardize="yes"), TypeError, "standardize must be a bool"),
    raises("DSR.fit", "verbose not a bool", dsr_fit(verbose=1), TypeError, "verbose must be a bool"),
    raises("DSR.fit", "unknown model", dsr_fit(model="lstm"), ValueError, "model must be one of"),
    raises("DSR.fit", "latent_dim float", dsr_fit(latent_dim=3.5), TypeError, "latent_dim must be an int >= 1, got float"),
    raises("DSR.fit", "latent_dim below N", dsr_fit(latent_dim=2), ValueError, "latent_dim >= obs_dim"),
    raises("DSR.fit", "epochs 0", dsr_fit(epochs=0), ValueError, "epochs must be >= 1, got 0"),
    raises("DSR.fit", "alpha 1.5", dsr_fit(alpha=1.5), ValueError, r"alpha must lie in \[0, 1\]"),
    raises("DSR.fit", "alpha string", dsr_fit(alpha="auto"), ValueError, "alpha must be a float in"),
    raises("DSR.fit", "max_time negative", dsr_fit(max_time=-1.0), ValueError, "max_time must be None or positive"),
    raises("DSR.fit", "lr_end above lr_start", dsr_fit(lr_end=1.0), ValueError, "need 0 < lr_end <= lr_start"),
    raises("DSR.fit", "standardize a constant dimension", dsr_fit(np.c_[lorenz_like()[:, :2], np.full(200, 1e7 + 0.1)],
           standardize=True), ValueError, r"constant dimension \(dimension 2\)"),
    documented("DSR.fit", "far from unit scale without standardize", lambda c: _warns(dsr_fit(1e-4 * lorenz_like())),
               lambda w: w, "fits, with a UserWarning naming standardize=True"),
    # ---------------------------------------------------------- DynamicsReconstructor generate / predict / score
    raises("DSR.generate", "before fit", lambda c: DynamicsReconstructor().generate(5), NotFittedError, "not fitted"),
    raises("DSR.generate", "T 0", lambda c: dsr().generate(0), ValueError, "T must be >= 1, got 0"),
    raises("DSR.generate", "T float", lambda c: dsr().generate(2.5), TypeError, "T must be an int >= 1, got float 2.5"),
    raises("DSR.generate", "x0 wrong width", lambda c: dsr().generate(5, x0=np.zeros(4)), ValueError,
           r"x0 must have shape \(N,\) with N = 3"),
    raises("DSR.generate", "x0 NaN", lambda c: dsr().generate(5, x0=np.full(3, np.nan)), ValueError,
           "x0 contains NaN or inf"),
    raises("DSR.generate", "x0 meta tensor", lambda c: dsr().generate(5, x0=torch.zeros(3, device="meta")), ValueError,
           "meta device"),
    raises("DSR.generate", "inputs without input fit", lambda c: dsr().generate(5, inputs=np.zeros((5, 1))), ValueError,
           "fitted without external inputs"),
    raises("DSR.predict", "x0 1-D", lambda c: dsr().predict(np.zeros(3), 2), ValueError, r"x0 must have shape \(P, N\)"),
    raises("DSR.predict", "n 0", lambda c: dsr().predict(np.zeros((2, 3)), 0), ValueError, "n must be >= 1, got 0"),
    raises("DSR.score", "wrong width", lambda c: dsr().score(np.zeros((50, 2))), ValueError,
           r"X must have shape \(T, N\) with N = 3"),
    raises("DSR.score", "NaN", lambda c: dsr().score(np.full((50, 3), np.nan)), ValueError, "X contains NaN or inf"),
    raises("DSR.score", "one time step", lambda c: dsr().score(lorenz_like(1)), ValueError,
           "X needs at least 2 time steps, got 1"),
    raises("DSR.dynamics_measures", "too short for n", lambda c: dsr().dynamics_measures(lorenz_like(10), n=20),
           ValueError, "X needs more than n = 20 time steps"),
    raises("DSR.dynamics_measures", "n bool", lambda c: dsr().dynamics_measures(lorenz_like(50), n=True), TypeError,
           "n must be an int >= 1, got bool True"),
    raises("DSR.lyapunov_exponent", "spectrum not a bool", lambda c: dsr().lyapunov_exponent(T=10, transient=0,
           spectrum="yes"), TypeError, "spectrum must be a bool"),
    # ---------------------------------------------------------- training functions and models (flags)
    raises("train_gtf", "partial not a bool", lambda c: train_gtf(shallow(), IdentityObservation(3, 3), lorenz_like(),
           epochs=1, batches_per_epoch=1, sequence_length=10, partial="no", progress=False), TypeError,
           "partial must be a bool"),
    raises("train_gtf", "progress not a bool", lambda c: train_gtf(shallow(), IdentityObservation(3, 3), lorenz_like(),
           epochs=1, batches_per_epoch=1, sequence_length=10, progress="no"), TypeError, "progress must be a bool"),
    raises("train_gtf", "data NaN", lambda c: train_gtf(shallow(), IdentityObservation(3, 3), with_value(lorenz_like(), np.nan),
           epochs=1, batches_per_epoch=1, sequence_length=10, progress=False), ValueError, r"data\[0\] contains NaN"),
    raises("train_gtf", "data complex", lambda c: train_gtf(shallow(), IdentityObservation(3, 3), lorenz_like() * 1j,
           epochs=1, batches_per_epoch=1, sequence_length=10, progress=False), TypeError, r"data\[0\] must hold real numbers"),
    raises("train_gtf", "data strings", lambda c: train_gtf(shallow(), IdentityObservation(3, 3), np.full((30, 3), "1"),
           epochs=1, batches_per_epoch=1, sequence_length=10, progress=False), TypeError, r"data\[0\] must hold real numbers"),
    raises("train_gtf", "data meta tensor", lambda c: train_gtf(shallow(), IdentityObservation(3, 3),
           torch.zeros(30, 3, device="meta"), epochs=1, batches_per_epoch=1, sequence_length=10, progress=False),
           ValueError, r"data\[0\] is a tensor on the meta device"),
    raises("gtf_forward", "fused not a bool", lambda c: gtf_forward(shallow(), IdentityObservation(3, 3),
           torch.zeros(1, 5, 3), 0.1, fused="yes"), TypeError, "fused must be a bool"),
    raises("gtf_forward", "x 2-D", lambda c: gtf_forward(shallow(), IdentityObservation(3, 3), torch.zeros(5, 3), 0.1),
           ValueError, r"x must have shape \(B, T >= 2, 3\)"),
    raises("ShallowPLRNN", "clipped not a bool", lambda c: ShallowPLRNN(3, 4, clipped="no"), TypeError,
           "clipped must be a bool"),
    raises("AffineObservation", "bias not a bool", lambda c: AffineObservation(3, 3, bias="no"), TypeError,
           "bias must be a bool"),
    # ---------------------------------------------------------- metrics
    raises("state_space_divergence", "1-D", lambda c: state_space_divergence(np.zeros(10), np.zeros(10)), ValueError,
           r"x_true must be a 2-D \(T, N\) array"),
    raises("state_space_divergence", "NaN", lambda c: state_space_divergence(lorenz_like(), np.full((20, 3), np.nan)),
           ValueError, "x_gen contains non-finite values"),
    raises("state_space_divergence", "empty", lambda c: state_space_divergence(np.zeros((0, 3)), lorenz_like()),
           ValueError, "x_true must have at least one time step"),
    raises("state_space_divergence", "widths differ", lambda c: state_space_divergence(lorenz_like(), lorenz_like()[:, :2]),
           ValueError, "same number of dimensions"),
    raises("state_space_divergence", "n_bins float", lambda c: state_space_divergence(lorenz_like(), lorenz_like(), n_bins=2.5),
           TypeError, "n_bins must be an int >= 1, got float 2.5"),
    raises("state_space_divergence", "scaling NaN", lambda c: state_space_divergence(np.zeros((20, 6)) + np.arange(20)[:, None],
           np.zeros((20, 6)), scaling=np.nan), ValueError, "scaling .* must be a finite number > 0"),
    raises("state_space_divergence", "complex", lambda c: state_space_divergence(lorenz_like() * 1j, lorenz_like()),
           TypeError, "x_true must hold real numbers"),
    raises("state_space_divergence", "meta tensor", lambda c: state_space_divergence(torch.zeros(20, 3, device="meta"),
           lorenz_like()), ValueError, "meta device"),
    raises("power_spectrum", "smoothing NaN", lambda c: power_spectrum(lorenz_like(), smoothing=np.nan), ValueError,
           "smoothing must be a finite number >= 0, got nan"),
    raises("power_spectrum", "smoothing negative", lambda c: power_spectrum(lorenz_like(), smoothing=-1), ValueError,
           "smoothing must be a finite number >= 0"),
    documented("power_spectrum", "constant dimension", lambda c: power_spectrum(np.c_[lorenz_like()[:, :2], np.ones(200)]),
               lambda s: np.isnan(s[:, 2]).all() and np.isfinite(s[:, :2]).all(), "NaN column for the constant dimension"),
    raises("power_spectrum_error", "shapes differ", lambda c: power_spectrum_error(lorenz_like(), lorenz_like(100)),
           ValueError, "same shape"),
    raises("prediction_error", "n bool", lambda c: prediction_error(lambda x0, n: np.zeros((len(x0), n, 3)), lorenz_like(), True),
           TypeError, "n must be an int >= 1, got bool True"),
    raises("prediction_error", "wrong output shape", lambda c: prediction_error(lambda x0, n: np.zeros((3, 3)),
           lorenz_like(), 2), ValueError, r"predict_fn must return shape \(P, n, N\)"),
    documented("prediction_error", "NaN predictions", lambda c: prediction_error(
        lambda x0, n: np.full((len(x0), n, 3), np.nan), lorenz_like(), 2), np.isnan, "NaN (a diverging model is reported)"),
    raises("stpe", "NaN", lambda c: stpe([np.nan, 1.0], [0.0, 1.0]), ValueError, "w_hat and w must be finite"),
    raises("stpe", "sizes differ", lambda c: stpe([1.0], [1.0, 2.0]), ValueError, "same size"),
    raises("lag_matrix", "n_lags 0", lambda c: lag_matrix(sine(20), 0, 1), ValueError, "n_lags must be >= 1, got 0"),
    raises("lag_matrix", "3-D", lambda c: lag_matrix(np.zeros((5, 2, 2)), 2, 1), ValueError, r"series must be \(T,\) or \(T, C\)"),
    documented("lag_matrix", "NaN", lambda c: lag_matrix(with_value(sine(10), np.nan, at=1), 2, 1),
               lambda xy: np.isnan(xy[0]).sum() == 2 and np.isnan(xy[1]).sum() == 0, "NaN propagates into its windows"),
    # ---------------------------------------------------------- timeseries.data.read_csv / load_ett
    raises("read_csv", "missing file", lambda c: read_csv(c.tmp / "absent.csv"), FileNotFoundError, "no CSV file"),
    raises("read_csv", "empty file", lambda c: read_csv(c.text("empty.csv", "")), ValueError, "empty.csv: the file is empty"),
    raises("read_csv", "header only", lambda c: read_csv(c.text("header.csv", "date,a\n")), ValueError,
           r"header.csv: no data rows below the header \['date', 'a'\]"),
    raises("read_csv", "ragged rows", lambda c: read_csv(c.text("ragged.csv", HOURLY + "2020-01-01 06:00,1,2,3,4\n")),
           ValueError, "ragged.csv: not a readable CSV file"),
    raises("read_csv", "binary content", lambda c: read_csv(c.text("binary.csv", bytes(range(256)) * 4)), ValueError,
           "binary.csv: not a readable CSV file"),
    raises("read_csv", "missing time column", lambda c: read_csv(c.text("t.csv", HOURLY), time_column="time"), KeyError,
           "no time column 'time'"),
    raises("read_csv", "missing value column", lambda c: read_csv(c.text("t.csv", HOURLY), columns=["zz"]), KeyError,
           r"no column\(s\) \['zz'\]"),
    raises("read_csv", "non-numeric cell", lambda c: read_csv(c.text("t.csv", HOURLY.replace(",4,8", ",4,eight"))),
           ValueError, r"column\(s\) \['b'\] are not numeric, e.g. 'eight'"),
    raises("read_csv", "bad date", lambda c: read_csv(c.text("t.csv", HOURLY.replace("2020-01-01 02:00", "noon"))),
           ValueError, "not dates, first at row 2: 'noon'"),
    documented("read_csv", "empty cell", lambda c: read_csv(c.text("t.csv", HOURLY.replace(",4,8", ",,8"))),
               lambda f: np.isnan(f["a"].iloc[4]) and f["a"].isna().sum() == 1, "kept as NaN"),
    raises("load_ett", "unknown split", lambda c: load_ett(split="dev"), ValueError, "split must be one of"),
    raises("load_ett", "missing file", lambda c: load_ett(c.tmp / "ETTh1.csv"), FileNotFoundError, "ETTh1.csv not found"),
    raises("load_ett", "too few rows", lambda c: load_ett(c.text("ETTh1.csv", HOURLY), split="test"), ValueError,
           "fewer than the 14400"),
    # ---------------------------------------------------------- timeseries.dynamics.data.load_dsr
    raises("load_dsr", "object array that runs code", lambda c: load_dsr("lorenz63", root=c.dsr_dir(
        np.array([WritesMarker(c.marker)], dtype=object))), ValueError, "cannot be read as a .npy array.*allow_pickle=False"),
    raises("load_dsr", "a pickle that runs code", lambda c: load_dsr("lorenz63", root=c.dsr_dir(
        pickled=WritesMarker(c.marker))), ValueError, "cannot be read as a .npy array.*pickled objects are refused"),
    raises("load_dsr", "truncated .npy", lambda c: load_dsr("lorenz63", root=c.dsr_dir(raw=_npy_bytes(lorenz_like())[:200])),
           ValueError, "cannot be read as a .npy array"),
    raises("load_dsr", "empty file", lambda c: load_dsr("lorenz63", root=c.dsr_dir(raw=b"")), ValueError,
           "cannot be read as a .npy array"),
    raises("load_dsr", "1-D array", lambda c: load_dsr("lorenz63", root=c.dsr_dir(np.zeros(10))), ValueError,
           r"shape \(10,\), expected \(T, N\)"),
    raises("load_dsr", "strings", lambda c: load_dsr("lorenz63", root=c.dsr_dir(np.full((4, 3), "x"))), ValueError,
           "dtype <U1, expected floating-point"),
    raises("load_dsr", "NaN", lambda c: load_dsr("lorenz63", root=c.dsr_dir(with_value(lorenz_like(), np.nan, at=7))),
           ValueError, "3 NaN or infinite values, first in row 7"),
    raises("load_dsr", "unknown name", lambda c: load_dsr("rossler"), ValueError, "name must be one of"),
    raises("load_dsr", "unknown split", lambda c: load_dsr("lorenz63", "val"), ValueError, "split must be 'train' or 'test'"),
    raises("load_dsr", "missing file", lambda c: load_dsr("lorenz63", root=c.tmp), FileNotFoundError, "data not found at"),
    # ---------------------------------------------------------- sktime adapter
    raises("to_sktime", "not a Forecaster", lambda c: _to_sktime()(LagRegressor()), TypeError,
           "to_sktime needs a timeseries Forecaster"),
    raises("SktimeForecaster.fit", "NaN", lambda c: _to_sktime()(ARNetForecaster(n_lags=2)).fit(
        pd.Series(with_value(sine(30), np.nan))), ValueError, r"cannot handle missing data \(nans\)"),
]


def _warns(call: Callable[[Ctx], Any]) -> bool:
    with pytest.warns(UserWarning, match="standardize=True"):
        call(None)
    return True


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _to_sktime() -> Callable[[Any], Any]:
    pytest.importorskip("sktime")
    from timeseries.sktime import to_sktime

    return to_sktime


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.entry}: {r.case}" for r in ROWS])
def test_bad_input(row: Row, tmp_path: Path) -> None:
    ctx = Ctx(tmp_path)
    if row.error is not None:
        with pytest.raises(row.error, match=row.match):
            row.call(ctx)
    else:
        result = row.call(ctx)
        assert row.check(result), f"documented result: {row.match}; got {result!r}"
    assert not ctx.marker.exists(), "loading ran code from the file"


def test_the_table_covers_every_class() -> None:
    """Keep the table honest: each input class appears, and rows are unique."""
    ids = [f"{r.entry}: {r.case}" for r in ROWS]
    assert len(ids) == len(set(ids))
    text = " ".join(ids).lower()
    for word in ("3-d", "strings", "complex", "meta", "nan", "inf", "empty", "float", "not a bool", "pickle", "binary"):
        assert word in text, word
