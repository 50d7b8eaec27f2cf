"""AR-Net (Triebe, Laptev, Rajagopal 2019, "AR-Net: A simple Auto-Regressive Neural Network for time-series",
arXiv:1911.12436): an auto-regression written as a (by default one-layer, linear) network on ``n_lags`` past
values with ``n_forecasts`` direct outputs, fitted in closed form (least squares / ridge) or by SGD with the
paper's sparsity regularizer.

Regularizer (paper, section on sparse AR-Net) on the first-layer weights ``theta`` (``p`` of them)::

    R(theta) = (1/p) sum_i [2 / (1 + exp(-c1 |theta_i|^(1/c2))) - 1],   lambda(s) = c_lambda (1/s - 1)

for a target density ``s`` in (0, 1] (``s = 1``: no pull towards zero). The constants: ``c1 = c2 = 3`` and
``c_lambda = 0.02`` are those of the authors' reference implementation that became NeuralProphet's AR-Net
(``reg_func_ar`` uses ``exp(-3 |w|^(1/3))``; ``get_regularization_lambda`` uses ``0.02 * (1/s - 1)`` ramped
in linearly over the first epochs), read in ``neuralprophet/utils.py`` of the early (2020) NeuralProphet
(github.com/ourownstory/neural_prophet, which grew out of the AR-Net code), not copied. The paper's own value
of ``c_lambda`` could not be checked here; below it multiplies an MSE on standardised data.
"""
from __future__ import annotations

import contextlib
import functools
import numbers
from typing import Any, Iterator

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import ThreadpoolController

from seqcore.ops.validation import check_int

from .base import Forecaster
from .series import Series, as_float_array, check_number, location_scale


def lag_matrix(series: np.ndarray, n_lags: int, n_forecasts: int) -> tuple[np.ndarray, np.ndarray]:
    """Supervised windows of one series.

    ``series: (T,)`` or ``(T, C)``. Lags are joint over the channels (every output sees every channel's past),
    most recent first: ``X[n, k * C + c] = series[t_n - 1 - k, c]`` for lag ``k + 1``, and
    ``Y[n, h * C + c] = series[t_n + h, c]`` for step ``h + 1``, with ``t_n = n_lags + n``.

    Returns ``X: (N, n_lags * C)`` and ``Y: (N, n_forecasts * C)``, ``N = T - n_lags - n_forecasts + 1``
    (zero rows when the series is too short). Values are copied as given: NaN and inf propagate into the
    windows that contain them.
    """
    values = as_float_array(series, "series")
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"series must be (T,) or (T, C), got shape {values.shape}")
    n_lags, n_forecasts = check_int("n_lags", n_lags, 1), check_int("n_forecasts", n_forecasts, 1)
    length, channels = values.shape
    n_rows = length - n_lags - n_forecasts + 1
    if n_rows <= 0:
        return np.empty((0, n_lags * channels)), np.empty((0, n_forecasts * channels))
    windows = np.lib.stride_tricks.sliding_window_view(values, n_lags + n_forecasts, axis=0)[:n_rows]
    # windows: (N, C, n_lags + n_forecasts) in time order; lags are flipped so column block 0 is lag 1.
    past = windows[:, :, :n_lags][:, :, ::-1].transpose(0, 2, 1).reshape(n_rows, n_lags * channels)
    future = windows[:, :, n_lags:].transpose(0, 2, 1).reshape(n_rows, n_forecasts * channels)
    return np.ascontiguousarray(past), np.ascontiguousarray(future)


def stpe(w_hat: Any, w: Any) -> float:
    """Symmetric total percentage error of the paper: ``100 sum|w_hat - w| / sum(|w_hat| + |w|)`` (0 if both 0)."""
    w_hat, w = as_float_array(w_hat, "w_hat").ravel(), as_float_array(w, "w").ravel()
    if w_hat.shape != w.shape:
        raise ValueError(f"w_hat and w must have the same size, got {w_hat.size} and {w.size}")
    if not (np.isfinite(w_hat).all() and np.isfinite(w).all()):
        raise ValueError("w_hat and w must be finite (no NaN or inf)")
    total = np.abs(w_hat).sum() + np.abs(w).sum()
    return 0.0 if total == 0 else float(100.0 * np.abs(w_hat - w).sum() / total)


def sparsity_lambda(sparsity: float | None, c_lambda: float) -> float:
    """``lambda(s) = c_lambda (1/s - 1)``; 0 without a target sparsity."""
    return 0.0 if sparsity is None else c_lambda * (1.0 / sparsity - 1.0)


