"""LASP-2 sequence parallelism: a long sequence split across the ranks of a process group, one all-gather of
fixed-size states per call.

Every operator of :mod:`seqcore.ops` is an affine map of its initial state: for the matrix-state families
(``gla``, ``gla_signed``, ``delta_rule``) ``S_t = P_t S_0 + S^0_t`` and ``o_t = o^0_t + S_0^T u_t`` with
``u_t = scale * P_t^T q_t``, where ``P_t`` (``K x K``) is the product of the transitions so far and the ``0``
superscript marks the run from a zero state. State columns (the V axis) evolve independently under the same
transitions, so one local run with ``K`` extra value columns, all zero, started from the identity in those
columns, yields ``o^0`` and ``u`` (the outputs), ``S^0_T`` and ``P_T`` (the final state) together (``sp_gla``, whose
transitions are diagonal, reads ``P_t`` off the cumulative log decay instead). For ``scan``
(``h_t = a_t h_{t-1} + x_t``) the same trick on extra channels yields the prefix products of ``a``.

Each rank then contributes ``(S^0_T, P_T)`` of its slice to one all-gather (its size does not depend on the
sequence length), folds the earlier ranks' pairs into its true initial state ``H_r`` (later ranks' for
``reverse=True``) and adds ``H_r``'s contribution to its outputs. Backward is the all-gather's mirror, an
all-reduce of the gathered pairs' gradients, and every rank reaches it: the fold over *all* ranks is built on
every rank and each output depends on it, so no rank can skip the collective while others wait in it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from .. import ops


# Bytes this process has passed into the sequence-parallel collectives (for benchmarks; see communicated_bytes).
_COMMUNICATED = [0]


def communicated_bytes(reset: bool = False) -> int:
    """Bytes of the tensors this process has handed to the sequence-parallel collectives (all-gather inputs and
    the backward all-reduce's inputs) since the last reset; ``reset=True`` returns the count and zeroes it."""
    value = _COMMUNICATED[0]
    if reset:
        _COMMUNICATED[0] = 0
    return value


class _AllGather(torch.autograd.Function):
    """``(W, ...)`` stack of every rank's tensor; backward all-reduces the gradient and keeps this rank's row."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: Any) -> Tensor:
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
        _COMMUNICATED[0] += tensor.numel() * tensor.element_size()
        _collective(lambda: dist.all_gather(parts, tensor.contiguous(), group=group), "all-gather", group)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous()
        _COMMUNICATED[0] += grad.numel() * grad.element_size()
        _collective(lambda: dist.all_reduce(grad, group=ctx.group), "all-reduce (backward)", ctx.group)
        return grad[ctx.rank], None


def _collective(run: Callable[[], Any], what: str, group: Any) -> None:
    try:
        run()
    except RuntimeError as err:  # gloo / nccl report a dead or missing peer as a RuntimeError
        raise RuntimeError(
            f"sequence-parallel {what} failed on rank {dist.get_rank(group)} of {dist.get_world_size(group)}: a "
            f"peer process died, timed out or did not call the same operator ({err})"
        ) from err


def all_gather_autograd(tensor: Tensor, group: Any = None) -> Tensor:
    """Differentiable all-gather: ``(W, *tensor.shape)``, gradients summed back to their owners."""
    return _AllGather.apply(tensor, group)


def _check_group(group: Any, cu_seqlens: Tensor | None) -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("sequence parallelism needs torch.distributed initialized (init_process_group / torchrun)")
    if cu_seqlens is not None:
        raise ValueError("sequence parallelism splits one sequence per batch row across ranks; packed cu_seqlens "
                         "are not supported")


def _fold(pairs_state: Tensor, pairs_transition: Tensor, initial: Tensor, rank: int, reverse: bool,
          apply: Callable[[Tensor, Tensor], Tensor]) -> tuple[Tensor, Tensor]:
    """Initial state of ``rank`` and the global final state from every rank's ``(S^0, P)``.

    ``pairs_*``: ``(W, ...)``; ``apply(P, S)`` maps a state through a transition. Ranks are processed in order
    (reverse order for ``reverse=True``). All ``W`` prefixes are built and stacked so that this rank's result
    depends on every gathered entry (see the module docstring).
    """
    world = pairs_state.shape[0]
    order = range(world - 1, -1, -1) if reverse else range(world)
    prefixes = {}
    state = initial
    for r in order:
        prefixes[r] = state
        state = apply(pairs_transition[r], state) + pairs_state[r]
    stacked = torch.stack([prefixes[r] for r in range(world)])
    return stacked[rank], state


def _matrix_state_op(run: Callable[..., tuple[Tensor, Tensor]], q: Tensor, v: Tensor, initial_state: Tensor | None,
                     output_final_state: bool, reverse: bool, group: Any) -> tuple[Tensor, Tensor | None]:
    """The LASP-2 wrapper around ``run(v, initial_state) -> (o, final)`` of a matrix-state family."""
    b, _, h, dk = q.shape
    dv = v.shape[-1]
    acc = torch.float64 if q.dtype == torch.float64 else torch.float32
    eye = torch.eye(dk, dtype=acc, device=q.device).expand(b, h, dk, dk)
    extra_v = v.new_zeros(*v.shape[:-1], dk)
    extra_state = torch.cat([torch.zeros(b, h, dk, dv, dtype=acc, device=q.device), eye], dim=-1)
    out, final = run(torch.cat([v, extra_v], dim=-1), extra_state)
    o_zero, u = out[..., :dv], out[..., dv:]
    local_state, local_transition = final[..., :dv], final[..., dv:]
    gathered = all_gather_autograd(torch.cat([local_state, local_transition], dim=-1), group)
    initial = (initial_state.to(acc) if initial_state is not None
               else torch.zeros(b, h, dk, dv, dtype=acc, device=q.device))
    mine, final_state = _fold(gathered[..., :dv], gathered[..., dv:], initial, dist.get_rank(group), reverse,
                              lambda p, s: p @ s)
    o = o_zero + torch.einsum("bthk,bhkv->bthv", u.to(acc), mine).to(o_zero.dtype)
    return o, (final_state if output_final_state else None)


def sp_gla(q: Tensor, k: Tensor, v: Tensor, g: Tensor | None = None, *, scale: float | None = None,
           initial_state: Tensor | None = None, output_final_state: bool = False, reverse: bool = False,
           group: Any = None, backend: str = "auto", cu_seqlens: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """:func:`seqcore.ops.gla` on a sequence split across the ranks of ``group`` (default: the world).

    Each rank passes its contiguous slice ``(B, T_r, H, ...)`` (lengths may differ); rank ``r`` holds steps after
    rank ``r - 1``'s. ``initial_state (B, H, K, V)`` is the state before the whole sequence (the first rank's, or
    the last rank's with ``reverse=True``) and must be the same on every rank; the returned final state is the
    whole sequence's, on every rank. Outputs are this rank's slice.
    """
    _check_group(group, cu_seqlens)
    # GLA's transitions are diagonal, so P_t = diag(exp(G_t)) with G_t the running sum of g (inclusive, from the
    # slice's processing start): u_t and P_T come from a cumulative sum, without the K extra value columns (whose
    # activations would cost as much memory again as the op itself).
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    acc = torch.float64 if q.dtype == torch.float64 else torch.float32
    scale = dk ** -0.5 if scale is None else scale
    if g is None:
        log_decay = q.new_zeros(b, t, h, dk, dtype=acc)
    else:
        log_decay = (g[..., None] if g.dim() == 3 else g).to(acc).expand(b, t, h, dk)
    running = log_decay.flip(1).cumsum(1).flip(1) if reverse else log_decay.cumsum(1)
    u = scale * running.exp() * q.to(acc)
    transition = (running[:, 0] if reverse else running[:, -1]).exp()  # (B, H, K): the diagonal of P
    o_zero, local_state = ops.gla(q, k, v, g, scale=scale, output_final_state=True, reverse=reverse, backend=backend)
    gathered = all_gather_autograd(torch.cat([local_state, transition[..., None]], dim=-1), group)
    initial = (initial_state.to(acc) if initial_state is not None
               else torch.zeros(b, h, dk, dv, dtype=acc, device=q.device))
    mine, final_state = _fold(gathered[..., :dv], gathered[..., dv], initial, dist.get_rank(group), reverse,
                              lambda p, s: p[..., None] * s)
    o = o_zero + torch.einsum("bthk,bhkv->bthv", u, mine).to(o_zero.dtype)
    return o, (final_state if output_final_state else None)


def sp_gla_signed(q: Tensor, k: Tensor, v: Tensor, a: Tensor, *, scale: float | None = None,
                  initial_state: Tensor | None = None, output_final_state: bool = False, reverse: bool = False,
                  group: Any = None, backend: str = "auto",
                  cu_seqlens: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """:func:`seqcore.ops.gla_signed` (decays in ``[-1, 1]``) split across ranks; see :func:`sp_gla`."""
    _check_group(group, cu_seqlens)

    def run(values: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return ops.gla_signed(q, k, values, a, scale=scale, initial_state=state, output_final_state=True,
                              reverse=reverse, backend=backend)

    return _matrix_state_op(run, q, v, initial_state, output_final_state, reverse, group)


def sp_delta_rule(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None = None, *,
                  scale: float | None = None, initial_state: Tensor | None = None, output_final_state: bool = False,
                  reverse: bool = False, group: Any = None, backend: str = "auto",
                  cu_seqlens: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """:func:`seqcore.ops.delta_rule` split across ranks; each rank's transition is the ``K x K`` product of its
    ``exp(g_t) (I - beta_t k_t k_t^T)``. See :func:`sp_gla`."""
    _check_group(group, cu_seqlens)

    def run(values: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        return ops.delta_rule(q, k, values, beta, g, scale=scale, initial_state=state, output_final_state=True,
                              reverse=reverse, backend=backend)

    return _matrix_state_op(run, q, v, initial_state, output_final_state, reverse, group)


def sp_scan(x: Tensor, a: Tensor, *, initial_state: Tensor | None = None, output_final_state: bool = False,
            reverse: bool = False, group: Any = None, backend: str = "auto",
            cu_seqlens: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """:func:`seqcore.ops.scan` (``h_t = a_t h_{t-1} + x_t``, ``(B, T_r, D)`` per rank) split across ranks; the
    transition of a slice is the product of its ``a``. See :func:`sp_gla`."""
    _check_group(group, cu_seqlens)
    b, _, d = x.shape
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    start = torch.cat([torch.zeros(b, d, dtype=acc, device=x.device), torch.ones(b, d, dtype=acc, device=x.device)],
                      dim=-1)
    out, final = ops.scan(torch.cat([x, torch.zeros_like(x)], dim=-1), torch.cat([a, a], dim=-1),
                          initial_state=start, output_final_state=True, reverse=reverse, backend=backend)
    h_zero, prefix = out[..., :d], out[..., d:]
    gathered = all_gather_autograd(final, group)
    initial = initial_state.to(acc) if initial_state is not None else torch.zeros(b, d, dtype=acc, device=x.device)
    mine, final_state = _fold(gathered[..., :d], gathered[..., d:], initial, dist.get_rank(group), reverse,
                              lambda p, s: p * s)
    h = h_zero + (prefix.to(acc) * mine[:, None, :]).to(h_zero.dtype)
    return h, (final_state if output_final_state else None)


def previous_tail(x: Tensor, n: int, group: Any = None) -> Tensor:
    """The last ``n`` steps ``(B, n, C)`` of the previous rank's slice of ``x: (B, T_r, C)`` (zeros on rank 0): the
    halo a causal convolution of width ``n + 1`` needs. Differentiable; every rank joins the collective in both
    directions (rank 0's zeros are taken from the same gathered stack)."""
    if x.shape[1] < n:
        raise ValueError(f"each rank's slice must hold at least {n} steps for the short convolution, got "
                         f"{x.shape[1]}")
    gathered = all_gather_autograd(x[:, x.shape[1] - n:], group)
    halos = torch.cat([torch.zeros_like(gathered[:1]), gathered[:-1]])
    return halos[dist.get_rank(group)]


def gather_sequence(x: Tensor, group: Any = None) -> tuple[Tensor, int]:
    """Every rank's slice of ``x: (B, T_r, ...)`` joined in rank order, ``(B, sum T_r, ...)``, and where this
    rank's slice starts in it. Slices may differ in length (they are padded for the all-gather). Differentiable;
    its traffic grows with ``T``: softmax attention needs every key (LASP-2's hybrid layers do the same)."""
    lengths = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size(group))]
    mine = torch.tensor([x.shape[1]], dtype=torch.long, device=x.device)
    _collective(lambda: dist.all_gather(lengths, mine, group=group), "all-gather of slice lengths", group)
    sizes = [int(n) for n in lengths]
    longest = max(sizes)
    padded = torch.cat([x, x.new_zeros(x.shape[0], longest - x.shape[1], *x.shape[2:])], dim=1)
    gathered = all_gather_autograd(padded, group)
    rank = dist.get_rank(group)
    return torch.cat([gathered[r, :, :n] for r, n in enumerate(sizes)], dim=1), sum(sizes[:rank])


class SequenceParallelOps:
    """The :mod:`seqcore.ops` functions a mixer calls (``scan``, ``gla``, ``gla_signed``, ``delta_rule``), bound
    to a process group: what a mixer with ``sequence_parallel_group`` set runs instead of :mod:`seqcore.ops`."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def scan(self, *args: Any, **kwargs: Any):
        return sp_scan(*args, group=self.group, **kwargs)

    def gla(self, *args: Any, **kwargs: Any):
        return sp_gla(*args, group=self.group, **kwargs)

    def gla_signed(self, *args: Any, **kwargs: Any):
        return sp_gla_signed(*args, group=self.group, **kwargs)

    def delta_rule(self, *args: Any, **kwargs: Any):
        return sp_delta_rule(*args, group=self.group, **kwargs)
