"""Chunked Triton kernels for the (gated) delta rule on packed variable-length sequences.

``S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T``, ``o_t = scale S_t^T q_t``, per chunk of
``BT = 64`` steps that never crosses a sequence (one program per chunk from
:func:`~seqcore.ops.chunk_index.chunk_table`; a sequence's last chunk may be short, its missing rows load as zeros,
which makes them identity rows of ``T`` and zero rows of ``W``, ``U`` and ``V_new``). With ``S`` the state entering
a chunk of length ``L`` (the UT transform, as in :mod:`.chunk`):

    A = strict_tril(diag(beta) (K K^T * Gamma)),   T = (I + A)^{-1}
    W = T diag(beta) (K * e^b),                    U = T diag(beta) V
    V_new = U - W S
    O  = scale (Q * e^b) S + scale (tril(Q K^T) * Gamma) V_new
    S' = e^{b_L} S + (K * e^a)^T V_new

``b_i = sum_{s <= i} g_s``, ``a_j = sum_{j < s < L} g_s`` and ``Gamma_ij = exp(sum_{j < s <= i} g_s)``, each summed
over its own steps (never a difference of prefix sums), so every exponent is <= 0 and a reset (``g = -inf``) gives
exact zeros, never ``-inf - (-inf)``.

Forward: ``_wu_kernel`` (``A``, ``T`` by forward substitution, ``W``, ``U``; per chunk and head),
``_states_kernel`` (per sequence, head and value block: the state entering each chunk and ``V_new``),
``_fwd_o_kernel`` (per chunk, head and value block). Backward recomputes ``W``, ``U``, the chunk states and
``V_new`` with the same kernels (``T`` kept this time), then ``_bwd_dvn_local_kernel`` (per chunk, head and value
block: the in-chunk part ``scale P^T dO`` of ``dV_new``), ``_bwd_dh_kernel`` (reverse in time:
``dV_new += (K * e^a) D`` and ``D_prev = e^{b_L} D + scale (Q * e^b)^T dO - W^T dV_new``, ``D`` the gradient of
the state leaving a chunk), then per chunk and head, summing over value blocks inside, ``_bwd_wu_kernel`` (the
paths through ``W``, ``U`` and ``T``: ``dv``, ``dbeta`` and parts of ``dk`` and ``dg``), ``_bwd_dk_kernel`` and
``_bwd_dq_kernel`` (the paths through ``O`` and ``S'``: the rest of ``dk`` and ``dg``, and ``dq``).

Intermediates (``W``, ``U``, ``V_new``, ``dV_new``, ``T``) are stored in the input dtype: every use but one casts
them to it as a ``tl.dot`` operand anyway (``U`` enters ``V_new = U - W S`` once); states, state gradients and the
partial ``dk`` / ``dg`` sums are float32.
"""
from __future__ import annotations


import torch
import triton
import triton.language as tl
from torch import Tensor

from ..chunk_index import chunk_table
from ..triton_tiles import chunk_rows, dot, dot_flags, put, tile

CHUNK = 64
# Every kernel holds the whole key dimension (W S and K K^T reduce over it); beyond this the tiles do not fit
# (compile-checked for K <= 128).
MAX_K = 256


@triton.jit
def _dot(a, b, DT: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr):
    """``a @ b`` in float32 with both operands cast to ``DT`` (the input dtype: tensor cores for 16-bit inputs)."""
    return dot(a.to(DT), b.to(DT), PREC, UPCAST)


@triton.jit
def _log_gate(g, rows, m_t, i_h, H, GATE: tl.constexpr, BT: tl.constexpr):
    """``g`` of head ``i_h`` at ``rows``, float32 ``(BT,)``; 0 (no decay) where masked or without a gate."""
    if GATE:
        b_g = tl.load(g + rows * H + i_h, mask=m_t, other=0.).to(tl.float32)
    else:
        b_g = tl.zeros([BT], dtype=tl.float32)
    return b_g


@triton.jit
def _to_end(g, rows, eos, i_h, H, GATE: tl.constexpr, BT: tl.constexpr):
    """``a_j = sum_{j < s < L} g_s``, the log decay from each step to its chunk's end, ``(BT,)``, <= 0."""
    # the gate one step ahead within the chunk, summed from the end: a reset gives -inf, never NaN
    m_next = ((rows + 1) < eos) & (tl.arange(0, BT) < BT - 1)
    return tl.cumsum(_log_gate(g, rows + 1, m_next, i_h, H, GATE, BT), axis=0, reverse=True)


