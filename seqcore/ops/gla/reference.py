"""Step-by-step gated linear attention: the plain loop every other backend is checked against."""
from __future__ import annotations

import torch
from torch import Tensor


def gla_recurrent(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor | None, scale: float, initial_state: Tensor | None
) -> tuple[Tensor, Tensor]:
    """``S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T``, ``o_t = scale * S_t^T q_t`` over padded sequences.

    Args:
        q, k: ``(N, L, H, K)``; v: ``(N, L, H, V)``.
        g: ``(N, L, H, K)`` per-key log decay, ``(N, L, H)`` per-head log decay, or ``None``.
        initial_state: ``(N, H, K, V)`` or ``None`` (zeros).
    Returns:
        ``o: (N, L, H, V)`` and the last state ``(N, H, K, V)``.
    """
    n, length, h, dk = q.shape
    state = q.new_zeros(n, h, dk, v.shape[-1]) if initial_state is None else initial_state
    outs = []
    # unbind once: indexing inside the loop would make autograd build a full-size gradient per step.
    gates = [None] * length if g is None else g.unbind(1)
    per_key = g is not None and g.dim() == 4
    for q_t, k_t, v_t, g_t in zip(q.unbind(1), k.unbind(1), v.unbind(1), gates):
        if g_t is not None:
            decay = g_t.exp()
            state = state * (decay[..., None] if per_key else decay[..., None, None])
        state = state + k_t[..., :, None] * v_t[..., None, :]
        outs.append(scale * torch.einsum("nhk,nhkv->nhv", q_t, state))
    return torch.stack(outs, dim=1), state
