"""Signed scalar decays on top of the log-space ``gla``.

``S_t = a_t S_{t-1} + k_t v_t^T`` with a per-head ``a_t`` in ``[-1, 1]`` (Mamba-2 with negative eigenvalues).
With ``sigma_t`` the product of the signs of ``a`` up to step t (within the sequence, in processing order),
``S~_t = sigma_t S_t`` obeys ``S~_t = |a_t| S~_{t-1} + (sigma_t k_t) v_t^T`` and ``o_t = S~_t^T (sigma_t q_t)``:
the signed recurrence is a log-space ``gla`` on sign-flipped queries and keys, exact and at no extra cost.
"""
from __future__ import annotations

import torch
from torch import Tensor


def cumulative_signs(a: Tensor, cu_seqlens: Tensor | None, reverse: bool) -> Tensor:
    """``sigma_t`` in ``{-1, 1}``: the sign of ``prod a`` from each sequence's first processed step to step t.

    ``a``: ``(B, T, ...)``; zeros count as positive. Returns a tensor like ``a``.
    """
    negative = (a < 0).to(torch.int64)
    forward = negative.cumsum(1)
    if cu_seqlens is None:
        count = negative.flip(1).cumsum(1).flip(1) if reverse else forward
    else:
        cu = cu_seqlens.long().contiguous()
        pos = torch.arange(a.shape[1], device=a.device)
        seq = torch.searchsorted(cu[1:], pos, right=True)
        total = torch.cat([forward.new_zeros(1, 1, *a.shape[2:]), forward], dim=1)
        before = total[:, cu[seq]]  # negatives before the sequence starts
        if reverse:
            count = total[:, cu[seq + 1]] - forward + negative
        else:
            count = forward - before
    return 1 - 2 * (count % 2).to(a.dtype)


def signed_log_decay(a: Tensor) -> Tensor:
    """``log|a|``, with ``-inf`` for ``a = 0``: an exact reset of the state, as ``g = -inf`` is in ``gla``.

    The gradient at ``a = 0`` is 0, the gradient of a ``-inf`` log decay (``1 / a`` is never evaluated there).
    """
    zero = a == 0
    return a.abs().masked_fill(zero, 1.0).log().masked_fill(zero, float("-inf"))
