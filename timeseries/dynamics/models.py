"""Piecewise-linear latent models for dynamical-systems reconstruction.

All models are maps ``z_t = F(z_{t-1}) + C s_t`` on an ``M``-dimensional latent
state with optional external inputs ``s_t`` (``input_dim=0`` means none).
They follow the Julia reference implementation of generalized teacher forcing
(``DurstewitzLab/GTF-shPLRNN``) and, for the ALRNN, ``DurstewitzLab/ALRNN-DSR``:

* :class:`PLRNN` (``src/models/vanilla_plrnn.jl``)::

      z_t = A z + W relu(z) + h,          A diagonal, W off-diagonal

* :class:`DendriticPLRNN` (``src/models/dendritic_plrnn.jl``)::

      phi_i(z) = sum_b alpha_b relu(z_i - H_ib)                  (dendPLRNN)
      phi_i(z) = sum_b alpha_b [relu(z_i - H_ib) - relu(z_i)]    (clippedDendPLRNN)
      z_t = A z + W phi(z) + h,           A diagonal, W off-diagonal

* :class:`ShallowPLRNN` (``src/models/shallow_plrnn.jl``)::

      z_t = A z + W1 relu(W2 z + h2) + h1                      (shallowPLRNN)
      z_t = A z + W1 [relu(W2 z + h2) - relu(W2 z)] + h1       (clippedShallowPLRNN)

* :class:`DiagonalLinearRNN` (linear baseline, no Julia counterpart)::

      z_t = a * z + h,                    a diagonal (elementwise decay)

* :class:`ALRNN` (ALRNN-DSR tutorial)::

      z_t = A z + W phi(z) + h,  phi(z)_i = z_i for i < M - P, relu(z_i) otherwise,
      A diagonal, W full (the ALRNN regularizer penalizes A + diag(W), so W keeps
      its diagonal).

Initialization follows ``src/models/initialization.jl``: ``A`` and ``W`` are the
diagonal and off-diagonal of the normalized positive-definite matrix
``K = (R^T R / M + I) / lambda_max`` with ``R ~ N(0, 1)`` (Talathi & Vartak
2016), ``h = 0``; ``uniform_init`` draws from ``U(-1/sqrt(d), 1/sqrt(d))`` with
``d`` the last dimension of the shape; ``C`` is Glorot-uniform. The ALRNN draws
``W ~ 0.01 N(0, 1)``. All draws use torch's global generator.

Every model is piecewise affine. Its *activation pattern* at ``z`` is the 0/1
vector of the switching units (ReLU arguments ``> 0``, the same strict
inequality as the Julia Jacobians); inside the region of a pattern ``d`` the
map is ``F(z) = J(d) z + c(d)``, which is what :meth:`LatentModel.region_map`
returns and what :mod:`timeseries.dynamics.analysis` builds on.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from seqcore.ops.validation import check_bool, check_int

__all__ = [
    "ALRNN",
    "DendriticPLRNN",
    "DiagonalLinearRNN",
    "LatentModel",
    "PLRNN",
    "ShallowPLRNN",
]


def _uniform_init(*shape: int) -> Tensor:
    """``U(-r, r)`` with ``r = 1 / sqrt(shape[-1])`` (``uniform_init`` in initialization.jl)."""
    r = 1.0 / math.sqrt(shape[-1])
    return torch.empty(*shape).uniform_(-r, r)


def _normalized_positive_definite(m: int) -> Tensor:
    """``(R^T R / M + I) / lambda_max`` with ``R ~ N(0, 1)``, shape (M, M)."""
    r = torch.randn(m, m, dtype=torch.float64)
    k = r.T @ r / m + torch.eye(m, dtype=torch.float64)
    return (k / torch.linalg.eigvalsh(k).abs().max()).float()


def _init_a_w_h(m: int) -> tuple[Tensor, Tensor, Tensor]:
    """``initialize_A_W_h``: A = diag(K), W = offdiag(K), h = 0."""
    k = _normalized_positive_definite(m)
    a = torch.diagonal(k).clone()
    return a, k - torch.diag(a), torch.zeros(m)


def _l2(x: Tensor) -> Tensor:
    return (x * x).sum()


class LatentModel(nn.Module, ABC):
    """Base class of the piecewise-linear latent models.

    Parameters
    ----------
    latent_dim : int
        Latent dimension ``M``.
    input_dim : int, default 0
        Dimension ``K`` of the external inputs; ``0`` means no inputs.

    Notes
    -----
    Subclasses implement :meth:`activation_pattern` and :meth:`region_map`;
    ``step``, ``jacobian`` and ``affine_map`` are derived from those, so the
    analytic Jacobian and the affine pieces cannot disagree.
    """

    def __init__(self, latent_dim: int, input_dim: int = 0) -> None:
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, 1)
        self.input_dim = check_int("input_dim", input_dim, 0)
        if self.input_dim > 0:
            # Flux.glorot_uniform(M, K) == xavier_uniform on an (M, K) matrix
            self.C: nn.Parameter | None = nn.Parameter(
                nn.init.xavier_uniform_(torch.empty(self.latent_dim, self.input_dim))
            )
        else:
            self.register_parameter("C", None)

    # --- model-specific pieces -------------------------------------------------

    @property
    @abstractmethod
    def n_switches(self) -> int:
        """Number of switching (ReLU) units that define the linear regions."""

    @abstractmethod
    def _autonomous_step(self, z: Tensor) -> Tensor:
        """F(z) without external inputs, (..., M) -> (..., M)."""

    @abstractmethod
    def activation_pattern(self, z: Tensor) -> Tensor:
        """0/1 pattern of the switching units.

        Parameters
        ----------
        z : Tensor, shape (..., M)

        Returns
        -------
        Tensor, shape (..., n_switches), dtype bool
        """

    @abstractmethod
    def region_map(self, d: Tensor) -> tuple[Tensor, Tensor]:
        """Affine map ``F(z) = J z + c`` of the region with pattern ``d``.

        Parameters
        ----------
        d : Tensor, shape (..., n_switches)
            Activation pattern (bool or 0/1).

        Returns
        -------
        J : Tensor, shape (..., M, M)
        c : Tensor, shape (..., M)
            In the dtype of the parameters.
        """

    def regularization(self) -> Tensor:
        """Unscaled latent-model weight penalty (``regularize`` in regularization.jl).

        The caller multiplies by ``lat_model_regularization``.

        Returns
        -------
        Tensor, shape ()
        """
        raise NotImplementedError(f"{type(self).__name__} has no regularization")

    def linear_decay(self) -> Tensor | None:
        """Elementwise decay ``a`` when ``F(z) = a * z + b`` holds exactly for all ``z``.

        Only then is the (generalized teacher forced) recurrence an elementwise
        linear scan; ``b = F(0)`` (plus ``C s_t``) is the drive. Models with any
        coupling between latents or any switching unit return ``None``,
        whatever their parameter values.

        Returns
        -------
        Tensor, shape (M,), or None
        """
        return None

    # --- shared API -------------------------------------------------------------

    def _check_z(self, z: Tensor, name: str = "z") -> None:
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != self.latent_dim:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"{name} must have shape (B, {self.latent_dim}), got {shape}")

    def _check_inputs(self, s: Tensor | None, shape: tuple[int, ...]) -> None:
        if self.input_dim == 0:
            if s is not None:
                raise ValueError("external inputs given to a model built with input_dim=0")
            return
        if s is None:
            raise ValueError(f"model expects external inputs of dimension {self.input_dim}")
        if tuple(s.shape) != shape:
            raise ValueError(f"inputs must have shape {shape}, got {tuple(s.shape)}")

    def step(self, z: Tensor, s: Tensor | None = None) -> Tensor:
        """One step ``z_t = F(z_{t-1}) + C s_t``.

        Parameters
        ----------
        z : Tensor, shape (B, M)
        s : Tensor, shape (B, K), optional
            Required iff ``input_dim > 0``.

        Returns
        -------
        Tensor, shape (B, M)
        """
        self._check_z(z)
        self._check_inputs(s, (z.shape[0], self.input_dim))
        out = self._autonomous_step(z)
        if self.C is not None:
            out = out + s @ self.C.T
        return out

    def forward(self, z0: Tensor, T: int, s: Tensor | None = None) -> Tensor:
        """Free-running generation of ``z_1 .. z_T`` from ``z0``.

        Parameters
        ----------
        z0 : Tensor, shape (B, M)
        T : int
            Number of generated steps (>= 1).
        s : Tensor, shape (B, T, K), optional
            ``s[:, t - 1]`` drives the step producing ``z_t``.

        Returns
        -------
        Tensor, shape (B, T, M)
        """
        self._check_z(z0, "z0")
        check_int("T", T, 1)
        self._check_inputs(s, (z0.shape[0], T, self.input_dim))
        # the input drive does not depend on the state, so compute it in one matmul
        drive = s @ self.C.T if self.C is not None else None
        z = z0
        out = []
        for t in range(T):
            z = self._autonomous_step(z)
            if drive is not None:
                z = z + drive[:, t]
            out.append(z)
        return torch.stack(out, dim=1)

    def jacobian(self, z: Tensor) -> Tensor:
        """Analytic ``dF/dz`` (inputs enter additively and do not contribute).

        Parameters
        ----------
        z : Tensor, shape (B, M)

        Returns
        -------
        Tensor, shape (B, M, M)
        """
        self._check_z(z)
        return self.region_map(self.activation_pattern(z))[0]

    def affine_map(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Affine map of the linear region containing ``z``.

        Parameters
        ----------
        z : Tensor, shape (M,)

        Returns
        -------
        J : Tensor, shape (M, M)
        c : Tensor, shape (M,)
            ``F(z') = J z' + c`` for every ``z'`` in the region of ``z``.
        """
        if not isinstance(z, Tensor) or tuple(z.shape) != (self.latent_dim,):
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"z must have shape ({self.latent_dim},), got {shape}")
        return self.region_map(self.activation_pattern(z))


