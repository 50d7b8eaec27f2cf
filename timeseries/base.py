"""The estimator contract every forecaster follows."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted

from .series import Series, check_exog, forecast_steps, to_series, to_series_list


class Forecaster(BaseEstimator):
    """Base of the forecasters: ``fit(y, X=None, fh=None) -> self``, ``predict(fh=None, X=None, y=None)``,
    ``update(y, X=None)`` and ``score(y, X=None, fh=None) -> float`` (R^2 of rolling forecasts, higher is better).

    ``y`` is a 1-D ``(T,)`` or 2-D ``(T, C)`` array, a pandas Series or DataFrame (forecasts keep the type and
    extend the index), or a list of those (one global model over all of them). ``fh`` is an int ``h`` (steps
    1..h) or an array of relative steps. ``__init__`` only stores parameters; fitted attributes end in ``_``.

    Subclasses set ``missing`` and ``random_state`` parameters, define :meth:`min_length` (and
    :meth:`min_context_length` when forecasting needs less history than fitting), validate their parameters in
    ``_check_params`` (called first by :meth:`fit`) and implement
    ``_fit(series: list[Series], exog: list[(T_i, F)] | None)`` and
    ``_forecast(context: Series, horizon: int, exog_future: (horizon, F) | None, **options) -> (horizon, C)``,
    where a :class:`~timeseries.series.Series` holds ``values: (T, C)`` and the time ``index`` (or ``None``).
    """

    missing: str = "raise"

    def _check_params(self) -> None:
        """Validate the constructor parameters (scikit-learn checks them in ``fit``, not in ``__init__``)."""

    def min_length(self) -> int:
        """Shortest series the model can be fitted on."""
        return 1

    def min_context_length(self) -> int:
        """Shortest context a forecast can start from (default: :meth:`min_length`)."""
        return self.min_length()

    def _check_lengths(self, series: list[Series], what: str, need: int) -> None:
        for i, s in enumerate(series):
            if s.values.shape[0] < need:
                label = what if len(series) == 1 else f"{what}[{i}]"
                raise ValueError(f"{label} has {s.values.shape[0]} time steps, fewer than the {need} this model needs")

    def fit(self, y: Any, X: Any = None, fh: Any = None) -> "Forecaster":
        """Fit on one series or a list of series (with optional exogenous ``X`` aligned in time); returns self.

        The target comes first, unlike scikit-learn's ``fit(X, y)``: a 2-D ``y`` ``(T, C)`` with a 1-D ``X``
        ``(T,)`` is refused as the likely swapped call (pass one exogenous variable as ``(T, 1)``).
        """
        self._check_params()
        _check_argument_order(y, X)
        series, is_list = to_series_list(y, missing=self.missing)
        self._check_lengths(series, "y", self.min_length())
        exog = check_exog(X, series)
        steps = None if fh is None else forecast_steps(fh)
        self._fit(series, exog)
        # Fitted attributes are set only once _fit succeeded, so a failed fit never looks fitted.
        self.is_list_, self.fh_, self.n_channels_ = is_list, steps, series[0].n_channels
        self.n_exog_ = None if exog is None else exog[0].shape[1]
        self.context_ = series
        return self

    def update(self, y: Any, X: Any = None) -> "Forecaster":
        """Append new observations to the stored context (no refit): forecasts then start after them.

        ``X``, when the model was fitted with exogenous variables, is checked against the new rows; the
        forecasters use exogenous values of the forecast steps only, so past ``X`` is not stored.
        """
        check_is_fitted(self)
        new, _ = to_series_list(y, missing=self.missing)
        if X is not None and self.n_exog_ is None:
            raise ValueError("X was given to update but the model was fitted without exogenous variables")
        if X is not None:
            for array in check_exog(X, new):
                if array.shape[1] != self.n_exog_:
                    raise ValueError(f"X for update has {array.shape[1]} columns, the model was fitted with {self.n_exog_}")
        self._check_continuation(new, "update")
        self.context_ = [_extend(old, piece) for old, piece in zip(self.context_, new)]
        return self

    def _check_continuation(self, new: list[Series], what: str) -> None:
        """``new`` holds one piece per fitted series, each able to follow it (channels, kind of index)."""
        if len(new) != len(self.context_):
            raise ValueError(f"{what} needs one new piece per fitted series ({len(self.context_)}), got {len(new)}")
        for old, piece in zip(self.context_, new):
            if piece.n_channels != old.n_channels:
                raise ValueError(f"{what} has {piece.n_channels} channels, the model was fitted on {old.n_channels}")
            if (old.index is None) != (piece.index is None):
                raise ValueError(f"{what} must pass the same kind of series as fit (both with a time index or neither)")
            if old.index is not None:
                index = old.index.append(piece.index)
                if not (index.is_monotonic_increasing and not index.has_duplicates):
                    raise ValueError(f"{what}'s time index must continue after the fitted series without overlap")

    def predict(self, fh: Any = None, X: Any = None, y: Any = None) -> Any:
        """Forecast ``fh`` steps after the end of the fitted series, or after ``y`` when given (a new context)."""
        return self._predict(fh, X, y)

    def _predict(self, fh: Any, X: Any, y: Any, **options: Any) -> Any:
        """:meth:`predict`, with ``options`` passed on to :meth:`_forecast` (e.g. prompts for in-context use)."""
        check_is_fitted(self)
        steps = forecast_steps(self.fh_ if fh is None else fh)
        if y is None:
            contexts, as_list = self.context_, self.is_list_
        else:
            contexts, as_list = to_series_list(y, what="y", missing=self.missing)
            self._check_lengths(contexts, "y", self.min_context_length())
            if contexts[0].n_channels != self.n_channels_:
                raise ValueError(f"y has {contexts[0].n_channels} channels, the model was fitted on {self.n_channels_}")
        horizon = int(steps.max())
        exog = self._future_exog(X, len(contexts), self._exog_rows(horizon))
        forecasts = [
            context.wrap(self._forecast(context, horizon, None if exog is None else exog[i], **options)[steps - 1], steps)
            for i, context in enumerate(contexts)
        ]
        return forecasts if as_list else forecasts[0]

    def score(self, y: Any, X: Any = None, fh: Any = None) -> float:
        """R^2 of rolling-origin forecasts of ``y``, the observations that follow the fitted (or updated) series.

        Higher is better, as scikit-learn expects of ``score`` (``GridSearchCV`` and ``cross_val_score`` use it
        when no ``scoring`` is given), and it is the coefficient of determination of scikit-learn's regressors:
        1 for perfect forecasts, 0 for forecasts as good as the mean of ``y`` itself (a value no forecaster
        knows in advance), negative when worse. Being free of the units of ``y`` it compares folds and
        channels at any scale; for a forecaster that is affine-equivariant (``docs/timeseries.md``, "Scale")
        it does not change when the fitted series and ``y`` are both mapped to ``a * y + b``.

        ``y`` continues the stored context: from every origin ``o = 0, 1, ...`` (the context plus the first
        ``o`` rows of ``y``, the true values only) the model forecasts the steps of ``fh`` that fall inside
        ``y``, exactly as ``predict(fh, y=<context + y[:o]>)`` would, without refitting; every forecast is
        paired with the row of ``y`` it forecasts, and R^2 is taken over all pairs per channel
        (``sklearn.metrics.r2_score``, averaged uniformly over the channels). So with ``fh=1`` (the default
        when ``fit`` got no ``fh``) it scores one-step-ahead forecasts through ``y``; ``fh`` given to ``fit``
        (``GridSearchCV(...).fit(y, fh=h)`` passes it on) is used when ``score`` gets none.

        In scikit-learn's splitters the test fold of ``TimeSeriesSplit`` (``gap=0``) starts right after its
        training fold, which is what this needs. A ``y`` with a time index must start at the step after the
        context's last one (a gap is refused); for plain arrays that cannot be checked: a splitter whose test
        fold does not follow the training fold (``KFold``, ``TimeSeriesSplit(gap > 0)``) gives a number that
        means nothing.

        ``y`` is one series per fitted series (a list for a model fitted on a list; the pairs of all of them
        are pooled). With exogenous variables, ``X`` holds their values at the rows of ``y``; origins whose
        forecast would read ``X`` past the end of ``y`` are left out. With ``missing="interpolate"`` the
        filled-in values serve as context but are never scored: pairs whose true row had a missing value are
        left out. Forecasts that are not finite give ``-inf``. The cost is one forecast per row of ``y``.
        """
        check_is_fitted(self)
        steps = forecast_steps(fh if fh is not None else 1 if self.fh_ is None else self.fh_)
        pieces, _ = to_series_list(y, missing=self.missing)
        self._check_continuation(pieces, "score")
        for old, piece in zip(self.context_, pieces):
            if old.index is not None and piece.index[0] != (expected := old.future_index(np.array([1]))[0]):
                raise ValueError(
                    f"score's y must start right after the fitted series, at {expected}, got {piece.index[0]} "
                    "(a gap between training and test fold cannot be scored)"
                )
        if self.n_exog_ is None and X is not None:
            raise ValueError("X was given to score but the model was fitted without exogenous variables")
        if self.n_exog_ is not None and X is None:
            raise ValueError("the model was fitted with exogenous X: score needs X at the rows of y")
        exog = check_exog(X, pieces)
        if exog is not None and exog[0].shape[1] != self.n_exog_:
            raise ValueError(f"X for score has {exog[0].shape[1]} columns, the model was fitted with {self.n_exog_}")
        forecasts, truths = [], []
        for i, (old, piece) in enumerate(zip(self.context_, pieces)):
            length = piece.values.shape[0]
            scored = np.ones(length, bool) if piece.filled is None else ~piece.filled
            for origin in range(length - int(steps[0]) + 1):
                inside = steps[origin + steps <= length]
                ahead = inside[scored[origin + inside - 1]]
                if ahead.size == 0:
                    continue
                horizon = int(ahead.max())
                future = None
                if exog is not None:
                    rows = self._exog_rows(horizon)
                    if origin + rows > length:
                        continue
                    future = exog[i][origin:origin + rows]
                seen = Series(piece.values[:origin], piece.kind, None if piece.index is None else piece.index[:origin])
                context = _extend(old, seen)
                forecasts.append(self._forecast(context, horizon, future)[ahead - 1])
                truths.append(piece.values[origin + ahead - 1])
        if sum(len(t) for t in truths) < 2:
            raise ValueError(
                f"score needs at least 2 forecasts inside y to compare, got {sum(len(t) for t in truths)}: "
                f"y is too short for fh steps {steps.tolist()}"
            )
        forecast, truth = np.concatenate(forecasts), np.concatenate(truths)
        if not np.isfinite(forecast).all():
            return -math.inf
        return float(r2_score(truth, forecast))

    def _exog_rows(self, horizon: int) -> int:
        """Rows of future ``X`` that a forecast of ``horizon`` steps reads (default: ``horizon``)."""
        return horizon

    def _future_exog(self, x: Any, n_series: int, horizon: int) -> list[np.ndarray] | None:
        if self.n_exog_ is None:
            if x is not None:
                raise ValueError("X was given to predict but the model was fitted without exogenous variables")
            return None
        if x is None:
            raise ValueError(f"the model was fitted with exogenous X: predict needs X for the next {horizon} steps")
        items = x if isinstance(x, (list, tuple)) and n_series > 1 else [x]
        if len(items) != n_series:
            raise ValueError(f"X for predict must hold one entry per series ({n_series}), got {len(items)}")
        arrays = [to_series(item, what="X").values for item in items]
        for array in arrays:
            if array.shape[0] < horizon or array.shape[1] != self.n_exog_:
                raise ValueError(f"X for predict must have at least {horizon} rows and {self.n_exog_} columns, got {array.shape}")
        return [a[:horizon] for a in arrays]

    def _fit(self, series: list[Series], exog: list[np.ndarray] | None) -> None:
        raise NotImplementedError

    def _forecast(self, context: Series, horizon: int, exog_future: np.ndarray | None, **options: Any) -> np.ndarray:
        raise NotImplementedError


def _extend(old: Series, piece: Series) -> Series:
    """``old`` followed by ``piece`` (checked by :meth:`Forecaster._check_continuation`)."""
    index = None if old.index is None else old.index.append(piece.index)
    return Series(np.concatenate([old.values, piece.values]), old.kind, index, old.columns, old.name)


def _check_argument_order(y: Any, x: Any) -> None:
    """Refuse ``fit(features (T, F), target (T,))``, scikit-learn's order, which would otherwise be read as an
    ``F``-channel target with one exogenous variable and fail only at ``predict`` (which then wants ``X``)."""
    y_ndim, x_ndim = getattr(y, "ndim", None), getattr(x, "ndim", None)
    if y_ndim == 2 and x_ndim == 1 and len(y) == len(x):
        raise ValueError(
            f"fit(y, X) takes the target series first: this call reads a {tuple(y.shape)} array as a "
            f"{y.shape[1]}-channel target y and the 1-D array as one exogenous variable X. If you meant "
            "scikit-learn's fit(X, y) order, call fit(y=target, X=features) instead; if you do mean one "
            "exogenous variable for a multichannel target, pass X with shape (T, 1)."
        )
