"""Linear-recurrence operators: ``scan``, ``gla`` and ``delta_rule``.

Shapes are batch-first: ``q, k: (B, T, H, K)``, ``v: (B, T, H, V)``. Every operator returns
``(out, final_state)``; ``final_state`` is ``None`` unless ``output_final_state=True``, and is kept in float32
(float64 for float64 inputs) whatever the input dtype.

Common keyword arguments:
    initial_state: state before the first step, one row per sequence, or ``None`` for zeros.
    output_final_state: also return the state after the last step.
    reverse: run from the last step to the first; identical to flipping the time axis of every input (per
        sequence when packed), running forward and flipping the output back.
    cu_seqlens: int tensor ``[0, t1, ..., T]`` with ``B == 1``: sequences packed along T, the state restarts at
        each boundary, and ``initial_state`` / ``final_state`` have one row per sequence.
    backend: ``"recurrent"`` (step loop), ``"chunk"`` (chunkwise-parallel PyTorch), ``"triton"`` (Triton kernels;
        on CPU tensors only under ``TRITON_INTERPRET=1``) or ``"auto"`` (Triton for CUDA tensors, else chunk).

Decays are log-space (``g <= 0``) so long sequences with strong decays neither overflow nor underflow to NaN.
Inputs may be float16, bfloat16, float32 or float64; computation accumulates in float32 (float64 for float64
inputs) and outputs come back in the input dtype.

Non-finite values (``docs/ops.md``):
    ``g = -inf`` (``scan``/``gla_signed``: ``a = 0``) is an exact reset of the state: every backend gives the
    step loop's finite outputs and gradients, and the gradient at the ``-inf`` entry is 0 (``gla_signed``: also
    at ``a = 0``). NaN or ``+inf`` in ``g``, ``a`` or ``beta``, and a non-finite ``scale``, raise ``ValueError``.
    NaN or inf in ``q``, ``k``, ``v``, ``x`` or ``initial_state`` is not checked and propagates: the outputs that
    depend on it are non-finite (never finite but wrong); other sequences are unaffected.
Empty inputs: ``B``, ``H`` or ``V`` (``scan``: ``D``) of 0 give empty outputs; ``T = 0`` and ``K = 0`` raise.
"""
from __future__ import annotations

from typing import cast

from torch import Tensor

from . import validation as V
from .backends import BACKENDS, resolve_backend, triton_unavailable_reason
from .delta_rule import delta_rule_op
from .gla import gla_op
from .scan import scan_op
from .signed import cumulative_signs, signed_log_decay

__all__ = ["scan", "gla", "gla_signed", "delta_rule", "BACKENDS", "triton_unavailable_reason"]


def _finish(out: Tensor, final: Tensor, output_final_state: bool) -> tuple[Tensor, Tensor | None]:
    return out, (final if output_final_state else None)