class PLRNN(LatentModel):
    """Vanilla PLRNN ``z_t = A z + W relu(z) + h (+ C s_t)`` (vanilla_plrnn.jl).

    Parameters
    ----------
    latent_dim : int
        ``M``.
    input_dim : int, default 0
        ``K``.

    Notes
    -----
    The Julia code zeroes the gradient of ``diag(W)``; here the diagonal is masked
    in the forward pass instead, so its stored value never matters.
    """

    def __init__(self, latent_dim: int, input_dim: int = 0) -> None:
        super().__init__(latent_dim, input_dim)
        a, w, h = _init_a_w_h(self.latent_dim)
        self.A = nn.Parameter(a)
        self.W = nn.Parameter(w)
        self.h = nn.Parameter(h)
        self.register_buffer("_offdiag", 1.0 - torch.eye(self.latent_dim))

    @property
    def n_switches(self) -> int:
        return self.latent_dim

    def w_offdiag(self) -> Tensor:
        """``W`` with its diagonal masked, shape (M, M)."""
        return self.W * self._offdiag

    def _autonomous_step(self, z: Tensor) -> Tensor:
        return self.A * z + torch.relu(z) @ self.w_offdiag().T + self.h

    def activation_pattern(self, z: Tensor) -> Tensor:
        return z > 0

    def region_map(self, d: Tensor) -> tuple[Tensor, Tensor]:
        d = d.to(self.A.dtype)
        jac = torch.diag(self.A) + self.w_offdiag() * d.unsqueeze(-2)
        return jac, self.h.expand(jac.shape[:-1])

    def regularization(self) -> Tensor:
        """``||1 - A||^2 + ||W||^2 + ||h||^2`` (AbstractVanillaPLRNN, no ``C`` term)."""
        return _l2(1 - self.A) + _l2(self.w_offdiag()) + _l2(self.h)


