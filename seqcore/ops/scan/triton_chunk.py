"""Chunked (time-tiled) Triton kernels for the elementwise scan ``h_t = a_t * h_{t-1} + x_t``.

A step ``h -> a h + x`` is the affine map ``(a, x)``; two steps compose associatively as
``(a1, x1), (a2, x2) -> (a1 a2, a2 x1 + x2)``, so a tile of ``BT`` steps is scanned in parallel with
``tl.associative_scan`` over its time axis, giving for every step the product of the coefficients so far and the
state reached from a zero start. Tiles are joined by the same scan one level up:

1. ``tile`` pass, one program per (time tile, channel block): each tile's (product of ``a``, final state from
   zero) goes to a ``(NT, D)`` float32 table.
2. ``carry`` pass, one program per (sequence, channel block): scans the tile table of its sequence, ``BC``
   tiles at a time with the same associative scan, and overwrites it with the true state at the end of every
   tile (and writes the final state).
3. ``apply`` pass, one program per (time tile, channel block): rescans its tile and adds the state entering it,
   ``y = local_y + prefix_prod(a) * carry``.

Why three passes rather than one program per (sequence, channel block) looping over tiles with the carry in
registers: the single pass launches only ``N * D / BD`` programs, each serial over ``T / BT`` tiles, so for a
small batch times channel count (one sequence of 256 channels: 8 programs) most SMs idle while each program
waits on one dependent load per tile. Here the two passes that stream ``x`` and ``a`` launch ``NT * D / BD``
programs (``T / BT`` times more), and the only pass with the small grid reads two floats per tile and channel
(1/32 of the data) and covers ``BC`` tiles per step. The price is reading ``x`` and ``a`` twice.

The backward is the same scan run backwards in time: ``dh_t = dy_t + a_{t+1} dh_{t+1}`` (``dh`` after the last
step is ``dht``), ``dx = dh``, ``da_t = dh_t h_{t-1}``, ``dh0 = a_bos dh_bos``; tiles are loaded in reverse time
order so the same forward scan runs inside them. ``h_{t-1}`` is read from the forward output ``y``.

Coefficients are multiplied directly (no logarithms), so any sign is allowed and ``a = 0`` is an exact reset:
the combine gives ``a2 x1 + x2 = x2`` and a zero product, so nothing before the reset reaches later steps.
Varlen: tiles come from :func:`~seqcore.ops.chunk_index.chunk_table` (one host sync per call, no Python loop
over sequences); a tile never crosses a sequence boundary.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from ..chunk_index import chunk_table

# Time steps per tile.
BT = 64
# Largest number of tiles the carry pass scans at once.
MAX_BC = 64


@triton.jit
def _combine(a1, x1, a2, x2):
    # (a1, x1) first, then (a2, x2): h -> a2 (a1 h + x1) + x2.
    return a1 * a2, a2 * x1 + x2


@triton.jit
def _last_row(v, ROWS: tl.constexpr):
    """Row ``ROWS - 1`` of a ``(ROWS, BD)`` tile (padding rows are identity steps, so it is the tile's end)."""
    rows = tl.arange(0, ROWS)
    return tl.sum(tl.where(rows[:, None] == ROWS - 1, v, 0.0), 0)


@triton.jit
def _tile_bounds(indices, cu_seqlens, i_t, BT: tl.constexpr):
    """Sequence index and ``[bos, eos)`` of the sequence owning tile ``i_t``, and the tile's steps ``[t0, t1)``."""
    i_n = tl.cast(tl.load(indices + 2 * i_t), tl.int64)
    i_c = tl.cast(tl.load(indices + 2 * i_t + 1), tl.int64)
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    t0 = bos + i_c * BT
    return i_n, bos, eos, t0, tl.minimum(t0 + BT, eos)


@triton.jit
def _fwd_local(x, a, t0, t1, o_d, m_d, D, BT: tl.constexpr):
    """Forward scan of one tile from a zero state: ``(prefix product of a, local state)``, each ``(BT, BD)``."""
    o_t = t0 + tl.arange(0, BT)
    m = (o_t < t1)[:, None] & m_d[None, :]
    o = o_t[:, None] * D + o_d[None, :]
    # Padding rows are identity steps (a = 1, x = 0), so the last row holds the tile's end.
    b_x = tl.load(x + o, mask=m, other=0.0).to(tl.float32)
    b_a = tl.load(a + o, mask=m, other=1.0).to(tl.float32)
    return tl.associative_scan((b_a, b_x), 0, _combine)


@triton.jit
def _bwd_local(a, dy, t1, eos, n_t, o_d, m_d, D, BT: tl.constexpr):
    """Reverse-time scan of one tile from a zero gradient: row ``r`` is step ``t1 - 1 - r``.

    Returns the prefix product of ``a_{t+1}`` and the local ``dh`` (both ``(BT, BD)``), the step of every row
    ``(BT,)``, and the tile's mask and element offsets ``(BT, BD)``.
    """
    o_t = t1 - 1 - tl.arange(0, BT)
    m_t = tl.arange(0, BT) < n_t
    m = m_t[:, None] & m_d[None, :]
    o = o_t[:, None] * D + o_d[None, :]
    b_dy = tl.load(dy + o, mask=m, other=0.0).to(tl.float32)
    # dh_t takes a_{t+1} dh_{t+1}; after the sequence's last step the gradient dht enters with unit weight.
    m_next = m & (o_t + 1 < eos)[:, None]
    b_a = tl.load(a + o + D, mask=m_next, other=1.0).to(tl.float32)
    b_p, b_dh = tl.associative_scan((b_a, b_dy), 0, _combine)
    return b_p, b_dh, o_t, m, o


@triton.jit
def _scan_fwd_tile_kernel(x, a, tile_a, tile_h, indices, cu_seqlens, D, BT: tl.constexpr, BD: tl.constexpr):
    i_t, i_d = tl.cast(tl.program_id(0), tl.int64), tl.program_id(1)
    o_d = i_d * BD + tl.arange(0, BD)
    m_d = o_d < D
    _, _, _, t0, t1 = _tile_bounds(indices, cu_seqlens, i_t, BT)
    b_p, b_h = _fwd_local(x, a, t0, t1, o_d, m_d, D, BT)
    tl.store(tile_a + i_t * D + o_d, _last_row(b_p, BT), mask=m_d)
    tl.store(tile_h + i_t * D + o_d, _last_row(b_h, BT), mask=m_d)


@triton.jit
def _scan_carry_kernel(
    tile_a, tile_h, offsets, h_in, h_out, a, cu_seqlens, D,
    HAS_IN: tl.constexpr, HAS_OUT: tl.constexpr, REVERSE: tl.constexpr, BC: tl.constexpr, BD: tl.constexpr,
):
    """Per (sequence, channel block): turn tile summaries into the state after each tile, in place.

    Forward: ``h_in`` is ``h0``, ``h_out`` the final state. ``REVERSE`` (the backward) walks the tiles from last
    to first; ``h_in`` is ``dht`` and ``h_out`` gets ``dh0 = a_bos dh_bos``. Both ``(N, D)``.
    """
    i_n, i_d = tl.cast(tl.program_id(0), tl.int64), tl.program_id(1)
    o_d = i_d * BD + tl.arange(0, BD)
    m_d = o_d < D
    c0, c1 = tl.load(offsets + i_n), tl.load(offsets + i_n + 1)
    carry = tl.zeros([BD], dtype=tl.float32)
    if HAS_IN:
        carry = tl.load(h_in + i_n * D + o_d, mask=m_d, other=0.0).to(tl.float32)
    for j in range(0, c1 - c0, BC):
        r = j + tl.arange(0, BC)
        if REVERSE:
            rows = c1 - 1 - r
        else:
            rows = c0 + r
        m = (r < c1 - c0)[:, None] & m_d[None, :]
        o = rows[:, None] * D + o_d[None, :]
        b_p = tl.load(tile_a + o, mask=m, other=1.0)
        b_h = tl.load(tile_h + o, mask=m, other=0.0)
        b_p, b_h = tl.associative_scan((b_p, b_h), 0, _combine)
        b_h += b_p * carry[None, :]
        tl.store(tile_h + o, b_h, mask=m)
        carry = _last_row(b_h, BC)
    if HAS_OUT:
        if REVERSE:
            bos = tl.load(cu_seqlens + i_n)
            carry *= tl.load(a + bos * D + o_d, mask=m_d, other=0.0).to(tl.float32)
        tl.store(h_out + i_n * D + o_d, carry.to(h_out.dtype.element_ty), mask=m_d)


@triton.jit
def _scan_fwd_apply_kernel(
    x, a, tile_h, h0, y, indices, cu_seqlens, D,
    HAS_H0: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr,
):
    i_t, i_d = tl.cast(tl.program_id(0), tl.int64), tl.program_id(1)
    o_d = i_d * BD + tl.arange(0, BD)
    m_d = o_d < D
    i_n, bos, _, t0, t1 = _tile_bounds(indices, cu_seqlens, i_t, BT)
    # The state entering the tile: the previous tile's end, or h0 for a sequence's first tile.
    first = t0 == bos
    carry = tl.load(tile_h + (i_t - 1) * D + o_d, mask=m_d & (t0 > bos), other=0.0)
    if HAS_H0:
        carry = tl.where(first, tl.load(h0 + i_n * D + o_d, mask=m_d, other=0.0).to(tl.float32), carry)
    b_p, b_h = _fwd_local(x, a, t0, t1, o_d, m_d, D, BT)
    b_y = b_h + b_p * carry[None, :]
    o_t = t0 + tl.arange(0, BT)
    m = (o_t < t1)[:, None] & m_d[None, :]
    tl.store(y + o_t[:, None] * D + o_d[None, :], b_y.to(y.dtype.element_ty), mask=m)


@triton.jit
def _scan_bwd_tile_kernel(a, dy, tile_a, tile_h, indices, cu_seqlens, D, BT: tl.constexpr, BD: tl.constexpr):
    i_t, i_d = tl.cast(tl.program_id(0), tl.int64), tl.program_id(1)
    o_d = i_d * BD + tl.arange(0, BD)
    m_d = o_d < D
    _, _, eos, t0, t1 = _tile_bounds(indices, cu_seqlens, i_t, BT)
    b_p, b_dh, _, _, _ = _bwd_local(a, dy, t1, eos, t1 - t0, o_d, m_d, D, BT)
    tl.store(tile_a + i_t * D + o_d, _last_row(b_p, BT), mask=m_d)
    tl.store(tile_h + i_t * D + o_d, _last_row(b_dh, BT), mask=m_d)


@triton.jit
def _scan_bwd_apply_kernel(
    a, h0, y, dy, dht, tile_h, dx, da, indices, cu_seqlens, D,
    HAS_H0: tl.constexpr, HAS_DHT: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr,
):
    i_t, i_d = tl.cast(tl.program_id(0), tl.int64), tl.program_id(1)
    o_d = i_d * BD + tl.arange(0, BD)
    m_d = o_d < D
    i_n, bos, eos, t0, t1 = _tile_bounds(indices, cu_seqlens, i_t, BT)
    # The gradient entering the tile from later steps: dh at the next tile's first step, or dht after the end.
    carry = tl.load(tile_h + (i_t + 1) * D + o_d, mask=m_d & (t1 < eos), other=0.0)
    if HAS_DHT:
        carry = tl.where(t1 == eos, tl.load(dht + i_n * D + o_d, mask=m_d, other=0.0).to(tl.float32), carry)
    b_p, b_dh, o_t, m, o = _bwd_local(a, dy, t1, eos, t1 - t0, o_d, m_d, D, BT)
    b_dh += b_p * carry[None, :]
    # h_{t-1}: the previous output, or the initial state (zero without one) at the sequence's first step.
    has_prev = (o_t > bos)[:, None]
    b_hp = tl.load(y + o - D, mask=m & has_prev, other=0.0).to(tl.float32)
    if HAS_H0:
        b_h0 = tl.load(h0 + i_n * D + o_d, mask=m_d, other=0.0).to(tl.float32)
        b_hp = tl.where(has_prev, b_hp, b_h0[None, :])
    tl.store(dx + o, b_dh.to(dx.dtype.element_ty), mask=m)
    tl.store(da + o, (b_dh * b_hp).to(da.dtype.element_ty), mask=m)


def _launch_params(D: int) -> tuple[int, int]:
    # 32 float32 channels = one 128-byte row segment per time step; a (64, 32) tile is 16 values a thread.
    BD = min(triton.next_power_of_2(D), 32)
    return BD, 4


def _tiles(cu_seqlens: Tensor, D: int, x: Tensor):
    table = chunk_table(cu_seqlens, BT)
    tile_a = x.new_empty(table.num_chunks, D, dtype=torch.float32)
    tile_h = x.new_empty(table.num_chunks, D, dtype=torch.float32)
    # Tiles per sequence <= NT, so a smaller power of two covers short inputs in one carry step.
    BC = min(MAX_BC, triton.next_power_of_2(table.num_chunks))
    return table, tile_a, tile_h, BC


def scan_fwd(x: Tensor, a: Tensor, initial_state: Tensor | None, cu_seqlens: Tensor) -> tuple[Tensor, Tensor]:
    """Packed forward scan.

    Args:
        x, a: ``(1, T, D)``; initial_state: ``(N, D)`` or ``None``; cu_seqlens: ``(N + 1,)`` int64.
    Returns:
        ``y: (1, T, D)`` in ``x.dtype`` and the final state ``(N, D)`` float32.
    """
    D = x.shape[-1]
    N = cu_seqlens.numel() - 1
    BD, num_warps = _launch_params(D)
    ND = triton.cdiv(D, BD)
    table, tile_a, tile_h, BC = _tiles(cu_seqlens, D, x)
    y = torch.empty_like(x)
    final_state = x.new_empty(N, D, dtype=torch.float32)
    grid = (table.num_chunks, ND)
    _scan_fwd_tile_kernel[grid](x, a, tile_a, tile_h, table.indices, cu_seqlens, D, BT=BT, BD=BD, num_warps=num_warps)
    _scan_carry_kernel[(N, ND)](
        tile_a, tile_h, table.offsets, initial_state, final_state, a, cu_seqlens, D,
        HAS_IN=initial_state is not None, HAS_OUT=True, REVERSE=False, BC=BC, BD=BD, num_warps=num_warps,
    )
    _scan_fwd_apply_kernel[grid](
        x, a, tile_h, initial_state, y, table.indices, cu_seqlens, D,
        HAS_H0=initial_state is not None, BT=BT, BD=BD, num_warps=num_warps,
    )
    return y, final_state


def scan_bwd(
    x: Tensor, a: Tensor, initial_state: Tensor | None, cu_seqlens: Tensor, y: Tensor, dy: Tensor, dht: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Packed backward scan.

    Args:
        x, a, y, dy: ``(1, T, D)`` (``y`` the forward output); initial_state, dht: ``(N, D)`` or ``None``;
        cu_seqlens: ``(N + 1,)`` int64.
    Returns:
        ``dx, da: (1, T, D)`` and ``dh0: (N, D)`` (``None`` without an initial state).
    """
    D = x.shape[-1]
    N = cu_seqlens.numel() - 1
    BD, num_warps = _launch_params(D)
    ND = triton.cdiv(D, BD)
    table, tile_a, tile_h, BC = _tiles(cu_seqlens, D, x)
    dx = torch.empty_like(x)
    da = torch.empty_like(a)
    dh0 = torch.empty_like(initial_state) if initial_state is not None else None
    grid = (table.num_chunks, ND)
    _scan_bwd_tile_kernel[grid](a, dy, tile_a, tile_h, table.indices, cu_seqlens, D, BT=BT, BD=BD, num_warps=num_warps)
    _scan_carry_kernel[(N, ND)](
        tile_a, tile_h, table.offsets, dht, dh0, a, cu_seqlens, D,
        HAS_IN=dht is not None, HAS_OUT=dh0 is not None, REVERSE=True, BC=BC, BD=BD, num_warps=num_warps,
    )
    _scan_bwd_apply_kernel[grid](
        a, initial_state, y, dy, dht, tile_h, dx, da, table.indices, cu_seqlens, D,
        HAS_H0=initial_state is not None, HAS_DHT=dht is not None, BT=BT, BD=BD, num_warps=num_warps,
    )
    return dx, da, dh0