@triton.jit
def _gamma(b_g, STRICT: tl.constexpr, BT: tl.constexpr):
    """``Gamma_ij = exp(sum_{j < s <= i} g_s)`` for ``j < i`` (``STRICT``) or ``j <= i``, else 0; ``(BT, BT)``."""
    o_i = tl.arange(0, BT)
    if STRICT:
        keep = o_i[:, None] > o_i[None, :]
    else:
        keep = o_i[:, None] >= o_i[None, :]
    steps = tl.where(o_i[:, None] > o_i[None, :], b_g[:, None], 0.)
    seg = tl.cumsum(steps, axis=0)
    return tl.exp(tl.where(keep, seg, float("-inf")))


@triton.jit
def _unit_lower_inverse(b_a, BT: tl.constexpr):
    """``(I + A)^{-1}`` of a strictly lower-triangular ``(BT, BT)`` float32 ``A``, by forward substitution.

    Row ``i`` of the inverse is ``e_i - sum_{j < i} A_ij T_j``; rows ``j < i`` are final when row ``i`` is made."""
    o_i = tl.arange(0, BT)
    eye = o_i[:, None] == o_i[None, :]
    b_t = tl.where(eye, 1., 0.)
    for i in range(1, BT):
        at_row = o_i[:, None] == i
        a_i = tl.sum(tl.where(at_row, b_a, 0.), axis=0)
        row = tl.where(o_i == i, 1., 0.) - tl.sum(a_i[:, None] * b_t, axis=0)
        b_t = tl.where(at_row, row[None, :], b_t)
    return b_t


@triton.jit
def _chunk_t(b_k, b_beta, b_g, DT: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr, BT: tl.constexpr):
    """``T = (I + A)^{-1}`` of a chunk, ``(BT, BT)`` float32."""
    b_a = _dot(b_k, tl.trans(b_k), DT, PREC, UPCAST) * _gamma(b_g, True, BT) * b_beta[:, None]
    return _unit_lower_inverse(b_a, BT)


