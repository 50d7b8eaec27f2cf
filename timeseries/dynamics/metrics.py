"""Evaluation measures for dynamical-systems reconstruction (Hess, Monfared, Brenner, Durstewitz 2023,
"Generalized Teacher Forcing for Learning Chaotic Dynamics", ICML).

The definitions follow the authors' Julia code (github.com/DurstewitzLab/GTF-shPLRNN, read for the formulas,
not copied); the defaults are those of its ``settings/defaults.json`` (``D_stsp_bins = 30``,
``D_stsp_scaling = 1.0``, ``PSE_smoothing = 20``, ``PE_n = 20``). Data are ``(T, N)`` arrays: ``T`` time
steps of ``N`` observed variables, numpy arrays or torch tensors.

State-space divergence ``D_stsp`` (``src/measures/stsp_measure.jl``), the KL divergence ``KL(p_true || q_gen)``
between the occupation measures of the true and the generated trajectory:

- ``N < 6`` (binning): ``n_bins`` equal bins per axis over ``[min - 0.1 s, max + 0.1 s]`` of the *true*
  data (``s``: its per-axis standard deviation, ``ddof=1``), bins closed on the left; generated points
  outside this box are ignored. Both histograms are Laplace-smoothed,
  ``p_i = (h_i + a) / (sum_j h_j + a B)`` with ``a = 1e-5`` and ``B = n_bins^N`` bins, and
  ``D_stsp = sum_i p_i log(p_i / q_i)``. If no generated point falls in the box the result is NaN.
- ``N >= 6`` (Gaussian mixtures, Monte Carlo after Hershey & Olsen 2007): each trajectory, cut to its first
  ``min(T_true, 10000)`` steps, defines a mixture with one isotropic Gaussian of variance ``sigma^2 = scaling``
  per time step. ``1000`` samples ``s_k`` are drawn from the true mixture (a uniformly drawn true point plus
  ``sigma`` times standard normal noise) and ``D_stsp = mean_k [log p(s_k) - log q(s_k)]``, where samples at
  which either density underflows to zero are left out (NaN if none is left).

Power-spectrum error ``D_H`` (``src/measures/pse.jl``): per dimension, z-score the series, take
``|rfft|^2``, smooth it with a Gaussian kernel of standard deviation ``smoothing`` (in frequency bins)
truncated at ``floor(4 smoothing)`` bins each side and normalised to sum 1, padding by mirroring about the
end bins without repeating them (``ImageFiltering``'s ``"reflect"``, i.e. numpy's ``np.pad(mode="reflect")``
or scipy's ``gaussian_filter1d(mode="mirror")``, *not* scipy's default ``"reflect"``), then normalise the
spectrum to sum 1. ``D_H`` is the mean over dimensions of the Hellinger distance
``H(f, g) = (1/sqrt 2) sqrt(sum_w (sqrt f(w) - sqrt g(w))^2)``.

Prediction error ``PE(n)`` (``src/measures/prediction_error.jl``): from every test state ``x_t``,
``t = 1 .. T - n``, the model predicts ``n`` steps ahead; ``PE(n)`` is the mean squared error of the
``n``-th prediction only, averaged over all ``(T - n) N`` entries:
``PE(n) = 1 / ((T - n) N) sum_t ||x_hat_{t+n | t} - x_{t+n}||^2``.
"""
from __future__ import annotations

from typing import Callable, Union

import numpy as np
import torch

from seqcore.ops.validation import check_int

from ..series import as_float_array, check_number

ArrayLike = Union[np.ndarray, torch.Tensor]

LAPLACE_ALPHA = 1e-5
# Above this observation dimension the Julia code switches from histograms (n_bins^N cells) to the GMM estimate.
GMM_MIN_DIM = 6
GMM_MAX_T = 10_000
GMM_MC_SAMPLES = 1_000
# Bounds the (samples x kernels) distance matrix held at once to about 20 MB.
_GMM_CHUNK = 250

