"""Multi-dimensional position encodings for tokens on a grid of any rank (1-D sequences, images, volumes).

Tokens are in row-major order of ``grid_shape`` (the last axis fastest), as a patch embedding flattens them.

- :func:`md_lrpe_angles`: MD-LRPE. The key channels of a head are split into one group per axis; channel ``d``
  of the group of axis ``a`` is rotated by ``coord_a * omega_d`` with geometric frequencies ``omega``, so
  ``q'.k'`` (see :func:`seqcore.nn.rotate`) depends only on the offset along each axis.
- :class:`MDTPE`: MD-TPE. Along each axis, a decayed sum over the tokens of that line,
  ``y_i = q * sum_j lambda^|i - j| (k * x_j)``, with one learned decay ``lambda`` per head and learned constant
  vectors ``q``, ``k`` per axis; summed over axes, normalized, projected and added to the patch embeddings.
  Each direction is one :func:`seqcore.ops.scan` with a fixed coefficient.

Inputs: grid shapes are non-empty sequences of positive ints. :class:`MDTPE` takes floating-point ``x`` of its
parameters' dtype and device; NaN in ``x`` propagates to the outputs of the lines through it (a layer inside a
model; :class:`vision.LightNet` refuses non-finite images at its input).
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from seqcore import ops
from seqcore.nn.validation import check_positive_float
from seqcore.ops.validation import check_float, check_int, check_same_device


def _check_grid(grid_shape: Sequence[int]) -> tuple[int, ...]:
    if isinstance(grid_shape, (str, bytes)) or not isinstance(grid_shape, Sequence):
        raise TypeError(f"grid_shape must be a sequence of ints, got {type(grid_shape).__name__} {grid_shape!r}")
    sizes = tuple(grid_shape)
    if not sizes or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in sizes):
        raise ValueError(f"grid_shape must be a non-empty sequence of positive sizes (ints), got {sizes}")
    return tuple(int(n) for n in sizes)


def check_base(name: str, base: object) -> float:
    """A frequency base: a finite number ``> 1``."""
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or not (math.isfinite(base) and base > 1):
        raise ValueError(f"{name} must be a finite number > 1, got {base!r}")
    return float(base)


def grid_coordinates(grid_shape: Sequence[int], device: torch.device | None = None) -> Tensor:
    """Integer coordinates of every token in row-major order: ``(T, ndim)`` with ``T = prod(grid_shape)``."""
    shape = _check_grid(grid_shape)
    axes = [torch.arange(n, device=device) for n in shape]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(shape))


def md_lrpe_angles(
    grid_shape: Sequence[int], head_dim: int, base: float = 100.0, device: torch.device | None = None
) -> Tensor:
    """MD-LRPE angles ``(T, head_dim)`` for :class:`seqcore.nn.LightNetAttention` (its ``angles`` input).

    Channels are split over the axes as evenly as possible (the first axes get the remainder); within an axis
    group of ``n`` channels the frequencies are ``base ** (-j / n)``, ``j = 0 .. n - 1``, so the fastest channel
    turns by one radian per token and the slowest by about ``1 / base``.
    """
    shape = _check_grid(grid_shape)
    head_dim = check_int("head_dim", head_dim, 1)
    if head_dim < len(shape):
        raise ValueError(f"head_dim ({head_dim}) must be at least the number of grid axes ({len(shape)})")
    base = check_base("base", base)
    coords = grid_coordinates(shape, device).to(torch.float32)
    sizes = [head_dim // len(shape) + (1 if a < head_dim % len(shape) else 0) for a in range(len(shape))]
    parts = []
    for axis, n in enumerate(sizes):
        freqs = base ** (-torch.arange(n, dtype=torch.float32, device=device) / n)
        parts.append(coords[:, axis : axis + 1] * freqs)
    return torch.cat(parts, dim=-1)


class MDTPE(nn.Module):
    """MD-TPE: ``x + proj(norm(sum_axes q_a * Toeplitz_lambda(k_a * x)))`` on tokens ``(B, T, C)`` of a grid.

    Args:
        dim: channels C.
        num_heads: decays are shared by the ``C / num_heads`` channels of a head.
        ndim: number of grid axes.
        init_decay: initial ``lambda`` of every head (sigmoid-parametrized, stays in (0, 1)).
    """

    def __init__(self, dim: int, num_heads: int, ndim: int = 2, init_decay: float = 0.9) -> None:
        super().__init__()
        dim, num_heads, ndim = check_int("dim", dim, 1), check_int("num_heads", num_heads, 1), check_int("ndim", ndim, 1)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        if not 0 < check_positive_float("init_decay", init_decay) < 1:
            raise ValueError(f"init_decay must lie in (0, 1), got {init_decay}")
        self.dim, self.num_heads, self.ndim = dim, num_heads, ndim
        self.decay_logit = nn.Parameter(torch.full((ndim, num_heads), math.log(init_decay / (1 - init_decay))))
        self.q = nn.Parameter(torch.ones(ndim, dim))
        self.k = nn.Parameter(torch.ones(ndim, dim))
        self.norm = nn.RMSNorm(dim)
        self.proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero output projection: the encoding starts as the identity and grows as training needs it."""
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, grid_shape: Sequence[int]) -> Tensor:
        """``x: (B, T, C)`` with ``T = prod(grid_shape)`` -> ``(B, T, C)``."""
        shape = _check_grid(grid_shape)
        if len(shape) != self.ndim:
            raise ValueError(f"this MDTPE encodes {self.ndim}-D grids, got grid_shape {shape}")
        check_float("x", x, 3, f"(B, T={math.prod(shape)}, C={self.dim})")
        check_same_device(x=x, parameters=self.q)
        if x.dtype != self.q.dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(f"x is {x.dtype} but MDTPE's parameters are {self.q.dtype}; cast one to the other")
        b, t, c = x.shape
        if t != math.prod(shape) or c != self.dim:
            raise ValueError(f"x must have shape (B, T={math.prod(shape)}, C={self.dim}), got {tuple(x.shape)}")
        grid = x.reshape(b, *shape, c)
        total = torch.zeros_like(grid)
        decays = torch.sigmoid(self.decay_logit).repeat_interleave(c // self.num_heads, dim=1).to(x.dtype)
        for axis in range(self.ndim):
            lines = grid.movedim(axis + 1, -2)  # (B, ..., L_axis, C)
            lead = lines.shape[:-2]
            u = (lines * self.k[axis]).reshape(-1, shape[axis], c)
            a = decays[axis].expand_as(u)
            forward, _ = ops.scan(u, a)
            backward, _ = ops.scan(u, a, reverse=True)
            # Both directions include the token itself; count it once.
            y = self.q[axis] * (forward + backward - u)
            total = total + y.reshape(*lead, shape[axis], c).movedim(-2, axis + 1)
        return x + self.proj(self.norm(total.reshape(b, t, c)))
