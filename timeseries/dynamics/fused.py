"""The GTF step loop of the shallow PLRNN with a hand-written backward pass.

Autograd records about a dozen small operations per time step of a shallow PLRNN under generalized teacher
forcing, and on a CPU the per-operation overhead, not the arithmetic, sets the speed (``B = 16``, ``M = 3``,
``H = 50``: each operation touches a few hundred numbers). :class:`ShallowGTF` runs the forward loop without
recording a graph and walks back through the stored states with five operations per step; the parameter
gradients, sums over all steps, are then single batched contractions. ``benchmarks/gtf_loop.py`` measures it
against the autograd loop.

Forward, for ``t = 1 .. S`` with ``z~_0 = z_1`` (the unforced initial state) and the clipped form::

    u_t      = W2 z~_{t-1}
    hidden_t = relu(u_t + h2) - relu(u_t)            (unclipped: relu(u_t + h2))
    z_t      = A * z~_{t-1} + W1 hidden_t + h1 + d_t  (d_t: input drive C s_t, or 0)
    z~_t     = (1 - alpha) * z_t + alpha * z_hat_t

Backward, with ``g_t = dL/dz_t`` (from the loss on ``z_t`` plus ``(1 - alpha) dL/dz~_t``)::

    dL/dz~_{t-1} = A * g_t + W2^T [(W1^T g_t) * gain_t],   gain_t = 1[u_t + h2 > 0] - 1[u_t > 0]
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


class ShallowGTF(torch.autograd.Function):
    """``(z1 (B, M), z_hat (B, S + 1, M), alpha (M,), drive (B, S, M) | None, A, W1, W2, h1, h2, clipped)``
    -> predictions ``z_2 .. z_{S+1}``: ``(B, S, M)``; ``z_hat[:, 0]`` is not used.

    Gradients flow to ``z1``, ``z_hat``, ``drive`` and the five parameters; ``alpha`` and ``clipped`` are
    constants. Double backward is not supported.
    """

    @staticmethod
    def forward(
        ctx: Any,
        z1: Tensor,
        z_hat: Tensor,
        alpha: Tensor,
        drive: Tensor | None,
        A: Tensor,
        W1: Tensor,
        W2: Tensor,
        h1: Tensor,
        h2: Tensor,
        clipped: bool,
    ) -> Tensor:
        ctx.has_drive = drive is not None
        ctx.clipped = clipped
        ctx.compiled = use_compiled(z_hat)
        if ctx.compiled:
            preds, states, pre = _forward_compiled(z1, z_hat, alpha, drive, A, W1, W2, h1, h2, clipped)
            ctx.save_for_backward(states, pre, alpha, A, W1, W2, h2)
            return preds
        preds, saved = _forward_torch(z1, z_hat, alpha, drive, A, W1, W2, h1, h2, clipped)
        ctx.save_for_backward(*saved, alpha, A, W1, W2)
        return preds

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        if ctx.compiled:
            grads = _backward_compiled(grad, *ctx.saved_tensors, ctx.clipped)
        else:
            grads = _backward_torch(grad, *ctx.saved_tensors)
        g_z1, g_forced, g_pred, g_A, g_W1, g_W2, g_h1, g_h2 = grads
        return g_z1, g_forced, None, g_pred if ctx.has_drive else None, g_A, g_W1, g_W2, g_h1, g_h2, None


def use_compiled(x: Tensor) -> bool:
    """Whether the step loop runs in the compiled CPU kernels: float32/float64 tensors on the CPU."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().contiguous().numpy()