class DendriticPLRNN(LatentModel):
    """Dendritic PLRNN ``z_t = A z + W phi(z) + h (+ C s_t)`` (dendritic_plrnn.jl).

    ``phi_i(z) = sum_b alpha_b [relu(z_i - H_ib) - clipped * relu(z_i)]``.

    Parameters
    ----------
    latent_dim : int
        ``M``.
    n_bases : int
        Number of basis functions ``B``.
    input_dim : int, default 0
        ``K``.
    clipped : bool, default True
        Use the clipped basis expansion (``clippedDendPLRNN``), which bounds
        orbits when ``max|A| < 1``.

    Notes
    -----
    ``alpha ~ uniform_init((B,))``, thresholds ``H ~ N(0, 1)`` of shape (M, B);
    :meth:`init_thresholds_from_data` gives the data-based alternative of the
    Julia constructors that take ``X``. ``diag(W)`` is masked as in :class:`PLRNN`.
    Activation pattern: ``z_i > H_ib`` for all (i, b) flattened row-major,
    followed (clipped only) by ``z_i > 0``.
    """

    def __init__(
        self, latent_dim: int, n_bases: int, input_dim: int = 0, clipped: bool = True
    ) -> None:
        super().__init__(latent_dim, input_dim)
        self.n_bases = check_int("n_bases", n_bases, 1)
        self.clipped = check_bool("clipped", clipped)
        a, w, h = _init_a_w_h(self.latent_dim)
        self.A = nn.Parameter(a)
        self.W = nn.Parameter(w)
        self.h = nn.Parameter(h)
        self.alpha = nn.Parameter(_uniform_init(self.n_bases))
        self.H = nn.Parameter(torch.randn(self.latent_dim, self.n_bases))
        self.register_buffer("_offdiag", 1.0 - torch.eye(self.latent_dim))

    @torch.no_grad()
    def init_thresholds_from_data(self, X: Tensor) -> None:
        """Redraw ``H ~ U(min X, max X)`` (``uniform_threshold_init``).

        Parameters
        ----------
        X : Tensor, shape (T, N) or any shape
            Data whose global minimum and maximum bound the thresholds.
        """
        X = torch.as_tensor(X)
        if X.numel() == 0:
            raise ValueError("X must not be empty")
        lo, hi = float(X.min()), float(X.max())
        self.H.uniform_(lo, hi)

    @property
    def n_switches(self) -> int:
        return self.latent_dim * (self.n_bases + int(self.clipped))

    def w_offdiag(self) -> Tensor:
        """``W`` with its diagonal masked, shape (M, M)."""
        return self.W * self._offdiag

    def basis_expansion(self, z: Tensor) -> Tensor:
        """``phi(z)``, (..., M) -> (..., M)."""
        phi = (self.alpha * torch.relu(z.unsqueeze(-1) - self.H)).sum(-1)
        if self.clipped:
            phi = phi - self.alpha.sum() * torch.relu(z)
        return phi

    def _autonomous_step(self, z: Tensor) -> Tensor:
        return self.A * z + self.basis_expansion(z) @ self.w_offdiag().T + self.h

    def activation_pattern(self, z: Tensor) -> Tensor:
        above = (z.unsqueeze(-1) > self.H).flatten(-2)
        if self.clipped:
            return torch.cat([above, z > 0], dim=-1)
        return above

    def region_map(self, d: Tensor) -> tuple[Tensor, Tensor]:
        m, b = self.latent_dim, self.n_bases
        d = d.to(self.A.dtype)
        above = d[..., : m * b].unflatten(-1, (m, b))
        # inside a region relu(z_i - H_ib) = d_ib (z_i - H_ib), so each unit's basis sum
        # has slope sum_b alpha_b d_ib and offset -sum_b alpha_b d_ib H_ib
        slope = (above * self.alpha).sum(-1)
        offset = -(above * self.alpha * self.H).sum(-1)
        if self.clipped:
            slope = slope - self.alpha.sum() * d[..., m * b :]
        w = self.w_offdiag()
        jac = torch.diag(self.A) + w * slope.unsqueeze(-2)
        c = self.h + offset @ w.T
        return jac, c

    def regularization(self) -> Tensor:
        """``||1 - A||^2 + ||W||^2 + ||h||^2 + ||alpha||^2 + ||C||^2`` (AbstractDendriticPLRNN)."""
        reg = _l2(1 - self.A) + _l2(self.w_offdiag()) + _l2(self.h) + _l2(self.alpha)
        return reg + _l2(self.C) if self.C is not None else reg