def _check_common(q: Tensor, k: Tensor, v: Tensor) -> tuple[int, int, int, int, int]:
    V.check_float("q", q, 4, "(B, T, H, K)")
    V.check_float("k", k, 4, "(B, T, H, K)")
    V.check_float("v", v, 4, "(B, T, H, V)")
    V.check_shape("k", k, q.shape, "(B, T, H, K) like q")
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must have shape (B, T, H, V) with (B, T, H) = {tuple(q.shape[:3])}, got {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    b, t, h, dk = q.shape
    if t == 0:
        raise ValueError("sequences must have at least one step, got T=0")
    if dk == 0:
        # the default scale K ** -0.5 and the state (K, V) have no meaning without keys
        raise ValueError("the key dimension K must be at least 1 (q and k are (B, T, H, K)), got K=0")
    return b, t, h, dk, v.shape[-1]


def _check_rest(
    tensors: dict[str, Tensor | None],
    initial_state: Tensor | None,
    cu_seqlens: Tensor | None,
    state: tuple[int, ...],
    layout: str,
    backend: str,
) -> str:
    """Devices, ``cu_seqlens``, ``initial_state`` ``(N, *state)`` and the backend; returns the concrete backend.

    Runs after the type and shape checks and before any check that reads values (which needs one real device).
    """
    V.check_same_device(**tensors, initial_state=initial_state, cu_seqlens=cu_seqlens)
    first = cast(Tensor, next(iter(tensors.values())))  # x or q: never None
    n = V.check_cu_seqlens(cu_seqlens, first.shape[0], first.shape[1])
    V.check_initial_state(initial_state, (n, *state), layout)
    backend = resolve_backend(backend, first.device)
    V.check_triton_dtype(backend, **tensors, initial_state=initial_state)
    return backend


def scan(
    x: Tensor,
    a: Tensor,
    *,
    initial_state: Tensor | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    cu_seqlens: Tensor | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor | None]:
    """Elementwise first-order linear recurrence ``h_t = a_t * h_{t-1} + x_t``; returns ``(h, final_state)``.

    Args:
        x: inputs ``(B, T, D)``.
        a: coefficients ``(B, T, D)``, finite. Any value in ``[-1, 1]`` works, including zero (an exact reset)
            and negative values (negative coefficients let the state flip sign, which state tracking such as
            parity needs); larger magnitudes let the state grow, as the step loop does.
        initial_state: ``(N, D)``.
    Returns:
        ``h: (B, T, D)`` (every state, in the dtype of ``x``) and the final state ``(N, D)`` or ``None``.
    """
    output_final_state = V.check_bool("output_final_state", output_final_state)
    reverse = V.check_bool("reverse", reverse)
    V.check_float("x", x, 3, "(B, T, D)")
    V.check_float("a", a, 3, "(B, T, D)")
    V.check_shape("a", a, x.shape, "(B, T, D) like x")
    if x.shape[1] == 0:
        raise ValueError("sequences must have at least one step, got T=0")
    backend = _check_rest({"x": x, "a": a}, initial_state, cu_seqlens, (x.shape[2],), "(N, D)", backend)
    V.check_finite("a", a)
    out, final = scan_op(x, a, initial_state, cu_seqlens, 1.0, reverse, backend)
    return _finish(out, final, output_final_state)


def gla(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    g: Tensor | None = None,
    *,
    scale: float | None = None,
    initial_state: Tensor | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    cu_seqlens: Tensor | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor | None]:
    """Gated linear attention ``S_t = diag(exp(g_t)) S_{t-1} + k_t v_t^T``, ``o_t = scale * S_t^T q_t``.

    Args:
        q, k: ``(B, T, H, K)``; v: ``(B, T, H, V)``.
        g: log decay ``<= 0``: ``(B, T, H, K)`` per key channel (GLA), ``(B, T, H)`` one per head (RetNet,
            Mamba-2, Lightning Attention) or ``None`` (plain linear attention). ``-inf`` resets the state
            (of that key channel) exactly; its gradient there is 0.
        scale: output scale, default ``K ** -0.5``.
        initial_state: ``(N, H, K, V)``.
    Returns:
        ``o: (B, T, H, V)`` and the final state ``(N, H, K, V)`` or ``None``.
    """
    output_final_state = V.check_bool("output_final_state", output_final_state)
    reverse = V.check_bool("reverse", reverse)
    b, t, h, dk, dv = _check_common(q, k, v)
    if g is not None:
        V.check_float("g", g, (3, 4), "(B, T, H) or (B, T, H, K)")
        if tuple(g.shape) not in ((b, t, h), (b, t, h, dk)):
            raise ValueError(f"g must have shape (B, T, H) = {(b, t, h)} or (B, T, H, K) = {(b, t, h, dk)}, got {tuple(g.shape)}")
    backend = _check_rest({"q": q, "k": k, "v": v, "g": g}, initial_state, cu_seqlens, (h, dk, dv), "(N, H, K, V)", backend)
    if g is not None:
        V.check_log_decay("g", g)
    scale = V.check_scale(scale, dk)
    out, final = gla_op(q, k, v, g, initial_state, cu_seqlens, scale, reverse, backend)
    return _finish(out, final, output_final_state)


def delta_rule(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    g: Tensor | None = None,
    *,
    scale: float | None = None,
    initial_state: Tensor | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    cu_seqlens: Tensor | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor | None]:
    """(Gated) delta rule ``S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T``, ``o_t = scale * S_t^T q_t``.

    Keys are expected to be L2-normalized along K: the transition ``I - beta k k^T`` then has eigenvalues
    ``1 - beta`` (along ``k``) and 1, so it is a contraction for ``beta`` in ``[0, 2]``; values above 1 give
    negative eigenvalues (DeltaNet with ``allow_neg_eigval``), which enable state tracking.

    Args:
        q, k: ``(B, T, H, K)``; v: ``(B, T, H, V)``.
        beta: write strengths ``(B, T, H)`` in ``[0, 2]``.
        g: per-head log decay ``(B, T, H)`` ``<= 0`` (Gated DeltaNet) or ``None`` (DeltaNet); ``-inf`` resets the
            state exactly.
        scale: output scale, default ``K ** -0.5``.
        initial_state: ``(N, H, K, V)``.
    Returns:
        ``o: (B, T, H, V)`` and the final state ``(N, H, K, V)`` or ``None``.
    """
    output_final_state = V.check_bool("output_final_state", output_final_state)
    reverse = V.check_bool("reverse", reverse)
    b, t, h, dk, dv = _check_common(q, k, v)
    V.check_float("beta", beta, 3, "(B, T, H)")
    V.check_shape("beta", beta, (b, t, h), "(B, T, H)")
    if g is not None:
        V.check_float("g", g, 3, "(B, T, H)")
        V.check_shape("g", g, (b, t, h), "(B, T, H)")
    tensors = {"q": q, "k": k, "v": v, "beta": beta, "g": g}
    backend = _check_rest(tensors, initial_state, cu_seqlens, (h, dk, dv), "(N, H, K, V)", backend)
    V.check_range("beta", beta, 0.0, 2.0)
    if g is not None:
        V.check_log_decay("g", g)
    scale = V.check_scale(scale, dk)
    out, final = delta_rule_op(q, k, v, beta, g, initial_state, cu_seqlens, scale, reverse, backend)
    return _finish(out, final, output_final_state)


def gla_signed(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    a: Tensor,
    *,
    scale: float | None = None,
    initial_state: Tensor | None = None,
    output_final_state: bool = False,
    reverse: bool = False,
    cu_seqlens: Tensor | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor | None]:
    """Linear attention with a signed per-head decay: ``S_t = a_t S_{t-1} + k_t v_t^T``, ``o_t = scale * S_t^T q_t``.

    ``a: (B, T, H)`` in ``[-1, 1]`` (for example Mamba-2's ``2 * exp(A * dt) - 1``, whose negative values let the
    state flip sign). Runs :func:`gla` on ``log|a|`` with queries and keys multiplied by the running product
    of the signs, which is exact. ``a = 0`` is an exact reset (``log|a| = -inf``); the gradient with respect to
    ``a`` there is 0, not the step loop's ``<dS_t, S_{t-1}>`` (the log-space form discards ``S_{t-1}``).
    Other arguments and the returns are those of :func:`gla`.
    """
    output_final_state = V.check_bool("output_final_state", output_final_state)
    reverse = V.check_bool("reverse", reverse)
    b, t, h, dk, dv = _check_common(q, k, v)
    V.check_float("a", a, 3, "(B, T, H)")
    V.check_shape("a", a, (b, t, h), "(B, T, H)")
    backend = _check_rest({"q": q, "k": k, "v": v, "a": a}, initial_state, cu_seqlens, (h, dk, dv), "(N, H, K, V)", backend)
    V.check_range("a", a, -1.0, 1.0)
    scale = V.check_scale(scale, dk)
    sigma = cumulative_signs(a, cu_seqlens, reverse).to(q.dtype)
    g = signed_log_decay(a)
    out, final = gla_op(q * sigma[..., None], k * sigma[..., None], v, g, initial_state, cu_seqlens, scale, reverse, backend)
    if output_final_state:
        if cu_seqlens is None:
            last = sigma[:, 0] if reverse else sigma[:, -1]
        else:
            cu = cu_seqlens.long()
            last = sigma[0, cu[:-1]] if reverse else sigma[0, cu[1:] - 1]
        final = final * last[..., None, None].to(final.dtype)
    return _finish(out, final, output_final_state)
