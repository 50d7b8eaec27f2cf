"""How the chunked Triton kernels multiply tiles (``tl.dot``): the precision policy.

- float32 inputs: ``input_precision="ieee"``, exact float32 products. TF32 (Triton's default for float32 dots)
  keeps 10 mantissa bits, a relative error near 5e-4 per product, which is 25x the 2e-5 the float32 tests
  hold every backend to; a float32 caller asked for float32.
- bfloat16 / float16 inputs: tile operands are cast to the input dtype, so the dots run on tensor cores at
  full rate; products accumulate in float32 and every state, cumulative decay and gradient is float32.

Kernels take the result of :func:`dot_precision` as a ``tl.constexpr`` and pass it to every ``tl.dot``.
"""
from __future__ import annotations

import torch


def dot_precision(dtype: torch.dtype) -> str:
    """``"ieee"`` for float32 inputs, ``"tf32"`` otherwise (where the operands are 16-bit and it changes nothing)."""
    return "ieee" if dtype == torch.float32 else "tf32"
