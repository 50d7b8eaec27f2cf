"""Helpers shared by the chunkwise-parallel forms of the matrix-state families."""
from __future__ import annotations

import torch
from torch import Tensor


def to_chunks(x: Tensor, chunk_size: int) -> Tensor:
    """``(N, L, H, *rest) -> (N, H, L // C, C, *rest)``."""
    n, length, h = x.shape[:3]
    x = x.reshape(n, length // chunk_size, chunk_size, h, *x.shape[3:])
    return x.movedim(3, 1)


def from_chunks(x: Tensor) -> Tensor:
    """Inverse of :func:`to_chunks`."""
    n, h, nt, c = x.shape[:4]
    return x.movedim(1, 3).reshape(n, nt * c, h, *x.shape[4:])


def pairwise_decay(b: Tensor, strict: bool) -> Tensor:
    """``exp(b_i - b_j)`` for ``j <= i`` (``j < i`` if ``strict``), zero above; ``b``: ``(..., C)``.

    Masked exponents are set to ``-inf`` before ``exp`` so no positive exponent is ever evaluated.
    """
    mask = causal_mask(b.shape[-1], b.device, strict)
    diff = b[..., :, None] - b[..., None, :]
    return torch.where(mask, diff, torch.full_like(diff, float("-inf"))).exp()


def causal_mask(c: int, device: torch.device, strict: bool = False) -> Tensor:
    """Lower-triangular ``(C, C)`` boolean mask, with or without the diagonal."""
    return torch.ones(c, c, dtype=torch.bool, device=device).tril(-1 if strict else 0)
