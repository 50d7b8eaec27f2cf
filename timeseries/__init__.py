"""Time-series forecasters with a scikit-learn API, built on seqcore.

- :class:`Forecaster`: the contract (``fit(y, X=None, fh=None)``, ``predict(fh, X=None, y=None)``, ``update``).
- :class:`ARNetForecaster` and :class:`LagRegressor`: AR-Net (Triebe et al. 2019).
- :class:`AutoTimesForecaster`: AutoTimes (Liu et al. 2024) on a seqcore linear-recurrence backbone.
- :mod:`timeseries.data`: CSV, ETTh1, sunspots and co2 loaders; :mod:`timeseries.sktime`: the sktime adapter.
- :mod:`timeseries.dynamics`: dynamical-systems reconstruction with PLRNNs trained by generalized teacher forcing.
"""
# Named before any import below fails on a bare module name (docs/install.md).
from seqcore.extras import require_extra

require_extra("timeseries")

from .arnet import ARNetForecaster, LagRegressor, lag_matrix, stpe
from .autotimes import AutoTimesForecaster
from .base import Forecaster

__all__ = ["Forecaster", "ARNetForecaster", "LagRegressor", "AutoTimesForecaster", "lag_matrix", "stpe"]