__all__ = ["state_space_divergence", "power_spectrum", "power_spectrum_error", "prediction_error"]


def _as_trajectory(x: ArrayLike, name: str) -> np.ndarray:
    """Return ``x`` as a finite float64 ``(T, N)`` numpy array, or raise a ValueError that names ``name``."""
    x = as_float_array(x, name)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (T, N) array, got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one time step and one dimension, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains non-finite values (NaN or inf)")
    return x


def _as_pair(x_true: ArrayLike, x_gen: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x_true, x_gen = _as_trajectory(x_true, "x_true"), _as_trajectory(x_gen, "x_gen")
    if x_true.shape[1] != x_gen.shape[1]:
        raise ValueError(
            f"x_true and x_gen must have the same number of dimensions N, got {x_true.shape[1]} and {x_gen.shape[1]}"
        )
    return x_true, x_gen


# ---------------------------------------------------------------------------------------------------------------
# State-space divergence
# ---------------------------------------------------------------------------------------------------------------


def state_space_divergence(
    x_true: ArrayLike,
    x_gen: ArrayLike,
    n_bins: int = 30,
    scaling: float = 1.0,
    *,
    random_state: int | np.random.Generator | None = 0,
    max_T: int = GMM_MAX_T,
    mc_samples: int = GMM_MC_SAMPLES,
) -> float:
    """State-space divergence ``D_stsp = KL(p_true || q_gen)`` (see the module docstring for the definition).

    Parameters
    ----------
    x_true : array of shape (T, N)
        Reference trajectory; it defines the histogram box (binning) and the sampling distribution (GMM).
    x_gen : array of shape (T', N)
        Generated trajectory; ``T'`` may differ from ``T``.
    n_bins : int
        Bins per axis, used when ``N < 6``.
    scaling : float
        Variance ``sigma^2`` of each mixture component, used when ``N >= 6``.
    random_state : int, numpy Generator or None
        Seed for the Monte-Carlo samples of the GMM estimate (ignored by binning); the default makes it
        deterministic.
    max_T : int
        The GMM estimate uses only the first ``min(T, max_T)`` steps of each trajectory.
    mc_samples : int
        Number of Monte-Carlo samples of the GMM estimate.

    Returns
    -------
    float
        The divergence (>= 0 for binning; the GMM estimate can be slightly negative), or NaN where the
        Julia code gives NaN: no generated point inside the histogram box, or every GMM sample underflowing.
    """
    x_true, x_gen = _as_pair(x_true, x_gen)
    if x_true.shape[0] < 2:
        raise ValueError(f"x_true needs at least 2 time steps (its spread defines the bins), got {x_true.shape[0]}")
    if x_true.shape[1] < GMM_MIN_DIM:
        return _binned_divergence(x_true, x_gen, check_int("n_bins", n_bins, 1))
    check_number("scaling (the mixture variance)", scaling, 0.0, strict=True)
    max_T, mc_samples = check_int("max_T", max_T, 1), check_int("mc_samples", mc_samples, 1)
    rng = np.random.default_rng(random_state)
    return _gmm_divergence(x_true, x_gen, float(scaling), rng, max_T, mc_samples)


def _bin_indices(x: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Flat bin index of every row of ``x`` inside the box, bins closed on the left; rows outside are dropped."""
    n_bins = len(edges[0]) - 1
    per_axis = np.stack(
        [np.searchsorted(axis_edges, x[:, d], side="right") - 1 for d, axis_edges in enumerate(edges)], axis=1
    )
    inside = np.all((per_axis >= 0) & (per_axis < n_bins), axis=1)
    return np.ravel_multi_index(per_axis[inside].T, (n_bins,) * x.shape[1])


def _binned_divergence(x_true: np.ndarray, x_gen: np.ndarray, n_bins: int) -> float:
    margin = 0.1 * x_true.std(axis=0, ddof=1)
    lo, hi = x_true.min(axis=0) - margin, x_true.max(axis=0) + margin
    edges = [np.linspace(lo[d], hi[d], n_bins + 1) for d in range(x_true.shape[1])]
    idx_true, idx_gen = _bin_indices(x_true, edges), _bin_indices(x_gen, edges)
    if idx_gen.size == 0:
        return float("nan")

    # Only occupied cells are enumerated (n_bins^N can be ~10^7); all empty-in-both cells share one term.
    occupied, inverse = np.unique(np.concatenate([idx_true, idx_gen]), return_inverse=True)
    h_true = np.bincount(inverse[: idx_true.size], minlength=occupied.size)
    h_gen = np.bincount(inverse[idx_true.size :], minlength=occupied.size)
    n_cells = float(n_bins) ** x_true.shape[1]
    norm_true = idx_true.size + LAPLACE_ALPHA * n_cells
    norm_gen = idx_gen.size + LAPLACE_ALPHA * n_cells
    p = (h_true + LAPLACE_ALPHA) / norm_true
    q = (h_gen + LAPLACE_ALPHA) / norm_gen
    p_empty = LAPLACE_ALPHA / norm_true
    empty_term = (n_cells - occupied.size) * p_empty * np.log(norm_gen / norm_true)
    return float(np.sum(p * np.log(p / q)) + empty_term)


def _mixture_density(samples: np.ndarray, centers: np.ndarray, sigma: float) -> np.ndarray:
    """Mean over ``centers`` of ``exp(-|s - c|^2 / (2 sigma^2)) / sigma^N`` at each sample.

    The ``(2 pi)^(-N/2)`` factor is left out as in the Julia code; it cancels in the log-ratio.
    """
    n_dim = centers.shape[1]
    center_sq = np.sum(centers**2, axis=1)
    density = np.empty(samples.shape[0])
    for start in range(0, samples.shape[0], _GMM_CHUNK):
        chunk = samples[start : start + _GMM_CHUNK]
        sq_dist = np.sum(chunk**2, axis=1)[:, None] + center_sq[None, :] - 2.0 * chunk @ centers.T
        np.maximum(sq_dist, 0.0, out=sq_dist)
        density[start : start + _GMM_CHUNK] = np.mean(np.exp(-0.5 * sq_dist / sigma**2), axis=1)
    return density / sigma**n_dim


def _gmm_divergence(
    x_true: np.ndarray, x_gen: np.ndarray, variance: float, rng: np.random.Generator, max_T: int, mc_samples: int
) -> float:
    n_steps = min(x_true.shape[0], max_T)
    # The Julia code cuts both series to the true series' length; a shorter generated series is used whole.
    centers_true, centers_gen = x_true[:n_steps], x_gen[:n_steps]
    sigma = np.sqrt(variance)
    picks = rng.integers(0, n_steps, size=mc_samples)
    samples = centers_true[picks] + sigma * rng.standard_normal((mc_samples, x_true.shape[1]))
    p = _mixture_density(samples, centers_true, sigma)
    q = _mixture_density(samples, centers_gen, sigma)
    keep = (p > 0) & (q > 0)
    if not np.any(keep):
        return float("nan")
    return float(np.mean(np.log(p[keep]) - np.log(q[keep])))


# ---------------------------------------------------------------------------------------------------------------
# Power-spectrum error
# ---------------------------------------------------------------------------------------------------------------


def _gaussian_smooth(spectrum: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth each column with the truncated, normalised Gaussian kernel of ``ImageFiltering.Kernel.gaussian``.

    The Julia code asks for a kernel of length ``8 sigma`` (made odd), i.e. ``floor(4 sigma)`` bins per side.
    """
    radius = int(np.floor(4.0 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(spectrum, ((radius, radius), (0, 0)), mode="reflect")
    return np.stack(
        [np.convolve(padded[:, d], kernel, mode="valid") for d in range(spectrum.shape[1])], axis=1
    )


def power_spectrum(x: ArrayLike, smoothing: float = 20.0) -> np.ndarray:
    """Smoothed power spectrum of each dimension, normalised to a distribution over frequencies.

    Parameters
    ----------
    x : array of shape (T, N)
        Time series; each dimension is z-scored first.
    smoothing : float
        Standard deviation of the Gaussian smoothing kernel in frequency bins; 0 means no smoothing.

    Returns
    -------
    ndarray of shape (T // 2 + 1, N)
        Each column sums to 1 (frequencies ``k / T`` cycles per step, ``k = 0 .. T // 2``). A constant
        dimension has no spectrum to normalise and gives a NaN column, as in the Julia code.
    """
    x = _as_trajectory(x, "x")
    check_number("smoothing", smoothing, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
        spectrum = np.abs(np.fft.rfft(z, axis=0)) ** 2
        if smoothing > 0:
            spectrum = _gaussian_smooth(spectrum, float(smoothing))
        return spectrum / spectrum.sum(axis=0)


def _hellinger(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=0)) / np.sqrt(2.0)


def power_spectrum_error(x_true: ArrayLike, x_gen: ArrayLike, smoothing: float = 20.0) -> float:
    """Power-spectrum error ``D_H``: Hellinger distance of the smoothed spectra, averaged over dimensions.

    Parameters
    ----------
    x_true, x_gen : arrays of shape (T, N)
        True and generated series of equal shape (their spectra must share the frequency grid).
    smoothing : float
        Standard deviation of the Gaussian smoothing kernel in frequency bins (see :func:`power_spectrum`).

    Returns
    -------
    float
        In ``[0, 1]``; NaN if a dimension of either series is constant.
    """
    x_true, x_gen = _as_pair(x_true, x_gen)
    if x_true.shape != x_gen.shape:
        raise ValueError(f"x_true and x_gen must have the same shape (T, N), got {x_true.shape} and {x_gen.shape}")
    return float(np.mean(_hellinger(power_spectrum(x_true, smoothing), power_spectrum(x_gen, smoothing))))


# ---------------------------------------------------------------------------------------------------------------
# Prediction error
# ---------------------------------------------------------------------------------------------------------------


def prediction_error(
    predict_fn: Callable[[ArrayLike, int], ArrayLike], x_test: ArrayLike, n: int = 20
) -> float:
    """``n``-step-ahead prediction error ``PE(n)`` from every test state (see the module docstring).

    Parameters
    ----------
    predict_fn : callable ``(x0, n) -> trajectories``
        Given observed states ``x0`` of shape (P, N) (the first ``T - n`` rows of ``x_test``, passed as the
        same type as ``x_test``: numpy array or torch tensor) returns the predicted observations for steps
        ``1 .. n`` after each of them, shape (P, n, N). It is responsible for inferring the latent state from an
        observation and mapping back to observation space (Julia: ``init_state`` and the observation model).
        It is called under ``torch.no_grad()``.
    x_test : array of shape (T, N)
        Observed test series, ``T > n``.
    n : int
        Prediction horizon.

    Returns
    -------
    float
        Mean squared error of the ``n``-th step prediction over all ``(T - n)`` start points and ``N``
        dimensions; the steps before ``n`` are not scored. Non-finite predictions (a diverging model) give a
        non-finite result rather than an error, so that an evaluation can report them.
    """
    x = _as_trajectory(x_test, "x_test")
    n = check_int("n", n, 1)
    if x.shape[0] <= n:
        raise ValueError(f"x_test needs more than n = {n} time steps, got {x.shape[0]}")
    with torch.no_grad():
        predicted = predict_fn(x_test[: x.shape[0] - n], n)
    if isinstance(predicted, torch.Tensor):
        predicted = predicted.detach().cpu().numpy()
    predicted = np.asarray(predicted, dtype=np.float64)
    expected = (x.shape[0] - n, n, x.shape[1])
    if predicted.shape != expected:
        raise ValueError(f"predict_fn must return shape (P, n, N) = {expected}, got {predicted.shape}")
    return float(np.mean((predicted[:, -1] - x[n:]) ** 2))