class LagRegressor(RegressorMixin, BaseEstimator):
    """The AR-Net model as a plain regressor: ``X: (N, F)`` (e.g. a :func:`lag_matrix`) to ``y: (N,)`` or
    ``(N, K)``.

    Parameters
    ----------
    hidden_layers : sizes of ReLU hidden layers (only with ``solver="sgd"``); ``()`` is the paper's linear AR-Net.
    solver : ``"lstsq"`` (exact least squares), ``"ridge"`` (exact, penalty ``alpha``) or ``"sgd"`` (torch, Adam
        on mini-batches with a cosine-decayed learning rate, optional sparsity regularizer).
    alpha : ridge penalty on the coefficients (not on the intercept).
    sparsity : target density ``s`` in (0, 1] for the regularizer (sgd only); ``None``: no regularizer.
    c1, c2, c_lambda : regularizer constants (see the module docstring).
    epochs, lr, batch_size : sgd training; the regularizer's weight is ramped linearly from 0 to
        ``lambda(s)`` over the first half of the steps so the data term first finds the large weights.
    random_state : seeds the sgd initialisation and shuffling.

    The sgd solver works on standardised ``X`` and ``y`` (so one learning rate fits all scales); for lag
    matrices of a stationary series every column has the same scale, so the regularizer acts on the AR
    coefficients up to one common factor, as in the paper. Predictions are computed on centred (sgd:
    standardised) data with the offsets added back last, so an affine map of each column of ``X`` and of ``y``
    maps the predictions the same way, to float64 rounding (``lstsq`` and ``sgd``, the latter with the same
    ``random_state``). Ridge is translation-equivariant only: its penalty ``alpha ||w||^2`` is in units of
    ``y^2``, so scaling ``y`` by ``a`` needs ``alpha`` scaled by ``a^2`` for the same fit. A column constant
    in training gets weight 0; a constant target is predicted as that constant.

    Fitted: ``coef_`` ``(F,)`` for 1-D ``y`` or ``(K, F)``, ``intercept_`` float or ``(K,)`` (linear models
    only; they give ``X @ coef_.T + intercept_`` on raw data), ``n_features_in_``, and the centring and
    scaling the layers work in: ``x_offset_``, ``x_scale_`` ``(F,)``, ``y_offset_``, ``y_scale_`` ``(K,)``.
    """

    def __init__(
        self,
        hidden_layers: tuple[int, ...] = (),
        solver: str = "lstsq",
        alpha: float = 1.0,
        sparsity: float | None = None,
        c1: float = 3.0,
        c2: float = 3.0,
        c_lambda: float = 0.02,
        epochs: int = 100,
        lr: float = 0.003,
        batch_size: int = 32,
        random_state: Any = None,
    ) -> None:
        self.hidden_layers = hidden_layers
        self.solver = solver
        self.alpha = alpha
        self.sparsity = sparsity
        self.c1 = c1
        self.c2 = c2
        self.c_lambda = c_lambda
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        """sklearn's tags: this regressor also takes 2-D ``y`` (one output per column)."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _check_params(self) -> tuple[int, ...]:
        if self.solver not in ("lstsq", "ridge", "sgd"):
            raise ValueError(f"solver must be 'lstsq', 'ridge' or 'sgd', got {self.solver!r}")
        if not isinstance(self.hidden_layers, (tuple, list)):
            raise ValueError(f"hidden_layers must be a tuple of positive sizes, got {self.hidden_layers!r}")
        hidden = tuple(check_int("hidden_layers[i]", h, 1) for h in self.hidden_layers)
        if hidden and self.solver != "sgd":
            raise ValueError(f"hidden layers need solver='sgd'; {self.solver!r} is closed-form for the linear model only")
        if self.sparsity is not None and not (isinstance(self.sparsity, numbers.Real) and 0 < self.sparsity <= 1):
            raise ValueError(f"sparsity must be None or in (0, 1], got {self.sparsity!r}")
        if self.sparsity is not None and self.solver != "sgd":
            raise ValueError("the sparsity regularizer needs solver='sgd'")
        if self.solver == "ridge":
            check_number("alpha", self.alpha, 0.0)
        if self.solver == "sgd":
            check_int("epochs", self.epochs, 1)
            check_int("batch_size", self.batch_size, 1)
            check_number("lr", self.lr, 0.0, strict=True)
        if self.sparsity is not None:
            check_number("c1", self.c1, 0.0, strict=True)
            check_number("c2", self.c2, 0.0, strict=True)
            check_number("c_lambda", self.c_lambda, 0.0)
        return hidden

    def fit(self, X: Any, y: Any) -> "LagRegressor":
        """Fit on ``X: (N, F)``, ``y: (N,)`` or ``(N, K)``; returns self."""
        hidden = self._check_params()
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64)
        self._single_output = y.ndim == 1
        targets = y[:, None] if y.ndim == 1 else y
        # The layers act on centred (sgd: standardised) data and the offsets are added back last: folding them
        # into the weights would make a forecast of y + 1e7 a difference of two numbers near 1e7, losing the
        # digits of y (forecasts of a * y + b must be a * forecast(y) + b).
        self.x_offset_, x_std = location_scale(X)
        self.y_offset_, y_std = location_scale(targets)
        if self.solver == "sgd":
            # A constant column carries no information: scale 1 keeps it at zero in training.
            self.x_scale_ = np.where(x_std > 0, x_std, 1.0)
            self.y_scale_ = y_std  # 0 for a constant target, whose prediction is then that constant exactly
            xs = (X - self.x_offset_) / self.x_scale_
            ys = (targets - self.y_offset_) / np.where(y_std > 0, y_std, 1.0)
            self.layers_ = _fit_sgd(self, xs, ys, hidden)
            # Weights of columns that were constant in training never got a gradient; drop their random init.
            self.layers_[0][0][:, x_std == 0] = 0.0
        else:
            self.x_scale_, self.y_scale_ = np.ones(X.shape[1]), np.ones(targets.shape[1])
            alpha = float(self.alpha) if self.solver == "ridge" else 0.0
            with _serial_blas():
                self.layers_ = [_fit_closed_form(X - self.x_offset_, targets - self.y_offset_, alpha)]
        if not hidden:
            weight, bias = self.layers_[0]
            coef = weight * self.y_scale_[:, None] / self.x_scale_[None, :]
            intercept = self.y_offset_ + self.y_scale_ * bias - coef @ self.x_offset_
            self.coef_ = coef[0] if self._single_output else coef
            self.intercept_ = float(intercept[0]) if self._single_output else intercept
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``X: (N, F)`` -> ``(N,)`` or ``(N, K)`` float64."""
        check_is_fitted(self)
        out = (validate_data(self, X, reset=False, dtype=np.float64) - self.x_offset_) / self.x_scale_
        # numpy float64 forward (not torch) keeps predictions exactly row-independent and picklable.
        with _serial_blas():
            for i, (weight, bias) in enumerate(self.layers_):
                out = out @ weight.T + bias
                if i < len(self.layers_) - 1:
                    out = np.maximum(out, 0.0)
        out = out * self.y_scale_ + self.y_offset_
        return out[:, 0] if self._single_output else out


