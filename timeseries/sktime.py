"""sktime interface: :func:`to_sktime` wraps any :class:`~timeseries.base.Forecaster` as an sktime forecaster.

sktime is an optional dependency, so it is imported only when the adapter class is first needed: importing
this module works without it. The class itself is built on first use and is then reachable as
``timeseries.sktime.SktimeForecaster`` (module ``__getattr__``), which is what pickling and sktime's
``check_estimator`` need.

The adapter passes the values to the wrapped forecaster with their timestamps when the index is a
``DatetimeIndex`` or ``PeriodIndex`` (so timestamp features such as AutoTimes' calendar embedding work through
sktime) and as plain arrays otherwise; it builds the output index with sktime's own
``ForecastingHorizon.to_absolute_index``, so every index type sktime supports (Datetime, Period, integer
and range indices) works regardless of what :mod:`timeseries.series` can extend.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from .base import Forecaster

INSTALL_HINT = "the sktime adapter needs sktime: pip install sktime"


@functools.lru_cache(maxsize=None)
def _adapter_class() -> type:
    """Build the adapter class (once): it must subclass sktime's BaseForecaster, hence the deferred import."""
    try:
        from sktime.forecasting.base import BaseForecaster
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err

    class SktimeForecaster(BaseForecaster):
        """sktime forecaster wrapping one of our :class:`~timeseries.base.Forecaster` instances.

        Parameters
        ----------
        forecaster : the forecaster to wrap (cloned at fit, so it is never modified).

        Univariate (``pd.Series``) and multivariate (``pd.DataFrame``) ``y``; out-of-sample relative horizons
        only (steps >= 1 after the cutoff); exogenous ``X`` is ignored. ``update(update_params=True)`` refits
        on all data seen so far; ``update_params=False`` only appends the new values as forecast context.
        The new values must follow the cutoff (they are appended, not merged by time).

        Fitted: ``forecaster_``, the fitted clone.

        Examples
        --------
        >>> from sktime.datasets import load_airline
        >>> from timeseries.arnet import ARNetForecaster
        >>> from timeseries.sktime import to_sktime
        >>> model = to_sktime(ARNetForecaster(n_lags=12)).fit(load_airline())
        >>> model.predict(fh=[1, 2, 3]).shape
        (3,)
        """

        _tags = {
            "authors": ["seqcore"],
            "capability:multivariate": True,
            "capability:exogenous": False,
            "capability:insample": False,
            "capability:pred_int": False,
            "capability:missing_values": False,
            "capability:update": True,
            "y_inner_mtype": ["pd.Series", "pd.DataFrame"],
            "X_inner_mtype": "pd.DataFrame",
            "requires-fh-in-fit": False,
            "fit_is_empty": False,
        }
        # The wrapped forecaster keeps all values seen as its context, so sktime need not store y as well.
        _config = {"remember_data": False}

        def __init__(self, forecaster: Forecaster) -> None:
            self.forecaster = forecaster
            super().__init__()
            # sktime creates these only when remember_data is on at construction; set_config may turn it on later.
            self._y = None
            self._X = None

        def _fit(self, y: Any, X: Any = None, fh: Any = None) -> "SktimeForecaster":
            self.forecaster_ = clone(self.forecaster).fit(_with_timestamps(y))
            self._seen = y.copy()
            self._columns = y.columns if isinstance(y, pd.DataFrame) else None
            self._name = y.name if isinstance(y, pd.Series) else None
            return self

        def _predict(self, fh: Any, X: Any = None) -> Any:
            steps = np.asarray(fh.to_relative(self.cutoff).to_numpy(), dtype=int)
            if (steps < 1).any():
                raise NotImplementedError(
                    f"{type(self.forecaster).__name__} forecasts only after the cutoff; got relative steps "
                    f"{steps.tolist()} (in-sample predictions are not supported)"
                )
            index = fh.to_absolute_index(self.cutoff)
            forecast = np.asarray(self.forecaster_.predict(fh=steps))
            if self._columns is not None:
                return pd.DataFrame(forecast.reshape(len(steps), -1), index=index, columns=self._columns)
            return pd.Series(forecast.reshape(len(steps)), index=index, name=self._name)

        def _update(self, y: Any, X: Any = None, update_params: bool = True) -> "SktimeForecaster":
            # sktime's update may pass rows already seen (update_predict does); the wrapped forecaster's context
            # takes only the steps after the last one it holds. A seen step with another value would be a revision
            # of the past, which the context cannot take: refused rather than dropped.
            old = y.index <= self._seen.index[-1]
            _check_unrevised(y[old], self._seen)
            y = y[~old]
            if len(y) == 0:
                return self
            self._seen = pd.concat([self._seen, y])
            self.forecaster_.update(_with_timestamps(y))
            if update_params:
                # The updated context holds every value seen so far: refit on all of it.
                context = self.forecaster_.context_[0]
                seen = context.values if context.index is None else pd.DataFrame(context.values, index=context.index)
                self.forecaster_ = clone(self.forecaster).fit(seen)
            return self

        @classmethod
        def get_test_params(cls, parameter_set: str = "default") -> list[dict[str, Any]]:
            """Small AR-Net forecasters (closed form, so the sktime checks run in seconds)."""
            from .arnet import ARNetForecaster

            return [
                {"forecaster": ARNetForecaster(n_lags=2)},
                {"forecaster": ARNetForecaster(n_lags=3, n_forecasts=2, solver="ridge", alpha=0.1)},
            ]

    # Pickle finds classes by module and qualified name; the module __getattr__ below resolves this one.
    SktimeForecaster.__module__ = __name__
    SktimeForecaster.__qualname__ = "SktimeForecaster"
    return SktimeForecaster


