"""Dynamical-systems reconstruction (DSR) with piecewise-linear RNNs and generalized teacher forcing.

After Hess, Monfared, Brenner, Durstewitz (ICML 2023), "Generalized Teacher Forcing for Learning Chaotic
Dynamics", following their Julia code ``DurstewitzLab/GTF-shPLRNN``. Observed series are ``(T, N)`` arrays:
``T`` time steps of ``N`` variables; latent states have ``M`` dimensions.

- :class:`DynamicsReconstructor`: the scikit-learn style estimator. ``fit(X (T, N))``,
  ``generate(T, x0 (N,)) -> (T, N)``, ``predict(x0 (P, N), n) -> (P, n, N)``,
  ``score(X_test (T, N)) -> {"D_stsp", "D_H", "PE"}``, ``fixed_points()``, ``lyapunov_exponent()``.
- Latent models ``z_t = F(z_{t-1}) (+ C s_t)``, ``(B, M) -> (B, M)`` per step, ``forward(z0 (B, M), T)``
  ``-> (B, T, M)``: :class:`PLRNN`, :class:`DendriticPLRNN`, :class:`ShallowPLRNN` (``clipped=True``: the
  paper's clipped shPLRNN), :class:`ALRNN`, :class:`DiagonalLinearRNN`.
- Observation models ``(..., M) -> (..., N)`` with ``invert`` / ``init_state`` ``(..., N) -> (..., M)``:
  :class:`IdentityObservation`, :class:`AffineObservation`.
- Training: :func:`train_gtf` (batches ``(B, T, N)``), :func:`gtf_forward`, :func:`gtf_scan`,
  :func:`estimate_alpha`.
- Measures on ``(T, N)`` trajectories: :func:`state_space_divergence`, :func:`power_spectrum`,
  :func:`power_spectrum_error`, :func:`prediction_error`.
- Analysis of the latent model: :func:`fixed_points`, :func:`cycles`, :func:`lyapunov_spectrum`,
  :func:`max_lyapunov_exponent`.
- Data: :func:`load_dsr` (the paper's Lorenz-63 and ECG files, read in place), :func:`simulate_lorenz63`.
"""
from .analysis import Cycles, FixedPoints, cycles, fixed_points, lyapunov_spectrum, max_lyapunov_exponent
from .data import load_dsr, simulate_lorenz63
from .estimator import DynamicsReconstructor
from .metrics import power_spectrum, power_spectrum_error, prediction_error, state_space_divergence
from .models import ALRNN, PLRNN, DendriticPLRNN, DiagonalLinearRNN, LatentModel, ShallowPLRNN
from .observation import AffineObservation, IdentityObservation
from .training import estimate_alpha, gtf_forward, gtf_scan, train_gtf

__all__ = [
    "DynamicsReconstructor",
    "LatentModel",
    "PLRNN",
    "DendriticPLRNN",
    "ShallowPLRNN",
    "ALRNN",
    "DiagonalLinearRNN",
    "IdentityObservation",
    "AffineObservation",
    "train_gtf",
    "gtf_forward",
    "gtf_scan",
    "estimate_alpha",
    "state_space_divergence",
    "power_spectrum",
    "power_spectrum_error",
    "prediction_error",
    "FixedPoints",
    "Cycles",
    "fixed_points",
    "cycles",
    "lyapunov_spectrum",
    "max_lyapunov_exponent",
    "load_dsr",
    "simulate_lorenz63",
]