@functools.cache
def _blas_controller() -> ThreadpoolController:
    # Built once: inspecting the loaded libraries costs about 0.3 ms, a limit on a known controller 0.02 ms.
    return ThreadpoolController()


@contextlib.contextmanager
def _serial_blas() -> Iterator[None]:
    """One BLAS thread for the numpy linear algebra of the fit and the forecast.

    OpenBLAS splits gemm and LAPACK's blocked factorisations between threads in a way that changes the rounding
    (1e-16 relative on a Haswell kernel), so forecasts would depend on the thread count. The matrices here are
    (windows, lags): one thread costs little, and the limit is scoped to these calls.
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


def _fit_closed_form(xc: np.ndarray, yc: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Least squares (``alpha = 0``, minimum-norm when rank-deficient) or ridge on centred data.

    ``xc: (N, F)``, ``yc: (N, K)``, both centred -> ``weight: (K, F)``, ``bias: (K,)`` (zero: the data are
    centred).
    """
    if alpha > 0:
        gram = xc.T @ xc + alpha * np.eye(xc.shape[1])
        weight = np.linalg.solve(gram, xc.T @ yc)
    else:
        weight = np.linalg.lstsq(xc, yc, rcond=None)[0]
    return weight.T, np.zeros(yc.shape[1])