class ShallowPLRNN(LatentModel):
    """Shallow PLRNN (shallow_plrnn.jl).

    ``z_t = A z + W1 relu(W2 z + h2) + h1 (+ C s_t)``, or, clipped,
    ``z_t = A z + W1 [relu(W2 z + h2) - relu(W2 z)] + h1 (+ C s_t)``.

    Parameters
    ----------
    latent_dim : int
        ``M``.
    hidden_dim : int
        ``H``.
    input_dim : int, default 0
        ``K``.
    clipped : bool, default False
        Use the clipped form (``clippedShallowPLRNN``).

    Notes
    -----
    ``A`` and ``h1`` from ``initialize_A_W_h`` (its ``W`` is discarded),
    ``W1 ~ uniform_init((M, H))``, ``W2 ~ uniform_init((H, M))``, ``h2 = 0``
    (unclipped) or ``h2 ~ uniform_init((H,))`` (clipped). Activation pattern:
    ``W2 z + h2 > 0`` (H units), followed (clipped only) by ``W2 z > 0``.
    """

    def __init__(
        self, latent_dim: int, hidden_dim: int, input_dim: int = 0, clipped: bool = False
    ) -> None:
        super().__init__(latent_dim, input_dim)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, 1)
        self.clipped = check_bool("clipped", clipped)
        a, _, h1 = _init_a_w_h(self.latent_dim)
        self.A = nn.Parameter(a)
        self.h1 = nn.Parameter(h1)
        self.W1 = nn.Parameter(_uniform_init(self.latent_dim, self.hidden_dim))
        self.W2 = nn.Parameter(_uniform_init(self.hidden_dim, self.latent_dim))
        h2 = _uniform_init(self.hidden_dim) if self.clipped else torch.zeros(self.hidden_dim)
        self.h2 = nn.Parameter(h2)

    @property
    def n_switches(self) -> int:
        return self.hidden_dim * (1 + int(self.clipped))

    def _autonomous_step(self, z: Tensor) -> Tensor:
        w2z = z @ self.W2.T
        hidden = torch.relu(w2z + self.h2)
        if self.clipped:
            hidden = hidden - torch.relu(w2z)
        return self.A * z + hidden @ self.W1.T + self.h1

    def activation_pattern(self, z: Tensor) -> Tensor:
        w2z = z @ self.W2.T
        d = w2z + self.h2 > 0
        return torch.cat([d, w2z > 0], dim=-1) if self.clipped else d

    def region_map(self, d: Tensor) -> tuple[Tensor, Tensor]:
        d = d.to(self.A.dtype)
        on = d[..., : self.hidden_dim]
        gain = on - d[..., self.hidden_dim :] if self.clipped else on
        jac = torch.diag(self.A) + (self.W1 * gain.unsqueeze(-2)) @ self.W2
        c = self.h1 + (on * self.h2) @ self.W1.T
        return jac, c

    def regularization(self) -> Tensor:
        """``||1 - A||^2 + ||W1||^2 + ||W2||^2 + ||h1||^2 + ||h2||^2 + ||C||^2``.

        As ``regularize`` for ``AbstractShallowPLRNN``.
        """
        reg = _l2(1 - self.A) + _l2(self.W1) + _l2(self.W2) + _l2(self.h1) + _l2(self.h2)
        return reg + _l2(self.C) if self.C is not None else reg


