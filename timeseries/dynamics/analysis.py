"""Exact fixed points, k-cycles and Lyapunov exponents of piecewise-linear models.

Every :class:`~timeseries.dynamics.models.LatentModel` is affine inside each
linear region: with activation pattern ``d``, ``F(z) = J(d) z + c(d)``. The
autonomous system (external inputs ``s = 0``) is analysed.

k-cycles (fixed points are ``k = 1``): for a sequence of patterns
``d_1 .. d_k`` the composed map is ``z -> J_k (... (J_1 z + c_1) ...) + c_k``
``= J z + c``; its fixed point ``z_1 = (I - J)^{-1} c`` is a true cycle only if
the orbit ``z_{j+1} = J(d_j) z_j + c(d_j)`` visits exactly the regions used,
``pattern(z_j) == d_j``; all other solutions are *virtual* and rejected.
When ``2^(n_switches * k)`` is small every sequence is solved; otherwise the
SCYFI heuristic (Eisenmann et al. 2023, ``DurstewitzLab/SCYFI``) is used: start
from random sequences, solve, replace each ``d_j`` by the pattern of the virtual
orbit point ``z_j`` and repeat until the sequence is self-consistent.
Stability comes from the eigenvalues of ``J`` (Floquet multipliers of the cycle).

Lyapunov exponents follow the standard tangent-space method: propagate
``Q <- J(z_t) Q`` along an orbit and re-orthonormalize by QR every
``renorm_every`` steps, accumulating ``log |diag R|``; exponents are in nats per
step. All computations run in float64 on a copy of the model.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from seqcore.ops.validation import check_int

from .models import LatentModel

__all__ = [
    "Cycles",
    "FixedPoints",
    "cycles",
    "fixed_points",
    "lyapunov_spectrum",
    "max_lyapunov_exponent",
]


class FixedPoints(NamedTuple):
    """Fixed points and their stability.

    Attributes
    ----------
    points : ndarray, shape (P, M)
    eigenvalues : ndarray, shape (P, M), complex
        Eigenvalues of the Jacobian at each point.
    """

    points: np.ndarray
    eigenvalues: np.ndarray

    @property
    def stable(self) -> np.ndarray:
        """Whether all eigenvalues lie inside the unit circle, shape (P,)."""
        return np.all(np.abs(self.eigenvalues) < 1.0, axis=-1)


class Cycles(NamedTuple):
    """k-cycles and their stability.

    Attributes
    ----------
    orbits : ndarray, shape (P, k, M)
        Consecutive cycle points ``z_1 .. z_k``.
    eigenvalues : ndarray, shape (P, M), complex
        Eigenvalues of the Jacobian product over one period.
    """

    orbits: np.ndarray
    eigenvalues: np.ndarray

    @property
    def stable(self) -> np.ndarray:
        """Whether all multipliers lie inside the unit circle, shape (P,)."""
        return np.all(np.abs(self.eigenvalues) < 1.0, axis=-1)


def _as_float64(model: LatentModel) -> LatentModel:
    if not isinstance(model, LatentModel):
        raise ValueError(f"model must be a LatentModel, got {type(model).__name__}")
    return copy.deepcopy(model).double().eval()


def _generator(random_state: int | None) -> torch.Generator:
    # without a seed, draw one from the global generator so callers' forks stay reproducible
    seed = random_state if random_state is not None else int(torch.randint(2**62, ()))
    return torch.Generator().manual_seed(int(seed))


def _solve_sequences(
    model: LatentModel, seqs: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Solve the composed affine maps of pattern sequences.

    Parameters
    ----------
    seqs : Tensor, shape (R, k, S), bool

    Returns
    -------
    orbits : Tensor, shape (R, k, M)
        Virtual orbits (NaN where ``I - J`` is singular).
    jac : Tensor, shape (R, M, M)
        Composed Jacobian.
    consistent : Tensor, shape (R,), bool
        Solvable and ``pattern(z_j) == d_j`` for all j.
    visited : Tensor, shape (R, k, S), bool
        Patterns of the virtual orbit points.
    """
    r, k, _ = seqs.shape
    m = model.latent_dim
    maps = [model.region_map(seqs[:, j]) for j in range(k)]
    jac = torch.eye(m, dtype=torch.float64).expand(r, m, m)
    c = torch.zeros(r, m, dtype=torch.float64)
    for j_map, c_map in maps:
        jac = j_map @ jac
        c = (j_map @ c.unsqueeze(-1)).squeeze(-1) + c_map
    z, info = torch.linalg.solve_ex(torch.eye(m, dtype=torch.float64) - jac, c)
    solvable = (info == 0) & torch.isfinite(z).all(-1)
    points = [z]
    for j_map, c_map in maps[:-1]:
        points.append((j_map @ points[-1].unsqueeze(-1)).squeeze(-1) + c_map)
    orbits = torch.stack(points, dim=1)
    visited = model.activation_pattern(orbits)
    consistent = solvable & (visited == seqs).all(-1).all(-1)
    return orbits, jac, consistent, visited