def _fit_sgd(
    model: LagRegressor, xs: np.ndarray, ys: np.ndarray, hidden: tuple[int, ...]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mini-batch Adam on the MSE plus the ramped sparsity regularizer, in float32 on standardised data.

    ``xs: (N, F)``, ``ys: (N, K)`` standardised -> ``[(weight (out, in), bias (out,))]`` per layer as float64,
    acting on standardised inputs and giving standardised outputs.
    """
    seed = int(check_random_state(model.random_state).randint(np.iinfo(np.int32).max))
    generator = torch.Generator().manual_seed(seed)
    xs = torch.as_tensor(xs, dtype=torch.float32)
    ys = torch.as_tensor(ys, dtype=torch.float32)

    sizes = (xs.shape[1], *hidden, ys.shape[1])
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)  # the usual uniform fan-in initialisation, drawn from our generator
        weight = (torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound
        bias = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
        params += [weight.requires_grad_(), bias.requires_grad_()]

    n_rows = xs.shape[0]
    batch = min(int(model.batch_size), n_rows)
    steps_per_epoch = -(-n_rows // batch)
    total_steps = int(model.epochs) * steps_per_epoch
    optimizer = torch.optim.Adam(params, lr=model.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    lam = sparsity_lambda(model.sparsity, model.c_lambda)
    ramp_steps = max(total_steps // 2, 1)
    step = 0
    for _ in range(int(model.epochs)):
        order = torch.randperm(n_rows, generator=generator)
        for start in range(0, n_rows, batch):
            rows = order[start:start + batch]
            out = xs[rows]
            for i in range(0, len(params), 2):
                out = out @ params[i].T + params[i + 1]
                if i < len(params) - 2:
                    out = torch.relu(out)
            loss = torch.mean((out - ys[rows]) ** 2)
            if lam > 0:
                # 1e-12 keeps the gradient of |w|^(1/c2) finite at w = 0.
                magnitude = (params[0].abs() + 1e-12) ** (1.0 / model.c2)
                reg = torch.mean(2.0 / (1.0 + torch.exp(-model.c1 * magnitude)) - 1.0)
                loss = loss + lam * min(1.0, step / ramp_steps) * reg
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1

    return [(w.detach().double().numpy(), b.detach().double().numpy()) for w, b in zip(params[::2], params[1::2])]




class ARNetForecaster(Forecaster):
    """AR-Net forecaster: one global :class:`LagRegressor` on the lag matrices of every fitted series.

    Forecasts steps ``1..n_forecasts`` directly from the last ``n_lags`` values and rolls out recursively
    beyond (the predicted block is appended to the context). Multichannel series use joint lags (see
    :func:`lag_matrix`).

    Exogenous ``X: (T, F)`` are *future-known regressors* (calendar flags, planned prices, weather forecasts):
    each forecast block also sees ``X`` at its ``n_forecasts`` target steps, as extra linear inputs (NeuralProphet's
    "future regressors"). ``predict`` then needs ``X`` for the steps ahead, whole blocks of ``n_forecasts`` rows
    (``ceil(h / n_forecasts) * n_forecasts``), since every output of a block reads all of the block's rows.
    Past values of ``X`` are not used.

    Fitting needs ``n_lags + n_forecasts`` steps per series; forecasting needs ``n_lags`` (that is
    :meth:`min_context_length`).

    Fitted: ``regressor_``; for a linear model ``coef_`` ``(n_forecasts, n_lags)`` (univariate; otherwise
    ``(n_forecasts, C_out, n_lags, C_in)``) with lag 1 first, ``intercept_`` ``(n_forecasts,)`` (or
    ``(n_forecasts, C)``) and, with ``X``, ``exog_coef_`` ``(n_forecasts, n_forecasts, F)`` (output step, step of
    ``X``, feature; ``(n_forecasts, C, n_forecasts, F)`` for several channels).
    """

    def __init__(
        self,
        n_lags: int = 10,
        n_forecasts: int = 1,
        hidden_layers: tuple[int, ...] = (),
        solver: str = "lstsq",
        alpha: float = 1.0,
        sparsity: float | None = None,
        c1: float = 3.0,
        c2: float = 3.0,
        c_lambda: float = 0.02,
        epochs: int = 100,
        lr: float = 0.003,
        batch_size: int = 32,
        missing: str = "raise",
        random_state: Any = None,
    ) -> None:
        self.n_lags = n_lags
        self.n_forecasts = n_forecasts
        self.hidden_layers = hidden_layers
        self.solver = solver
        self.alpha = alpha
        self.sparsity = sparsity
        self.c1 = c1
        self.c2 = c2
        self.c_lambda = c_lambda
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.missing = missing
        self.random_state = random_state

    def min_length(self) -> int:
        """Shortest series to fit on: ``n_lags + n_forecasts`` (one lag window and its targets)."""
        return int(self.n_lags) + int(self.n_forecasts)

    def min_context_length(self) -> int:
        """Shortest context a forecast starts from: ``n_lags``."""
        return int(self.n_lags)

    def _exog_rows(self, horizon: int) -> int:
        """Future ``X`` rows a forecast reads: whole blocks of ``n_forecasts``."""
        return -(-horizon // int(self.n_forecasts)) * int(self.n_forecasts)

    def _check_params(self) -> None:
        check_int("n_lags", self.n_lags, 1)
        check_int("n_forecasts", self.n_forecasts, 1)

    def _fit(self, series: list[Series], exog: list[np.ndarray] | None) -> None:
        pairs = [lag_matrix(s.values, self.n_lags, self.n_forecasts) for s in series]
        X = np.concatenate([p[0] for p in pairs])
        Y = np.concatenate([p[1] for p in pairs])
        if exog is not None:
            # The "future" half of lag_matrix on X lines up X at each row's target steps, step-major.
            future = [lag_matrix(x, self.n_lags, self.n_forecasts)[1] for x in exog]
            X = np.concatenate([X, np.concatenate(future)], axis=1)
        self.regressor_ = LagRegressor(
            hidden_layers=self.hidden_layers, solver=self.solver, alpha=self.alpha, sparsity=self.sparsity,
            c1=self.c1, c2=self.c2, c_lambda=self.c_lambda, epochs=self.epochs, lr=self.lr,
            batch_size=self.batch_size, random_state=self.random_state,
        ).fit(X, Y)
        if not tuple(self.hidden_layers):
            channels, n_lag_columns = series[0].n_channels, int(self.n_lags) * series[0].n_channels
            weight = self.regressor_.coef_
            coef = weight[:, :n_lag_columns].reshape(self.n_forecasts, channels, self.n_lags, channels)
            intercept = self.regressor_.intercept_.reshape(self.n_forecasts, channels)
            self.coef_ = coef[:, 0, :, 0] if channels == 1 else coef
            self.intercept_ = intercept[:, 0] if channels == 1 else intercept
            if exog is not None:
                exog_coef = weight[:, n_lag_columns:].reshape(self.n_forecasts, channels, self.n_forecasts, -1)
                self.exog_coef_ = exog_coef[:, 0] if channels == 1 else exog_coef

    def _forecast(self, context: Series, horizon: int, exog_future: np.ndarray | None) -> np.ndarray:
        """``context.values: (T, C)`` with ``T >= n_lags`` -> ``(horizon, C)``: direct blocks of ``n_forecasts``,
        each fed back as context for the next; ``exog_future: (blocks * n_forecasts, F)`` or ``None``."""
        lags, steps = int(self.n_lags), int(self.n_forecasts)
        channels = context.n_channels
        history = context.values[-lags:]
        blocks = []
        for k in range(-(-horizon // steps)):
            x = history[::-1].reshape(1, lags * channels)
            if exog_future is not None:
                x = np.concatenate([x, exog_future[k * steps:(k + 1) * steps].reshape(1, -1)], axis=1)
            block = self.regressor_.predict(x).reshape(steps, channels)
            blocks.append(block)
            history = np.concatenate([history, block])[-lags:]
        return np.concatenate(blocks)[:horizon]

    def plot_coefficients(self, ax: Any = None) -> Any:
        """Stem-style plot of ``coef_`` against the lag, one line per forecast step (and channel pair)."""
        check_is_fitted(self)
        if not hasattr(self, "coef_"):
            raise AttributeError("coefficients are only defined for the linear model (hidden_layers=())")
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots()
        lags = np.arange(1, int(self.n_lags) + 1)
        coef = self.coef_ if self.coef_.ndim == 2 else self.coef_.transpose(0, 1, 3, 2)
        for h in range(coef.shape[0]):
            if coef.ndim == 2:
                ax.plot(lags, coef[h], marker="o", label=f"t+{h + 1}")
            else:
                for c_out in range(coef.shape[1]):
                    for c_in in range(coef.shape[2]):
                        ax.plot(lags, coef[h, c_out, c_in], marker="o", label=f"t+{h + 1}: {c_out} <- {c_in}")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel("lag")
        ax.set_ylabel("coefficient")
        ax.set_title("AR-Net coefficients")
        ax.legend()
        return ax
