"""Turning what users pass as a time series into arrays, and forecasts back into what they passed.

Accepted: a 1-D or 2-D numpy array (time along axis 0), a pandas Series or DataFrame (the index is kept and
extended into the future), or a list of those (several series for one global model).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch


@dataclass
class Series:
    """One series as ``values: (T, C)`` float64 plus what is needed to rebuild the caller's type."""

    values: np.ndarray
    kind: str  # "1d", "2d", "series" or "frame"
    index: pd.Index | None = None
    columns: Any = None
    name: Any = None
    filled: np.ndarray | None = None  # (T,) bool: rows where a missing value was filled in (None: no row)

    @property
    def n_channels(self) -> int:
        return self.values.shape[1]

    def future_index(self, steps: np.ndarray) -> pd.Index | None:
        """Index labels ``steps`` (1-based, relative) after the last observation, or ``None`` without an index."""
        if self.index is None:
            return None
        if isinstance(self.index, pd.DatetimeIndex):
            freq = self.index.freq or pd.infer_freq(self.index)
            if freq is None:
                raise ValueError("cannot extend a DatetimeIndex without a regular frequency; set index.freq")
            offset = pd.tseries.frequencies.to_offset(freq)
            return pd.DatetimeIndex([self.index[-1] + int(s) * offset for s in steps])
        if isinstance(self.index, pd.PeriodIndex):
            return pd.PeriodIndex([self.index[-1] + int(s) for s in steps])
        if pd.api.types.is_integer_dtype(self.index):
            step = int(self.index[-1] - self.index[-2]) if len(self.index) > 1 else 1
            return pd.Index(self.index[-1] + step * np.asarray(steps), dtype=self.index.dtype)
        raise ValueError(f"cannot extend an index of type {type(self.index).__name__} into the future")

    def wrap(self, forecast: np.ndarray, steps: np.ndarray) -> Any:
        """``forecast: (len(steps), C)`` in the caller's type."""
        if self.kind == "1d":
            return forecast[:, 0]
        if self.kind == "2d":
            return forecast
        index = self.future_index(steps)
        if self.kind == "series":
            return pd.Series(forecast[:, 0], index=index, name=self.name)
        return pd.DataFrame(forecast, index=index, columns=self.columns)


def _check_index(index: pd.Index, what: str) -> None:
    if not index.is_monotonic_increasing:
        raise ValueError(f"{what} has a time index that is not increasing")
    if index.has_duplicates:
        raise ValueError(f"{what} has duplicated time stamps: {list(index[index.duplicated()][:3])}")


def _fill_missing(values: np.ndarray, missing: str, what: str) -> np.ndarray:
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    if missing == "raise":
        rows = np.flatnonzero(bad.any(axis=1))[:5].tolist()
        raise ValueError(
            f"{what} contains {int(bad.sum())} NaN or infinite values (first rows {rows}); "
            "clean them or pass missing='interpolate'"
        )
    filled = pd.DataFrame(np.where(bad, np.nan, values)).interpolate(limit_direction="both").to_numpy()
    if np.isnan(filled).any():
        raise ValueError(f"{what} has a channel with no finite value to interpolate from")
    return filled


def check_number(name: str, value: Any, minimum: float, *, strict: bool = False) -> float:
    """``value`` as a finite float ``>= minimum`` (``> minimum`` when ``strict``); NaN, inf and bools are refused."""
    real = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and np.isfinite(value)
    if not (real and (value > minimum if strict else value >= minimum)):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return float(value)


def as_float_array(value: Any, what: str) -> np.ndarray:
    """``value`` (array-like, pandas object or torch tensor on any device with data) as a float64 numpy array.

    Real numbers only: complex values (whose imaginary part a plain cast drops), strings (which numpy would
    parse) and dates are refused with a TypeError naming ``what``; booleans count as 0 and 1.
    """
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            raise ValueError(f"{what} is a tensor on the meta device, which holds no values")
        if value.is_complex():
            raise TypeError(f"{what} must hold real numbers, got a {value.dtype} tensor")
        return value.detach().cpu().double().numpy()
    if isinstance(value, (pd.Series, pd.DataFrame)):
        frame = value.to_frame() if isinstance(value, pd.Series) else value
        text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
        if text:
            raise TypeError(f"{what} must hold real numbers, got non-numeric column(s) {text[:5]}")
        if any(pd.api.types.is_complex_dtype(frame[c]) for c in frame.columns):
            raise TypeError(f"{what} must hold real numbers, got complex values")
        # na_value: pandas' nullable dtypes hold pd.NA, which is a missing value like NaN
        return value.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        array = np.asarray(value)
    except ValueError as err:  # numpy's message for ragged nested lists names no argument
        raise ValueError(f"{what} must be a rectangular array of numbers: {err}") from err
    if array.dtype.kind in "biuf":
        return array.astype(np.float64)
    if array.dtype.kind == "O":
        try:
            converted = array.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{what} must hold real numbers, got a non-numeric entry ({err})") from err
        if any(isinstance(v, (str, bytes, complex)) for v in array.ravel()):
            raise TypeError(f"{what} must hold real numbers, got strings or complex numbers among its entries")
        return converted
    raise TypeError(f"{what} must hold real numbers, got dtype {array.dtype}")