def _forward_compiled(
    z1: Tensor, z_hat: Tensor, alpha: Tensor, drive: Tensor | None, A: Tensor, W1: Tensor, W2: Tensor,
    h1: Tensor, h2: Tensor, clipped: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """The forward loop in :func:`.fused_cpu.shallow_gtf_forward`: predictions, forced states, pre-activations."""
    # Imported here, not at the top: numba takes most of a second to import, which ``import timeseries.dynamics``
    # should not pay for models that never train a shallow PLRNN on the CPU.
    from . import fused_cpu

    dtype = z_hat.dtype
    drive_np = np.zeros((1, 1, 1), dtype=_numpy(z_hat).dtype) if drive is None else _numpy(drive.to(dtype))
    arrays = [_numpy(x.to(dtype)) for x in (z1, z_hat, alpha)]
    params = [_numpy(x.to(dtype)) for x in (A, W1, W2.t(), h1, h2)]
    out = fused_cpu.shallow_gtf_forward(*arrays, drive_np, *params, clipped, drive is not None)
    return tuple(torch.from_numpy(x) for x in out)


def _backward_compiled(
    grad: Tensor, states: Tensor, pre: Tensor, alpha: Tensor, A: Tensor, W1: Tensor, W2: Tensor, h2: Tensor,
    clipped: bool,
) -> tuple[Tensor, ...]:
    """The backward loop in :func:`.fused_cpu.shallow_gtf_backward`, gradients cast to each input's dtype."""
    from . import fused_cpu  # numba, on first use (see _forward_compiled)

    dtype = states.dtype
    args = [_numpy(x.to(dtype)) for x in (grad, states, pre, alpha, A, W1, W2.t(), h2)]
    g_z1, g_forced, g_pred, g_A, g_W1, g_W2t, g_h1, g_h2 = (
        torch.from_numpy(x) for x in fused_cpu.shallow_gtf_backward(*args, clipped)
    )
    return g_z1, g_forced, g_pred, g_A.to(A.dtype), g_W1.to(W1.dtype), g_W2t.t().to(W2.dtype), g_h1.to(A.dtype), g_h2.to(h2.dtype)


def _forward_torch(
    z1: Tensor, z_hat: Tensor, alpha: Tensor, drive: Tensor | None, A: Tensor, W1: Tensor, W2: Tensor,
    h1: Tensor, h2: Tensor, clipped: bool,
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The forward loop in PyTorch operations (any device): predictions and what the backward needs."""
    steps = z_hat.shape[1] - 1
    states, hiddens, gains, active = [], [], [], []
    preds = []
    z = z1
    w1t, w2t = W1.t(), W2.t()
    for t in range(steps):
        u = z @ w2t
        upper = u + h2
        on = upper > 0
        hidden = torch.relu(upper)
        if clipped:
            below = u > 0
            hidden = hidden - torch.relu(u)
            gain = on.to(z.dtype) - below.to(z.dtype)
        else:
            gain = on.to(z.dtype)
        pred = torch.addcmul(torch.addmm(h1, hidden, w1t), A, z)
        if drive is not None:
            pred = pred + drive[:, t]
        states.append(z)
        hiddens.append(hidden)
        gains.append(gain)
        active.append(on)
        preds.append(pred)
        z = torch.lerp(pred, z_hat[:, t + 1], alpha)
    saved = torch.stack(states, 1), torch.stack(hiddens, 1), torch.stack(gains, 1), torch.stack(active, 1)
    return torch.stack(preds, 1), saved


def _backward_torch(
    grad: Tensor, states: Tensor, hiddens: Tensor, gains: Tensor, active: Tensor, alpha: Tensor, A: Tensor,
    W1: Tensor, W2: Tensor,
) -> tuple[Tensor, ...]:
    """The backward loop in PyTorch operations; parameter gradients as batched contractions afterwards."""
    steps = grad.shape[1]
    keep = 1 - alpha
    g_pred = torch.empty_like(grad)
    g_hidden_raw = torch.empty_like(hiddens)
    g_tilde = torch.zeros_like(grad[:, 0])  # dL/dz~_t for the step after the last: none
    g_forced = torch.zeros(grad.shape[0], steps + 1, grad.shape[2], dtype=grad.dtype, device=grad.device)
    for t in range(steps - 1, -1, -1):
        g_forced[:, t + 1] = alpha * g_tilde
        g = torch.addcmul(grad[:, t], keep, g_tilde)
        g_pred[:, t] = g
        raw = g @ W1
        g_hidden_raw[:, t] = raw
        g_tilde = torch.addcmul((raw * gains[:, t]) @ W2, A, g)
    g_hidden = g_hidden_raw * gains
    g_A = (g_pred * states).sum((0, 1))
    g_W1 = torch.einsum("bsm,bsh->mh", g_pred, hiddens)
    g_W2 = torch.einsum("bsh,bsm->hm", g_hidden, states)
    g_h1 = g_pred.sum((0, 1))
    g_h2 = (g_hidden_raw * active).sum((0, 1))
    return g_tilde, g_forced, g_pred, g_A, g_W1, g_W2, g_h1, g_h2
