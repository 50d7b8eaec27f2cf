"""A scikit-learn style estimator for dynamical-systems reconstruction with GTF-trained PLRNNs.

:class:`DynamicsReconstructor` wraps model construction (:mod:`.models`, :mod:`.observation`), training
(:func:`.training.train_gtf`), generation and the evaluation protocol of the Julia reference
``DurstewitzLab/GTF-shPLRNN`` (``evaluate_run`` in ``src/evaluation.jl``, ``generate`` in
``src/models/model_utilities.jl``):

* generation starts from ``z_1 = init_state(x_1)`` and returns ``T`` observations whose first row is the
  read-out of ``z_1`` itself (for the identity observation that is ``x_1``); no noise is added, so it is a
  deterministic function of the parameters;
* ``dynamics_measures(X_test)`` generates ``floor(1.25 T)`` steps from the first *test* sample, discards the
  first ``floor(0.25 T)`` as a transient (leaving exactly ``T`` rows) and compares them with the whole test
  series by ``D_stsp`` (30 bins per axis for ``N < 6``, GMM with variance 1 otherwise) and ``D_H`` (smoothing
  20); with external inputs no transient is discarded, as in the Julia code, because the inputs fix the time
  axis; ``PE(n)`` (``n = 20``) is the mean squared ``n``-step-ahead error from every test state;
* ``score(X_test)`` is ``-D_stsp`` of that trajectory: one float, higher is better, for scikit-learn's
  model selection.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import Tensor, nn

from seqcore.ops.validation import check_bool, check_int

from ..series import as_float_array, location_scale
from . import analysis
from .metrics import power_spectrum_error, prediction_error, state_space_divergence
from .models import ALRNN, DendriticPLRNN, DiagonalLinearRNN, LatentModel, PLRNN, ShallowPLRNN
from .observation import AffineObservation, IdentityObservation
from .training import train_gtf

__all__ = ["DynamicsReconstructor", "MODEL_NAMES", "OBSERVATION_NAMES"]

MODEL_NAMES = ("clipped_shallow", "shallow", "plrnn", "dendritic", "clipped_dendritic", "alrnn", "linear")
OBSERVATION_NAMES = ("identity", "affine")
# evaluate_run: generate 1.25 T steps and drop the first 0.25 T as the transient
_TRANSIENT_FRACTION = 0.25


class DynamicsReconstructor(BaseEstimator):
    """Reconstruct a dynamical system from a ``(T, N)`` time series with a PLRNN trained by (G)TF.

    Parameters
    ----------
    model : str, default "clipped_shallow"
        Latent model: ``"clipped_shallow"`` (the paper's clipped shPLRNN), ``"shallow"``, ``"plrnn"``,
        ``"dendritic"``, ``"clipped_dendritic"``, ``"alrnn"`` or ``"linear"`` (elementwise linear baseline).
    latent_dim : int, optional
        ``M``; default the number of observed dimensions ``N``.
    hidden_dim : int, default 50
        ``H`` of the shallow PLRNNs.
    n_bases : int, default 20
        Basis functions of the dendritic PLRNNs.
    n_nonlinear : int, optional
        ReLU units ``P`` of the ALRNN; default ``ceil(M / 2)``.
    observation : {"identity", "affine"}, default "identity"
        Identity read-out of the first ``N`` latents (needs ``M >= N``) or ``x = B z``.
    forcing : {"gtf", "sparse", "none"}, default "gtf"
        Generalized teacher forcing, sparse (interval) teacher forcing, or plain BPTT.
    alpha : float or "adaptive", default 0.1
        GTF strength; ``"adaptive"`` starts at 1 and anneals (``defaults.json``).
    alpha_method : str, optional
        See :data:`.training.ALPHA_METHODS`; default ``"constant"`` for a float ``alpha`` and
        ``"product_upper_bound"`` for ``"adaptive"``.
    alpha_decay : float, default 0.999
    alpha_update_interval : int, default 5
    interval : int, default 16
        Sparse teacher-forcing interval.
    partial : bool, default False
        Force only the observed latents.
    epochs : int, default 5000
    batches_per_epoch : int, default 50
    sequence_length : int, default 200
    batch_size : int, default 16
    lr_start, lr_end : float, default 1e-3, 1e-6
    lat_reg, obs_reg : float, default 0.0
        Weights of the latent and observation model regularizers.
    gradient_clip : float, default 0.0
        Per-tensor gradient norm bound (0: off).
    standardize : bool, default False
        Z-score the training data (statistics over all series) and work on that scale internally; outputs of
        :meth:`generate`, :meth:`predict` and :meth:`dynamics_measures` stay in the original units. Off by
        default because the Julia code uses the data as given (the paper's files are already z-scored). With
        it, fitting on ``a * X + b`` (per dimension, same ``random_state``) generates ``a * generate(x0) + b``
        from ``a * x0 + b``, to float rounding; a constant dimension is refused. Without it the model is not
        affine-equivariant (the PLRNN's thresholds and initialisation are in data units), and data with a
        per-dimension std outside [0.1, 10] or a mean beyond +-10 get a UserWarning naming ``standardize=True``.
    max_time : float, optional
        Wall-clock budget in seconds; training stops after the first epoch that ends past it, with the
        learning rate annealed over the budget (see :func:`.training.train_gtf`).
    checkpoint_dir : path, optional
        Passed to :func:`.training.train_gtf`.
    verbose : bool, default False
        Show a tqdm bar over epochs.
    random_state : int, RandomState or None
        Seeds the initialization (inside a forked torch RNG, so the global state is untouched) and the
        batch sampler; two fits with the same integer give identical models.

    Attributes
    ----------
    model_ : LatentModel
    observation_ : IdentityObservation or AffineObservation
    history_ : dict of lists
        Per-epoch ``"epoch"``, ``"loss"``, ``"alpha"``, ``"lr"``.
    alpha_ : float
        GTF strength after the last epoch.
    n_features_in_ : int
        ``N``.
    n_inputs_ : int
        ``K`` (0 without external inputs).
    n_epochs_, n_steps_ : int
        Epochs and gradient steps done (fewer than asked when ``max_time`` stopped training).
    fit_time_ : float
        Training wall time in seconds.
    mean_, scale_ : ndarray of shape (N,)
        Standardization statistics (zeros and ones when ``standardize=False``).
    x0_ : ndarray of shape (N,)
        First training sample, the default initial condition of :meth:`generate`.
    """

    def __init__(
        self,
        model: str = "clipped_shallow",
        latent_dim: int | None = None,
        hidden_dim: int = 50,
        n_bases: int = 20,
        n_nonlinear: int | None = None,
        observation: str = "identity",
        forcing: str = "gtf",
        alpha: float | str = 0.1,
        alpha_method: str | None = None,
        alpha_decay: float = 0.999,
        alpha_update_interval: int = 5,
        interval: int = 16,
        partial: bool = False,
        epochs: int = 5000,
        batches_per_epoch: int = 50,
        sequence_length: int = 200,
        batch_size: int = 16,
        lr_start: float = 1e-3,
        lr_end: float = 1e-6,
        lat_reg: float = 0.0,
        obs_reg: float = 0.0,
        gradient_clip: float = 0.0,
        standardize: bool = False,
        max_time: float | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        verbose: bool = False,
        random_state: Any = None,
    ) -> None:
        self.model = model
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.n_bases = n_bases
        self.n_nonlinear = n_nonlinear
        self.observation = observation
        self.forcing = forcing
        self.alpha = alpha
        self.alpha_method = alpha_method
        self.alpha_decay = alpha_decay
        self.alpha_update_interval = alpha_update_interval
        self.interval = interval
        self.partial = partial
        self.epochs = epochs
        self.batches_per_epoch = batches_per_epoch
        self.sequence_length = sequence_length
        self.batch_size = batch_size
        self.lr_start = lr_start
        self.lr_end = lr_end
        self.lat_reg = lat_reg
        self.obs_reg = obs_reg
        self.gradient_clip = gradient_clip
        self.standardize = standardize
        self.max_time = max_time
        self.checkpoint_dir = checkpoint_dir
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ construction

    def _build(self, n_obs: int, n_inputs: int) -> tuple[LatentModel, nn.Module]:
        m = n_obs if self.latent_dim is None else self.latent_dim
        name = self.model
        if name in ("clipped_shallow", "shallow"):
            model: LatentModel = ShallowPLRNN(m, self.hidden_dim, n_inputs, clipped=name == "clipped_shallow")
        elif name in ("dendritic", "clipped_dendritic"):
            model = DendriticPLRNN(m, self.n_bases, n_inputs, clipped=name == "clipped_dendritic")
        elif name == "plrnn":
            model = PLRNN(m, n_inputs)
        elif name == "alrnn":
            p = math.ceil(m / 2) if self.n_nonlinear is None else self.n_nonlinear
            model = ALRNN(m, p, n_inputs)
        else:
            model = DiagonalLinearRNN(m, n_inputs)
        if self.observation == "identity":
            return model, IdentityObservation(n_obs, m)
        return model, AffineObservation(n_obs, m)

    def _check_params(self) -> None:
        for name in ("partial", "standardize", "verbose"):
            check_bool(name, getattr(self, name))
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {MODEL_NAMES}, got {self.model!r}")
        if self.observation not in OBSERVATION_NAMES:
            raise ValueError(f"observation must be one of {OBSERVATION_NAMES}, got {self.observation!r}")
        if self.max_time is not None and not self.max_time > 0:
            raise ValueError(f"max_time must be None or positive seconds, got {self.max_time!r}")

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any = None, inputs: Any = None) -> "DynamicsReconstructor":
        """Train on one series or a list of series.

        Parameters
        ----------
        X : array of shape (T, N), or a list of them
            Observed series; training windows never cross series boundaries.
        y : ignored
            Present for scikit-learn compatibility.
        inputs : array of shape (T, K), or a list of them aligned with ``X``, optional
            External inputs; ``inputs[t]`` drives the step that produces ``X[t]``.

        Returns
        -------
        self
        """
        self._check_params()
        series = _check_series(X, "X")
        n_obs = series[0].shape[1]
        window = self.sequence_length + 1 if isinstance(self.sequence_length, int) else 0
        for i, arr in enumerate(series):
            if arr.shape[1] != n_obs:
                raise ValueError(f"X[{i}] has {arr.shape[1]} dimensions, X[0] has {n_obs}")
            if arr.shape[0] < window:
                label = "X" if len(series) == 1 else f"X[{i}]"
                raise ValueError(
                    f"{label} has {arr.shape[0]} samples, fewer than sequence_length + 1 = {window}"
                )
        in_series = None if inputs is None else _check_series(inputs, "inputs")
        if in_series is not None and [a.shape[0] for a in in_series] != [a.shape[0] for a in series]:
            raise ValueError("inputs must hold one (T, K) array per series of X, with the same T")
        n_inputs = 0 if in_series is None else in_series[0].shape[1]

        data_mean, data_std = location_scale(np.concatenate(series))
        if self.standardize:
            if np.any(data_std == 0):
                raise ValueError(
                    f"X has a constant dimension (dimension {int(np.argmax(data_std == 0))}); it cannot be standardized"
                )
            mean, scale = data_mean, data_std
        else:
            mean, scale = np.zeros(n_obs), np.ones(n_obs)
            _warn_far_from_unit_scale(data_mean, data_std)
        scaled = [(arr - mean) / scale for arr in series]

        seed = None
        if self.random_state is not None:
            seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        with torch.random.fork_rng(devices=[], enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            model, obs = self._build(n_obs, n_inputs)
            if isinstance(model, DendriticPLRNN) and self.observation == "identity":
                # initialize_model passes the data to the dendritic constructors only with the identity read-out
                model.init_thresholds_from_data(torch.as_tensor(np.concatenate(scaled)))

        history, fit_time = self._train(model, obs, scaled, in_series, seed)
        self.model_, self.observation_, self.history_ = model.eval(), obs.eval(), history
        self.alpha_ = float(history["alpha"][-1])
        self.n_epochs_ = len(history["epoch"])
        self.n_steps_ = self.n_epochs_ * self.batches_per_epoch
        self.fit_time_ = fit_time
        self.n_features_in_, self.n_inputs_ = n_obs, n_inputs
        self.mean_, self.scale_ = mean, scale
        self.x0_ = series[0][0].copy()
        return self

    def _train(
        self, model: LatentModel, obs: nn.Module, data: list[np.ndarray], inputs: list[np.ndarray] | None,
        seed: int | None,
    ) -> tuple[dict[str, list[float]], float]:
        start = time.perf_counter()
        history = train_gtf(
            model, obs, data, inputs=inputs,
            epochs=self.epochs, batches_per_epoch=self.batches_per_epoch,
            sequence_length=self.sequence_length, batch_size=self.batch_size,
            lr_start=self.lr_start, lr_end=self.lr_end,
            alpha=self.alpha, alpha_method=self.alpha_method, alpha_decay=self.alpha_decay,
            alpha_update_interval=self.alpha_update_interval,
            forcing=self.forcing, interval=self.interval, partial=self.partial,
            lat_reg=self.lat_reg, obs_reg=self.obs_reg, gradient_clip=self.gradient_clip,
            checkpoint_dir=self.checkpoint_dir, max_time=self.max_time,
            progress=bool(self.verbose), random_state=seed,
        )
        return history, time.perf_counter() - start

    # ------------------------------------------------------------------ generation and prediction

    def _to_latent(self, x: np.ndarray) -> Tensor:
        like = next(self.model_.parameters())
        scaled = torch.as_tensor((x - self.mean_) / self.scale_).to(like)
        return self.observation_.init_state(scaled)

    def _to_observed(self, z: Tensor) -> np.ndarray:
        x = self.observation_(z).detach().cpu().numpy().astype(np.float64)
        return x * self.scale_ + self.mean_

    def _check_obs(self, x: Any, name: str, want: str) -> np.ndarray:
        """``x`` as finite float64 of shape ``want`` ("(N,)", "(P, N)" or "(T, N)") with the fitted ``N``."""
        arr = as_float_array(x, name)
        if arr.ndim != (1 if want == "(N,)" else 2) or arr.shape[-1] != self.n_features_in_:
            raise ValueError(
                f"{name} must have shape {want} with N = {self.n_features_in_} (the fitted dimension), "
                f"got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf values")
        return arr

    def _check_inputs(self, inputs: Any, shape: tuple[int, ...], name: str = "inputs") -> Tensor | None:
        if self.n_inputs_ == 0:
            if inputs is not None:
                raise ValueError(f"{name} given but the model was fitted without external inputs")
            return None
        if inputs is None:
            raise ValueError(f"the model was fitted with external inputs: {name} of shape {shape} are required")
        arr = as_float_array(inputs, name)
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf values")
        return torch.as_tensor(arr).to(next(self.model_.parameters()))

    @torch.no_grad()
    def generate(self, T: int, x0: Any = None, inputs: Any = None) -> np.ndarray:
        """Free-running trajectory from ``z_1 = init_state(x0)`` (Julia ``generate``), without noise.

        Parameters
        ----------
        T : int
            Number of returned time steps; row 0 is the read-out of ``z_1``.
        x0 : array of shape (N,), optional
            Initial observation; default the first training sample :attr:`x0_`.
        inputs : array of shape (T, K), optional
            External inputs (required iff fitted with them); ``inputs[t]`` drives the step producing row
            ``t >= 1``, ``inputs[0]`` is unused.

        Returns
        -------
        ndarray, shape (T, N)
            Float64; may hold inf/NaN if the model diverges.
        """
        check_is_fitted(self)
        T = check_int("T", T, 1)
        x0 = self.x0_ if x0 is None else self._check_obs(x0, "x0", "(N,)")
        drive = self._check_inputs(inputs, (int(T), self.n_inputs_))
        z1 = self._to_latent(x0[None])
        if T == 1:
            return self._to_observed(z1)
        s = None if drive is None else drive[None, 1:]
        z = torch.cat([z1[:, None], self.model_(z1, int(T) - 1, s)], dim=1)
        with np.errstate(over="ignore", invalid="ignore"):
            return self._to_observed(z[0])

    @torch.no_grad()
    def predict(self, x0: Any, n: int, inputs: Any = None) -> np.ndarray:
        """``n``-step free-running predictions from each observed state (used by ``PE(n)``).

        Parameters
        ----------
        x0 : array of shape (P, N)
            Observed start states; each is mapped to ``init_state(x0[p])``.
        n : int
            Prediction horizon.
        inputs : array of shape (P, n, K), optional
            External inputs of steps ``1 .. n`` (required iff fitted with them).

        Returns
        -------
        ndarray, shape (P, n, N)
            ``out[p, k - 1]`` is the prediction ``k`` steps after ``x0[p]``.
        """
        check_is_fitted(self)
        n = check_int("n", n, 1)
        x0 = self._check_obs(x0, "x0", "(P, N)")
        drive = self._check_inputs(inputs, (x0.shape[0], int(n), self.n_inputs_))
        with np.errstate(over="ignore", invalid="ignore"):
            return self._to_observed(self.model_(self._to_latent(x0), int(n), drive))

    # ------------------------------------------------------------------ evaluation

    def score(self, X: Any, y: Any = None, inputs: Any = None) -> float:
        """``-D_stsp`` on a test series: one float, higher is better, as scikit-learn's ``score``.

        The state-space divergence is the measure of the paper that asks whether the generated trajectory
        reproduces the attractor's geometry (the long-term behaviour a reconstruction is for, which ``PE``, a
        short-term error, does not test); its negative makes ``GridSearchCV`` and ``cross_val_score`` (which
        maximise ``score``) pick the model with the smallest divergence. It equals
        ``-dynamics_measures(X, inputs=inputs)["D_stsp"]``, computed the same way (the trajectory generated from
        ``X[0]``, see the module docstring), without the cost of ``D_H`` and ``PE``. A trajectory that diverges
        or never enters the data's histogram box (``D_stsp`` inf or NaN) scores ``-inf``, the worst.

        With ``TimeSeriesSplit`` on one ``(T, N)`` series each fold is scored on its own test segment (the
        generated trajectory starts from the segment's first state, so the segment need not follow the
        training fold). External inputs reach ``fit`` and ``score`` in a search only through scikit-learn's
        metadata routing (``set_fit_request(inputs=True)`` and ``set_score_request(inputs=True)``).

        Parameters
        ----------
        X : array of shape (T, N)
            Test series, ``T >= 2``.
        y : ignored
        inputs : array of shape (T, K), optional
            External inputs aligned with ``X`` (required iff fitted with them).
        """
        x, drive = self._check_test(X, inputs, 2, "at least 2")
        d_stsp, _ = self._free_run_measures(x, drive, spectrum=False)
        return -d_stsp if math.isfinite(d_stsp) else -math.inf

    def dynamics_measures(self, X: Any, y: Any = None, n: int = 20, inputs: Any = None) -> dict[str, float]:
        """The paper's three measures on a test series (``evaluate_run`` in ``src/evaluation.jl``).

        Errors, lower is better; :meth:`score` is ``-D_stsp`` for tools that maximise one float.

        Parameters
        ----------
        X : array of shape (T, N)
            Test series (the reference of all three measures), ``T > n``.
        y : ignored
        n : int, default 20
            Horizon of the prediction error (``PE_n`` in ``defaults.json``).
        inputs : array of shape (T, K), optional
            External inputs aligned with ``X`` (required iff fitted with them).

        Returns
        -------
        dict
            ``"D_stsp"``: state-space divergence of the generated trajectory (see the module docstring for
            its length, start and transient); ``"D_H"``: power-spectrum Hellinger distance;
            ``"PE"``: ``PE(n)``. If generation diverges (non-finite values) ``D_stsp`` is ``inf`` and
            ``D_H`` is NaN, and non-finite predictions give ``PE = inf``, each with a RuntimeWarning.
        """
        check_is_fitted(self)
        n = check_int("n", n, 1)
        x, drive = self._check_test(X, inputs, int(n) + 1, f"more than n = {n}")
        d_stsp, d_h = self._free_run_measures(x, drive, spectrum=True)
        if drive is None:
            pe = prediction_error(self.predict, x, n)
        else:
            # from x[t] the inputs s[t + 1 .. t + n] drive the n predicted steps
            windows = np.lib.stride_tricks.sliding_window_view(drive[1:], n, axis=0).transpose(0, 2, 1)
            pe = prediction_error(lambda x0, k: self.predict(x0, k, windows[: len(x0)]), x, n)
        if not math.isfinite(pe):
            warnings.warn(f"{n}-step predictions are non-finite; PE = inf", RuntimeWarning, stacklevel=2)
        return {"D_stsp": d_stsp, "D_H": d_h, "PE": pe if math.isfinite(pe) else math.inf}

    def _check_test(self, X: Any, inputs: Any, minimum: int, need: str) -> tuple[np.ndarray, np.ndarray | None]:
        """A test series ``X: (T, N)`` with ``T >= minimum`` (``need`` says so in the error) and its inputs
        ``(T, K)`` (``None`` without)."""
        check_is_fitted(self)
        x = self._check_obs(X, "X", "(T, N)")
        if x.shape[0] < minimum:
            raise ValueError(f"X needs {need} time steps, got {x.shape[0]}")
        if self.n_inputs_ == 0:
            self._check_inputs(inputs, (x.shape[0], 0))
            return x, None
        return x, self._check_inputs(inputs, (x.shape[0], self.n_inputs_)).cpu().numpy()

    def _free_run_measures(self, x: np.ndarray, drive: np.ndarray | None, spectrum: bool) -> tuple[float, float]:
        """``D_stsp`` and (with ``spectrum``, else NaN) ``D_H`` of the trajectory generated from ``x[0]``.

        Without inputs ``floor(1.25 T)`` steps are generated and the first ``floor(0.25 T)`` dropped; with
        inputs ``T`` steps driven by them. A non-finite trajectory gives ``inf`` and NaN, with a RuntimeWarning.
        """
        T = x.shape[0]
        if drive is None:
            transient = int(math.floor(_TRANSIENT_FRACTION * T))
            x_gen = self.generate(int(math.floor((1 + _TRANSIENT_FRACTION) * T)), x[0])[transient:]
        else:
            x_gen = self.generate(T, x[0], drive)
        if not np.all(np.isfinite(x_gen)):
            step = int(np.argmax(~np.all(np.isfinite(x_gen), axis=1)))
            warnings.warn(
                f"generated trajectory diverged (non-finite at step {step}); D_stsp = inf, D_H = NaN",
                RuntimeWarning, stacklevel=3,
            )
            return math.inf, math.nan
        d_h = power_spectrum_error(x, x_gen) if spectrum else math.nan
        return state_space_divergence(x, x_gen), d_h

    # ------------------------------------------------------------------ analysis

    def fixed_points(self, **kwargs: Any) -> analysis.FixedPoints:
        """Fixed points of the latent model (:func:`.analysis.fixed_points`), in latent coordinates.

        Parameters
        ----------
        **kwargs
            ``max_regions``, ``n_starts``, ``max_iter``, ``random_state``, ``tol``.

        Returns
        -------
        FixedPoints
            ``points`` (P, M) and Jacobian ``eigenvalues`` (P, M).
        """
        check_is_fitted(self)
        return analysis.fixed_points(self.model_, **kwargs)

    def lyapunov_exponent(
        self, T: int = 10_000, transient: int = 1_000, x0: Any = None, spectrum: bool = False
    ) -> float | np.ndarray:
        """Largest Lyapunov exponent (or the full spectrum) of the latent model along an orbit.

        Parameters
        ----------
        T : int, default 10000
            Steps averaged over, after ``transient`` discarded steps.
        transient : int, default 1000
        x0 : array of shape (N,), optional
            Initial observation; default :attr:`x0_`.
        spectrum : bool, default False
            Return all ``M`` exponents instead of the largest.

        Returns
        -------
        float or ndarray of shape (M,)
            Nats per time step (divide by the sampling step for nats per time unit).
        """
        check_is_fitted(self)
        spectrum = check_bool("spectrum", spectrum)
        x0 = self.x0_ if x0 is None else self._check_obs(x0, "x0", "(N,)")
        with torch.no_grad():
            z0 = self._to_latent(x0[None])[0].double()
        if spectrum:
            return analysis.lyapunov_spectrum(self.model_, z0, T, transient)
        return analysis.max_lyapunov_exponent(self.model_, z0, T, transient)


# Without standardize the data are used as given; the models' initialisation and learning rates assume about
# z-scored data (the paper's files), so data outside these bounds get a warning.
_UNIT_SCALE_STD = (0.1, 10.0)
_UNIT_SCALE_MEAN = 10.0


def _warn_far_from_unit_scale(mean: np.ndarray, std: np.ndarray) -> None:
    """Warn when the per-dimension ``mean, std: (N,)`` of the training data are far from a z-score's."""
    low, high = _UNIT_SCALE_STD
    if np.all((std >= low) & (std <= high) & (np.abs(mean) <= _UNIT_SCALE_MEAN)):
        return
    warnings.warn(
        f"X is far from unit scale (per-dimension std {np.array2string(std, precision=3)}, mean "
        f"{np.array2string(mean, precision=3)}); without standardization the model sees the data as given, "
        "while its initialisation and learning rates assume z-scored data: pass standardize=True "
        "(outputs stay in the original units)",
        UserWarning, stacklevel=3,
    )


def _check_series(data: Any, name: str) -> list[np.ndarray]:
    """``data`` as a non-empty list of finite float64 (T, D) arrays; errors name ``name``."""
    items = list(data) if isinstance(data, (list, tuple)) else [data]
    if not items:
        raise ValueError(f"{name} must not be empty")
    out = []
    for i, item in enumerate(items):
        label = name if len(items) == 1 else f"{name}[{i}]"
        arr = as_float_array(item, label)
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise ValueError(f"{label} must be a 2-D (T, N) array, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{label} contains NaN or inf values")
        out.append(arr)
    return out
