"""Fused recurrent Triton kernels for the elementwise scan ``h_t = a_t * h_{t-1} + x_t``.

One program per (sequence, channel block) walks the sequence in time with the state in registers,
so nothing but the outputs is written and any sequence length fits.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _scan_fwd_kernel(
    x, a, h0, y, ht, cu_seqlens, D,
    HAS_H0: tl.constexpr, BD: tl.constexpr,
):
    i_n, i_d = tl.program_id(0), tl.program_id(1)
    # cu_seqlens is int64, so every offset derived from t stays int64 for long packed sequences.
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    o_d = i_d * BD + tl.arange(0, BD)
    m_d = o_d < D
    o_state = tl.cast(i_n, tl.int64) * D + o_d

    h = tl.zeros([BD], dtype=tl.float32)
    if HAS_H0:
        h = tl.load(h0 + o_state, mask=m_d, other=0.).to(tl.float32)
    for t in range(bos, eos):
        o_t = t * D + o_d
        b_x = tl.load(x + o_t, mask=m_d, other=0.).to(tl.float32)
        b_a = tl.load(a + o_t, mask=m_d, other=0.).to(tl.float32)
        h = b_a * h + b_x
        tl.store(y + o_t, h.to(y.dtype.element_ty), mask=m_d)
    tl.store(ht + o_state, h, mask=m_d)


@triton.jit
def _scan_bwd_kernel(
    a, h0, y, dy, dht, dx, da, dh0, cu_seqlens, D,
    HAS_H0: tl.constexpr, HAS_DHT: tl.constexpr, BD: tl.constexpr,
):
    i_n, i_d = tl.program_id(0), tl.program_id(1)
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    o_d = i_d * BD + tl.arange(0, BD)
    m_d = o_d < D
    o_state = tl.cast(i_n, tl.int64) * D + o_d

    b_h0 = tl.zeros([BD], dtype=tl.float32)
    if HAS_H0:
        b_h0 = tl.load(h0 + o_state, mask=m_d, other=0.).to(tl.float32)
    # carry holds a_{t+1} * dh_{t+1}: the gradient flowing into h_t from the next step.
    carry = tl.zeros([BD], dtype=tl.float32)
    if HAS_DHT:
        carry = tl.load(dht + o_state, mask=m_d, other=0.).to(tl.float32)
    for i in range(eos - bos):
        t = eos - 1 - i
        o_t = t * D + o_d
        b_dh = tl.load(dy + o_t, mask=m_d, other=0.).to(tl.float32) + carry
        # h_{t-1} is the previous output, or the initial state at the first step.
        b_hp = tl.load(y + o_t - D, mask=m_d & (t > bos), other=0.).to(tl.float32)
        b_hp = tl.where(t > bos, b_hp, b_h0)
        tl.store(dx + o_t, b_dh.to(dx.dtype.element_ty), mask=m_d)
        tl.store(da + o_t, (b_dh * b_hp).to(da.dtype.element_ty), mask=m_d)
        carry = tl.load(a + o_t, mask=m_d, other=0.).to(tl.float32) * b_dh
    if HAS_H0:
        tl.store(dh0 + o_state, carry.to(dh0.dtype.element_ty), mask=m_d)


def _launch_params(D: int) -> tuple[int, int]:
    BD = min(triton.next_power_of_2(D), 128)
    return BD, max(1, BD // 32)


def scan_fwd(x: Tensor, a: Tensor, initial_state: Tensor | None, cu_seqlens: Tensor) -> tuple[Tensor, Tensor]:
    """Packed forward scan.

    Args:
        x, a: ``(1, T, D)``; initial_state: ``(N, D)`` or ``None``; cu_seqlens: ``(N + 1,)`` int64.
    Returns:
        ``y: (1, T, D)`` in ``x.dtype`` and the final state ``(N, D)`` float32.
    """
    D = x.shape[-1]
    N = cu_seqlens.numel() - 1
    y = torch.empty_like(x)
    final_state = x.new_empty(N, D, dtype=torch.float32)
    BD, num_warps = _launch_params(D)
    _scan_fwd_kernel[(N, triton.cdiv(D, BD))](
        x, a, initial_state, y, final_state, cu_seqlens, D,
        HAS_H0=initial_state is not None, BD=BD, num_warps=num_warps,
    )
    return y, final_state


def scan_bwd(
    x: Tensor, a: Tensor, initial_state: Tensor | None, cu_seqlens: Tensor, y: Tensor, dy: Tensor, dht: Tensor | None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Packed backward scan.

    Args:
        x, a, y, dy: ``(1, T, D)``; initial_state, dht: ``(N, D)`` or ``None``; cu_seqlens: ``(N + 1,)`` int64.
    Returns:
        ``dx, da: (1, T, D)`` and ``dh0: (N, D)`` (``None`` without an initial state).
    """
    D = x.shape[-1]
    N = cu_seqlens.numel() - 1
    dx = torch.empty_like(x)
    da = torch.empty_like(a)
    dh0 = torch.empty_like(initial_state) if initial_state is not None else None
    BD, num_warps = _launch_params(D)
    _scan_bwd_kernel[(N, triton.cdiv(D, BD))](
        a, initial_state, y, dy, dht, dx, da, dh0, cu_seqlens, D,
        HAS_H0=initial_state is not None, HAS_DHT=dht is not None, BD=BD, num_warps=num_warps,
    )
    return dx, da, dh0