def _check_unrevised(overlap: pd.Series | pd.DataFrame, seen: pd.Series | pd.DataFrame) -> None:
    """Rows of an update at or before the last step seen must repeat the values seen there exactly."""
    if len(overlap) == 0:
        return
    missing = overlap.index.difference(seen.index)
    if len(missing):
        raise ValueError(f"update passes {len(missing)} steps inside the fitted range that fit never saw "
                         f"(first: {missing[0]!r}); refit instead")
    before = seen.loc[overlap.index].to_numpy(dtype=float)
    changed = ~np.isclose(overlap.to_numpy(dtype=float), before, rtol=0.0, atol=0.0, equal_nan=True)
    if changed.any():
        first = overlap.index[np.nonzero(changed.reshape(len(overlap), -1).any(axis=1))[0][0]]
        raise ValueError(f"update passes steps already seen with other values (first: {first!r}); "
                         "revising the past needs a refit")


def _with_timestamps(y: pd.Series | pd.DataFrame) -> Any:
    """``y`` as float values, keeping a time index (periods become their start times) and dropping others."""
    values = y.to_numpy(dtype=float)
    if isinstance(y.index, pd.PeriodIndex):
        return pd.DataFrame(values.reshape(len(y), -1), index=y.index.to_timestamp())
    if isinstance(y.index, pd.DatetimeIndex):
        return pd.DataFrame(values.reshape(len(y), -1), index=y.index)
    return values


def __getattr__(name: str) -> Any:
    """``SktimeForecaster`` is built lazily (it needs sktime); other names are missing as usual."""
    if name == "SktimeForecaster":
        return _adapter_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_sktime(forecaster: Forecaster) -> Any:
    """Wrap ``forecaster`` as an sktime ``BaseForecaster``; raises ``ImportError`` if sktime is not installed."""
    if not isinstance(forecaster, Forecaster):
        raise TypeError(f"to_sktime needs a timeseries Forecaster, got {type(forecaster).__name__}")
    return _adapter_class()(forecaster)
