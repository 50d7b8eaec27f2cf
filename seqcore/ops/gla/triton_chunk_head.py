"""Chunked Triton kernels for linear attention with a per-head gate ``g: (1, T, H)`` or none.

The scalar-gate case: RetNet, Mamba-2's SSD, Lightning Attention, and plain linear attention (``g = None``).
``S_t = exp(g_t) S_{t-1} + k_t v_t^T``, ``o_t = scale * S_t^T q_t``, computed per chunk of ``BT = 64`` steps that
never crosses a sequence (one program per chunk, from :func:`~seqcore.ops.chunk_index.chunk_table`; the last
chunk of a sequence may be short). With ``S`` the state entering a chunk of length ``L``:

    O  = scale (Q * e^b) S + scale ((Q K^T) * Gamma) V,        Gamma_ij = e^{seg(j, i)}  (j <= i)
    S' = e^{b_L} S + (K * e^a)^T V

where ``b_i = sum_{s <= i} g_s`` (in-chunk inclusive prefix sum), ``a_j = sum_{j < s < L} g_s`` (decay to the
chunk end) and ``seg(j, i) = sum_{j < s <= i} g_s``. Every one of them is summed directly over its own steps
(``tl.cumsum`` of the gate, a 2D one for ``seg``), never as a difference of prefix sums: a difference
``b_i - b_j`` loses ``|b| * eps`` (about 1e-4 relative for decays of -20 per step over a chunk), and at a reset
(``g = -inf``) it would be ``-inf - (-inf) = NaN``. Summed directly, a span that covers a reset is ``-inf``
(the reset only ever adds) and its decay exactly 0, a span that does not is untouched, and every exponent
is <= 0. The per-chunk sums are 64 values, so each kernel recomputes them from ``g`` instead of reading stored
ones.

Forward: ``_states_kernel`` (the state entering every chunk, float32 ``(NT, H, K, V)``, and the final state),
``_fwd_o_kernel``. Backward recomputes the chunk states, then ``_bwd_dh_kernel`` (the gradient ``D`` of the state
leaving each chunk, ``D_prev = e^{b_L} D + scale (Q * e^b)^T dO`` reverse in time from ``dht``, and ``dh0``),
``_bwd_dv_kernel``, ``_bwd_dqk_kernel`` (``dq``, ``dk`` reduced over the value dim inside the program, and the
parts of ``dg`` through the states) and ``_bwd_dg_kernel``. ``dg`` is computed per chunk from the paths each
decay scales, not as the reverse cumulative sum of ``dL/db = q . dq - k . dk`` that :mod:`.triton_recurrent`
uses: that sum cancels terms of order one, which leaves float32 errors near 1e-6 on gradients of order 1e-3
when decays are strong (2e-5 to 4e-5 relative in the tests' metric), while every term of the per-chunk form is
itself small there, and no ``dg`` has to be carried from chunk to chunk.
"""
from __future__ import annotations


import torch
import triton
import triton.language as tl
from torch import Tensor

from ..chunk_index import chunk_table
from ..triton_tiles import chunk_rows, dot, dot_flags, tile

CHUNK = 64


@triton.jit
def _log_gate(g, rows, m_t, i_h, H):
    """``g`` of head ``i_h`` at ``rows``, float32 ``(BT,)``; 0 (no decay) where masked."""
    return tl.load(g + rows * H + i_h, mask=m_t, other=0.).to(tl.float32)


@triton.jit
def _to_end(g, rows, eos, i_h, H, BT: tl.constexpr):
    """``a_j = sum_{j < s < L} g_s``: log decay from each step to the end of its chunk, ``(BT,)``, <= 0."""
    # the gate one step ahead within the chunk, summed from the end: no subtraction, so a reset gives -inf,
    # never NaN
    m_next = ((rows + 1) < eos) & (tl.arange(0, BT) < BT - 1)
    return tl.cumsum(_log_gate(g, rows + 1, m_next, i_h, H), axis=0, reverse=True)


