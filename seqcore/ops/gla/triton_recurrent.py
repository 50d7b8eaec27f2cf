"""Fused recurrent Triton kernels for gated linear attention.

``S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T``, ``o_t = scale * S_t^T q_t``. One program per
(sequence, head, value block) walks the sequence in time with its ``(K, BV)`` slice of the state in
registers; no intermediate state is ever written.

Backward: a forward-in-time pass recomputes ``S_t`` for ``dq_t = scale * S_t do_t``, then a
reverse pass carries ``dS_t = scale * q_t do_t^T + diag(exp(g_{t+1})) dS_{t+1}`` for ``dk``/``dv``.
With ``b_t`` the cumulative log decay, ``dL/db_t = q_t * dq_t - k_t * dk_t`` (plus ``sum_v S_T * dht``
at the last step), and ``dg_t`` is the reverse cumulative sum of ``dL/db`` within the sequence, restarted at 0
at each reset (``g_t = -inf``), where it is exactly 0.
``dq`` and ``dk`` reduce over V, so each value block writes a float32 partial summed afterwards;
the ``dL/db`` terms are linear in those partials, so each block also runs its own partial ``dg`` sum.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

# values of the GATE constexpr of the kernels
_NO_GATE, _SCALAR_GATE, _KEY_GATE = 0, 1, 2


@triton.jit
def _log_gate(g, t, i_h, H, K, o_k, m_k, GATE: tl.constexpr):
    """g_t: a scalar per head, or a (BK,) vector per key."""
    if GATE == 1:
        b_g = tl.load(g + t * H + i_h).to(tl.float32)
    else:
        b_g = tl.load(g + (t * H + i_h) * K + o_k, mask=m_k, other=0.).to(tl.float32)
    return b_g


@triton.jit
def _rows(b_g, GATE: tl.constexpr):
    """A per-key vector as a (BK, 1) column that scales the rows of a (BK, BV) state tile; a scalar as is."""
    if GATE == 2:
        b_g = b_g[:, None]
    return b_g


@triton.jit
def _state_decay(g, t, i_h, H, K, o_k, m_k, GATE: tl.constexpr):
    """exp(g_t) for the rows of a (BK, BV) state tile: a scalar per head, a (BK, 1) column per key."""
    return _rows(tl.exp(_log_gate(g, t, i_h, H, K, o_k, m_k, GATE)), GATE)


@triton.jit
def _gla_fwd_kernel(
    q, k, v, g, h0, o, ht, cu_seqlens, scale, H, K, V,
    GATE: tl.constexpr, HAS_H0: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
):
    i_nh, i_v = tl.program_id(0), tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    # cu_seqlens is int64, so every offset derived from t stays int64 for long packed sequences.
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = o_k < K, o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_state = tl.cast(i_nh, tl.int64) * K * V + o_k[:, None] * V + o_v[None, :]

    S = tl.zeros([BK, BV], dtype=tl.float32)
    if HAS_H0:
        S = tl.load(h0 + o_state, mask=m_kv, other=0.).to(tl.float32)
    for t in range(bos, eos):
        o_tk = (t * H + i_h) * K + o_k
        o_tv = (t * H + i_h) * V + o_v
        b_q = tl.load(q + o_tk, mask=m_k, other=0.).to(tl.float32)
        b_k = tl.load(k + o_tk, mask=m_k, other=0.).to(tl.float32)
        b_v = tl.load(v + o_tv, mask=m_v, other=0.).to(tl.float32)
        if GATE != 0:
            S *= _state_decay(g, t, i_h, H, K, o_k, m_k, GATE)
        S += b_k[:, None] * b_v[None, :]
        b_o = tl.sum(S * b_q[:, None], axis=0) * scale
        tl.store(o + o_tv, b_o.to(o.dtype.element_ty), mask=m_v)
    tl.store(ht + o_state, S, mask=m_kv)


@triton.jit
def _gla_bwd_dq_kernel(
    k, v, g, h0, do, dht, dq, dbT, cu_seqlens, scale, T, H, K, V,
    GATE: tl.constexpr, HAS_H0: tl.constexpr, HAS_DHT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
):
    i_nh, i_v = tl.program_id(0), tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = o_k < K, o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_state = tl.cast(i_nh, tl.int64) * K * V + o_k[:, None] * V + o_v[None, :]
    # this value block's partial of dq, shape (NV, T, H, K)
    dq += tl.cast(i_v, tl.int64) * T * H * K

    S = tl.zeros([BK, BV], dtype=tl.float32)
    if HAS_H0:
        S = tl.load(h0 + o_state, mask=m_kv, other=0.).to(tl.float32)
    for t in range(bos, eos):
        o_tk = (t * H + i_h) * K + o_k
        o_tv = (t * H + i_h) * V + o_v
        b_k = tl.load(k + o_tk, mask=m_k, other=0.).to(tl.float32)
        b_v = tl.load(v + o_tv, mask=m_v, other=0.).to(tl.float32)
        b_do = tl.load(do + o_tv, mask=m_v, other=0.).to(tl.float32)
        if GATE != 0:
            S *= _state_decay(g, t, i_h, H, K, o_k, m_k, GATE)
        S += b_k[:, None] * b_v[None, :]
        tl.store(dq + o_tk, tl.sum(S * b_do[None, :], axis=1) * scale, mask=m_k)
    if GATE != 0 and HAS_DHT:
        # the final state also depends on the total decay b_T: partial of sum_v S_T * dht, shape (NV, N*H, K)
        b_dht = tl.load(dht + o_state, mask=m_kv, other=0.).to(tl.float32)
        o_bT = (tl.cast(i_v, tl.int64) * tl.num_programs(0) + i_nh) * K + o_k
        tl.store(dbT + o_bT, tl.sum(S * b_dht, axis=1), mask=m_k)


@triton.jit
def _gla_bwd_dkv_kernel(
    q, k, v, g, do, dht, dq, dbT, dk, dv, dg, dh0, cu_seqlens, scale, T, H, K, V,
    GATE: tl.constexpr, HAS_H0: tl.constexpr, HAS_DHT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
):
    i_nh, i_v = tl.program_id(0), tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = o_k < K, o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    o_state = tl.cast(i_nh, tl.int64) * K * V + o_k[:, None] * V + o_v[None, :]
    # this value block's partials of dq (read), dk and dg (written), leading dim NV
    i_v64 = tl.cast(i_v, tl.int64)
    dq += i_v64 * T * H * K
    dk += i_v64 * T * H * K
    if GATE == 1:
        dg += i_v64 * T * H
    elif GATE == 2:
        dg += i_v64 * T * H * K

    dS = tl.zeros([BK, BV], dtype=tl.float32)
    if HAS_DHT:
        dS = tl.load(dht + o_state, mask=m_kv, other=0.).to(tl.float32)
    # running reverse sum of dL/db within the sequence
    b_dg = tl.zeros([BK], dtype=tl.float32)
    if GATE != 0 and HAS_DHT:
        b_dg = tl.load(dbT + (i_v64 * tl.num_programs(0) + i_nh) * K + o_k, mask=m_k, other=0.)
    for i in range(eos - bos):
        t = eos - 1 - i
        o_tk = (t * H + i_h) * K + o_k
        o_tv = (t * H + i_h) * V + o_v
        b_q = tl.load(q + o_tk, mask=m_k, other=0.).to(tl.float32)
        b_k = tl.load(k + o_tk, mask=m_k, other=0.).to(tl.float32)
        b_v = tl.load(v + o_tv, mask=m_v, other=0.).to(tl.float32)
        b_do = tl.load(do + o_tv, mask=m_v, other=0.).to(tl.float32)
        dS += (scale * b_q)[:, None] * b_do[None, :]
        b_dk = tl.sum(dS * b_v[None, :], axis=1)
        tl.store(dk + o_tk, b_dk, mask=m_k)
        tl.store(dv + o_tv, tl.sum(dS * b_k[:, None], axis=0).to(dv.dtype.element_ty), mask=m_v)
        if GATE != 0:
            b_g = _log_gate(g, t, i_h, H, K, o_k, m_k, GATE)
            b_dq = tl.load(dq + o_tk, mask=m_k, other=0.)
            b_dg += b_q * b_dq - b_k * b_dk
            # g_t = -inf resets the state: dg_t = exp(g_t) <dS_t, S_{t-1}> is exactly 0, so the sum restarts here
            # (what it holds adds up to 0 only before rounding) and dg of the earlier steps needs none of it.
            b_dg = tl.where(b_g == float("-inf"), 0., b_dg)
            if GATE == 1:
                tl.store(dg + t * H + i_h, tl.sum(b_dg))
            else:
                tl.store(dg + o_tk, b_dg, mask=m_k)
            # dS now carries diag(exp(g_t)) dS_t into step t-1
            dS *= _rows(tl.exp(b_g), GATE)
    if HAS_H0:
        tl.store(dh0 + o_state, dS.to(dh0.dtype.element_ty), mask=m_kv)


def _gate_kind(g: Tensor | None) -> int:
    if g is None:
        return _NO_GATE
    return _SCALAR_GATE if g.dim() == 3 else _KEY_GATE


def _launch_params(K: int, V: int) -> tuple[int, int, int]:
    # the whole key dim lives in one program; a state tile of at most 4096 floats spread over up to
    # 8 warps (at most 16 per thread) stays in registers without spilling
    BK = triton.next_power_of_2(K)
    BV = min(triton.next_power_of_2(V), max(8, 4096 // BK))
    return BK, BV, max(1, min(8, BK * BV // 256))


def gla_fwd(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, scale: float, initial_state: Tensor | None, cu_seqlens: Tensor
) -> tuple[Tensor, Tensor]:
    """Packed GLA forward.

    Args:
        q, k: ``(1, T, H, K)``; v: ``(1, T, H, V)``; g: ``None``, ``(1, T, H)`` or ``(1, T, H, K)``;
        initial_state: ``(N, H, K, V)`` or ``None``; cu_seqlens: ``(N + 1,)`` int64.
    Returns:
        ``o: (1, T, H, V)`` in ``v.dtype`` and the final state ``(N, H, K, V)`` float32.
    """
    _, _, H, K = q.shape
    V = v.shape[-1]
    N = cu_seqlens.numel() - 1
    o = torch.empty_like(v)
    final_state = q.new_empty(N, H, K, V, dtype=torch.float32)
    BK, BV, num_warps = _launch_params(K, V)
    _gla_fwd_kernel[(N * H, triton.cdiv(V, BV))](
        q, k, v, g, initial_state, o, final_state, cu_seqlens, scale, H, K, V,
        GATE=_gate_kind(g), HAS_H0=initial_state is not None, BK=BK, BV=BV, num_warps=num_warps,
    )
    return o, final_state


def gla_bwd(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, scale: float, initial_state: Tensor | None,
    cu_seqlens: Tensor, do: Tensor, dht: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """Packed GLA backward.

    Args:
        as :func:`gla_fwd`, plus do: ``(1, T, H, V)`` and dht: ``(N, H, K, V)`` or ``None``.
    Returns:
        ``dq, dk: (1, T, H, K)``, ``dv: (1, T, H, V)``, ``dg`` shaped like ``g`` (``None`` without a gate)
        and ``dh0: (N, H, K, V)`` (``None`` without an initial state).
    """
    _, T, H, K = q.shape
    V = v.shape[-1]
    N = cu_seqlens.numel() - 1
    BK, BV, num_warps = _launch_params(K, V)
    NV = triton.cdiv(V, BV)
    gate = _gate_kind(g)
    has_dbT = gate != _NO_GATE and dht is not None

    dq = q.new_empty(NV, T, H, K, dtype=torch.float32)
    dk = q.new_empty(NV, T, H, K, dtype=torch.float32)
    dv = torch.empty_like(v)
    dg = q.new_empty((NV, *g.shape[1:]), dtype=torch.float32) if g is not None else None
    dbT = q.new_empty(NV, N * H, K, dtype=torch.float32) if has_dbT else None
    dh0 = torch.empty_like(initial_state) if initial_state is not None else None
    grid = (N * H, NV)
    flags = dict(GATE=gate, HAS_H0=initial_state is not None, HAS_DHT=dht is not None, BK=BK, BV=BV,
                 num_warps=num_warps)
    _gla_bwd_dq_kernel[grid](k, v, g, initial_state, do, dht, dq, dbT, cu_seqlens, scale, T, H, K, V, **flags)
    _gla_bwd_dkv_kernel[grid](
        q, k, v, g, do, dht, dq, dbT, dk, dv, dg, dh0, cu_seqlens, scale, T, H, K, V, **flags,
    )
    dq = dq.sum(0, keepdim=True).to(q.dtype)
    dk = dk.sum(0, keepdim=True).to(k.dtype)
    if dg is not None and g is not None:
        dg = dg.sum(0, keepdim=True).to(g.dtype)
    return dq, dk, dv, dg, dh0
