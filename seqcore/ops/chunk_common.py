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


def segment_sums(g: Tensor) -> Tensor:
    """``sum_{j < s <= i} g_s`` for ``j <= i``, ``-inf`` above the diagonal; ``g``: ``(..., C)`` -> ``(..., C, C)``.

    Each segment is summed directly rather than as a difference ``b_i - b_j`` of prefix sums ``b``: the
    difference loses ``|b| * eps``, about 1e-4 relative for decays of -20 per step over 64 steps, which is the
    whole float32 budget of the decays that survive. Row ``C - 1`` holds the decays ``b_C - b_j`` to the chunk end.
    A ``-inf`` step (a reset) only ever adds, so every segment that spans it is ``-inf`` and none is NaN.
    """
    c = g.shape[-1]
    below = causal_mask(c, g.device, strict=True)
    steps = g[..., :, None].expand(*g.shape, c).masked_fill(~below, 0.0)
    sums = steps.cumsum(dim=-2)
    return sums.masked_fill(~causal_mask(c, g.device), float("-inf"))


def pairwise_decay(segments: Tensor, strict: bool) -> Tensor:
    """``exp`` of :func:`segment_sums` output, with the diagonal (``e^0 = 1``) zeroed too if ``strict``.

    Masked exponents are ``-inf`` before ``exp`` so no positive exponent is ever evaluated.
    """
    if strict:
        segments = segments.masked_fill(torch.eye(segments.shape[-1], dtype=torch.bool, device=segments.device), float("-inf"))
    return segments.exp()


def causal_mask(c: int, device: torch.device, strict: bool = False) -> Tensor:
    """Lower-triangular ``(C, C)`` boolean mask, with or without the diagonal."""
    return torch.ones(c, c, dtype=torch.bool, device=device).tril(-1 if strict else 0)
