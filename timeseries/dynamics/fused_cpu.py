"""Whole-sequence CPU kernels for the GTF step loop of the shallow PLRNN, compiled with numba.

:class:`~timeseries.dynamics.fused.ShallowGTF` already replaces autograd's bookkeeping with a hand-written
backward, but it still issues a few PyTorch operations per time step, each costing microseconds of dispatch on
vectors of a few hundred numbers. These kernels run the forward loop and the backward loop over all windows
and steps in compiled code: one call each per training step. The arithmetic is the same as
:mod:`timeseries.dynamics.fused` (its docstring has the equations); parameter gradients are accumulated inside
the backward loop instead of by batched contractions afterwards.

Inner loops run over the hidden units with unit stride so LLVM can vectorize them: ``W2`` is passed transposed,
``(M, H)``, like ``W1``. Constants are made in the arrays' dtype (``zero``, ``one``) because numba's float
literals are float64 and would turn float32 loops into mixed precision that does not vectorize (the backward
ran 1.6x slower). ``fastmath`` lets the reductions over hidden units be reordered; results stay deterministic.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath={"reassoc", "contract"})
def shallow_gtf_forward(
    z1: np.ndarray,
    z_hat: np.ndarray,
    alpha: np.ndarray,
    drive: np.ndarray,
    A: np.ndarray,
    W1: np.ndarray,
    W2t: np.ndarray,
    h1: np.ndarray,
    h2: np.ndarray,
    clipped: bool,
    has_drive: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions ``(B, S, M)``, forced states ``z~_0 .. z~_{S-1}`` ``(B, S, M)`` and pre-activations
    ``u = W2 z~`` ``(B, S, H)`` (the backward pass rebuilds the hidden layer from them)."""
    n, steps1, m = z_hat.shape
    steps = steps1 - 1
    h = h2.shape[0]
    preds = np.empty((n, steps, m), dtype=z_hat.dtype)
    states = np.empty((n, steps, m), dtype=z_hat.dtype)
    pre = np.empty((n, steps, h), dtype=z_hat.dtype)
    z = np.empty(m, dtype=z_hat.dtype)
    u = np.empty(h, dtype=z_hat.dtype)
    hidden = np.empty(h, dtype=z_hat.dtype)
    zero = np.zeros(1, z_hat.dtype)[0]
    for b in range(n):
        z[:] = z1[b]
        for t in range(steps):
            u[:] = zero
            for i in range(m):
                zi = z[i]
                for j in range(h):
                    u[j] += W2t[i, j] * zi
            for j in range(h):
                upper = max(u[j] + h2[j], zero)
                hidden[j] = upper - max(u[j], zero) if clipped else upper
            states[b, t] = z
            pre[b, t] = u
            for i in range(m):
                acc = A[i] * z[i] + h1[i]
                for j in range(h):
                    acc += W1[i, j] * hidden[j]
                if has_drive:
                    acc += drive[b, t, i]
                preds[b, t, i] = acc
            for i in range(m):
                z[i] = preds[b, t, i] + alpha[i] * (z_hat[b, t + 1, i] - preds[b, t, i])
    return preds, states, pre


@njit(cache=True, fastmath={"reassoc", "contract"})
def shallow_gtf_backward(
    grad: np.ndarray,
    states: np.ndarray,
    pre: np.ndarray,
    alpha: np.ndarray,
    A: np.ndarray,
    W1: np.ndarray,
    W2t: np.ndarray,
    h2: np.ndarray,
    clipped: bool,
) -> tuple[np.ndarray, ...]:
    """Gradients for ``z1 (B, M)``, ``z_hat (B, S + 1, M)``, the predictions' inputs ``(B, S, M)`` (the drive's
    gradient), ``A``, ``W1 (M, H)``, ``W2t (M, H)``, ``h1`` and ``h2`` from ``grad = dL/dpreds (B, S, M)``."""
    n, steps, m = grad.shape
    h = h2.shape[0]
    dtype = grad.dtype
    g_z1 = np.empty((n, m), dtype=dtype)
    g_forced = np.zeros((n, steps + 1, m), dtype=dtype)
    g_pred = np.empty((n, steps, m), dtype=dtype)
    g_A = np.zeros(m, dtype=dtype)
    g_W1 = np.zeros((m, h), dtype=dtype)
    g_W2t = np.zeros((m, h), dtype=dtype)
    g_h1 = np.zeros(m, dtype=dtype)
    g_h2 = np.zeros(h, dtype=dtype)
    g_tilde = np.empty(m, dtype=dtype)
    g = np.empty(m, dtype=dtype)
    hidden = np.empty(h, dtype=dtype)
    raw = np.empty(h, dtype=dtype)
    active = np.empty(h, dtype=dtype)
    gain = np.empty(h, dtype=dtype)
    g_hidden = np.empty(h, dtype=dtype)
    one = np.ones(1, dtype)[0]
    zero = one - one
    for b in range(n):
        g_tilde[:] = 0.0
        for t in range(steps - 1, -1, -1):
            for i in range(m):
                g_forced[b, t + 1, i] = alpha[i] * g_tilde[i]
                g[i] = grad[b, t, i] + (one - alpha[i]) * g_tilde[i]
                g_pred[b, t, i] = g[i]
                g_A[i] += g[i] * states[b, t, i]
                g_h1[i] += g[i]
            for j in range(h):
                u = pre[b, t, j]
                upper = u + h2[j]
                active[j] = one if upper > zero else zero
                if clipped:
                    hidden[j] = max(upper, zero) - max(u, zero)
                    gain[j] = active[j] - (one if u > zero else zero)
                else:
                    hidden[j] = max(upper, zero)
                    gain[j] = active[j]
                raw[j] = zero
            for i in range(m):
                gi = g[i]
                for j in range(h):
                    g_W1[i, j] += gi * hidden[j]
                    raw[j] += W1[i, j] * gi
            for j in range(h):
                g_h2[j] += raw[j] * active[j]
                g_hidden[j] = raw[j] * gain[j]
            for i in range(m):
                zi = states[b, t, i]
                acc = A[i] * g[i]
                for j in range(h):
                    g_W2t[i, j] += g_hidden[j] * zi
                    acc += W2t[i, j] * g_hidden[j]
                g_tilde[i] = acc
        g_z1[b] = g_tilde
    return g_z1, g_forced, g_pred, g_A, g_W1, g_W2t, g_h1, g_h2
