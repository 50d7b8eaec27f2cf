"""Triton kernels for the (gated) delta rule on packed variable-length sequences.

S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T,  o_t = scale * S_t^T q_t, with S: (K, V).
Written as S' = exp(g_t) S_{t-1}; u_t = v_t - S'^T k_t; S_t = S' + beta_t k_t u_t^T.

Each column of S (one value channel) evolves independently, so every program owns one
(sequence, head, value block) with the full key dimension in registers. Gradients that sum over the
value channels (dq, dk, dbeta, dg) are written as per-value-block partials and summed in torch.

The backward never stores all T states: a forward pass checkpoints the state at the start of every
chunk of CHUNK_SIZE steps, and the backward walks the chunks from last to first, recomputing the
states inside each chunk into a small per-program scratch buffer.
"""

from __future__ import annotations

from typing import cast

import torch
import triton
import triton.language as tl

CHUNK_SIZE = 64
# Bounds the backward scratch memory (programs * CHUNK_SIZE * BK * BV * 4 bytes): when
# N * H * NV exceeds it, each program handles several sequences in turn.
BWD_MAX_PROGRAMS = 512


def _blocks(K: int, V: int) -> tuple[int, int, int]:
    BK = triton.next_power_of_2(K)
    # Cap a (BK, BV) float32 state near 4096 elements so the backward's two live states fit in registers.
    BV = min(triton.next_power_of_2(V), 32, max(8, 4096 // BK))
    return BK, BV, triton.cdiv(V, BV)


def _bwd_num_warps(BK: int, BV: int) -> int:
    # The backward keeps two (BK, BV) float32 tiles (S', dS) and their products live: at 4096 elements 4 warps
    # need 220-246 registers a thread, next to the 255 limit; 8 warps need ~190 and keep as many warps per SM.
    return 8 if BK * BV >= 4096 else 4


def _checkpoint_offsets(cu_seqlens: torch.Tensor, BT: int) -> torch.Tensor:
    # The state entering a sequence's first chunk is h0 (or zero), so only the later chunks get a slot.
    n_ckpt = (cu_seqlens[1:] - cu_seqlens[:-1] - 1) // BT
    return torch.cumsum(n_ckpt, 0) - n_ckpt


@triton.jit
def _delta_rule_fwd_kernel(
    q, k, v, beta, g, h0, o, ht, ckpt, ckpt_off, cu_seqlens, scale,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    BT: tl.constexpr, USE_G: tl.constexpr, USE_H0: tl.constexpr,
    STORE_OUT: tl.constexpr, STORE_CKPT: tl.constexpr,
):
    # N * H sits on grid axis 0, the only one not limited to 65,535 programs.
    i_nh, i_v = tl.program_id(0), tl.program_id(1)
    i_n, i_h = tl.cast(i_nh // H, tl.int64), i_nh % H
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)

    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = o_k < K, o_v < V
    m_s = m_k[:, None] & m_v[None, :]
    o_s = o_k[:, None] * V + o_v[None, :]

    b_s = tl.zeros([BK, BV], dtype=tl.float32)
    if USE_H0:
        b_s += tl.load(h0 + (i_n * H + i_h) * K * V + o_s, mask=m_s, other=0).to(tl.float32)
    if STORE_CKPT:
        i_c0 = tl.load(ckpt_off + i_n)

    n_chunks = tl.cdiv(eos - bos, BT)
    for i_c in range(n_chunks):
        t0 = bos + i_c * BT
        if STORE_CKPT:
            if i_c > 0:
                tl.store(ckpt + ((i_c0 + i_c - 1) * H + i_h) * K * V + o_s, b_s, mask=m_s)
        for t in range(t0, tl.minimum(t0 + BT, eos)):
            b_k = tl.load(k + (t * H + i_h) * K + o_k, mask=m_k, other=0).to(tl.float32)
            b_v = tl.load(v + (t * H + i_h) * V + o_v, mask=m_v, other=0).to(tl.float32)
            b_beta = tl.load(beta + t * H + i_h).to(tl.float32)
            if USE_G:
                b_s *= tl.exp(tl.load(g + t * H + i_h).to(tl.float32))
            b_u = b_v - tl.sum(b_s * b_k[:, None], 0)
            b_s += b_beta * b_k[:, None] * b_u[None, :]
            if STORE_OUT:
                b_q = tl.load(q + (t * H + i_h) * K + o_k, mask=m_k, other=0).to(tl.float32)
                b_o = scale * tl.sum(b_s * b_q[:, None], 0)
                tl.store(o + (t * H + i_h) * V + o_v, b_o.to(o.dtype.element_ty), mask=m_v)

    if STORE_OUT:
        tl.store(ht + (i_n * H + i_h) * K * V + o_s, b_s, mask=m_s)


@triton.jit
def _delta_rule_bwd_kernel(
    q, k, v, beta, g, h0, do, dht, ckpt, ckpt_off, cu_seqlens, scratch,
    dq, dk, dv, dbeta, dg, dh0, scale, N, T,
    H: tl.constexpr, K: tl.constexpr, V: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    BT: tl.constexpr, NV: tl.constexpr,
    USE_G: tl.constexpr, USE_H0: tl.constexpr, USE_DHT: tl.constexpr,
):
    i_v, i_h, i_p = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    n_p = tl.num_programs(2)

    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k, m_v = o_k < K, o_v < V
    m_s = m_k[:, None] & m_v[None, :]
    o_s = o_k[:, None] * V + o_v[None, :]
    # Scratch is private to the program and padded to (BT, BK, BV), so it needs no masks.
    p_scratch = scratch + tl.cast((i_p * H + i_h) * NV + i_v, tl.int64) * BT * BK * BV
    o_scratch = tl.arange(0, BK)[:, None] * BV + tl.arange(0, BV)[None, :]
    # Partials over value blocks: dq, dk are (NV, T, H, K); dbeta, dg are (NV, T, H).
    dq_v = dq + tl.cast(i_v, tl.int64) * T * H * K
    dk_v = dk + tl.cast(i_v, tl.int64) * T * H * K
    dbeta_v = dbeta + tl.cast(i_v, tl.int64) * T * H
    if USE_G:
        dg_v = dg + tl.cast(i_v, tl.int64) * T * H

    for i_seq in range(i_p, N, n_p):
        i_n = tl.cast(i_seq, tl.int64)
        bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
        i_c0 = tl.load(ckpt_off + i_n)
        p_state = (i_n * H + i_h) * K * V + o_s

        b_ds = tl.zeros([BK, BV], dtype=tl.float32)
        if USE_DHT:
            b_ds += tl.load(dht + p_state, mask=m_s, other=0).to(tl.float32)

        n_chunks = tl.cdiv(eos - bos, BT)
        for i_r in range(n_chunks):
            i_c = n_chunks - 1 - i_r
            t0 = bos + i_c * BT
            t1 = tl.minimum(t0 + BT, eos)
            if i_c > 0:
                b_s = tl.load(ckpt + ((i_c0 + i_c - 1) * H + i_h) * K * V + o_s, mask=m_s, other=0)
            else:
                b_s = tl.zeros([BK, BV], dtype=tl.float32)
                if USE_H0:
                    b_s += tl.load(h0 + p_state, mask=m_s, other=0).to(tl.float32)

            # Recompute the chunk forward, keeping S_{t-1} of every step.
            for t in range(t0, t1):
                tl.store(p_scratch + (t - t0) * BK * BV + o_scratch, b_s)
                b_k = tl.load(k + (t * H + i_h) * K + o_k, mask=m_k, other=0).to(tl.float32)
                b_v = tl.load(v + (t * H + i_h) * V + o_v, mask=m_v, other=0).to(tl.float32)
                b_beta = tl.load(beta + t * H + i_h).to(tl.float32)
                if USE_G:
                    b_s *= tl.exp(tl.load(g + t * H + i_h).to(tl.float32))
                b_u = b_v - tl.sum(b_s * b_k[:, None], 0)
                b_s += b_beta * b_k[:, None] * b_u[None, :]
            tl.debug_barrier()

            for i_t in range(t1 - t0):
                t = t1 - 1 - i_t
                b_sp = tl.load(p_scratch + (t - t0) * BK * BV + o_scratch)
                b_q = tl.load(q + (t * H + i_h) * K + o_k, mask=m_k, other=0).to(tl.float32)
                b_k = tl.load(k + (t * H + i_h) * K + o_k, mask=m_k, other=0).to(tl.float32)
                b_v = tl.load(v + (t * H + i_h) * V + o_v, mask=m_v, other=0).to(tl.float32)
                b_do = tl.load(do + (t * H + i_h) * V + o_v, mask=m_v, other=0).to(tl.float32)
                b_beta = tl.load(beta + t * H + i_h).to(tl.float32)
                if USE_G:
                    b_decay = tl.exp(tl.load(g + t * H + i_h).to(tl.float32))
                    b_sp *= b_decay
                # b_sp is now S' = exp(g_t) S_{t-1}; rebuild u_t from it.
                b_u = b_v - tl.sum(b_sp * b_k[:, None], 0)

                b_ds += scale * b_q[:, None] * b_do[None, :]
                # dq = scale * S_t do with S_t = S' + beta k u^T expanded, so S_t is never formed: one (BK, BV)
                # tile fewer live, which is what kept the gated variants spilling on sm_80.
                b_dq = scale * (tl.sum(b_sp * b_do[None, :], 1) + b_beta * tl.sum(b_u * b_do) * b_k)
                b_kds = tl.sum(b_ds * b_k[:, None], 0)
                b_du = b_beta * b_kds
                b_dbeta = tl.sum(b_kds * b_u)
                b_dk = b_beta * tl.sum(b_ds * b_u[None, :], 1) - tl.sum(b_sp * b_du[None, :], 1)
                b_ds -= b_k[:, None] * b_du[None, :]

                tl.store(dq_v + (t * H + i_h) * K + o_k, b_dq, mask=m_k)
                tl.store(dk_v + (t * H + i_h) * K + o_k, b_dk, mask=m_k)
                tl.store(dv + (t * H + i_h) * V + o_v, b_du.to(dv.dtype.element_ty), mask=m_v)
                tl.store(dbeta_v + t * H + i_h, b_dbeta)
                if USE_G:
                    tl.store(dg_v + t * H + i_h, tl.sum(b_ds * b_sp))
                    b_ds *= b_decay
            # The next chunk overwrites the scratch that other threads may still be reading.
            tl.debug_barrier()

        if USE_H0:
            tl.store(dh0 + p_state, b_ds.to(dh0.dtype.element_ty), mask=m_s)


def _forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    g: torch.Tensor | None,
    scale: float,
    initial_state: torch.Tensor | None,
    cu_seqlens: torch.Tensor,
    store_out: bool,
    ckpt: torch.Tensor | None = None,
    ckpt_off: torch.Tensor | None = None,
    BT: int = CHUNK_SIZE,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    # The backward reuses this pass with store_out=False only to fill the chunk checkpoints.
    _, T, H, K = k.shape
    V = v.shape[-1]
    N = cu_seqlens.numel() - 1
    BK, BV, NV = _blocks(K, V)
    o = torch.empty_like(v) if store_out else None
    ht = q.new_empty(N, H, K, V, dtype=torch.float32) if store_out else None
    _delta_rule_fwd_kernel[(N * H, NV)](
        q, k, v, beta, g, initial_state, o, ht, ckpt, ckpt_off, cu_seqlens, scale,
        H=H, K=K, V=V, BK=BK, BV=BV, BT=BT,
        USE_G=g is not None, USE_H0=initial_state is not None,
        STORE_OUT=store_out, STORE_CKPT=ckpt is not None,
        num_warps=4,
    )
    return o, ht


def delta_rule_fwd(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    g: torch.Tensor | None,
    scale: float,
    initial_state: torch.Tensor | None,
    cu_seqlens: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Delta rule forward on packed sequences.

    q, k: (1, T, H, K); v: (1, T, H, V); beta: (1, T, H); g: None | (1, T, H) log decay;
    initial_state: None | (N, H, K, V); cu_seqlens: (N + 1,) int64.
    Returns o: (1, T, H, V) in v's dtype and final_state: (N, H, K, V) float32.
    """
    o, final_state = _forward(q, k, v, beta, g, scale, initial_state, cu_seqlens, store_out=True)
    return cast(torch.Tensor, o), cast(torch.Tensor, final_state)  # store_out=True fills both


def delta_rule_bwd(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    g: torch.Tensor | None,
    scale: float,
    initial_state: torch.Tensor | None,
    cu_seqlens: torch.Tensor,
    do: torch.Tensor,
    dht: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Delta rule backward on packed sequences (shapes as in delta_rule_fwd).

    do: (1, T, H, V); dht: None | (N, H, K, V).
    Returns dq, dk, dv, dbeta, dg (None when g is None), dh0 (None when initial_state is None),
    each in the dtype and shape of its input.
    """
    _, T, H, K = k.shape
    V = v.shape[-1]
    N = cu_seqlens.numel() - 1
    BT = CHUNK_SIZE
    BK, BV, NV = _blocks(K, V)
    P = min(N, max(1, BWD_MAX_PROGRAMS // (H * NV)))

    # At most (T - N) // BT checkpoints, since every sequence's first chunk needs none.
    ckpt = q.new_empty(max(1, (T - N) // BT), H, K, V, dtype=torch.float32)
    ckpt_off = _checkpoint_offsets(cu_seqlens, BT)
    _forward(q, k, v, beta, g, scale, initial_state, cu_seqlens, store_out=False, ckpt=ckpt, ckpt_off=ckpt_off, BT=BT)

    scratch = q.new_empty(P * H * NV, BT, BK, BV, dtype=torch.float32)
    dq = q.new_empty(NV, *q.shape, dtype=torch.float32)
    dk = k.new_empty(NV, *k.shape, dtype=torch.float32)
    dv = torch.empty_like(v)
    dbeta = beta.new_empty(NV, *beta.shape, dtype=torch.float32)
    dg = g.new_empty(NV, *g.shape, dtype=torch.float32) if g is not None else None
    dh0 = torch.empty_like(initial_state) if initial_state is not None else None
    _delta_rule_bwd_kernel[(NV, H, P)](
        q, k, v, beta, g, initial_state, do, dht, ckpt, ckpt_off, cu_seqlens, scratch,
        dq, dk, dv, dbeta, dg, dh0, scale, N, T,
        H=H, K=K, V=V, BK=BK, BV=BV, BT=BT, NV=NV,
        USE_G=g is not None, USE_H0=initial_state is not None, USE_DHT=dht is not None,
        num_warps=_bwd_num_warps(BK, BV),
    )
    dq = dq.sum(0).to(q.dtype)
    dk = dk.sum(0).to(k.dtype)
    dbeta = dbeta.sum(0).to(beta.dtype)
    dg = dg.sum(0).to(g.dtype) if dg is not None and g is not None else None
    return dq, dk, dv, dbeta, dg, dh0