@triton.jit
def _wu_kernel(
    k, v, beta, g, w, u, tmat, cu_seqlens, chunk_indices, H, K, V,
    GATE: tl.constexpr, STORE_T: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    NV: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head): ``W = T diag(beta) (K * e^b)`` into ``w: (1, T, H, K)`` and ``U = T diag(beta) V`` into
    ``u: (1, T, H, V)``, in the input dtype; with ``STORE_T`` (the backward) also the rows of ``T`` into
    ``tmat: (1, T, H, BT)``."""
    i_c, i_h = tl.program_id(0), tl.program_id(1)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    cols_k = tl.arange(0, BK)
    m_k = cols_k < K
    DT = k.dtype.element_ty
    k, w = k + t0 * H * K + i_h * K, w + t0 * H * K + i_h * K
    v, u = v + t0 * H * V + i_h * V, u + t0 * H * V + i_h * V
    b_beta = tl.load(beta + rows * H + i_h, mask=m_t, other=0.).to(tl.float32)
    b_g = _log_gate(g, rows, m_t, i_h, H, GATE, BT)
    b_k = tile(k, o_t, m_t, cols_k, m_k, H * K)
    b_t = _chunk_t(b_k, b_beta, b_g, DT, PREC, UPCAST, BT)
    if STORE_T:
        put(tmat + (t0 * H + i_h) * BT, b_t, o_t, m_t, o_t, o_t < BT, H * BT)
    b_kb = b_k.to(tl.float32) * (b_beta * tl.exp(tl.cumsum(b_g, axis=0)))[:, None]
    put(w, _dot(b_t, b_kb, DT, PREC, UPCAST), o_t, m_t, cols_k, m_k, H * K)
    for i_v in range(NV):
        cols_v = i_v * BV + tl.arange(0, BV)
        m_v = cols_v < V
        b_v = tile(v, o_t, m_t, cols_v, m_v, H * V).to(tl.float32) * b_beta[:, None]
        put(u, _dot(b_t, b_v, DT, PREC, UPCAST), o_t, m_t, cols_v, m_v, H * V)


@triton.jit
def _states_kernel(
    k, g, w, u, h0, h, vn, ht, cu_seqlens, chunk_offsets, H, K, V,
    GATE: tl.constexpr, HAS_H0: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (sequence x head, value block), in time order: the state entering each chunk into
    ``h: (NT, H, K, V)``, ``V_new = U - W S`` into ``vn: (1, T, H, V)`` and the final state into ``ht``."""
    # N * H sits on grid axis 0, the only one not limited to 65,535 programs.
    i_nh, i_v = tl.program_id(0), tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    c0, c1 = tl.load(chunk_offsets + i_n), tl.load(chunk_offsets + i_n + 1)
    k, w = k + i_h * K, w + i_h * K
    u, vn = u + i_h * V, vn + i_h * V
    cols_k = tl.arange(0, BK)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = cols_k < K, cols_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_kv = cols_k[:, None] * V + cols_v[None, :]
    DT = k.dtype.element_ty

    S = tl.zeros([BK, BV], dtype=tl.float32)
    if HAS_H0:
        S += tl.load(h0 + tl.cast(i_nh, tl.int64) * K * V + o_kv, mask=m_kv, other=0.).to(tl.float32)
    o_t = tl.arange(0, BT)
    for i_c in range(c0, c1):
        tl.store(h + (i_c * H + i_h) * K * V + o_kv, S, mask=m_kv)
        t0 = bos + (i_c - c0) * BT
        rows = t0 + o_t
        m_t = rows < eos
        b_w = tile(w + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
        b_vn = tile(u + t0 * H * V, o_t, m_t, cols_v, m_v, H * V) - _dot(b_w, S, DT, PREC, UPCAST)
        put(vn + t0 * H * V, b_vn, o_t, m_t, cols_v, m_v, H * V)
        b_k = tile(k + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
        if GATE:
            b_k = b_k.to(tl.float32) * tl.exp(_to_end(g, rows, eos, i_h, H, GATE, BT))[:, None]
            S *= tl.exp(tl.sum(_log_gate(g, rows, m_t, i_h, H, GATE, BT)))
        S += _dot(tl.trans(b_k), b_vn, DT, PREC, UPCAST)
    tl.store(ht + tl.cast(i_nh, tl.int64) * K * V + o_kv, S, mask=m_kv)


@triton.jit
def _fwd_o_kernel(
    q, k, g, h, vn, o, cu_seqlens, chunk_indices, scale, H, K, V,
    GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head, value block): ``O = scale (Q * e^b) S + scale (tril(Q K^T) * Gamma) V_new``."""
    i_c, i_h, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    q, k = q + t0 * H * K + i_h * K, k + t0 * H * K + i_h * K
    vn, o = vn + t0 * H * V + i_h * V, o + t0 * H * V + i_h * V
    h += (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    cols_k = tl.arange(0, BK)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = cols_k < K, cols_v < V
    DT = q.dtype.element_ty
    b_g = _log_gate(g, rows, m_t, i_h, H, GATE, BT)

    b_q = tile(q, o_t, m_t, cols_k, m_k, H * K)
    b_k = tile(k, o_t, m_t, cols_k, m_k, H * K)
    b_p = _dot(b_q, tl.trans(b_k), DT, PREC, UPCAST) * _gamma(b_g, False, BT)
    b_o = _dot(b_p, tile(vn, o_t, m_t, cols_v, m_v, H * V), DT, PREC, UPCAST)
    if GATE:
        b_q = b_q.to(tl.float32) * tl.exp(tl.cumsum(b_g, axis=0))[:, None]
    b_o += _dot(b_q, tile(h, cols_k, m_k, cols_v, m_v, V), DT, PREC, UPCAST)
    put(o, b_o * scale, o_t, m_t, cols_v, m_v, H * V)


@triton.jit
def _bwd_dvn_local_kernel(
    q, k, g, do, dvn, cu_seqlens, chunk_indices, scale, H, K, V,
    GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head, value block): the in-chunk part ``scale P^T dO`` of ``dV_new`` into ``dvn``, which
    ``_bwd_dh_kernel`` completes (kept out of that sequential walk, whose registers hold the state gradient)."""
    i_c, i_h, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    q, k = q + t0 * H * K + i_h * K, k + t0 * H * K + i_h * K
    do, dvn = do + t0 * H * V + i_h * V, dvn + t0 * H * V + i_h * V
    cols_k = tl.arange(0, BK)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = cols_k < K, cols_v < V
    DT = q.dtype.element_ty
    b_g = _log_gate(g, rows, m_t, i_h, H, GATE, BT)
    b_q = tile(q, o_t, m_t, cols_k, m_k, H * K)
    b_k = tile(k, o_t, m_t, cols_k, m_k, H * K)
    b_pt = _dot(b_k, tl.trans(b_q), DT, PREC, UPCAST) * tl.trans(_gamma(b_g, False, BT))
    b_dvn = _dot(b_pt, tile(do, o_t, m_t, cols_v, m_v, H * V), DT, PREC, UPCAST)
    put(dvn, b_dvn * scale, o_t, m_t, cols_v, m_v, H * V)


@triton.jit
def _bwd_dh_kernel(
    q, k, g, w, do, dht, dh, dvn, dh0, cu_seqlens, chunk_offsets, scale, H, K, V,
    GATE: tl.constexpr, HAS_DHT: tl.constexpr, HAS_H0: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr,
    BV: tl.constexpr, PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (sequence x head, value block), reverse in time: the gradient ``D`` of the state leaving each chunk
    into ``dh: (NT, H, K, V)``, ``dV_new = scale P^T dO + (K * e^a) D`` into ``dvn: (1, T, H, V)`` (which holds
    the first term on entry), and ``D_prev = e^{b_L} D + scale (Q * e^b)^T dO - W^T dV_new`` (into ``dh0`` for
    the first chunk)."""
    i_nh, i_v = tl.program_id(0), tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    c0, c1 = tl.load(chunk_offsets + i_n), tl.load(chunk_offsets + i_n + 1)
    q, k, w = q + i_h * K, k + i_h * K, w + i_h * K
    do, dvn = do + i_h * V, dvn + i_h * V
    cols_k = tl.arange(0, BK)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = cols_k < K, cols_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_kv = cols_k[:, None] * V + cols_v[None, :]
    DT = q.dtype.element_ty

    D = tl.zeros([BK, BV], dtype=tl.float32)
    if HAS_DHT:
        D += tl.load(dht + tl.cast(i_nh, tl.int64) * K * V + o_kv, mask=m_kv, other=0.)
    o_t = tl.arange(0, BT)
    for i in range(c1 - c0):
        i_c = c1 - 1 - i
        tl.store(dh + (i_c * H + i_h) * K * V + o_kv, D, mask=m_kv)
        t0 = bos + (i_c - c0) * BT
        rows = t0 + o_t
        m_t = rows < eos
        b_k = tile(k + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
        if GATE:
            b_k = b_k.to(tl.float32) * tl.exp(_to_end(g, rows, eos, i_h, H, GATE, BT))[:, None]
        b_dvn = tile(dvn + t0 * H * V, o_t, m_t, cols_v, m_v, H * V).to(tl.float32)
        b_dvn += _dot(b_k, D, DT, PREC, UPCAST)
        put(dvn + t0 * H * V, b_dvn, o_t, m_t, cols_v, m_v, H * V)
        b_q = tile(q + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)
        if GATE:
            b_g = _log_gate(g, rows, m_t, i_h, H, GATE, BT)
            b_q = b_q.to(tl.float32) * tl.exp(tl.cumsum(b_g, axis=0))[:, None]
            D *= tl.exp(tl.sum(b_g))
        b_do = tile(do + t0 * H * V, o_t, m_t, cols_v, m_v, H * V)
        D += scale * _dot(tl.trans(b_q), b_do, DT, PREC, UPCAST)
        D -= _dot(tl.trans(tile(w + t0 * H * K, o_t, m_t, cols_k, m_k, H * K)), b_dvn, DT, PREC, UPCAST)
    if HAS_H0:
        tl.store(dh0 + tl.cast(i_nh, tl.int64) * K * V + o_kv, D.to(dh0.dtype.element_ty), mask=m_kv)


@triton.jit
def _bwd_wu_kernel(
    k, v, beta, g, w, u, tmat, h, dvn, dk_acc, dv, dbeta, dg_acc, cu_seqlens, chunk_indices, H, K, V,
    GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head), summing over value blocks inside: the paths through ``W``, ``U`` and ``T``.

    With ``S`` the state entering the chunk, ``dW = -dV_new S^T``, ``dU = dV_new``, ``X = T^T dW`` and
    ``Y = T^T dU``: ``dv = beta * Y`` and ``dA = -(X W^T + Y U^T)`` on the strict lower triangle (``dT = dW (beta
    K e^b)^T + dU (beta V)^T`` and ``dA = -T^T dT T^T``). Stores ``dv`` and ``dbeta`` (complete), and this part
    of ``dk`` and of ``dg`` into the float32 ``dk_acc: (1, T, H, K)`` and ``dg_acc: (1, T, H)``.
    """
    i_c, i_h = tl.program_id(0), tl.program_id(1)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    o_tk, o_tv = t0 * H * K + i_h * K, t0 * H * V + i_h * V
    k, w, dk_acc = k + o_tk, w + o_tk, dk_acc + o_tk
    v, u, dvn, dv = v + o_tv, u + o_tv, dvn + o_tv, dv + o_tv
    h += (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    cols_k = tl.arange(0, BK)
    m_k = cols_k < K
    DT = k.dtype.element_ty
    b_beta = tl.load(beta + rows * H + i_h, mask=m_t, other=0.).to(tl.float32)
    b_g = _log_gate(g, rows, m_t, i_h, H, GATE, BT)
    # T^T: element (j, i) is T_ij, row i of the chunk's rows in tmat
    b_tt = tl.load(tmat + (t0 * H + i_h) * BT + o_t[None, :] * H * BT + o_t[:, None], mask=m_t[None, :], other=0.)

    b_dw = tl.zeros([BT, BK], dtype=tl.float32)
    b_da = tl.zeros([BT, BT], dtype=tl.float32)
    b_dbeta = tl.zeros([BT], dtype=tl.float32)
    for i_v in range(NV):
        cols_v = i_v * BV + tl.arange(0, BV)
        m_v = cols_v < V
        b_dvn = tile(dvn, o_t, m_t, cols_v, m_v, H * V)
        b_dw -= _dot(b_dvn, tl.trans(tile(h, cols_k, m_k, cols_v, m_v, V)), DT, PREC, UPCAST)
        b_y = _dot(b_tt, b_dvn, DT, PREC, UPCAST)
        put(dv, b_y * b_beta[:, None], o_t, m_t, cols_v, m_v, H * V)
        b_dbeta += tl.sum(b_y * tile(v, o_t, m_t, cols_v, m_v, H * V).to(tl.float32), axis=1)
        b_da -= _dot(b_y, tl.trans(tile(u, o_t, m_t, cols_v, m_v, H * V)), DT, PREC, UPCAST)

    b_x = _dot(b_tt, b_dw, DT, PREC, UPCAST)
    b_da -= _dot(b_x, tl.trans(tile(w, o_t, m_t, cols_k, m_k, H * K)), DT, PREC, UPCAST)
    b_k = tile(k, o_t, m_t, cols_k, m_k, H * K)
    b_eb = tl.exp(tl.cumsum(b_g, axis=0))
    b_xk = tl.sum(b_x * b_k.to(tl.float32), axis=1)
    b_dk = b_x * (b_beta * b_eb)[:, None]
    # dA of A = beta_i (k_i . k_j) Gamma_ij, with Gamma folded in (0 on and above the diagonal)
    b_dag = b_da * _gamma(b_g, True, BT)
    b_kk = _dot(b_k, tl.trans(b_k), DT, PREC, UPCAST)
    b_dbeta += tl.sum(b_dag * b_kk, axis=1) + b_xk * b_eb
    tl.store(dbeta + rows * H + i_h, b_dbeta.to(dbeta.dtype.element_ty), mask=m_t)
    b_b = b_dag * b_beta[:, None]
    b_dk += _dot(b_b, b_k, DT, PREC, UPCAST) + _dot(tl.trans(b_b), b_k, DT, PREC, UPCAST)
    put(dk_acc, b_dk, o_t, m_t, cols_k, m_k, H * K)
    if GATE:
        b_dg = _chunk_dg(b_b * b_kk, b_beta * b_eb * b_xk, 0., BT)
        tl.store(dg_acc + rows * H + i_h, b_dg, mask=m_t)


@triton.jit
def _bwd_dk_kernel(
    q, k, g, vn, do, dh, dk_acc, dg_acc, dk, cu_seqlens, chunk_indices, scale, H, K, V,
    GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head), summing over value blocks inside: ``dk = dk_acc + e^a * (V_new D^T) + dP^T Q`` with
    ``dP = scale (dO V_new^T) * Gamma`` and ``D`` the gradient of the state leaving the chunk; adds the paths
    through ``e^a`` to ``dg_acc`` (the ``before`` term of :func:`_chunk_dg`)."""
    i_c, i_h = tl.program_id(0), tl.program_id(1)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    o_tk, o_tv = t0 * H * K + i_h * K, t0 * H * V + i_h * V
    q, k, dk_acc, dk = q + o_tk, k + o_tk, dk_acc + o_tk, dk + o_tk
    vn, do = vn + o_tv, do + o_tv
    dh += (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    cols_k = tl.arange(0, BK)
    m_k = cols_k < K
    DT = q.dtype.element_ty

    b_dka = tl.zeros([BT, BK], dtype=tl.float32)  # V_new D^T, the gradient of K * e^a
    b_dp = tl.zeros([BT, BT], dtype=tl.float32)  # dO V_new^T
    for i_v in range(NV):
        cols_v = i_v * BV + tl.arange(0, BV)
        m_v = cols_v < V
        b_vn = tile(vn, o_t, m_t, cols_v, m_v, H * V)
        b_dka += _dot(b_vn, tl.trans(tile(dh, cols_k, m_k, cols_v, m_v, V)), DT, PREC, UPCAST)
        b_dp += _dot(tile(do, o_t, m_t, cols_v, m_v, H * V), tl.trans(b_vn), DT, PREC, UPCAST)

    b_g = _log_gate(g, rows, m_t, i_h, H, GATE, BT)
    b_dp = b_dp * _gamma(b_g, False, BT) * scale
    b_dk = _dot(tl.trans(b_dp), tile(q, o_t, m_t, cols_k, m_k, H * K), DT, PREC, UPCAST)
    b_dk += tile(dk_acc, o_t, m_t, cols_k, m_k, H * K)
    if GATE:
        b_dka *= tl.exp(_to_end(g, rows, eos, i_h, H, GATE, BT))[:, None]
        b_e = tl.sum(b_dka * tile(k, o_t, m_t, cols_k, m_k, H * K).to(tl.float32), axis=1)
        b_dg = tl.load(dg_acc + rows * H + i_h, mask=m_t, other=0.) + _sum_before(b_e, BT)
        tl.store(dg_acc + rows * H + i_h, b_dg, mask=m_t)
    put(dk, b_dk + b_dka, o_t, m_t, cols_k, m_k, H * K)


@triton.jit
def _bwd_dq_kernel(
    q, k, g, h, vn, do, dh, dg_acc, dq, dg, cu_seqlens, chunk_indices, scale, H, K, V,
    GATE: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head), summing over value blocks inside: ``dq = scale e^b * (dO S^T) + dP K`` (``S`` the
    state entering the chunk, ``dP`` as in ``_bwd_dk_kernel``) and ``dg = dg_acc +`` the rest of
    :func:`_chunk_dg`."""
    i_c, i_h = tl.program_id(0), tl.program_id(1)
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    o_t = tl.arange(0, BT)
    rows = t0 + o_t
    m_t = rows < eos
    o_tk, o_tv = t0 * H * K + i_h * K, t0 * H * V + i_h * V
    q, k, dq = q + o_tk, k + o_tk, dq + o_tk
    vn, do = vn + o_tv, do + o_tv
    o_state = (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    h, dh = h + o_state, dh + o_state
    cols_k = tl.arange(0, BK)
    m_k = cols_k < K
    DT = q.dtype.element_ty

    b_dq = tl.zeros([BT, BK], dtype=tl.float32)  # dO S^T
    b_dp = tl.zeros([BT, BT], dtype=tl.float32)  # dO V_new^T
    b_sd = tl.zeros([BK], dtype=tl.float32)  # <S, D> per key
    for i_v in range(NV):
        cols_v = i_v * BV + tl.arange(0, BV)
        m_v = cols_v < V
        b_s = tile(h, cols_k, m_k, cols_v, m_v, V)
        b_do = tile(do, o_t, m_t, cols_v, m_v, H * V)
        b_dq += _dot(b_do, tl.trans(b_s), DT, PREC, UPCAST)
        b_dp += _dot(b_do, tl.trans(tile(vn, o_t, m_t, cols_v, m_v, H * V)), DT, PREC, UPCAST)
        if GATE:
            b_sd += tl.sum(b_s * tile(dh, cols_k, m_k, cols_v, m_v, V), axis=1)

    b_g = _log_gate(g, rows, m_t, i_h, H, GATE, BT)
    b_dp = b_dp * _gamma(b_g, False, BT) * scale
    b_q = tile(q, o_t, m_t, cols_k, m_k, H * K)
    b_k = tile(k, o_t, m_t, cols_k, m_k, H * K)
    b_dq = b_dq * (scale * tl.exp(tl.cumsum(b_g, axis=0)))[:, None]
    if GATE:
        # paths through the decays, before dq gets the in-chunk part
        b_m = b_dp * _dot(b_q, tl.trans(b_k), DT, PREC, UPCAST)
        b_r = tl.sum(b_dq * b_q.to(tl.float32), axis=1)
        b_dg = _chunk_dg(b_m, b_r, tl.exp(tl.sum(b_g)) * tl.sum(b_sd), BT)
        b_dg += tl.load(dg_acc + rows * H + i_h, mask=m_t, other=0.)
        tl.store(dg + rows * H + i_h, b_dg.to(dg.dtype.element_ty), mask=m_t)
    put(dq, b_dq + _dot(b_dp, b_k, DT, PREC, UPCAST), o_t, m_t, cols_k, m_k, H * K)


@triton.jit
def _sum_before(x, BT: tl.constexpr):
    """``sum_{j < t} x_j`` for every step ``t`` of a chunk, ``(BT,)``, summed directly (no prefix differences)."""
    o_t = tl.arange(0, BT)
    return tl.sum(tl.where(o_t[None, :] < o_t[:, None], x[None, :], 0.), axis=1)


@triton.jit
def _chunk_dg(b_m, b_after, sd, BT: tl.constexpr):
    """The parts of ``dL/dg_t`` for the steps of one chunk through in-chunk pairs, prefixes and the chunk decay,
    ``(BT,)`` float32.

    ``g_t`` scales every factor whose span of steps covers ``t``, so ``dg_t`` is the sum of
    ``(dL/dF) F`` over those factors ``F``: ``M_ij`` for ``Gamma_ij`` in ``A`` and ``P`` (span ``(j, i]``),
    ``after_i`` for ``e^{b_i}`` in ``Q * e^b`` and ``K * e^b`` (span ``[0, i]``), ``sd = e^{b_L} <S, D>`` (every
    step), and, added by ``_bwd_dk_kernel`` through :func:`_sum_before`, ``before_j`` for ``e^{a_j}`` in
    ``K * e^a`` (span ``(j, L)``). Every term carries its own decay, so strong decays give small terms rather
    than a cancellation of large ones, and at a reset every term is exactly 0.
    """
    o_t = tl.arange(0, BT)
    # column j summed over the rows i >= t, then over the columns j < t of row t
    b_m = tl.cumsum(b_m, axis=0, reverse=True)
    b_dg = tl.sum(tl.where(o_t[None, :] < o_t[:, None], b_m, 0.), axis=1)
    return b_dg + tl.cumsum(b_after, axis=0, reverse=True) + sd


def _blocks(K: int, V: int, walk: bool = False) -> tuple[int, int, int]:
    """``BK, BV, NV``: the whole key dimension and value blocks of at least 16 (the smallest ``tl.dot`` tile).

    ``walk``: for the kernels that walk a sequence's chunks with a ``(BK, BV)`` state in registers next to
    ``(BT, BK)`` tiles, which spill at ``BV = 64``; the others take 64 while ``BK <= 64``."""
    if K > MAX_K:
        raise ValueError(f"triton_chunk delta_rule supports head dims K <= {MAX_K}, got {K}")
    BK = max(16, triton.next_power_of_2(K))
    BV = min(32 if walk or BK > 64 else 64, max(16, triton.next_power_of_2(V)))
    return BK, BV, triton.cdiv(V, BV)


def _recompute(
    k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None, initial_state: Tensor | None, cu_seqlens: Tensor, table,
    store_t: bool = False,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor | None]:
    """``W: (1, T, H, K)``, ``U, V_new: (1, T, H, V)``, the states entering each chunk ``(NT, H, K, V)``, the
    final states ``(N, H, K, V)`` and (``store_t``) the chunks' ``T`` by rows ``(1, T, H, BT)``; states float32,
    the rest in the input dtype."""
    _, _, H, K = k.shape
    V = v.shape[-1]
    N = cu_seqlens.numel() - 1
    BK, BV, NV = _blocks(K, V)
    _, BV_WALK, NV_WALK = _blocks(K, V, walk=True)
    flags = dot_flags(k.dtype)
    w = torch.empty_like(k)
    u = k.new_empty(v.shape)
    tmat = k.new_empty(*k.shape[:3], CHUNK) if store_t else None
    _wu_kernel[(table.num_chunks, H)](
        k, v, beta, g, w, u, tmat, cu_seqlens, table.indices, H, K, V,
        GATE=g is not None, STORE_T=store_t, BT=CHUNK, BK=BK, BV=BV, NV=NV, **flags, num_warps=4,
    )
    h = k.new_empty(table.num_chunks, H, K, V, dtype=torch.float32)
    vn = torch.empty_like(u)
    ht = k.new_empty(N, H, K, V, dtype=torch.float32)
    _states_kernel[(N * H, NV_WALK)](
        k, g, w, u, initial_state, h, vn, ht, cu_seqlens, table.offsets, H, K, V,
        GATE=g is not None, HAS_H0=initial_state is not None, BT=CHUNK, BK=BK, BV=BV_WALK, **flags, num_warps=8,
    )
    return w, u, vn, h, ht, tmat


def delta_rule_fwd(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None, scale: float,
    initial_state: Tensor | None, cu_seqlens: Tensor,
) -> tuple[Tensor, Tensor]:
    """Chunked delta rule forward on packed sequences.

    Args:
        q, k: ``(1, T, H, K)``; v: ``(1, T, H, V)``; beta: ``(1, T, H)``; g: ``(1, T, H)`` log decays <= 0 or
        ``None``; initial_state: ``(N, H, K, V)`` or ``None``; cu_seqlens: ``(N + 1,)`` int64.
    Returns:
        ``o: (1, T, H, V)`` in ``v.dtype`` and the final state ``(N, H, K, V)`` float32.
    """
    _, _, H, K = q.shape
    V = v.shape[-1]
    BK, BV, NV = _blocks(K, V)
    table = chunk_table(cu_seqlens, CHUNK)
    _, _, vn, h, ht, _ = _recompute(k, v, beta, g, initial_state, cu_seqlens, table)
    o = torch.empty_like(v)
    _fwd_o_kernel[(table.num_chunks, H, NV)](
        q, k, g, h, vn, o, cu_seqlens, table.indices, scale, H, K, V,
        GATE=g is not None, BT=CHUNK, BK=BK, BV=BV, **dot_flags(q.dtype), num_warps=4,
    )
    return o, ht


def delta_rule_bwd(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None, scale: float,
    initial_state: Tensor | None, cu_seqlens: Tensor, do: Tensor, dht: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """Chunked delta rule backward on packed sequences; recomputes everything it needs from the inputs.

    Args:
        as :func:`delta_rule_fwd`, plus do: ``(1, T, H, V)`` and dht: ``(N, H, K, V)`` or ``None``.
    Returns:
        ``dq, dk: (1, T, H, K)``, ``dv: (1, T, H, V)``, ``dbeta: (1, T, H)``, ``dg: (1, T, H)`` (``None`` without
        a gate), each in its input's dtype, and ``dh0: (N, H, K, V)`` (``None`` without an initial state).
    """
    _, _, H, K = q.shape
    V = v.shape[-1]
    BK, BV, NV = _blocks(K, V)
    flags = dot_flags(q.dtype)
    gate = g is not None
    table = chunk_table(cu_seqlens, CHUNK)
    N = cu_seqlens.numel() - 1
    w, u, vn, h, _, tmat = _recompute(k, v, beta, g, initial_state, cu_seqlens, table, store_t=True)
    _, BV_WALK, NV_WALK = _blocks(K, V, walk=True)
    dh = torch.empty_like(h)
    dvn = torch.empty_like(vn)
    _bwd_dvn_local_kernel[(table.num_chunks, H, NV)](
        q, k, g, do, dvn, cu_seqlens, table.indices, scale, H, K, V,
        GATE=gate, BT=CHUNK, BK=BK, BV=BV, **flags, num_warps=4,
    )
    dh0 = torch.empty_like(initial_state) if initial_state is not None else None
    _bwd_dh_kernel[(N * H, NV_WALK)](
        q, k, g, w, do, dht, dh, dvn, dh0, cu_seqlens, table.offsets, scale, H, K, V,
        GATE=gate, HAS_DHT=dht is not None, HAS_H0=initial_state is not None, BT=CHUNK, BK=BK, BV=BV_WALK,
        **flags, num_warps=8,
    )
    dv, dbeta = torch.empty_like(v), torch.empty_like(beta)
    # the paths through W and U first, into float32 buffers the second kernel completes
    dk_acc = k.new_empty(k.shape, dtype=torch.float32)
    dg_acc = g.new_empty(g.shape, dtype=torch.float32) if g is not None else None
    # value blocks of 32 or 64 next to its (BT, BK) and two (BT, BT) float32 tiles spill on sm_80 at K = 64
    _bwd_wu_kernel[(table.num_chunks, H)](
        k, v, beta, g, w, u, tmat, h, dvn, dk_acc, dv, dbeta, dg_acc, cu_seqlens, table.indices, H, K, V,
        GATE=gate, BT=CHUNK, BK=BK, BV=16, NV=triton.cdiv(V, 16), **flags, num_warps=8,
    )
    dk = torch.empty_like(k)
    _bwd_dk_kernel[(table.num_chunks, H)](
        q, k, g, vn, do, dh, dk_acc, dg_acc, dk, cu_seqlens, table.indices, scale, H, K, V,
        GATE=gate, BT=CHUNK, BK=BK, BV=BV, NV=NV, **flags, num_warps=8,
    )
    dq = torch.empty_like(q)
    dg = torch.empty_like(g) if g is not None else None
    _bwd_dq_kernel[(table.num_chunks, H)](
        q, k, g, h, vn, do, dh, dg_acc, dq, dg, cu_seqlens, table.indices, scale, H, K, V,
        GATE=gate, BT=CHUNK, BK=BK, BV=BV, NV=NV, **flags, num_warps=8,
    )
    return dq, dk, dv, dbeta, dg, dh0