class DiagonalLinearRNN(LatentModel):
    """Elementwise linear RNN ``z_t = a * z + h (+ C s_t)``.

    A linear baseline without a Julia counterpart; being elementwise, its
    forced recurrence runs as a linear scan (:meth:`linear_decay`).

    Parameters
    ----------
    latent_dim : int
        ``M``.
    input_dim : int, default 0
        ``K``.

    Notes
    -----
    ``a ~ U(0.5, 0.99)`` (stable, slowly decaying memory as in LRU-style
    initializations), ``h = 0``. There are no switching units, so the whole
    state space is one region with ``J = diag(a)``, ``c = h``.
    """

    def __init__(self, latent_dim: int, input_dim: int = 0) -> None:
        super().__init__(latent_dim, input_dim)
        self.A = nn.Parameter(torch.empty(self.latent_dim).uniform_(0.5, 0.99))
        self.h = nn.Parameter(torch.zeros(self.latent_dim))

    @property
    def n_switches(self) -> int:
        return 0

    def _autonomous_step(self, z: Tensor) -> Tensor:
        return self.A * z + self.h

    def activation_pattern(self, z: Tensor) -> Tensor:
        return torch.zeros((*z.shape[:-1], 0), dtype=torch.bool, device=z.device)

    def region_map(self, d: Tensor) -> tuple[Tensor, Tensor]:
        jac = torch.diag(self.A).expand(*d.shape[:-1], self.latent_dim, self.latent_dim)
        return jac, self.h.expand(*d.shape[:-1], self.latent_dim)

    def linear_decay(self) -> Tensor | None:
        """``a``: the map is ``a * z + h`` exactly, shape (M,)."""
        return self.A

    def regularization(self) -> Tensor:
        """``||1 - a||^2 + ||h||^2 + ||C||^2``, the L2 penalty of the PLRNN family."""
        reg = _l2(1 - self.A) + _l2(self.h)
        return reg + _l2(self.C) if self.C is not None else reg