@triton.jit
def _gamma_t(b_g, GATE: tl.constexpr, BT: tl.constexpr):
    """``Gamma^T``: ``[j, i] = exp(sum_{j < s <= i} g_s)`` for ``j <= i``, else 0; ``(BT, BT)`` float32."""
    o_i = tl.arange(0, BT)
    causal = o_i[:, None] <= o_i[None, :]
    if GATE:
        # summed along the contiguous axis, which is cheaper in registers than across warps
        steps = tl.where(o_i[:, None] < o_i[None, :], b_g[None, :], 0.)
        gamma = tl.exp(tl.where(causal, tl.cumsum(steps, axis=1), float("-inf")))
    else:
        gamma = tl.where(causal, 1., 0.)
    return gamma


@triton.jit
def _states_kernel(
    k, v, g, h0, h, ht, cu_seqlens, chunk_offsets, H, K, V,
    GATE: tl.constexpr, HAS_H0: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (key block x value block, sequence x head): walks the sequence's chunks, stores the state entering
    each into ``h: (NT, H, K, V)`` and the final state into ``ht: (N, H, K, V)``."""
    i_kv, i_nh = tl.program_id(0), tl.program_id(1)
    NV = tl.cdiv(V, BV)
    i_k, i_v = i_kv // NV, i_kv % NV
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    c0, c1 = tl.load(chunk_offsets + i_n), tl.load(chunk_offsets + i_n + 1)
    k, v = k + i_h * K, v + i_h * V
    cols_k = i_k * BK + tl.arange(0, BK)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = cols_k < K, cols_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_kv = cols_k[:, None] * V + cols_v[None, :]
    DT = k.dtype.element_ty

    S = tl.zeros([BK, BV], dtype=tl.float32)
    if HAS_H0:
        S = tl.load(h0 + tl.cast(i_nh, tl.int64) * K * V + o_kv, mask=m_kv, other=0.)
    for i_c in range(c0, c1):
        tl.store(h + (i_c * H + i_h) * K * V + o_kv, S, mask=m_kv)
        rows = bos + (i_c - c0) * BT + tl.arange(0, BT)
        m_t = rows < eos
        b_k = tile(k, rows, m_t, cols_k, m_k, H * K)
        b_v = tile(v, rows, m_t, cols_v, m_v, H * V)
        if GATE:
            b_k = (b_k * tl.exp(_to_end(g, rows, eos, i_h, H, BT))[:, None]).to(DT)
            S *= tl.exp(tl.sum(_log_gate(g, rows, m_t, i_h, H)))
        S += dot(tl.trans(b_k), b_v, PREC, UPCAST)
    tl.store(ht + tl.cast(i_nh, tl.int64) * K * V + o_kv, S, mask=m_kv)


@triton.jit
def _fwd_o_kernel(
    q, k, v, g, h, o, cu_seqlens, chunk_indices, scale, H, K, V,
    GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NK: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head, value block): ``O = scale (Q * e^b) S + scale ((Q K^T) * Gamma) V``."""
    i_c, i_h, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    # 64-bit steps for the (BT,) gate loads; tiles take int32 offsets from the chunk's first row
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    q, k = q + i_h * K, k + i_h * K
    v, o = v + i_h * V, o + i_h * V
    h += (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    cols_v = i_v * BV + tl.arange(0, BV)
    m_v = cols_v < V
    DT = q.dtype.element_ty
    if GATE:
        b_g = _log_gate(g, rows, m_t, i_h, H)
        q_decay = tl.exp(tl.cumsum(b_g, axis=0))[:, None]
    else:
        b_g = tl.zeros([BT], dtype=tl.float32)

    b_o = tl.zeros([BT, BV], dtype=tl.float32)
    b_a = tl.zeros([BT, BT], dtype=tl.float32)
    for i_k in tl.static_range(NK):
        cols_k = i_k * BK + tl.arange(0, BK)
        m_k = cols_k < K
        b_q = tile(q + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
        b_k = tile(k + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
        b_a += dot(b_q, tl.trans(b_k), PREC, UPCAST)
        b_s = tile(h, cols_k, m_k, cols_v, m_v, V).to(DT)
        if GATE:
            b_q = (b_q * q_decay).to(DT)
        b_o += dot(b_q, b_s, PREC, UPCAST)
    b_a = (b_a * tl.trans(_gamma_t(b_g, GATE, BT))).to(DT)
    b_o += dot(b_a, tile(v + t0 * H * V, o_t, m_t, cols_v, m_v, H * V), PREC, UPCAST)
    mask = m_t[:, None] & m_v[None, :]
    o += t0 * H * V
    tl.store(o + o_t[:, None] * H * V + cols_v[None, :], (b_o * scale).to(o.dtype.element_ty), mask=mask)


@triton.jit
def _bwd_dh_kernel(
    q, g, do, dht, dh, dh0, cu_seqlens, chunk_offsets, scale, H, K, V,
    GATE: tl.constexpr, HAS_DHT: tl.constexpr, HAS_H0: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr,
    BV: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (key block x value block, sequence x head), reverse in time: stores the gradient of the state leaving
    each chunk into ``dh: (NT, H, K, V)``, and the one entering the sequence into ``dh0``."""
    i_kv, i_nh = tl.program_id(0), tl.program_id(1)
    NV = tl.cdiv(V, BV)
    i_k, i_v = i_kv // NV, i_kv % NV
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    c0, c1 = tl.load(chunk_offsets + i_n), tl.load(chunk_offsets + i_n + 1)
    q, do = q + i_h * K, do + i_h * V
    cols_k = i_k * BK + tl.arange(0, BK)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = cols_k < K, cols_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_kv = cols_k[:, None] * V + cols_v[None, :]
    DT = q.dtype.element_ty

    D = tl.zeros([BK, BV], dtype=tl.float32)
    if HAS_DHT:
        D = tl.load(dht + tl.cast(i_nh, tl.int64) * K * V + o_kv, mask=m_kv, other=0.)
    for i in range(c1 - c0):
        i_c = c1 - 1 - i
        tl.store(dh + (i_c * H + i_h) * K * V + o_kv, D, mask=m_kv)
        rows = bos + (i_c - c0) * BT + tl.arange(0, BT)
        m_t = rows < eos
        b_q = tile(q, rows, m_t, cols_k, m_k, H * K)
        b_do = tile(do, rows, m_t, cols_v, m_v, H * V)
        if GATE:
            b_g = _log_gate(g, rows, m_t, i_h, H)
            b_q = (b_q * tl.exp(tl.cumsum(b_g, axis=0))[:, None]).to(DT)
            D *= tl.exp(tl.sum(b_g))
        D += scale * dot(tl.trans(b_q), b_do, PREC, UPCAST)
    if HAS_H0:
        tl.store(dh0 + tl.cast(i_nh, tl.int64) * K * V + o_kv, D, mask=m_kv)


@triton.jit
def _bwd_dv_kernel(
    q, k, g, do, dh, dv, cu_seqlens, chunk_indices, scale, H, K, V,
    GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NK: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head, value block): ``dV = (K * e^a) D + scale ((Q K^T) * Gamma)^T dO``."""
    i_c, i_h, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    # 64-bit steps for the (BT,) gate loads; tiles take int32 offsets from the chunk's first row
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    q, k = q + i_h * K, k + i_h * K
    do, dv = do + i_h * V, dv + i_h * V
    dh += (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    cols_v = i_v * BV + tl.arange(0, BV)
    m_v = cols_v < V
    DT = q.dtype.element_ty
    b_g = tl.zeros([BT], dtype=tl.float32)
    if GATE:
        b_g = _log_gate(g, rows, m_t, i_h, H)

    # transposed scores (K Q^T)_ji = k_j . q_i, and K D
    b_at = tl.zeros([BT, BT], dtype=tl.float32)
    b_kd = tl.zeros([BT, BV], dtype=tl.float32)
    for i_k in tl.static_range(NK):
        cols_k = i_k * BK + tl.arange(0, BK)
        m_k = cols_k < K
        b_q = tile(q + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
        b_k = tile(k + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
        b_at += dot(b_k, tl.trans(b_q), PREC, UPCAST)
        b_kd += dot(b_k, tile(dh, cols_k, m_k, cols_v, m_v, V).to(DT), PREC, UPCAST)
    if GATE:
        b_kd *= tl.exp(_to_end(g, rows, eos, i_h, H, BT))[:, None]
    b_at = (b_at * _gamma_t(b_g, GATE, BT)).to(DT)
    b_do = tile(do + t0 * H * V, o_t, m_t, cols_v, m_v, H * V)
    b_dv = b_kd + scale * dot(b_at, b_do, PREC, UPCAST)
    mask = m_t[:, None] & m_v[None, :]
    dv += t0 * H * V
    tl.store(dv + o_t[:, None] * H * V + cols_v[None, :], b_dv.to(dv.dtype.element_ty), mask=mask)


@triton.jit
def _bwd_dqk_kernel(
    q, k, v, g, h, do, dh, dq, dk, dg_states, cu_seqlens, chunk_indices, scale, T, H, K, V,
    GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head, key block), summing over value blocks inside:

    ``dQ = scale e^b * (dO S^T) + dA K``, ``dK = e^a * (V D^T) + dA^T Q`` with ``dA = scale (dO V^T) * Gamma``,
    and this key block's part of ``dg`` through the states into ``dg_states: (NK, T, H)`` float32 (see
    :func:`_bwd_dg_kernel`).
    """
    i_c, i_h, i_k = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    # 64-bit steps for the (BT,) gate loads; tiles take int32 offsets from the chunk's first row
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    q, k, dq, dk = q + i_h * K, k + i_h * K, dq + i_h * K, dk + i_h * K
    v, do = v + i_h * V, do + i_h * V
    o_state = (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    h, dh = h + o_state, dh + o_state
    cols_k = i_k * BK + tl.arange(0, BK)
    m_k = cols_k < K
    DT = q.dtype.element_ty

    b_da = tl.zeros([BT, BT], dtype=tl.float32)
    b_dq = tl.zeros([BT, BK], dtype=tl.float32)
    b_dk = tl.zeros([BT, BK], dtype=tl.float32)
    # <S, D> over this key block: the state entering the chunk against the gradient of the one leaving it
    b_sd = tl.zeros([BK], dtype=tl.float32)
    # a loop, not unrolled: Triton pipelines it through shared memory, where the unrolled form spills on sm_80
    for i_v in range(NV):
        cols_v = i_v * BV + tl.arange(0, BV)
        m_v = cols_v < V
        b_v = tile(v + t0 * H * V, o_t, m_t, cols_v, m_v, H * V)
        b_do = tile(do + t0 * H * V, o_t, m_t, cols_v, m_v, H * V)
        b_da += dot(b_do, tl.trans(b_v), PREC, UPCAST)
        b_s = tile(h, cols_k, m_k, cols_v, m_v, V)
        b_d = tile(dh, cols_k, m_k, cols_v, m_v, V)
        b_dq += dot(b_do, tl.trans(b_s.to(DT)), PREC, UPCAST)
        b_dk += dot(b_v, tl.trans(b_d.to(DT)), PREC, UPCAST)
        if GATE:
            b_sd += tl.sum(b_s * b_d, axis=1)
    b_g = tl.zeros([BT], dtype=tl.float32)
    if GATE:
        b_g = _log_gate(g, rows, m_t, i_h, H)
        b_dq *= tl.exp(tl.cumsum(b_g, axis=0))[:, None]
        b_dk *= tl.exp(_to_end(g, rows, eos, i_h, H, BT))[:, None]
    b_dq *= scale
    b_da = (b_da * tl.trans(_gamma_t(b_g, GATE, BT)) * scale).to(DT)
    b_q = tile(q + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
    b_k = tile(k + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
    if GATE:
        # the parts of q . dq and k . dk through the states, before dq and dk are complete
        b_r = tl.sum(b_q.to(tl.float32) * b_dq, axis=1)
        b_w = tl.sum(b_k.to(tl.float32) * b_dk, axis=1)
    b_dq += dot(b_da, b_k, PREC, UPCAST)
    b_dk += dot(tl.trans(b_da), b_q, PREC, UPCAST)
    mask = m_t[:, None] & m_k[None, :]
    o_tk = o_t[:, None] * H * K + cols_k[None, :]
    dq, dk = dq + t0 * H * K, dk + t0 * H * K
    tl.store(dq + o_tk, b_dq.to(dq.dtype.element_ty), mask=mask)
    tl.store(dk + o_tk, b_dk.to(dk.dtype.element_ty), mask=mask)
    if GATE:
        # dg through the states (see _bwd_dg_kernel): sum_{i >= t} r_i + sum_{j < t} w_j + e^{b_L} <S, D>
        before = o_t[None, :] < o_t[:, None]
        b_dg = tl.cumsum(b_r, axis=0, reverse=True) + tl.sum(tl.where(before, b_w[None, :], 0.), axis=1)
        b_dg += tl.exp(tl.sum(b_g)) * tl.sum(b_sd)
        tl.store(dg_states + tl.cast(i_k, tl.int64) * T * H + rows * H + i_h, b_dg, mask=m_t)


@triton.jit
def _bwd_dg_kernel(
    q, k, v, g, do, dg_states, dg, cu_seqlens, chunk_indices, scale, T, H, K, V,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NK: tl.constexpr, NV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head): ``dL/dg_t`` of the chunk's steps.

    ``g_t`` scales every path from a step before ``t`` to one at or after it, so
    ``dg_t = sum_{j < t <= i} M_ij + sum_{i >= t} r_i + sum_{j < t} w_j + e^{b_L} <S, D>`` with
    ``M = scale (dO V^T) * (Q K^T) * Gamma`` (paths inside the chunk), ``r_i = q_i . dq_i`` through the entering
    state and ``w_j = k_j . dk_j`` through the leaving one; ``_bwd_dqk_kernel`` leaves the last three terms per key
    block in ``dg_states: (NK, T, H)``. Every term carries the decay ``e^{g_t}``, so strong decays leave small
    terms, not a cancellation of large ones as in ``dL/db = q . dq - k . dk``; nothing is carried across chunks
    (``D`` holds every later step), and a reset makes every term exactly 0.
    """
    i_c, i_h = tl.program_id(0), tl.program_id(1)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    q, k = q + t0 * H * K + i_h * K, k + t0 * H * K + i_h * K
    v, do = v + t0 * H * V + i_h * V, do + t0 * H * V + i_h * V

    b_kq = tl.zeros([BT, BT], dtype=tl.float32)
    for i_k in tl.static_range(NK):
        cols_k = i_k * BK + tl.arange(0, BK)
        m_k = cols_k < K
        b_kq += dot(tile(k, o_t, m_t, cols_k, m_k, H * K), tl.trans(tile(q, o_t, m_t, cols_k, m_k, H * K)),
                     PREC, UPCAST)
    # M^T[j, i]
    b_m = tl.zeros([BT, BT], dtype=tl.float32)
    for i_v in tl.static_range(NV):
        cols_v = i_v * BV + tl.arange(0, BV)
        m_v = cols_v < V
        b_m += dot(tile(v, o_t, m_t, cols_v, m_v, H * V), tl.trans(tile(do, o_t, m_t, cols_v, m_v, H * V)),
                    PREC, UPCAST)
    b_g = _log_gate(g, rows, m_t, i_h, H)
    b_m = b_m * b_kq * _gamma_t(b_g, True, BT) * scale
    # row j summed over the columns i >= t, then over the rows j < t
    b_m = tl.cumsum(b_m, axis=1, reverse=True)
    b_dg = tl.sum(tl.where(o_t[:, None] < o_t[None, :], b_m, 0.), axis=0)
    for i_k in tl.static_range(NK):
        b_dg += tl.load(dg_states + tl.cast(i_k, tl.int64) * T * H + rows * H + i_h, mask=m_t, other=0.)
    b_dg = tl.where(b_g == float("-inf"), 0., b_dg)
    tl.store(dg + rows * H + i_h, b_dg.to(dg.dtype.element_ty), mask=m_t)


def _blocks(K: int, V: int) -> tuple[int, int, int, int]:
    """``BK, BV, NK, NV``: key and value blocks of at most 64 (at least 16, the smallest ``tl.dot`` tile)."""
    BK = min(64, max(16, triton.next_power_of_2(K)))
    BV = min(64, max(16, triton.next_power_of_2(V)))
    return BK, BV, triton.cdiv(K, BK), triton.cdiv(V, BV)


def _chunk_states(
    k: Tensor, v: Tensor, g: Tensor | None, initial_state: Tensor | None, cu_seqlens: Tensor, table
) -> tuple[Tensor, Tensor]:
    """The states entering each chunk ``(NT, H, K, V)`` and the final states ``(N, H, K, V)``, float32."""
    _, _, H, K = k.shape
    V = v.shape[-1]
    N = cu_seqlens.numel() - 1
    BK, BV, NK, NV = _blocks(K, V)
    h = k.new_empty(table.num_chunks, H, K, V, dtype=torch.float32)
    ht = k.new_empty(N, H, K, V, dtype=torch.float32)
    _states_kernel[(NK * NV, N * H)](
        k, v, g, initial_state, h, ht, cu_seqlens, table.offsets, H, K, V,
        GATE=g is not None, HAS_H0=initial_state is not None, BT=CHUNK, BK=BK, BV=BV,
        **dot_flags(k.dtype), num_warps=4,
    )
    return h, ht


def gla_head_fwd(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, scale: float, initial_state: Tensor | None, cu_seqlens: Tensor
) -> tuple[Tensor, Tensor]:
    """Packed chunked linear attention forward with a per-head gate or none.

    Args:
        q, k: ``(1, T, H, K)``; v: ``(1, T, H, V)``; g: ``(1, T, H)`` log decays <= 0, or ``None``;
        initial_state: ``(N, H, K, V)`` or ``None``; cu_seqlens: ``(N + 1,)`` int64.
    Returns:
        ``o: (1, T, H, V)`` in ``v.dtype`` and the final state ``(N, H, K, V)`` float32.
    """
    _, _, H, K = q.shape
    V = v.shape[-1]
    BK, BV, NK, NV = _blocks(K, V)
    table = chunk_table(cu_seqlens, CHUNK)
    h, ht = _chunk_states(k, v, g, initial_state, cu_seqlens, table)
    o = torch.empty_like(v)
    _fwd_o_kernel[(table.num_chunks, H, NV)](
        q, k, v, g, h, o, cu_seqlens, table.indices, scale, H, K, V,
        GATE=g is not None, BT=CHUNK, BK=BK, BV=BV, NK=NK, **dot_flags(q.dtype), num_warps=4,
    )
    return o, ht


def gla_head_bwd(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, scale: float, initial_state: Tensor | None,
    cu_seqlens: Tensor, do: Tensor, dht: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """Packed chunked linear attention backward with a per-head gate or none.

    Args:
        as :func:`gla_head_fwd`, plus do: ``(1, T, H, V)`` and dht: ``(N, H, K, V)`` or ``None``.
    Returns:
        ``dq, dk: (1, T, H, K)``, ``dv: (1, T, H, V)``, ``dg: (1, T, H)`` (``None`` without a gate), each in
        its input's dtype, and ``dh0: (N, H, K, V)`` float32 (``None`` without an initial state).
    """
    _, T, H, K = q.shape
    V = v.shape[-1]
    N = cu_seqlens.numel() - 1
    BK, BV, NK, NV = _blocks(K, V)
    flags = dot_flags(q.dtype)
    gate = g is not None
    table = chunk_table(cu_seqlens, CHUNK)
    NT = table.num_chunks
    h, ht = _chunk_states(k, v, g, initial_state, cu_seqlens, table)
    dh = q.new_empty(NT, H, K, V, dtype=torch.float32)
    dh0 = torch.empty_like(initial_state) if initial_state is not None else None
    _bwd_dh_kernel[(NK * NV, N * H)](
        q, g, do, dht, dh, dh0, cu_seqlens, table.offsets, scale, H, K, V,
        GATE=gate, HAS_DHT=dht is not None, HAS_H0=initial_state is not None, BT=CHUNK, BK=BK, BV=BV,
        **flags, num_warps=4,
    )
    dv = torch.empty_like(v)
    # two (BT, BT) and two (BT, 64) float32 tiles live at once in each: 4 warps spill on sm_80 at K = V = 128
    _bwd_dv_kernel[(NT, H, NV)](
        q, k, g, do, dh, dv, cu_seqlens, table.indices, scale, H, K, V,
        GATE=gate, BT=CHUNK, BK=BK, BV=BV, NK=NK, **flags, num_warps=8,
    )
    dq, dk = torch.empty_like(q), torch.empty_like(k)
    dg_states = q.new_empty(NK, T, H, dtype=torch.float32) if gate else None
    _bwd_dqk_kernel[(NT, H, NK)](
        q, k, v, g, h, do, dh, dq, dk, dg_states, cu_seqlens, table.indices, scale, T, H, K, V,
        GATE=gate, BT=CHUNK, BK=BK, BV=BV, NV=NV, **flags, num_warps=8,
    )
    dg = None
    if g is not None:
        dg = torch.empty_like(g)
        _bwd_dg_kernel[(NT, H)](
            q, k, v, g, do, dg_states, dg, cu_seqlens, table.indices, scale, T, H, K, V,
            BT=CHUNK, BK=BK, BV=BV, NK=NK, NV=NV, **flags, num_warps=4,
        )
    return dq, dk, dv, dg, dh0
