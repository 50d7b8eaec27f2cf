"""Step-by-step elementwise scan: the plain loop every other backend is checked against."""
from __future__ import annotations

import torch
from torch import Tensor


def scan_recurrent(x: Tensor, a: Tensor, initial_state: Tensor | None) -> tuple[Tensor, Tensor]:
    """``h_t = a_t * h_{t-1} + x_t`` over padded sequences.

    Args:
        x, a: ``(N, L, D)``.
        initial_state: ``(N, D)`` or ``None`` (zeros).
    Returns:
        ``y: (N, L, D)`` with ``y_t = h_t`` and the last state ``(N, D)``.
    """
    h = x.new_zeros(x.shape[0], x.shape[2]) if initial_state is None else initial_state
    ys = []
    # unbind once: indexing inside the loop would make autograd build a full-size gradient per step.
    for x_t, a_t in zip(x.unbind(1), a.unbind(1)):
        h = a_t * h + x_t
        ys.append(h)
    return torch.stack(ys, dim=1), h