def _has_shorter_period(orbit: Tensor, tol: float) -> bool:
    k = orbit.shape[0]
    scale = 1.0 + orbit.abs().max().item()
    return any(
        k % p == 0 and (orbit[p] - orbit[0]).abs().max().item() <= tol * scale
        for p in range(1, k)
    )


def _is_new(orbit: Tensor, found: list[Tensor], tol: float) -> bool:
    # a cycle found from a shifted starting region is the same cycle
    scale = 1.0 + orbit.abs().max().item()
    return all(
        (other - orbit[0]).abs().max(-1).values.min().item() > tol * scale for other in found
    )


def _search(
    model: LatentModel,
    k: int,
    max_regions: int,
    n_starts: int,
    max_iter: int,
    random_state: int | None,
    tol: float,
) -> tuple[list[Tensor], list[Tensor]]:
    s = model.n_switches
    accepted_orbits: list[Tensor] = []
    accepted_jacs: list[Tensor] = []

    def collect(orbits: Tensor, jac: Tensor, ok: Tensor) -> None:
        for idx in torch.nonzero(ok).flatten().tolist():
            orbit = orbits[idx]
            if _has_shorter_period(orbit, tol) or not _is_new(orbit, accepted_orbits, tol):
                continue
            accepted_orbits.append(orbit)
            accepted_jacs.append(jac[idx])

    bits = s * k
    if bits == 0 or (bits < 63 and 2**bits <= max_regions):
        codes = torch.arange(2**bits, dtype=torch.int64)
        seqs = ((codes.unsqueeze(-1) >> torch.arange(bits)) & 1).bool().reshape(len(codes), k, s)
        orbits, jac, ok, _ = _solve_sequences(model, seqs)
        collect(orbits, jac, ok)
        return accepted_orbits, accepted_jacs

    gen = _generator(random_state)
    seqs = torch.rand(n_starts, k, s, generator=gen) < 0.5
    for _ in range(max_iter):
        orbits, jac, ok, visited = _solve_sequences(model, seqs)
        collect(orbits, jac, ok)
        pending = ~ok
        if not pending.any():
            break
        solvable = torch.isfinite(orbits).all(-1).all(-1)
        # SCYFI step: continue from the regions the virtual orbit actually visits;
        # singular systems restart from a fresh random sequence
        restart = torch.rand(int(pending.sum()), k, s, generator=gen) < 0.5
        nxt = torch.where(solvable[pending, None, None], visited[pending], restart)
        seqs = nxt
    return accepted_orbits, accepted_jacs


def cycles(
    model: LatentModel,
    k: int,
    max_regions: int = 4096,
    n_starts: int = 1000,
    max_iter: int = 20,
    random_state: int | None = None,
    tol: float = 1e-8,
) -> Cycles:
    """All (enumeration) or heuristically found (SCYFI) k-cycles of minimal period k.

    Parameters
    ----------
    model : LatentModel
    k : int
        Period (>= 1).
    max_regions : int, default 4096
        Enumerate all ``2^(n_switches * k)`` region sequences when they are at
        most this many; otherwise use the SCYFI heuristic.
    n_starts : int, default 1000
        Random initial region sequences for the heuristic.
    max_iter : int, default 20
        SCYFI re-derivation iterations per start.
    random_state : int, optional
        Seed of the heuristic's own generator (the global RNG is untouched).
    tol : float, default 1e-8
        Relative tolerance for duplicate cycles and shorter periods.

    Returns
    -------
    Cycles
        ``orbits`` (P, k, M) and ``eigenvalues`` (P, M).
    """
    check_int("k", k, 1)
    check_int("max_regions", max_regions, 1)
    check_int("n_starts", n_starts, 1)
    check_int("max_iter", max_iter, 1)
    m = _as_float64(model)
    with torch.no_grad():
        orbits, jacs = _search(m, k, max_regions, n_starts, max_iter, random_state, tol)
    dim = m.latent_dim
    if not orbits:
        return Cycles(np.zeros((0, k, dim)), np.zeros((0, dim), dtype=complex))
    orbit_arr = torch.stack(orbits).numpy()
    eig = torch.linalg.eigvals(torch.stack(jacs)).numpy()
    return Cycles(orbit_arr, eig)


