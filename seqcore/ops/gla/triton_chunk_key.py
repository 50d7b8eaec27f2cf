"""Chunked Triton kernels for gated linear attention with a per-key gate ``g: (1, T, H, K)`` (GLA).

``S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T``, ``o_t = scale * S_t^T q_t``, computed per chunk of ``BT = 64`` steps
that never crosses a sequence (one program per chunk, from :func:`~seqcore.ops.chunk_index.chunk_table`). With
``b`` the in-chunk cumulative log decay and ``S`` the state entering the chunk:

    O  = scale (Q * e^b) S + scale A V,        A_ij = sum_k q_ik k_jk e^{b_ik - b_jk}  (j <= i)
    S' = diag(e^{b_C}) S + (K * e^{b_C - b})^T V

``A`` is built from sub-chunks of ``BC = 16`` steps: a block of a later sub-chunk ``I`` against an earlier ``J``
goes through the reference point ``ref`` just before ``I`` starts, ``(Q_I e^{b_I - b_ref}) (K_J e^{b_ref - b_J})^T``
with one ``tl.dot``; a diagonal block is summed pairwise, ``e^{b_i - b_j}`` only for ``j <= i``. Every exponent
evaluated is <= 0 (a masked one is ``-inf``), so strong decays underflow to 0 and never overflow.

Resets (``g = -inf``): ``b`` is the prefix sum of the finite decays only and ``r`` counts the resets up to each
step within the chunk; the decay from step ``j`` to step ``i`` is ``e^{b_i - b_j}`` when ``r_i == r_j`` and 0
otherwise (a reset in ``(j, i]`` forgets everything). The finite path keeps exactly the prefix sums it has
without resets.

Kernels, forward: ``_chunk_cumsum_kernel`` (``b``, ``r``), ``_chunk_states_kernel`` (the state entering every
chunk, float32 ``(NT, H, K, V)``, and the final state), ``_fwd_o_kernel``. Backward recomputes ``b``, ``r`` and
the chunk states from the inputs, then ``_bwd_dh_kernel`` (gradient of the state leaving each chunk, reverse in
time, and ``dh0``), ``_bwd_dv_kernel``, ``_bwd_dq_kernel`` and ``_bwd_dk_kernel`` (reduced over the value dim inside the
program, and ``dL/db = q * dq - k * dk``) and ``_bwd_dg_kernel``: ``dg`` is the reverse cumulative sum of
``dL/db`` within each sequence (plus ``sum_v S_T * dht`` at its last step), restarted at 0 at each reset, where it
is exactly 0, as :mod:`.triton_recurrent` does.
"""
from __future__ import annotations


import torch
import triton
import triton.language as tl
from torch import Tensor

from ..chunk_index import ChunkTable, chunk_table
from ..triton_tiles import chunk_rows, dot, dot_flags, tile

CHUNK = 64
SUB_CHUNK = 16


@triton.jit
def _tile(ptr, rows, m_rows, cols, m_cols, stride):
    """``(len(rows), len(cols))`` float32 tile of a ``(T, H, D)`` tensor, ``ptr`` at this chunk's first step and this
    head, ``rows`` counted from there; 0 where masked."""
    return tile(ptr, rows, m_rows, cols, m_cols, stride).to(tl.float32)


@triton.jit
def _itile(ptr, rows, m_rows, cols, m_cols, stride):
    """Integer tile (the reset counts ``r``), as :func:`_tile`."""
    mask = m_rows[:, None] & m_cols[None, :]
    return tl.load(ptr + rows[:, None] * stride + cols[None, :], mask=mask, other=0)


@triton.jit
def _decay(valid, diff):
    """``e^diff`` where ``valid``, else 0; ``diff`` (<= 0 where valid) is never exponentiated where not."""
    return tl.exp(tl.where(valid, diff, float("-inf")))


@triton.jit
def _chunk_rows(cu_seqlens, chunk_indices, i_c, BT: tl.constexpr):
    """First step ``t0`` (int64) of chunk ``i_c`` (global chunk order) and its number of steps ``n`` (int32)."""
    t0, eos = chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    return t0, tl.cast(tl.minimum(eos - t0, BT), tl.int32)


@triton.jit
def _row(ptr, t, cols, m_k, HK):
    """Step ``t`` (from the chunk's first) of a ``(T, H, K)`` tensor: a ``(BK,)`` vector, 0 where masked."""
    return tl.load(ptr + t * HK + cols, mask=m_k, other=0)


