"""Observation models mapping latent states ``z`` (M) to observations ``x`` (N).

Both follow ``src/models/affine.jl`` of ``DurstewitzLab/GTF-shPLRNN``:

* :class:`IdentityObservation` (``Identity``): ``x = z[:N]``. ``invert`` pads the
  unobserved ``M - N`` latents with zeros (``apply_inverse``), which are the
  forcing signals; whether they are used is the trainer's choice (with partial
  forcing, ``train_!`` in ``training.jl`` forces only the first ``N`` latents
  and the others keep their model-generated values, see ``GTFRecur`` in
  ``tfrecur.jl``). The initial state of a sequence is instead
  ``init_state(x) = [x; L x]`` with a trainable ``L`` (M - N, N),
  Glorot-uniform; the regularizer is ``||L||^2`` (``regularization.jl``).
* :class:`AffineObservation` (``Affine``): ``x = B z + b`` with
  ``B ~ kaiming_normal`` (``N(0, 2 / M)``), ``b = 0`` and trainable only with
  ``bias=True`` (Julia's ``use_bias`` defaults to false).
  ``invert(x) = B^+ (x - b)`` (``apply_inverse``, also used as ``init_state``).
  The regularizer pulls the condition number of ``B`` to one:
  ``(1 - s_max / (s_min + eps))^2`` with ``eps = 1e-8``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqcore.ops.validation import check_bool, check_int

__all__ = ["AffineObservation", "IdentityObservation"]


def _dims(obs_dim: int, latent_dim: int) -> tuple[int, int]:
    return check_int("obs_dim", obs_dim, 1), check_int("latent_dim", latent_dim, 1)


def _check_last(x: Tensor, size: int, name: str) -> None:
    if not isinstance(x, Tensor) or x.dim() == 0 or x.shape[-1] != size:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape (..., {size}), got {shape}")


class IdentityObservation(nn.Module):
    """Read out the first ``N`` of ``M`` latents (``Identity`` in affine.jl).

    Parameters
    ----------
    obs_dim : int
        ``N``.
    latent_dim : int
        ``M >= N``.
    """

    def __init__(self, obs_dim: int, latent_dim: int) -> None:
        super().__init__()
        self.obs_dim, self.latent_dim = _dims(obs_dim, latent_dim)
        if latent_dim < obs_dim:
            raise ValueError(
                f"identity observation needs latent_dim >= obs_dim, got {latent_dim} < {obs_dim}"
            )
        if latent_dim > obs_dim:
            self.L: nn.Parameter | None = nn.Parameter(
                nn.init.xavier_uniform_(torch.empty(latent_dim - obs_dim, obs_dim))
            )
        else:
            self.register_parameter("L", None)

    def forward(self, z: Tensor) -> Tensor:
        """``x = z[..., :N]``, (..., M) -> (..., N)."""
        _check_last(z, self.latent_dim, "z")
        return z[..., : self.obs_dim]

    def invert(self, x: Tensor) -> Tensor:
        """Forcing signals ``[x; 0]``, (..., N) -> (..., M)."""
        _check_last(x, self.obs_dim, "x")
        pad = x.new_zeros((*x.shape[:-1], self.latent_dim - self.obs_dim))
        return torch.cat([x, pad], dim=-1)

    def init_state(self, x: Tensor) -> Tensor:
        """Initial latent state ``[x; L x]``, (..., N) -> (..., M)."""
        _check_last(x, self.obs_dim, "x")
        if self.L is None:
            return x
        return torch.cat([x, x @ self.L.T], dim=-1)

    def regularization(self) -> Tensor:
        """``||L||^2`` (zero when ``M == N``), shape ()."""
        if self.L is None:
            return torch.zeros(())
        return (self.L * self.L).sum()


class AffineObservation(nn.Module):
    """Affine read-out ``x = B z + b`` (``Affine`` in affine.jl).

    Parameters
    ----------
    obs_dim : int
        ``N``.
    latent_dim : int
        ``M``.
    bias : bool, default False
        Train ``b``; otherwise ``b`` is a zero buffer, as with Julia's default
        ``use_bias=false``.
    eps : float, default 1e-8
        Guard in the condition-number regularizer.
    """

    def __init__(
        self, obs_dim: int, latent_dim: int, bias: bool = False, eps: float = 1e-8
    ) -> None:
        super().__init__()
        self.obs_dim, self.latent_dim = _dims(obs_dim, latent_dim)
        self.eps = float(eps)
        # Flux.kaiming_normal(N, M): std = sqrt(2 / fan_in) with fan_in = M
        self.B = nn.Parameter(torch.randn(obs_dim, latent_dim) * math.sqrt(2.0 / latent_dim))
        if check_bool("bias", bias):
            self.b = nn.Parameter(torch.zeros(obs_dim))
        else:
            self.register_buffer("b", torch.zeros(obs_dim))

    def forward(self, z: Tensor) -> Tensor:
        """``x = B z + b``, (..., M) -> (..., N)."""
        _check_last(z, self.latent_dim, "z")
        return z @ self.B.T + self.b

    def invert(self, x: Tensor) -> Tensor:
        """``z_hat = B^+ (x - b)``, (..., N) -> (..., M).

        For ``M > N`` and full-rank ``B`` this is the minimum-norm solution of
        ``B z = x - b``; for ``M < N`` the least-squares one.
        """
        _check_last(x, self.obs_dim, "x")
        return (x - self.b) @ torch.linalg.pinv(self.B).T

    def init_state(self, x: Tensor) -> Tensor:
        """Initial latent state, identical to :meth:`invert`, (..., N) -> (..., M)."""
        return self.invert(x)

    def regularization(self) -> Tensor:
        """``(1 - s_max / (s_min + eps))^2`` with ``s`` the singular values of ``B``, shape ()."""
        s = torch.linalg.svdvals(self.B)
        return (1.0 - s[0] / (s[-1] + self.eps)) ** 2
