"""Step-by-step (gated) delta rule: the plain loop every other backend is checked against."""
from __future__ import annotations

import torch
from torch import Tensor


def delta_rule_recurrent(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    g: Tensor | None,
    scale: float,
    initial_state: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """``S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T``, ``o_t = scale * S_t^T q_t``.

    Args:
        q, k: ``(N, L, H, K)``; v: ``(N, L, H, V)``; beta: ``(N, L, H)``.
        g: ``(N, L, H)`` per-head log decay or ``None``.
        initial_state: ``(N, H, K, V)`` or ``None`` (zeros).
    Returns:
        ``o: (N, L, H, V)`` and the last state ``(N, H, K, V)``.
    """
    n, length, h, dk = q.shape
    state = q.new_zeros(n, h, dk, v.shape[-1]) if initial_state is None else initial_state
    outs = []
    # unbind once: indexing inside the loop would make autograd build a full-size gradient per step.
    gates = [None] * length if g is None else g.unbind(1)
    for q_t, k_t, v_t, beta_t, g_t in zip(q.unbind(1), k.unbind(1), v.unbind(1), beta.unbind(1), gates):
        if g_t is not None:
            state = state * g_t.exp()[..., None, None]
        # The delta rule writes beta * (v - S^T k): the error of the current prediction for key k.
        residual = v_t - torch.einsum("nhk,nhkv->nhv", k_t, state)
        state = state + beta_t[..., None, None] * k_t[..., :, None] * residual[..., None, :]
        outs.append(scale * torch.einsum("nhk,nhkv->nhv", q_t, state))
    return torch.stack(outs, dim=1), state
