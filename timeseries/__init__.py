"""Time-series forecasters with a scikit-learn API, built on seqcore.

- :class:`Forecaster`: the contract (``fit(y, X=None, fh=None)``, ``predict(fh, X=None, y=None)``, ``update``).
- :class:`ARNetForecaster` and :class:`LagRegressor`: AR-Net (Triebe et al. 2019).
- :class:`AutoTimesForecaster`: AutoTimes (Liu et al. 2024) on a seqcore linear-recurrence backbone.
- :mod:`timeseries.data`: CSV, ETTh1, sunspots and co2 loaders; :mod:`timeseries.sktime`: the sktime adapter.
- :mod:`timeseries.dynamics`: dynamical-systems reconstruction with PLRNNs trained by generalized teacher forcing.

The forecasters are imported on first access (PEP 562), so ``import timeseries.dynamics`` does not pay for
AutoTimes, ``seqcore.nn`` and AR-Net, which it does not use; ``from timeseries import AutoTimesForecaster`` works
as before.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Named before any import below fails on a bare module name (docs/install.md). It only looks modules up
# (importlib.util.find_spec), so it costs nothing of the lazy imports below.
from seqcore.extras import require_extra

require_extra("timeseries")

if TYPE_CHECKING:
    from .arnet import ARNetForecaster, LagRegressor, lag_matrix, stpe
    from .autotimes import AutoTimesForecaster
    from .base import Forecaster

__all__ = ["Forecaster", "ARNetForecaster", "LagRegressor", "AutoTimesForecaster", "lag_matrix", "stpe"]

# Public name -> the submodule that defines it.
_SOURCES = {
    "Forecaster": "base",
    "ARNetForecaster": "arnet",
    "LagRegressor": "arnet",
    "lag_matrix": "arnet",
    "stpe": "arnet",
    "AutoTimesForecaster": "autotimes",
}


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_SOURCES[name]}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
