"""Triton building blocks shared by the chunked kernels: chunk rows, tile loads and stores, and ``tl.dot``.

``dot`` follows the precision policy of :mod:`seqcore.ops.tensor_cores`; launchers pass
:func:`dot_flags` of the input dtype as its constexprs.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .tensor_cores import dot_precision


def dot_flags(dtype: torch.dtype) -> dict:
    """The ``PREC`` and ``UPCAST`` constexprs of :func:`dot` for inputs of ``dtype``.

    ``UPCAST`` is on only under the interpreter with bfloat16 inputs: the interpreter's bfloat16 ``tl.dot``
    multiplies the raw bit patterns (triton-lang/triton#11584), so the operands, already rounded to bfloat16,
    are multiplied as float32 there. Compiled kernels never upcast.
    """
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    return dict(PREC=dot_precision(dtype), UPCAST=interpreted and dtype == torch.bfloat16)


@triton.jit
def dot(a, b, PREC: tl.constexpr, UPCAST: tl.constexpr):
    """``a @ b`` accumulated in float32, operands as given (the input dtype: tensor cores for 16-bit inputs)."""
    if UPCAST:
        a, b = a.to(tl.float32), b.to(tl.float32)
    return tl.dot(a, b, input_precision=PREC)


@triton.jit
def chunk_rows(cu_seqlens, chunk_indices, i_c, BT: tl.constexpr):
    """First step ``t0`` (int64) of chunk ``i_c`` in the global chunk order of
    :func:`~seqcore.ops.chunk_index.chunk_table`, and the end of its sequence."""
    i_n = tl.load(chunk_indices + 2 * i_c)
    i_t = tl.load(chunk_indices + 2 * i_c + 1)
    bos, eos = tl.load(cu_seqlens + i_n), tl.load(cu_seqlens + i_n + 1)
    return bos + i_t * BT, eos


@triton.jit
def tile(ptr, rows, m_rows, cols, m_cols, stride):
    """``(len(rows), len(cols))`` tile of a row-major tensor, in its dtype, 0 where masked."""
    mask = m_rows[:, None] & m_cols[None, :]
    return tl.load(ptr + rows[:, None] * stride + cols[None, :], mask=mask, other=0.)


@triton.jit
def put(ptr, x, rows, m_rows, cols, m_cols, stride):
    """Stores the tile ``x`` at ``(rows, cols)`` of a row-major tensor, cast to its dtype."""
    mask = m_rows[:, None] & m_cols[None, :]
    tl.store(ptr + rows[:, None] * stride + cols[None, :], x.to(ptr.dtype.element_ty), mask=mask)
