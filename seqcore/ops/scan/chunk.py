"""Chunked elementwise scan: a step loop inside chunks run for all chunks at once, then a parallel prefix scan
across chunk boundaries.

Coefficients are multiplied directly (no logarithms): they are products of values in ``[-1, 1]``, which can
underflow to zero but never overflow, and zeros and negative values need no special case.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _shift(x: Tensor, offset: int, dim: int, fill: float) -> Tensor:
    pad_shape = list(x.shape)
    pad_shape[dim] = offset
    kept = x.narrow(dim, 0, x.shape[dim] - offset)
    return torch.cat([x.new_full(pad_shape, fill), kept], dim=dim)


def _prefix_scan(a: Tensor, x: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """Inclusive scan from a zero state by recursive doubling (Hillis-Steele).

    Returns ``(prod_{s<=t} a_s, h_t)`` along ``dim``.
    """
    offset = 1
    while offset < a.shape[dim]:
        x = x + a * _shift(x, offset, dim, 0.0)
        a = a * _shift(a, offset, dim, 1.0)
        offset *= 2
    return a, x


def _scan_forward(x: Tensor, a: Tensor, h0: Tensor | None, chunk_size: int) -> tuple[Tensor, Tensor]:
    n, length, d = x.shape
    c = min(chunk_size, 1 << max(length - 1, 0).bit_length())
    pad = -length % c
    if pad:  # identity steps: unit coefficient, zero input
        x = torch.cat([x, x.new_zeros(n, pad, d)], dim=1)
        a = torch.cat([a, a.new_ones(n, pad, d)], dim=1)
    nt = x.shape[1] // c
    xc, ac = x.view(n, nt, c, d), a.view(n, nt, c, d)
    # Inside chunks: the step loop, run for every chunk at once (c steps instead of T).
    h, hs = x.new_zeros(n, nt, d), []
    for x_t, a_t in zip(xc.unbind(2), ac.unbind(2)):
        h = torch.addcmul(x_t, a_t, h)
        hs.append(h)
    local, decay = torch.stack(hs, dim=2), ac.cumprod(dim=2)
    # Across chunks: a parallel prefix scan over the chunk totals.
    chunk_decay, chunk_end = decay[:, :, -1], local[:, :, -1]
    if h0 is not None:
        chunk_end = torch.cat([chunk_end[:, :1] + chunk_decay[:, :1] * h0[:, None], chunk_end[:, 1:]], dim=1)
    _, ends = _prefix_scan(chunk_decay, chunk_end, dim=1)
    start = _shift(ends, 1, 1, 0.0)
    if h0 is not None:
        start[:, 0] = h0
    y = (local + decay * start[:, :, None]).view(n, nt * c, d)[:, :length]
    return y, ends[:, -1]


class _ChunkScan(torch.autograd.Function):
    """The backward of a linear scan is the same scan run backwards in time, so it reuses the forward."""

    @staticmethod
    def forward(ctx, x: Tensor, a: Tensor, h0: Tensor | None, chunk_size: int) -> tuple[Tensor, Tensor]:
        y, ht = _scan_forward(x, a, h0, chunk_size)
        ctx.save_for_backward(a, y, h0)
        ctx.chunk_size = chunk_size
        return y, ht

    @staticmethod
    def backward(ctx, dy: Tensor, dht: Tensor):
        a, y, h0 = ctx.saved_tensors
        # dh_t = dy_t + a_{t+1} dh_{t+1}; the gradient of the final state enters through a unit coefficient.
        a_next = torch.cat([a[:, 1:], torch.ones_like(a[:, :1])], dim=1)
        dht = None if dht is None else dht.to(dy.dtype)
        dh, _ = _scan_forward(dy.flip(1).contiguous(), a_next.flip(1).contiguous(), dht, ctx.chunk_size)
        dh = dh.flip(1)
        h_prev = _shift(y, 1, 1, 0.0)
        if h0 is not None:
            h_prev[:, 0] = h0
        dh0 = a[:, 0] * dh[:, 0] if h0 is not None else None
        return dh, dh * h_prev, dh0, None


def scan_chunk(x: Tensor, a: Tensor, initial_state: Tensor | None, chunk_size: int) -> tuple[Tensor, Tensor]:
    """Chunked form of :func:`seqcore.ops.scan.reference.scan_recurrent`.

    Args:
        x, a: ``(N, L, D)``.
        initial_state: ``(N, D)`` or ``None``.
    Returns:
        ``y: (N, L, D)`` and the last state ``(N, D)``.
    """
    return _ChunkScan.apply(x.contiguous(), a.contiguous(), initial_state, chunk_size)
