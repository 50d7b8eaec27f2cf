"""Data for dynamical-systems reconstruction: the GTF paper's benchmark files and a Lorenz-63 simulator.

:func:`load_dsr` reads the data sets of Hess et al. (ICML 2023, ``ICML2023_datasets`` of
``DurstewitzLab/GTF-shPLRNN``) in place from ``../shared/data/dsr/`` next to the project (or from the folder
named by the ``SEQCORE_DSR_DATA`` environment variable, or ``root=``). They are ``(100000, N)`` arrays sampled
at the paper's step sizes and already z-scored (per-dimension std about 1); the Julia code uses them as given.

=========== ======================================= ============================ ===
name        train file                              test file                    N
=========== ======================================= ============================ ===
lorenz63    ``lorenz63_on0.05_train.npy``           ``lorenz63_test.npy``        3
ecg         ``ECG_pecuzal_5d_train.npy``            ``ECG_pecuzal_5d_test.npy``  5
=========== ======================================= ============================ ===

The Lorenz-63 training file carries 5 % observation noise (``on0.05``); the ECG series is a 5-d delay
embedding (PECUZAL) of a single ECG channel.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.integrate import solve_ivp
from sklearn.utils import check_random_state

from seqcore.ops.validation import check_int

__all__ = ["DSR_FILES", "DSR_ENV_VAR", "default_dsr_root", "load_dsr", "simulate_lorenz63"]

DSR_ENV_VAR = "SEQCORE_DSR_DATA"
DSR_FILES = {
    "lorenz63": {"train": "lorenz63_on0.05_train.npy", "test": "lorenz63_test.npy"},
    "ecg": {"train": "ECG_pecuzal_5d_train.npy", "test": "ECG_pecuzal_5d_test.npy"},
}


def default_dsr_root() -> Path:
    """``$SEQCORE_DSR_DATA`` if set, else ``<project>/../shared/data/dsr``."""
    env = os.environ.get(DSR_ENV_VAR)
    if env:
        return Path(env)
    return (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dsr").resolve()


def load_dsr(name: str, split: str = "train", root: str | os.PathLike | None = None) -> np.ndarray:
    """One of the GTF paper's data sets, read in place (see the module docstring).

    Parameters
    ----------
    name : {"lorenz63", "ecg"}
    split : {"train", "test"}
    root : path, optional
        Folder holding the ``.npy`` files; default :func:`default_dsr_root`.

    Returns
    -------
    ndarray, shape (T, N)
        In the file's dtype (float32 for Lorenz-63, float64 for ECG), ``T = 100000``.

    Raises
    ------
    ValueError
        For an unknown ``name`` or ``split``, and for a file that is not a 2-D array of finite numbers: a
        pickle or an object array (read with ``allow_pickle=False``, so loading never runs code), a corrupt or
        truncated ``.npy``, another dtype, NaN or inf; the message names the file.
    FileNotFoundError
        When the file is not at the expected path (the message names it).
    """
    if name not in DSR_FILES:
        raise ValueError(f"name must be one of {sorted(DSR_FILES)}, got {name!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = default_dsr_root() if root is None else Path(root)
    path = folder / DSR_FILES[name][split]
    if not path.is_file():
        raise FileNotFoundError(
            f"{name} {split} data not found at {path}. Put the ICML2023_datasets file "
            f"{DSR_FILES[name][split]} there, set {DSR_ENV_VAR} to its folder, or pass root="
        )
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(
            f"{path} cannot be read as a .npy array of numbers (pickled objects are refused): {err}"
        ) from err
    if not isinstance(data, np.ndarray):
        data.close()
        raise ValueError(f"{path} is an .npz archive, expected a single .npy array")
    if data.dtype.kind not in "fiu":
        raise ValueError(f"{path} holds an array of dtype {data.dtype}, expected floating-point numbers")
    if data.ndim != 2:
        raise ValueError(f"{path} holds an array of shape {data.shape}, expected (T, N)")
    finite = np.isfinite(data)
    if not finite.all():
        row = int(np.argmax(~finite.all(axis=1)))
        raise ValueError(f"{path} holds {int((~finite).sum())} NaN or infinite values, first in row {row}")
    return data


def _lorenz_rhs(sigma: float, rho: float, beta: float):
    def rhs(_t: float, u: np.ndarray) -> np.ndarray:
        x, y, z = u
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])

    return rhs


def simulate_lorenz63(
    T: int,
    dt: float = 0.01,
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
    x0: np.ndarray | None = None,
    noise: float = 0.0,
    transient: int = 1000,
    random_state: int | np.random.RandomState | None = None,
) -> np.ndarray:
    """Lorenz-63 trajectory sampled every ``dt``, integrated with scipy's ``solve_ivp`` (RK45, tight tolerances).

    Parameters
    ----------
    T : int
        Number of returned samples.
    dt : float, default 0.01
        Sampling step (the paper's Lorenz-63 data use 0.01).
    sigma, rho, beta : float
        Parameters; the defaults give the chaotic attractor.
    x0 : array of shape (3,), optional
        Initial state; default a random point near the attractor.
    noise : float, default 0.0
        Standard deviation of Gaussian observation noise *relative to each dimension's std*
        (``0.05`` mimics the paper's ``on0.05`` training file).
    transient : int, default 1000
        Samples integrated and dropped first, so the trajectory starts on the attractor.
    random_state : int, RandomState or None
        Seeds ``x0`` and the noise.

    Returns
    -------
    ndarray, shape (T, 3)
        Raw (not standardised) coordinates, float64.
    """
    T, transient = check_int("T", T, 1), check_int("transient", transient, 0)
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = check_random_state(random_state)
    start = np.array([1.0, 1.0, 20.0]) + rng.standard_normal(3) if x0 is None else np.asarray(x0, dtype=float)
    if start.shape != (3,):
        raise ValueError(f"x0 must have shape (3,), got {start.shape}")
    n = int(T) + int(transient)
    times = np.arange(n) * dt
    sol = solve_ivp(
        _lorenz_rhs(sigma, rho, beta), (0.0, times[-1]), start, t_eval=times, method="RK45", rtol=1e-9, atol=1e-9
    )
    if not sol.success:
        raise RuntimeError(f"Lorenz-63 integration failed: {sol.message}")
    traj = sol.y.T[transient:]
    if noise > 0:
        traj = traj + noise * traj.std(axis=0) * rng.standard_normal(traj.shape)
    return traj