class ALRNN(LatentModel):
    """Almost-linear RNN ``z_t = A z + W phi(z) + h (+ C s_t)`` (Brenner et al. 2024).

    ``phi`` is the identity on the first ``M - P`` units and ReLU on the last ``P``.

    Parameters
    ----------
    latent_dim : int
        ``M``.
    n_nonlinear : int
        ``P`` with ``0 <= P <= M``.
    input_dim : int, default 0
        ``K``.

    Notes
    -----
    ``A = diag(K)`` of the normalized positive-definite matrix, ``W ~ 0.01 N(0, 1)``
    (full, its diagonal is used), ``h = 0``, as in the ALRNN-DSR tutorial.
    Activation pattern: ``z_i > 0`` for the last ``P`` units.
    """

    def __init__(self, latent_dim: int, n_nonlinear: int, input_dim: int = 0) -> None:
        super().__init__(latent_dim, input_dim)
        self.n_nonlinear = check_int("n_nonlinear", n_nonlinear, 0)
        if self.n_nonlinear > self.latent_dim:
            raise ValueError(
                f"n_nonlinear must be <= latent_dim={self.latent_dim}, got {n_nonlinear}"
            )
        k = _normalized_positive_definite(self.latent_dim)
        self.A = nn.Parameter(torch.diagonal(k).clone())
        self.W = nn.Parameter(0.01 * torch.randn(self.latent_dim, self.latent_dim))
        self.h = nn.Parameter(torch.zeros(self.latent_dim))

    @property
    def n_switches(self) -> int:
        return self.n_nonlinear

    def phi(self, z: Tensor) -> Tensor:
        """Identity on the first ``M - P`` units, ReLU on the last ``P``, (..., M) -> (..., M)."""
        n_lin = self.latent_dim - self.n_nonlinear
        return torch.cat([z[..., :n_lin], torch.relu(z[..., n_lin:])], dim=-1)

    def _autonomous_step(self, z: Tensor) -> Tensor:
        return self.A * z + self.phi(z) @ self.W.T + self.h

    def activation_pattern(self, z: Tensor) -> Tensor:
        return z[..., self.latent_dim - self.n_nonlinear :] > 0

    def region_map(self, d: Tensor) -> tuple[Tensor, Tensor]:
        d = d.to(self.A.dtype)
        ones = torch.ones(
            (*d.shape[:-1], self.latent_dim - self.n_nonlinear), dtype=d.dtype, device=d.device
        )
        gain = torch.cat([ones, d], dim=-1)
        jac = torch.diag(self.A) + self.W * gain.unsqueeze(-2)
        return jac, self.h.expand(jac.shape[:-1])

    def regularization(self) -> Tensor:
        """``|1 - A|_1 + |W|_1 + |h|_1`` (L1 ``regularize`` for ALRNNs in ALRNN-DSR)."""
        return (1 - self.A).abs().sum() + self.W.abs().sum() + self.h.abs().sum()