def location_scale(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation of ``values`` along ``axis``, exact for constant slices.

    ``values: (T, C)`` with ``axis=0`` -> ``mean, std: (C,)`` float64 (any shape: ``axis`` is reduced).

    A constant slice gets its value as the mean and a std of exactly 0 (a plain mean of equal values can be off
    by a rounding error, which a later division would blow up). The std is taken of the deviations divided by
    their largest magnitude, so it neither underflows at 1e-200 nor overflows at 1e200.
    """
    values = np.asarray(values, dtype=np.float64)
    first = np.take(values, [0], axis=axis)
    flat = np.all(values == first, axis=axis, keepdims=True)
    mean = np.where(flat, first, np.mean(values, axis=axis, keepdims=True))
    deviation = values - mean
    size = np.max(np.abs(deviation), axis=axis, keepdims=True)
    unit = np.divide(deviation, size, out=np.zeros_like(deviation), where=size > 0)
    std = size * np.sqrt(np.mean(unit**2, axis=axis, keepdims=True))
    return np.squeeze(mean, axis=axis), np.squeeze(std, axis=axis)


def to_series(y: Any, *, what: str = "y", missing: str = "raise") -> Series:
    """Validate one series and convert it to a :class:`Series`."""
    if missing not in ("raise", "interpolate"):
        raise ValueError(f"missing must be 'raise' or 'interpolate', got {missing!r}")
    if isinstance(y, pd.Series):
        _check_index(y.index, what)
        values, kind, index, columns, name = as_float_array(y, what)[:, None], "series", y.index, None, y.name
    elif isinstance(y, pd.DataFrame):
        _check_index(y.index, what)
        values, kind, index, columns, name = as_float_array(y, what), "frame", y.index, y.columns, None
    else:
        if y is None:  # np.asarray(None) would be a NaN scalar
            raise TypeError(f"{what} must be numeric: a numpy array, pandas Series/DataFrame or a list of them, got None")
        array = as_float_array(y, what)
        if array.ndim not in (1, 2):
            raise ValueError(f"{what} must be 1-D (T,) or 2-D (T, C), got shape {array.shape}")
        values, kind, index, columns, name = (array[:, None], "1d", None, None, None) if array.ndim == 1 else (array, "2d", None, None, None)
    if values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {values.shape})")
    bad_rows = ~np.isfinite(values).all(axis=1)
    filled = bad_rows if bad_rows.any() else None
    return Series(_fill_missing(values, missing, what), kind, index, columns, name, filled)


def to_series_list(y: Any, *, what: str = "y", missing: str = "raise") -> tuple[list[Series], bool]:
    """A single series or a list of them; returns ``(series, was_list)``."""
    if isinstance(y, (list, tuple)) and len(y) > 0 and not np.isscalar(y[0]):
        series = [to_series(item, what=f"{what}[{i}]", missing=missing) for i, item in enumerate(y)]
        channels = {s.n_channels for s in series}
        if len(channels) > 1:
            raise ValueError(f"all series in {what} must have the same number of channels, got {sorted(channels)}")
        return series, True
    return [to_series(y, what=what, missing=missing)], False


def check_exog(x: Any, series: Sequence[Series], what: str = "X") -> list[np.ndarray] | None:
    """Exogenous variables aligned with each series: one ``(T_i, F)`` array per series, or ``None``."""
    if x is None:
        return None
    items = x if isinstance(x, (list, tuple)) and len(series) > 1 else [x]
    if len(items) != len(series):
        raise ValueError(f"{what} must hold one entry per series ({len(series)}), got {len(items)}")
    arrays = []
    for i, (item, s) in enumerate(zip(items, series)):
        array = to_series(item, what=f"{what}[{i}]" if len(series) > 1 else what).values
        if array.shape[0] != s.values.shape[0]:
            raise ValueError(f"{what} has {array.shape[0]} rows but the series has {s.values.shape[0]} time steps")
        arrays.append(array)
    return arrays


def forecast_steps(fh: Any) -> np.ndarray:
    """``fh``: an int h (steps 1..h) or an array of positive relative steps -> sorted unique int array."""
    if fh is None:
        raise ValueError("fh (the forecasting horizon) is required: an int h or an array of relative steps >= 1")
    if isinstance(fh, (int, np.integer)) and not isinstance(fh, bool):
        if fh <= 0:
            raise ValueError(f"fh must be >= 1, got {fh}")
        return np.arange(1, int(fh) + 1)
    steps = np.asarray(fh)
    if steps.ndim != 1 or steps.size == 0 or not np.issubdtype(steps.dtype, np.integer):
        raise ValueError(f"fh must be an int or a non-empty 1-D array of integer steps, got {fh!r}")
    if (steps <= 0).any():
        raise ValueError(f"fh steps must be >= 1 (relative to the end of the series), got {steps.tolist()}")
    return np.unique(steps)