@triton.jit
def _chunk_cumsum_kernel(
    g, b, r, cu_seqlens, chunk_indices, H, K, BT: tl.constexpr, BK: tl.constexpr,
):
    """Per (chunk, head, key block): ``b`` = prefix sum of the finite log decays, ``r`` = resets so far."""
    i_c, i_h, i_k = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, n = _chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    base = t0 * H * K + i_h * K
    rows = tl.arange(0, BT)
    cols = i_k * BK + tl.arange(0, BK)
    offs = rows[:, None] * H * K + cols[None, :]
    mask = (rows < n)[:, None] & (cols < K)[None, :]
    b_g = tl.load(g + base + offs, mask=mask, other=0.).to(tl.float32)
    reset = b_g == float("-inf")
    tl.store(b + base + offs, tl.cumsum(tl.where(reset, 0., b_g), axis=0), mask=mask)
    tl.store(r + base + offs, tl.cumsum(reset.to(tl.int32), axis=0), mask=mask)


@triton.jit
def _chunk_states_kernel(
    k, v, b, r, h0, h, ht, cu_seqlens, chunk_offsets, H, K, V,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, HAS_H0: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (key block x value block, sequence x head): walks the sequence's chunks, stores the state entering
    each into ``h: (NT, H, K, V)`` and the final state into ``ht: (N, H, K, V)``."""
    i_kv, i_nh = tl.program_id(0), tl.program_id(1)
    NV = tl.cdiv(V, BV)
    i_k, i_v = i_kv // NV, i_kv % NV
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    c0 = tl.load(chunk_offsets + i_n)
    HK, HV = H * K, H * V
    rows = tl.arange(0, BT)
    cols_k = i_k * BK + tl.arange(0, BK)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = cols_k < K, cols_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_kv = cols_k[:, None] * V + cols_v[None, :]
    dt = k.dtype.element_ty

    S = tl.zeros([BK, BV], dtype=tl.float32)
    if HAS_H0:
        S = tl.load(h0 + tl.cast(i_nh, tl.int64) * K * V + o_kv, mask=m_kv, other=0.)
    for i_t in range(tl.cdiv(eos - bos, BT)):
        t0 = bos + i_t * BT
        n = tl.cast(tl.minimum(eos - t0, BT), tl.int32)
        tl.store(h + ((c0 + i_t) * H + i_h) * K * V + o_kv, S, mask=m_kv)
        k_c, b_c, r_c = k + t0 * HK + i_h * K, b + t0 * HK + i_h * K, r + t0 * HK + i_h * K
        m_t = rows < n
        b_last, r_last = _row(b_c, n - 1, cols_k, m_k, HK), _row(r_c, n - 1, cols_k, m_k, HK)
        valid = m_t[:, None] & (_itile(r_c, rows, m_t, cols_k, m_k, HK) == r_last[None, :])
        b_kd = _tile(k_c, rows, m_t, cols_k, m_k, HK) * _decay(
            valid, b_last[None, :] - _tile(b_c, rows, m_t, cols_k, m_k, HK))
        b_v = _tile(v + t0 * HV + i_h * V, rows, m_t, cols_v, m_v, HV)
        S *= _decay(r_last == 0, b_last)[:, None]
        S += dot(tl.trans(b_kd).to(dt), b_v.to(dt), PREC, UPCAST)
    tl.store(ht + tl.cast(i_nh, tl.int64) * K * V + o_kv, S, mask=m_kv)


@triton.jit
def _off_diagonal_scores(
    q, k, b, r, s_i, s_j, n, HK, K, BC: tl.constexpr, BK: tl.constexpr, NK: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """``A_IJ: (BC, BC)`` of query sub-chunk ``I`` (from row ``s_i`` of the chunk) and an earlier key sub-chunk
    ``J`` (from ``s_j``, all inside the chunk), through the reference point ``s_i - 1``; summed over key blocks."""
    rows_i = s_i + tl.arange(0, BC)
    rows_j = s_j + tl.arange(0, BC)
    m_i = rows_i < n
    m_j = rows_j < n
    dt = q.dtype.element_ty
    A = tl.zeros([BC, BC], dtype=tl.float32)
    for i_k in range(NK):
        cols = i_k * BK + tl.arange(0, BK)
        m_k = cols < K
        b_ref, r_ref = _row(b, s_i - 1, cols, m_k, HK), _row(r, s_i - 1, cols, m_k, HK)
        b_qr = _tile(q, rows_i, m_i, cols, m_k, HK) * _decay(
            m_i[:, None] & (_itile(r, rows_i, m_i, cols, m_k, HK) == r_ref[None, :]),
            _tile(b, rows_i, m_i, cols, m_k, HK) - b_ref[None, :])
        b_kr = _tile(k, rows_j, m_j, cols, m_k, HK) * _decay(
            m_j[:, None] & (_itile(r, rows_j, m_j, cols, m_k, HK) == r_ref[None, :]),
            b_ref[None, :] - _tile(b, rows_j, m_j, cols, m_k, HK))
        A += dot(b_qr.to(dt), tl.trans(b_kr).to(dt), PREC, UPCAST)
    return A


@triton.jit
def _pair_decay(b_x, r_x, m_x, b_j, r_j, j, BC: tl.constexpr):
    """``e^{b_i - b_j}: (BC, BK)`` for the rows ``i`` of a sub-chunk against its own row ``j``; 0 for ``i < j``,
    rows past the sequence's end and across a reset."""
    o_c = tl.arange(0, BC)
    valid = m_x[:, None] & (o_c[:, None] >= j) & (r_x == r_j[None, :])
    return _decay(valid, b_x - b_j[None, :])


@triton.jit
def _diagonal_scores(q, k, b, r, s, n, HK, K, BC: tl.constexpr, BK: tl.constexpr, NK: tl.constexpr):
    """``A_XX: (BC, BC)`` of the sub-chunk from row ``s``, pairwise in log space, summed over key blocks."""
    o_c = tl.arange(0, BC)
    rows = s + o_c
    m_x = rows < n
    A = tl.zeros([BC, BC], dtype=tl.float32)
    for i_k in range(NK):
        cols = i_k * BK + tl.arange(0, BK)
        m_k = cols < K
        b_q = _tile(q, rows, m_x, cols, m_k, HK)
        b_x = _tile(b, rows, m_x, cols, m_k, HK)
        r_x = _itile(r, rows, m_x, cols, m_k, HK)
        for j in range(tl.minimum(BC, n - s)):
            b_kj = _row(k, s + j, cols, m_k, HK).to(tl.float32)
            decay = _pair_decay(b_x, r_x, m_x, _row(b, s + j, cols, m_k, HK), _row(r, s + j, cols, m_k, HK), j, BC)
            col = tl.sum(b_q * b_kj[None, :] * decay, axis=1)
            A += tl.where(o_c[None, :] == j, col[:, None], 0.)
    return A


@triton.jit
def _fwd_o_kernel(
    q, k, v, b, r, h, o, cu_seqlens, chunk_indices, scale, H, K, V,
    BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NK: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head, value block): ``o`` one sub-chunk of rows at a time."""
    i_c, i_h, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, n = _chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    HK, HV = H * K, H * V
    base_k, base_v = t0 * HK + i_h * K, t0 * HV + i_h * V
    q, k, b, r = q + base_k, k + base_k, b + base_k, r + base_k
    v, o = v + base_v, o + base_v
    h += (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    o_c = tl.arange(0, BC)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_v = cols_v < V
    dt = q.dtype.element_ty
    for i_s in range(tl.cdiv(n, BC)):
        s = i_s * BC
        rows = s + o_c
        m_x = rows < n
        # the state entering the chunk
        acc = tl.zeros([BC, BV], dtype=tl.float32)
        for i_k in range(NK):
            cols = i_k * BK + tl.arange(0, BK)
            m_k = cols < K
            b_qs = _tile(q, rows, m_x, cols, m_k, HK) * _decay(
                m_x[:, None] & (_itile(r, rows, m_x, cols, m_k, HK) == 0), _tile(b, rows, m_x, cols, m_k, HK))
            b_S = tl.load(h + cols[:, None] * V + cols_v[None, :], mask=m_k[:, None] & m_v[None, :], other=0.)
            acc += dot(b_qs.to(dt), b_S.to(dt), PREC, UPCAST)
        # earlier sub-chunks of the chunk
        for i_j in range(i_s):
            A = _off_diagonal_scores(q, k, b, r, s, i_j * BC, n, HK, K, BC, BK, NK, PREC, UPCAST)
            b_v = _tile(v, i_j * BC + o_c, i_j * BC + o_c < n, cols_v, m_v, HV)
            acc += dot(A.to(dt), b_v.to(dt), PREC, UPCAST)
        A = _diagonal_scores(q, k, b, r, s, n, HK, K, BC, BK, NK)
        acc += dot(A.to(dt), _tile(v, rows, m_x, cols_v, m_v, HV).to(dt), PREC, UPCAST)
        tl.store(o + rows[:, None] * HV + cols_v[None, :], (acc * scale).to(o.dtype.element_ty),
                 mask=m_x[:, None] & m_v[None, :])


@triton.jit
def _bwd_dh_kernel(
    q, b, r, do, dht, dh, dh0, cu_seqlens, chunk_offsets, scale, H, K, V,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, HAS_DHT: tl.constexpr, HAS_H0: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (key block x value block, sequence x head), reverse in time: ``dh: (NT, H, K, V)`` the gradient of the
    state leaving each chunk, ``dS_prev = diag(e^{b_C}) dS + scale (Q e^b)^T dO``, and ``dh0``."""
    i_kv, i_nh = tl.program_id(0), tl.program_id(1)
    NV = tl.cdiv(V, BV)
    i_k, i_v = i_kv // NV, i_kv % NV
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    c0 = tl.load(chunk_offsets + i_n)
    HK, HV = H * K, H * V
    rows = tl.arange(0, BT)
    cols_k = i_k * BK + tl.arange(0, BK)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = cols_k < K, cols_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_kv = cols_k[:, None] * V + cols_v[None, :]
    dt = q.dtype.element_ty

    dS = tl.zeros([BK, BV], dtype=tl.float32)
    if HAS_DHT:
        dS = tl.load(dht + tl.cast(i_nh, tl.int64) * K * V + o_kv, mask=m_kv, other=0.)
    n_chunks = tl.cdiv(eos - bos, BT)
    for i in range(n_chunks):
        i_t = n_chunks - 1 - i
        t0 = bos + i_t * BT
        n = tl.cast(tl.minimum(eos - t0, BT), tl.int32)
        tl.store(dh + ((c0 + i_t) * H + i_h) * K * V + o_kv, dS, mask=m_kv)
        q_c, b_c, r_c = q + t0 * HK + i_h * K, b + t0 * HK + i_h * K, r + t0 * HK + i_h * K
        m_t = rows < n
        b_last, r_last = _row(b_c, n - 1, cols_k, m_k, HK), _row(r_c, n - 1, cols_k, m_k, HK)
        b_qd = _tile(q_c, rows, m_t, cols_k, m_k, HK) * _decay(
            m_t[:, None] & (_itile(r_c, rows, m_t, cols_k, m_k, HK) == 0), _tile(b_c, rows, m_t, cols_k, m_k, HK))
        b_do = _tile(do + t0 * HV + i_h * V, rows, m_t, cols_v, m_v, HV)
        dS *= _decay(r_last == 0, b_last)[:, None]
        dS += scale * dot(tl.trans(b_qd).to(dt), b_do.to(dt), PREC, UPCAST)
    if HAS_H0:
        tl.store(dh0 + tl.cast(i_nh, tl.int64) * K * V + o_kv, dS.to(dh0.dtype.element_ty), mask=m_kv)


@triton.jit
def _bwd_dv_kernel(
    q, k, b, r, do, dh, dv, cu_seqlens, chunk_indices, scale, H, K, V,
    BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NK: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head, value block): ``dv_j = (k_j e^{b_C - b_j})^T dH + scale sum_{i >= j} A_ij do_i``, one
    sub-chunk of rows ``j`` at a time, reduced over the key dim inside the program."""
    i_c, i_h, i_v = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, n = _chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    HK, HV = H * K, H * V
    base_k, base_v = t0 * HK + i_h * K, t0 * HV + i_h * V
    q, k, b, r = q + base_k, k + base_k, b + base_k, r + base_k
    do, dv = do + base_v, dv + base_v
    dh += (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    o_c = tl.arange(0, BC)
    cols_v = i_v * BV + tl.arange(0, BV)
    m_v = cols_v < V
    dt = q.dtype.element_ty
    n_sub = tl.cdiv(n, BC)
    for i_s in range(n_sub):
        s = i_s * BC
        rows = s + o_c
        m_x = rows < n
        # the state leaving the chunk
        acc = tl.zeros([BC, BV], dtype=tl.float32)
        for i_k in range(NK):
            cols = i_k * BK + tl.arange(0, BK)
            m_k = cols < K
            b_last, r_last = _row(b, n - 1, cols, m_k, HK), _row(r, n - 1, cols, m_k, HK)
            b_kd = _tile(k, rows, m_x, cols, m_k, HK) * _decay(
                m_x[:, None] & (_itile(r, rows, m_x, cols, m_k, HK) == r_last[None, :]),
                b_last[None, :] - _tile(b, rows, m_x, cols, m_k, HK))
            b_dH = tl.load(dh + cols[:, None] * V + cols_v[None, :], mask=m_k[:, None] & m_v[None, :], other=0.)
            acc += dot(b_kd.to(dt), b_dH.to(dt), PREC, UPCAST)
        # later sub-chunks of queries, then this one
        intra = tl.zeros([BC, BV], dtype=tl.float32)
        for i_i in range(i_s + 1, n_sub):
            A = _off_diagonal_scores(q, k, b, r, i_i * BC, s, n, HK, K, BC, BK, NK, PREC, UPCAST)
            b_do = _tile(do, i_i * BC + o_c, i_i * BC + o_c < n, cols_v, m_v, HV)
            intra += dot(tl.trans(A).to(dt), b_do.to(dt), PREC, UPCAST)
        A = _diagonal_scores(q, k, b, r, s, n, HK, K, BC, BK, NK)
        intra += dot(tl.trans(A).to(dt), _tile(do, rows, m_x, cols_v, m_v, HV).to(dt), PREC, UPCAST)
        tl.store(dv + rows[:, None] * HV + cols_v[None, :], (acc + scale * intra).to(dv.dtype.element_ty),
                 mask=m_x[:, None] & m_v[None, :])


@triton.jit
def _score_grads(do, v, s_i, s_j, n, HV, V, BC: tl.constexpr, BV: tl.constexpr, NV: tl.constexpr,
                 PREC: tl.constexpr, UPCAST: tl.constexpr):
    """``do_I v_J^T: (BC, BC)`` of the sub-chunks from rows ``s_i`` and ``s_j``, summed over value blocks
    (``dA`` without its scale)."""
    rows_i = s_i + tl.arange(0, BC)
    rows_j = s_j + tl.arange(0, BC)
    dt = v.dtype.element_ty
    dA = tl.zeros([BC, BC], dtype=tl.float32)
    for i_v in range(NV):
        cols = i_v * BV + tl.arange(0, BV)
        m_v = cols < V
        b_do = _tile(do, rows_i, rows_i < n, cols, m_v, HV)
        b_v = _tile(v, rows_j, rows_j < n, cols, m_v, HV)
        dA += dot(b_do.to(dt), tl.trans(b_v).to(dt), PREC, UPCAST)
    return dA


@triton.jit
def _bwd_dq_kernel(
    q, k, v, b, r, h, do, dq, db, cu_seqlens, chunk_indices, scale, H, K, V,
    BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head, key block): ``dq_i = scale e^{b_i} (S do_i) + sum_{j <= i} dA_ij k_j e^{b_i - b_j}`` with
    ``dA_ij = scale do_i . v_j``, one sub-chunk of rows at a time, reduced over the value dim inside the program;
    ``db = q * dq`` (float32), the first term of ``dL/db``."""
    i_c, i_h, i_k = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, n = _chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    HK, HV = H * K, H * V
    base_k, base_v = t0 * HK + i_h * K, t0 * HV + i_h * V
    q, k, b, r, dq, db = q + base_k, k + base_k, b + base_k, r + base_k, dq + base_k, db + base_k
    v, do = v + base_v, do + base_v
    h += (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    cols = i_k * BK + tl.arange(0, BK)
    m_k = cols < K
    o_c = tl.arange(0, BC)
    dt = q.dtype.element_ty
    for i_s in range(tl.cdiv(n, BC)):
        s = i_s * BC
        rows = s + o_c
        m_x = rows < n
        b_x = _tile(b, rows, m_x, cols, m_k, HK)
        r_x = _itile(r, rows, m_x, cols, m_k, HK)
        # the state entering the chunk
        b_dq = tl.zeros([BC, BK], dtype=tl.float32)
        for i_v in range(NV):
            cols_v = i_v * BV + tl.arange(0, BV)
            m_v = cols_v < V
            b_S = tl.load(h + cols[:, None] * V + cols_v[None, :], mask=m_k[:, None] & m_v[None, :], other=0.)
            b_do = _tile(do, rows, m_x, cols_v, m_v, HV)
            b_dq += dot(b_do.to(dt), tl.trans(b_S).to(dt), PREC, UPCAST)
        b_dq *= scale * _decay(m_x[:, None] & (r_x == 0), b_x)
        # earlier key sub-chunks J, through the reference point just before this one
        b_ref = tl.load(b + (s - 1) * HK + cols, mask=m_k & (i_s > 0), other=0.)
        r_ref = tl.load(r + (s - 1) * HK + cols, mask=m_k & (i_s > 0), other=0)
        acc = tl.zeros([BC, BK], dtype=tl.float32)
        for i_j in range(i_s):
            rows_j = i_j * BC + o_c
            dA = _score_grads(do, v, s, i_j * BC, n, HV, V, BC, BV, NV, PREC, UPCAST)
            b_kr = _tile(k, rows_j, rows_j < n, cols, m_k, HK) * _decay(
                _itile(r, rows_j, rows_j < n, cols, m_k, HK) == r_ref[None, :],
                b_ref[None, :] - _tile(b, rows_j, rows_j < n, cols, m_k, HK))
            acc += dot(dA.to(dt), b_kr.to(dt), PREC, UPCAST)
        b_dq += scale * acc * _decay(m_x[:, None] & (r_x == r_ref[None, :]), b_x - b_ref[None, :])
        # this sub-chunk, pairwise over its key rows j
        dA = scale * _score_grads(do, v, s, s, n, HV, V, BC, BV, NV, PREC, UPCAST)
        for j in range(tl.minimum(BC, n - s)):
            b_kj = _row(k, s + j, cols, m_k, HK).to(tl.float32)
            decay = _pair_decay(b_x, r_x, m_x, _row(b, s + j, cols, m_k, HK), _row(r, s + j, cols, m_k, HK), j, BC)
            dA_j = tl.sum(tl.where(o_c[None, :] == j, dA, 0.), axis=1)
            b_dq += dA_j[:, None] * b_kj[None, :] * decay
        o_x = rows[:, None] * HK + cols[None, :]
        m_xk = m_x[:, None] & m_k[None, :]
        tl.store(dq + o_x, b_dq.to(dq.dtype.element_ty), mask=m_xk)
        tl.store(db + o_x, _tile(q, rows, m_x, cols, m_k, HK) * b_dq, mask=m_xk)


@triton.jit
def _bwd_dk_kernel(
    q, k, v, b, r, do, dh, dk, db, cu_seqlens, chunk_indices, scale, H, K, V,
    BT: tl.constexpr, BC: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, NV: tl.constexpr,
    PREC: tl.constexpr, UPCAST: tl.constexpr,
):
    """Per (chunk, head, key block): ``dk_j = e^{b_C - b_j} (dH v_j) + sum_{i >= j} dA_ij q_i e^{b_i - b_j}``, one
    sub-chunk of rows at a time, reduced over the value dim inside the program; ``db -= k * dk`` completes
    ``dL/db = q * dq - k * dk`` (run after :func:`_bwd_dq_kernel`)."""
    i_c, i_h, i_k = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    t0, n = _chunk_rows(cu_seqlens, chunk_indices, i_c, BT)
    HK, HV = H * K, H * V
    base_k, base_v = t0 * HK + i_h * K, t0 * HV + i_h * V
    q, k, b, r, dk, db = q + base_k, k + base_k, b + base_k, r + base_k, dk + base_k, db + base_k
    v, do = v + base_v, do + base_v
    dh += (tl.cast(i_c, tl.int64) * H + i_h) * K * V
    cols = i_k * BK + tl.arange(0, BK)
    m_k = cols < K
    o_c = tl.arange(0, BC)
    dt = q.dtype.element_ty
    b_last, r_last = _row(b, n - 1, cols, m_k, HK), _row(r, n - 1, cols, m_k, HK)
    n_sub = tl.cdiv(n, BC)
    for i_s in range(n_sub):
        s = i_s * BC
        rows = s + o_c
        m_x = rows < n
        b_x = _tile(b, rows, m_x, cols, m_k, HK)
        r_x = _itile(r, rows, m_x, cols, m_k, HK)
        # the state leaving the chunk
        b_dk = tl.zeros([BC, BK], dtype=tl.float32)
        for i_v in range(NV):
            cols_v = i_v * BV + tl.arange(0, BV)
            m_v = cols_v < V
            b_dH = tl.load(dh + cols[:, None] * V + cols_v[None, :], mask=m_k[:, None] & m_v[None, :], other=0.)
            b_v = _tile(v, rows, m_x, cols_v, m_v, HV)
            b_dk += dot(b_v.to(dt), tl.trans(b_dH).to(dt), PREC, UPCAST)
        b_dk *= _decay(m_x[:, None] & (r_x == r_last[None, :]), b_last[None, :] - b_x)
        # later query sub-chunks I, each through its own reference point
        for i_i in range(i_s + 1, n_sub):
            rows_i = i_i * BC + o_c
            m_i = rows_i < n
            dA = _score_grads(do, v, i_i * BC, s, n, HV, V, BC, BV, NV, PREC, UPCAST)
            b_ref, r_ref = _row(b, i_i * BC - 1, cols, m_k, HK), _row(r, i_i * BC - 1, cols, m_k, HK)
            b_qr = _tile(q, rows_i, m_i, cols, m_k, HK) * _decay(
                m_i[:, None] & (_itile(r, rows_i, m_i, cols, m_k, HK) == r_ref[None, :]),
                _tile(b, rows_i, m_i, cols, m_k, HK) - b_ref[None, :])
            b_dk += scale * dot(tl.trans(dA).to(dt), b_qr.to(dt), PREC, UPCAST) * _decay(
                r_x == r_ref[None, :], b_ref[None, :] - b_x)
        # this sub-chunk, pairwise over its query rows i: e^{b_i - b_j} for the key rows j <= i
        dA = scale * _score_grads(do, v, s, s, n, HV, V, BC, BV, NV, PREC, UPCAST)
        for i in range(tl.minimum(BC, n - s)):
            b_qi = _row(q, s + i, cols, m_k, HK).to(tl.float32)
            b_i, r_i = _row(b, s + i, cols, m_k, HK), _row(r, s + i, cols, m_k, HK)
            dA_i = tl.sum(tl.where(o_c[:, None] == i, dA, 0.), axis=0)
            decay = _decay((o_c[:, None] <= i) & (r_x == r_i[None, :]), b_i[None, :] - b_x)
            b_dk += dA_i[:, None] * b_qi[None, :] * decay
        o_x = rows[:, None] * HK + cols[None, :]
        m_xk = m_x[:, None] & m_k[None, :]
        tl.store(dk + o_x, b_dk.to(dk.dtype.element_ty), mask=m_xk)
        b_db = tl.load(db + o_x, mask=m_xk, other=0.)
        tl.store(db + o_x, b_db - _tile(k, rows, m_x, cols, m_k, HK) * b_dk, mask=m_xk)


@triton.jit
def _restart_sum(a1, c1, a2, c2):
    """Composes ``y -> a y + c`` maps, the earlier (``1``) applied first: a running sum that ``a = 0`` restarts."""
    return a1 * a2, c2 + a2 * c1


@triton.jit
def _bwd_dg_kernel(
    g, db, ht, dht, dg, cu_seqlens, H, K, V,
    BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, HAS_DHT: tl.constexpr,
):
    """Per (sequence x head, key block): ``dg_t = sum_{s >= t} dL/db_s`` within the sequence, from its end
    (where the final state adds ``sum_v S_T * dht``), restarted at each reset, where it is exactly 0.

    Each chunk is one segmented scan over its rows in reverse order, loaded as such; the carry is ``dg`` at the
    first step of the later chunk."""
    i_nh, i_k = tl.program_id(0), tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    HK = H * K
    cols = i_k * BK + tl.arange(0, BK)
    m_k = cols < K
    carry = tl.zeros([BK], dtype=tl.float32)
    if HAS_DHT:
        o_state = tl.cast(i_nh, tl.int64) * K * V
        for i_v in range(tl.cdiv(V, BV)):
            cols_v = i_v * BV + tl.arange(0, BV)
            o_kv = o_state + cols[:, None] * V + cols_v[None, :]
            m_kv = m_k[:, None] & (cols_v < V)[None, :]
            S_T = tl.load(ht + o_kv, mask=m_kv, other=0.)
            carry += tl.sum(S_T * tl.load(dht + o_kv, mask=m_kv, other=0.), axis=1)
    back = BT - 1 - tl.arange(0, BT)
    offs = back[:, None] * HK + cols[None, :]
    n_chunks = tl.cdiv(eos - bos, BT)
    for i in range(n_chunks):
        t0 = bos + (n_chunks - 1 - i) * BT
        base = t0 * HK + i_h * K
        mask = (back < eos - t0)[:, None] & m_k[None, :]
        reset = tl.load(g + base + offs, mask=mask, other=0.) == float("-inf")
        keep = tl.where(reset, 0., 1.)
        terms = tl.where(reset, 0., tl.load(db + base + offs, mask=mask, other=0.))
        a, c = tl.associative_scan((keep, terms), 0, _restart_sum)
        y = c + a * carry[None, :]
        tl.store(dg + base + offs, y.to(dg.dtype.element_ty), mask=mask)
        carry = tl.sum(tl.where(back[:, None] == 0, y, 0.), axis=0)


def _blocks(K: int, V: int) -> tuple[int, int, int, int]:
    """``BK, BV, NK, NV``: key and value blocks of at most 64 (at least 16, the smallest ``tl.dot`` tile)."""
    BK = min(64, max(16, triton.next_power_of_2(K)))
    BV = min(64, max(16, triton.next_power_of_2(V)))
    return BK, BV, triton.cdiv(K, BK), triton.cdiv(V, BV)


def _cumsum_and_states(
    k: Tensor, v: Tensor, g: Tensor, initial_state: Tensor | None, cu_seqlens: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, ChunkTable]:
    """``b`` float32 and ``r`` int32 ``(1, T, H, K)``, the states entering each chunk ``(NT, H, K, V)`` float32,
    the final states ``(N, H, K, V)`` float32 and the chunk table."""
    _, _, H, K = k.shape
    V = v.shape[-1]
    N = cu_seqlens.numel() - 1
    BK, BV, NK, NV = _blocks(K, V)
    table = chunk_table(cu_seqlens, CHUNK)
    b = k.new_empty(k.shape, dtype=torch.float32)
    r = k.new_empty(k.shape, dtype=torch.int32)
    _chunk_cumsum_kernel[(table.num_chunks, H, NK)](g, b, r, cu_seqlens, table.indices, H, K, BT=CHUNK, BK=BK)
    h = k.new_empty(table.num_chunks, H, K, V, dtype=torch.float32)
    ht = k.new_empty(N, H, K, V, dtype=torch.float32)
    _chunk_states_kernel[(NK * NV, N * H)](
        k, v, b, r, initial_state, h, ht, cu_seqlens, table.offsets, H, K, V,
        BT=CHUNK, BK=BK, BV=BV, HAS_H0=initial_state is not None, **dot_flags(k.dtype), num_warps=4,
    )
    return b, r, h, ht, table


def gla_key_fwd(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor, scale: float, initial_state: Tensor | None, cu_seqlens: Tensor
) -> tuple[Tensor, Tensor]:
    """Packed chunked GLA forward with a per-key gate.

    Args:
        q, k: ``(1, T, H, K)``; v: ``(1, T, H, V)``; g: ``(1, T, H, K)`` log decays <= 0;
        initial_state: ``(N, H, K, V)`` or ``None``; cu_seqlens: ``(N + 1,)`` int64.
    Returns:
        ``o: (1, T, H, V)`` in ``v.dtype`` and the final state ``(N, H, K, V)`` float32.
    """
    _, _, H, K = q.shape
    V = v.shape[-1]
    BK, BV, NK, NV = _blocks(K, V)
    b, r, h, ht, table = _cumsum_and_states(k, v, g, initial_state, cu_seqlens)
    o = torch.empty_like(v)
    _fwd_o_kernel[(table.num_chunks, H, NV)](
        q, k, v, b, r, h, o, cu_seqlens, table.indices, scale, H, K, V,
        BT=CHUNK, BC=SUB_CHUNK, BK=BK, BV=BV, NK=NK, **dot_flags(q.dtype), num_warps=4,
    )
    return o, ht


def gla_key_bwd(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor, scale: float, initial_state: Tensor | None,
    cu_seqlens: Tensor, do: Tensor, dht: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
    """Packed chunked GLA backward with a per-key gate.

    Args:
        as :func:`gla_key_fwd`, plus do: ``(1, T, H, V)`` and dht: ``(N, H, K, V)`` or ``None``.
    Returns:
        ``dq, dk: (1, T, H, K)``, ``dv: (1, T, H, V)``, ``dg: (1, T, H, K)``, each in its input's dtype, and
        ``dh0: (N, H, K, V)`` (``None`` without an initial state).
    """
    _, _, H, K = q.shape
    V = v.shape[-1]
    N = cu_seqlens.numel() - 1
    BK, BV, NK, NV = _blocks(K, V)
    dots = dot_flags(q.dtype)
    b, r, h, ht, table = _cumsum_and_states(k, v, g, initial_state, cu_seqlens)
    NT = table.num_chunks
    dh = q.new_empty(NT, H, K, V, dtype=torch.float32)
    dh0 = torch.empty_like(initial_state) if initial_state is not None else None
    _bwd_dh_kernel[(NK * NV, N * H)](
        q, b, r, do, dht, dh, dh0, cu_seqlens, table.offsets, scale, H, K, V,
        BT=CHUNK, BK=BK, BV=BV, HAS_DHT=dht is not None, HAS_H0=initial_state is not None, **dots, num_warps=4,
    )
    dv = torch.empty_like(v)
    _bwd_dv_kernel[(NT, H, NV)](
        q, k, b, r, do, dh, dv, cu_seqlens, table.indices, scale, H, K, V,
        BT=CHUNK, BC=SUB_CHUNK, BK=BK, BV=BV, NK=NK, **dots, num_warps=4, num_stages=1,
    )
    dq, dk = torch.empty_like(q), torch.empty_like(k)
    db = q.new_empty(q.shape, dtype=torch.float32)
    flags = dict(BT=CHUNK, BC=SUB_CHUNK, BK=BK, BV=BV, NV=NV, **dots, num_warps=4, num_stages=1)
    _bwd_dq_kernel[(NT, H, NK)](q, k, v, b, r, h, do, dq, db, cu_seqlens, table.indices, scale, H, K, V, **flags)
    _bwd_dk_kernel[(NT, H, NK)](q, k, v, b, r, do, dh, dk, db, cu_seqlens, table.indices, scale, H, K, V, **flags)
    dg = torch.empty_like(g)
    _bwd_dg_kernel[(N * H, NK)](
        g, db, ht, dht, dg, cu_seqlens, H, K, V, BT=CHUNK, BK=BK, BV=BV, HAS_DHT=dht is not None, num_warps=4,
    )
    return dq, dk, dv, dg, dh0
