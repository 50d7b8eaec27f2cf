"""Chunkwise-parallel (gated) delta rule in PyTorch, through the UT transform.

Per chunk of ``C`` steps with in-chunk cumulative log decay ``b`` and ``Gamma_ij = e^{b_i - b_j}``:

    A = I + tril(diag(beta) (K K^T * Gamma), -1),   T = A^{-1}
    W = T diag(beta) (K * e^b),                     U = T diag(beta) V
    V_new = U - W S
    O  = scale * (Q * e^b) S + scale * ((Q K^T) * Gamma) V_new
    S' = e^{b_C} S + (K * e^{b_C - b})^T V_new

``V_new`` holds the residuals ``beta_t (v_t - S_{t-1}'^T k_t)`` the delta rule writes into the state; the
triangular solve replaces the sequential dependency between them. Only one state per chunk is kept.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..chunk_common import from_chunks, pairwise_decay, segment_sums, to_chunks


def delta_rule_chunk(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    g: Tensor | None,
    scale: float,
    initial_state: Tensor | None,
    chunk_size: int,
) -> tuple[Tensor, Tensor]:
    """Chunked form of :func:`seqcore.ops.delta_rule.reference.delta_rule_recurrent`.

    Args:
        q, k: ``(N, L, H, K)``; v: ``(N, L, H, V)``; beta: ``(N, L, H)``; ``L`` a multiple of ``chunk_size``.
        g: ``(N, L, H)`` or ``None``.
        initial_state: ``(N, H, K, V)`` or ``None``.
    Returns:
        ``o: (N, L, H, V)`` and the last state ``(N, H, K, V)``.
    """
    n, length, h, dk = q.shape
    dv = v.shape[-1]
    c = chunk_size
    qc, kc, vc = (to_chunks(x, c) for x in (q, k, v))
    bc = to_chunks(beta, c)[..., None]
    gc = torch.zeros_like(bc[..., 0]) if g is None else to_chunks(g, c)
    b = gc.cumsum(dim=3)
    segments = segment_sums(gc)
    kk = kc @ kc.transpose(-1, -2)
    eye = torch.eye(c, dtype=q.dtype, device=q.device)
    a = eye + bc * kk * pairwise_decay(segments, strict=True)
    rhs = torch.cat([bc * kc * b.exp()[..., None], bc * vc], dim=-1)
    wu = torch.linalg.solve_triangular(a, rhs, upper=False, unitriangular=True)
    w, u = wu[..., :dk], wu[..., dk:]
    k_dec = kc * segments[..., -1, :].exp()[..., None]
    chunk_decay = b[..., -1, None, None].exp()
    state = q.new_zeros(n, h, dk, dv) if initial_state is None else initial_state
    states, residuals = [], []
    # unbind once: indexing inside the loop would make autograd build a full-size gradient per chunk.
    for u_i, w_i, k_i, decay in zip(u.unbind(2), w.unbind(2), k_dec.unbind(2), chunk_decay.unbind(2)):
        states.append(state)
        residual = u_i - w_i @ state
        residuals.append(residual)
        state = decay * state + k_i.transpose(-1, -2) @ residual
    v_new = torch.stack(residuals, dim=2)
    scores = (qc @ kc.transpose(-1, -2)) * pairwise_decay(segments, strict=False)
    o = scale * ((qc * b.exp()[..., None]) @ torch.stack(states, dim=2) + scores @ v_new)
    return from_chunks(o), state