def fixed_points(
    model: LatentModel,
    max_regions: int = 4096,
    n_starts: int = 1000,
    max_iter: int = 20,
    random_state: int | None = None,
    tol: float = 1e-8,
) -> FixedPoints:
    """Fixed points ``z* = F(z*)`` of the autonomous model, see :func:`cycles`.

    Returns
    -------
    FixedPoints
        ``points`` (P, M) and Jacobian ``eigenvalues`` (P, M).
    """
    found = cycles(model, 1, max_regions, n_starts, max_iter, random_state, tol)
    return FixedPoints(found.orbits[:, 0], found.eigenvalues)


def _initial_state(model: LatentModel, z0: Tensor | np.ndarray) -> Tensor:
    z = torch.as_tensor(z0, dtype=torch.float64)
    if z.shape != (model.latent_dim,):
        raise ValueError(f"z0 must have shape ({model.latent_dim},), got {tuple(z.shape)}")
    return z.unsqueeze(0)


def _transient(model: LatentModel, z: Tensor, transient: int) -> Tensor:
    for _ in range(transient):
        z = model._autonomous_step(z)
    return z


def lyapunov_spectrum(
    model: LatentModel,
    z0: Tensor | np.ndarray,
    T: int,
    transient: int = 0,
    renorm_every: int = 1,
) -> np.ndarray:
    """Full Lyapunov spectrum by QR re-orthonormalization.

    Parameters
    ----------
    model : LatentModel
    z0 : Tensor or ndarray, shape (M,)
    T : int
        Steps over which exponents are averaged (after the transient).
    transient : int, default 0
        Steps discarded before averaging.
    renorm_every : int, default 1
        QR re-orthonormalization interval.

    Returns
    -------
    ndarray, shape (M,)
        Exponents in nats per step, descending.
    """
    check_int("T", T, 1)
    check_int("transient", transient, 0)
    check_int("renorm_every", renorm_every, 1)
    m = _as_float64(model)
    with torch.no_grad():
        z = _transient(m, _initial_state(m, z0), transient)
        q = torch.eye(m.latent_dim, dtype=torch.float64)
        log_r = torch.zeros(m.latent_dim, dtype=torch.float64)
        for t in range(1, T + 1):
            q = m.jacobian(z)[0] @ q
            z = m._autonomous_step(z)
            if t % renorm_every == 0 or t == T:
                q, r = torch.linalg.qr(q)
                log_r += torch.log(torch.diagonal(r).abs())
    return np.sort((log_r / T).numpy())[::-1].copy()


def max_lyapunov_exponent(
    model: LatentModel,
    z0: Tensor | np.ndarray,
    T: int,
    transient: int = 0,
    renorm_every: int = 1,
    random_state: int | None = 0,
) -> float:
    """Largest Lyapunov exponent from one renormalized tangent vector.

    Parameters
    ----------
    model : LatentModel
    z0 : Tensor or ndarray, shape (M,)
    T : int
        Steps over which the exponent is averaged (after the transient).
    transient : int, default 0
        Steps discarded before averaging.
    renorm_every : int, default 1
        Renormalization interval of the tangent vector.
    random_state : int, optional
        Seed of the random initial tangent vector (own generator).

    Returns
    -------
    float
        Exponent in nats per step.
    """
    check_int("T", T, 1)
    check_int("transient", transient, 0)
    check_int("renorm_every", renorm_every, 1)
    m = _as_float64(model)
    gen = _generator(random_state)
    with torch.no_grad():
        z = _transient(m, _initial_state(m, z0), transient)
        v = torch.randn(m.latent_dim, dtype=torch.float64, generator=gen)
        v = v / v.norm()
        log_growth = 0.0
        for t in range(1, T + 1):
            v = m.jacobian(z)[0] @ v
            z = m._autonomous_step(z)
            if t % renorm_every == 0 or t == T:
                norm = v.norm()
                log_growth += float(torch.log(norm))
                v = v / norm
    return log_growth / T
