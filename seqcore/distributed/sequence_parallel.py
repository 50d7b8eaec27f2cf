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

Before that all-gather, every call exchanges a fingerprint: :data:`FINGERPRINT_SLOTS` int64s per rank with the
operator, the dtype and shape (except ``T``) of every input, the options, and whether this rank's local part
failed. Ranks that disagree would otherwise hand gloo or nccl tensors of different sizes (a C++ abort, or a result
built from uninitialized memory); instead every rank raises the same ValueError naming the field and each rank's
value. A rank whose local part raised re-raises its error after the exchange and the others raise one of the same
type, so none is left waiting for it until the process group's timeout.
"""
from __future__ import annotations

import math
import numbers
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import torch
import torch.distributed as dist
from torch import Tensor

from .. import ops
from ..ops import validation as V

# Bytes this process has passed into the sequence-parallel collectives (for benchmarks; see communicated_bytes).
_COMMUNICATED = [0]

FINGERPRINT_SLOTS = 48
"""int64 entries of the fingerprint every sequence-parallel call all-gathers before its first collective."""
FINGERPRINT_BYTES = FINGERPRINT_SLOTS * 8

_OPERATORS = ("sp_scan", "sp_gla", "sp_gla_signed", "sp_delta_rule", "previous_tail", "gather_sequence",
              "a mixer's input checks")
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.int16, torch.int32,
           torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128)
_ABSENT, _NOT_A_TENSOR = -1, -2
_MAX_DIMS = 4  # shape entries recorded per tensor besides T; more are folded into the last one
# Status of a rank's local part, and the error type the other ranks raise for it.
_FAILURES = {1: ValueError, 2: TypeError, 3: RuntimeError}


def communicated_bytes(reset: bool = False) -> int:
    """Bytes of the tensors this process has handed to the sequence-parallel collectives (fingerprints, all-gather
    inputs and the backward all-reduce's inputs) since the last reset; ``reset=True`` returns the count and
    zeroes it."""
    value = _COMMUNICATED[0]
    if reset:
        _COMMUNICATED[0] = 0
    return value


def _collective(run: Callable[[], Any], what: str, group: Any, op: str) -> None:
    try:
        run()
    except RuntimeError as err:  # gloo / nccl report a dead, silent or mismatched peer as a RuntimeError
        raise RuntimeError(
            f"sequence-parallel {what} failed on rank {dist.get_rank(group)} of {dist.get_world_size(group)} in "
            f"{op}: a peer process died, stopped calling the same operators (for example after an error it caught) "
            f"or did not answer within the process group's timeout (init_process_group(timeout=...)) ({err})"
        ) from err


class _AllGather(torch.autograd.Function):
    """``(W, ...)`` stack of every rank's tensor; backward all-reduces the gradient and keeps this rank's row."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor, group: Any) -> Tensor:
        ctx.group = group
        ctx.rank = dist.get_rank(group)
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
        _COMMUNICATED[0] += tensor.numel() * tensor.element_size()
        _collective(lambda: dist.all_gather(parts, tensor.contiguous(), group=group), "all-gather", group,
                    "all_gather_autograd")
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous()
        _COMMUNICATED[0] += grad.numel() * grad.element_size()
        _collective(lambda: dist.all_reduce(grad, group=ctx.group), "all-reduce (backward)", ctx.group,
                    "all_gather_autograd")
        return grad[ctx.rank], None


def all_gather_autograd(tensor: Tensor, group: Any = None) -> Tensor:
    """Differentiable all-gather: ``(W, *tensor.shape)``, gradients summed back to their owners.

    The caller guarantees that every rank passes the same shape and dtype (the operators of this module agree on
    them through their fingerprint exchange first)."""
    return _AllGather.apply(tensor, group)


@dataclass
class _Field:
    name: str
    kind: str  # "tensor", "flag", "number" or "count"
    slots: list[int]
    compared: bool = True
    time_dim: int | None = None

    def describe(self, slots: tuple[int, ...]) -> str:
        """One rank's value, readable."""
        if self.kind == "flag":
            return {0: "False", 1: "True"}.get(slots[0], "not a bool")
        if self.kind == "number":
            return {0: "None", 1: repr(struct.unpack("<d", struct.pack("<q", slots[1]))[0])}.get(slots[0],
                                                                                                 "not a number")
        if self.kind == "count":
            return str(slots[0])
        code, ndim, dims = slots[0], slots[1], list(slots[2:])
        if code == _ABSENT:
            return "None"
        if code == _NOT_A_TENSOR:
            return "not a tensor"
        dtype = str(_DTYPES[code]).removeprefix("torch.") if 0 <= code < len(_DTYPES) else "another dtype"
        time_dim = self.time_dim if self.time_dim is not None and self.time_dim < ndim else None
        shape: list[str] = [str(d) for d in dims[:min(ndim - (time_dim is not None), _MAX_DIMS)]]
        if time_dim is not None:
            shape.insert(time_dim, "T")
        return f"{dtype} ({', '.join(shape)}{',' if len(shape) == 1 else ''})"


class _Fingerprint:
    """What every rank must agree on before a collective, as named fields of int64 slots."""

    def __init__(self, op: str) -> None:
        self.op = op
        self.fields: list[_Field] = []

    def tensor(self, name: str, t: object, time_dim: int | None = 1) -> _Fingerprint:
        if t is None or not isinstance(t, Tensor):
            slots = [_ABSENT if t is None else _NOT_A_TENSOR, 0] + [0] * _MAX_DIMS
        else:
            dims = [s for i, s in enumerate(t.shape) if i != time_dim]
            if len(dims) > _MAX_DIMS:
                dims = dims[:_MAX_DIMS - 1] + [math.prod(dims[_MAX_DIMS - 1:])]
            code = _DTYPES.index(t.dtype) if t.dtype in _DTYPES else len(_DTYPES)
            slots = [code, t.dim(), *dims] + [0] * (_MAX_DIMS - len(dims))
        self.fields.append(_Field(name, "tensor", slots, time_dim=time_dim))
        return self

    def flag(self, name: str, value: object) -> _Fingerprint:
        is_bool = isinstance(value, bool) or (type(value).__name__ == "bool_" and type(value).__module__ == "numpy")
        self.fields.append(_Field(name, "flag", [int(bool(value)) if is_bool else 2]))
        return self

    def number(self, name: str, value: object) -> _Fingerprint:
        if value is None:
            slots = [0, 0]
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            slots = [1, struct.unpack("<q", struct.pack("<d", float(value)))[0]]
        else:
            slots = [2, 0]
        self.fields.append(_Field(name, "number", slots))
        return self

    def count(self, name: str, value: object, compared: bool = True) -> _Fingerprint:
        slots = [int(value)] if isinstance(value, numbers.Integral) and not isinstance(value, bool) else [-1]
        self.fields.append(_Field(name, "count", slots, compared))
        return self

    def length(self, x: object) -> _Fingerprint:
        """This rank's slice length ``T_r`` (dim 1 of ``x``): exchanged, not compared."""
        return self.count("T", x.shape[1] if isinstance(x, Tensor) and x.dim() >= 2 else -1, compared=False)

    def options(self, reverse: object, output_final_state: object, cu_seqlens: object) -> _Fingerprint:
        return (self.flag("reverse", reverse).flag("output_final_state", output_final_state)
                .flag("cu_seqlens given", cu_seqlens is not None))

    def values(self, table: list[list[int]], name: str) -> list[tuple[int, ...]]:
        """Every rank's slots of field ``name`` in an exchanged ``table``."""
        offset = 2
        for f in self.fields:
            if f.name == name:
                return [tuple(row[offset:offset + len(f.slots)]) for row in table]
            offset += len(f.slots)
        raise KeyError(name)

    def lengths(self, table: list[list[int]]) -> list[int]:
        return [v[0] for v in self.values(table, "T")]


def _operator(code: int) -> str:
    return _OPERATORS[code] if 0 <= code < len(_OPERATORS) else f"an unknown operator ({code})"


def _exchange_device(group: Any, hint: object) -> torch.device:
    """Where the fingerprint travels: beside the op's inputs (CUDA under nccl, which cannot move CPU tensors)."""
    if isinstance(hint, torch.device):
        return hint
    if isinstance(hint, Tensor) and hint.device.type != "meta":
        return hint.device
    if "nccl" in str(dist.get_backend(group)) and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _agree(fingerprint: _Fingerprint, group: Any, device_hint: object, error: BaseException | None) -> list[list[int]]:
    """All-gather the fingerprint (one small collective) and raise on every rank if any rank's local part
    failed (``error`` on this rank) or the ranks disagree; returns every rank's fingerprint row."""
    status = 0 if error is None else next((code for code, kind in _FAILURES.items() if isinstance(error, kind)), 3)
    row = [_OPERATORS.index(fingerprint.op), status] + [s for f in fingerprint.fields for s in f.slots]
    if len(row) > FINGERPRINT_SLOTS:
        raise RuntimeError(f"internal: the {fingerprint.op} fingerprint needs {len(row)} > {FINGERPRINT_SLOTS} slots")
    mine = torch.tensor(row + [0] * (FINGERPRINT_SLOTS - len(row)), dtype=torch.int64,
                        device=_exchange_device(group, device_hint))
    parts = [torch.empty_like(mine) for _ in range(dist.get_world_size(group))]
    _COMMUNICATED[0] += FINGERPRINT_BYTES
    _collective(lambda: dist.all_gather(parts, mine, group=group), "all-gather", group,
                f"{fingerprint.op}'s fingerprint exchange")
    table = torch.stack(parts).cpu().tolist()

    # A disagreement is reported first, as the same error on every rank; then a rank's own failure. A rank that
    # failed before reaching this operator (raise_on_every_rank) joined with another operator code.
    failed = [r for r, other in enumerate(table) if other[1]]
    called = [other[0] for other in table]
    if len(set(called)) > 1 and not failed:
        raise ValueError("the ranks called different sequence-parallel operators at the same point: "
                         + ", ".join(f"rank {r}: {_operator(c)}" for r, c in enumerate(called)))
    differences = []
    for f in fingerprint.fields if len(set(called)) == 1 else ():
        values = fingerprint.values(table, f.name)
        if f.compared and len(set(values)) > 1:
            differences.append(f"{f.name} (" + ", ".join(f"rank {r}: {f.describe(v)}" for r, v in enumerate(values))
                               + ")")
    if differences:
        raise ValueError(f"{fingerprint.op}: the ranks disagree on " + "; ".join(differences) + ". Every rank must "
                         "pass the same shapes (except T), dtypes and options") from error
    if failed:
        if error is not None:
            raise error
        kind = _FAILURES.get(table[failed[0]][1], RuntimeError)
        who = ", ".join(f"rank {r} ({_FAILURES.get(table[r][1], RuntimeError).__name__} in "
                        f"{_operator(table[r][0])})" for r in failed)
        raise kind(f"{fingerprint.op} on rank {dist.get_rank(group)}: {who} raised an error before the collective "
                   f"(see that rank's message); this rank raises too so that none waits for the others")
    return table


def _attempt(local: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run this rank's local part. Its error is raised only after the fingerprint exchange (by :func:`_agree`):
    raised now, it would leave the other ranks waiting in the collective until the process group's timeout."""
    try:
        return local(), None
    except Exception as err:  # noqa: BLE001 -- re-raised unchanged by _agree, and announced to the other ranks
        return None, err


def raise_on_every_rank(error: Exception, group: Any = None, device: torch.device | None = None) -> NoReturn:
    """Raise ``error`` on this rank, and make the other ranks of ``group`` raise an error of the same type
    instead of waiting for this one until the process group's timeout.

    Call it in place of ``raise`` when this rank fails just before a sequence-parallel call that the other ranks
    are making (any operator of this module): this rank joins that call's fingerprint exchange with a failure
    status. The mixers do so when their input checks fail. ``device``: where the exchange runs (CUDA under
    nccl; the default follows the group's backend). Without an initialized process group it simply raises."""
    if not dist.is_available() or not dist.is_initialized():
        raise error
    _agree(_Fingerprint("a mixer's input checks"), group, device, error)
    raise error  # _agree has raised it already: this line is never reached


def _check_group(group: Any) -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("sequence parallelism needs torch.distributed initialized (init_process_group / torchrun)")


def _check_local_options(reverse: object, output_final_state: object, cu_seqlens: object) -> bool:
    """``reverse`` as a bool; raises for options every rank rejects alike (after the exchange, through _attempt)."""
    V.check_bool("output_final_state", output_final_state)
    if cu_seqlens is not None:
        raise ValueError("sequence parallelism splits one sequence per batch row across ranks; packed cu_seqlens "
                         "are not supported")
    return V.check_bool("reverse", reverse)


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


def _initial(initial_state: Tensor | None, expected: tuple[int, ...], layout: str, like: Tensor,
             acc: torch.dtype) -> Tensor:
    """The replicated initial state, checked against this rank's inputs, in the accumulation dtype."""
    V.check_initial_state(initial_state, expected, layout)
    if initial_state is None:
        return torch.zeros(expected, dtype=acc, device=like.device)
    V.check_same_device(inputs=like, initial_state=initial_state)
    return initial_state.to(acc)


def _matrix_fingerprint(op: str, tensors: dict[str, object], initial_state: object, scale: object, reverse: object,
                        output_final_state: object, cu_seqlens: object) -> _Fingerprint:
    fingerprint = _Fingerprint(op)
    for name, t in tensors.items():
        fingerprint.tensor(name, t)
    return (fingerprint.tensor("initial_state", initial_state, time_dim=None).number("scale", scale)
            .options(reverse, output_final_state, cu_seqlens).length(tensors["q"]))


def _matrix_state_op(op: str, run: Callable[..., tuple[Tensor, Tensor | None]], tensors: dict[str, object],
                     initial_state: Tensor | None, scale: object, output_final_state: bool, reverse: bool,
                     group: Any, cu_seqlens: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """The LASP-2 wrapper around ``run(v, initial_state, reverse) -> (o, final)`` of a matrix-state family."""
    _check_group(group)
    q, v = cast(Tensor, tensors["q"]), cast(Tensor, tensors["v"])  # local() checks that they are
    fingerprint = _matrix_fingerprint(op, tensors, initial_state, scale, reverse, output_final_state, cu_seqlens)

    def local() -> tuple[Tensor, Tensor | None, Tensor, torch.dtype, bool]:
        flip = _check_local_options(reverse, output_final_state, cu_seqlens)
        V.check_float("q", q, 4, "(B, T, H, K)")
        V.check_float("v", v, 4, "(B, T, H, V)")
        b, _, h, dk = q.shape
        dv = v.shape[-1]
        acc = torch.float64 if q.dtype == torch.float64 else torch.float32
        eye = torch.eye(dk, dtype=acc, device=q.device).expand(b, h, dk, dk)
        extra_state = torch.cat([torch.zeros(b, h, dk, dv, dtype=acc, device=q.device), eye], dim=-1)
        out, final = run(torch.cat([v, v.new_zeros(*v.shape[:-1], dk)], dim=-1), extra_state, flip)
        initial = _initial(initial_state, (b, h, dk, dv), "(B, H, K, V)", q, acc)
        return out, final, initial, acc, flip

    result, error = _attempt(local)
    _agree(fingerprint, group, q, error)
    out, final, initial, acc, flip = result
    dv = v.shape[-1]
    o_zero, u = out[..., :dv], out[..., dv:]
    gathered = all_gather_autograd(final, group)  # (W, B, H, K, V + K): every rank's (S^0, P)
    mine, final_state = _fold(gathered[..., :dv], gathered[..., dv:], initial, dist.get_rank(group), flip,
                              lambda p, s: p @ s)
    o = o_zero + torch.einsum("bthk,bhkv->bthv", u.to(acc), mine).to(o_zero.dtype)
    return o, (final_state if output_final_state else None)


def sp_gla(q: Tensor, k: Tensor, v: Tensor, g: Tensor | None = None, *, scale: float | None = None,
           initial_state: Tensor | None = None, output_final_state: bool = False, reverse: bool = False,
           group: Any = None, backend: str = "auto", cu_seqlens: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """:func:`seqcore.ops.gla` on a sequence split across the ranks of ``group`` (default: the world).

    Each rank passes its contiguous slice ``(B, T_r, H, ...)`` (lengths may differ, each ``T_r >= 1``); rank ``r``
    holds steps after rank ``r - 1``'s. ``initial_state (B, H, K, V)`` is the state before the whole sequence (the
    first rank's, or the last rank's with ``reverse=True``) and must be the same on every rank; the returned final
    state is the whole sequence's, on every rank. Outputs are this rank's slice.

    Every rank must pass the same shapes except ``T``, dtypes and options; where they differ, every rank raises
    the same ValueError naming the field (one exchange of :data:`FINGERPRINT_BYTES` per rank checks it). An input
    that one rank rejects makes the others raise an error of the same type.
    """
    _check_group(group)
    fingerprint = _matrix_fingerprint("sp_gla", {"q": q, "k": k, "v": v, "g": g}, initial_state, scale, reverse,
                                      output_final_state, cu_seqlens)

    # GLA's transitions are diagonal, so P_t = diag(exp(G_t)) with G_t the running sum of g (inclusive, from the
    # slice's processing start): u_t and P_T come from a cumulative sum, without the K extra value columns (whose
    # activations would cost as much memory again as the op itself).
    def local() -> tuple[Tensor, Tensor, Tensor, Tensor, bool]:
        flip = _check_local_options(reverse, output_final_state, cu_seqlens)
        o_zero, local_state = ops.gla(q, k, v, g, scale=scale, output_final_state=True, reverse=flip,
                                      backend=backend)
        b, t, h, dk = q.shape
        dv = v.shape[-1]
        acc = torch.float64 if q.dtype == torch.float64 else torch.float32
        log_decay = (q.new_zeros(b, t, h, dk, dtype=acc) if g is None
                     else (g[..., None] if g.dim() == 3 else g).to(acc).expand(b, t, h, dk))
        running = log_decay.flip(1).cumsum(1).flip(1) if flip else log_decay.cumsum(1)
        u = (dk ** -0.5 if scale is None else scale) * running.exp() * q.to(acc)
        transition = (running[:, 0] if flip else running[:, -1]).exp()  # (B, H, K): the diagonal of P
        initial = _initial(initial_state, (b, h, dk, dv), "(B, H, K, V)", q, acc)
        pair = torch.cat([cast(Tensor, local_state), transition[..., None]], dim=-1)  # output_final_state=True
        return o_zero, u, pair, initial, flip

    result, error = _attempt(local)
    _agree(fingerprint, group, q, error)
    o_zero, u, pair, initial, flip = result
    dv = v.shape[-1]
    gathered = all_gather_autograd(pair, group)
    mine, final_state = _fold(gathered[..., :dv], gathered[..., dv], initial, dist.get_rank(group), flip,
                              lambda p, s: p[..., None] * s)
    o = o_zero + torch.einsum("bthk,bhkv->bthv", u, mine).to(o_zero.dtype)
    return o, (final_state if output_final_state else None)


def sp_gla_signed(q: Tensor, k: Tensor, v: Tensor, a: Tensor, *, scale: float | None = None,
                  initial_state: Tensor | None = None, output_final_state: bool = False, reverse: bool = False,
                  group: Any = None, backend: str = "auto",
                  cu_seqlens: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """:func:`seqcore.ops.gla_signed` (decays in ``[-1, 1]``) split across ranks; see :func:`sp_gla`."""

    def run(values: Tensor, state: Tensor, flip: bool) -> tuple[Tensor, Tensor | None]:
        return ops.gla_signed(q, k, values, a, scale=scale, initial_state=state, output_final_state=True,
                              reverse=flip, backend=backend)

    return _matrix_state_op("sp_gla_signed", run, {"q": q, "k": k, "v": v, "a": a}, initial_state, scale,
                            output_final_state, reverse, group, cu_seqlens)


def sp_delta_rule(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, g: Tensor | None = None, *,
                  scale: float | None = None, initial_state: Tensor | None = None, output_final_state: bool = False,
                  reverse: bool = False, group: Any = None, backend: str = "auto",
                  cu_seqlens: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """:func:`seqcore.ops.delta_rule` split across ranks; each rank's transition is the ``K x K`` product of its
    ``exp(g_t) (I - beta_t k_t k_t^T)``. See :func:`sp_gla`."""

    def run(values: Tensor, state: Tensor, flip: bool) -> tuple[Tensor, Tensor | None]:
        return ops.delta_rule(q, k, values, beta, g, scale=scale, initial_state=state, output_final_state=True,
                              reverse=flip, backend=backend)

    return _matrix_state_op("sp_delta_rule", run, {"q": q, "k": k, "v": v, "beta": beta, "g": g}, initial_state,
                            scale, output_final_state, reverse, group, cu_seqlens)


def sp_scan(x: Tensor, a: Tensor, *, initial_state: Tensor | None = None, output_final_state: bool = False,
            reverse: bool = False, group: Any = None, backend: str = "auto",
            cu_seqlens: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """:func:`seqcore.ops.scan` (``h_t = a_t h_{t-1} + x_t``, ``(B, T_r, D)`` per rank) split across ranks; the
    transition of a slice is the product of its ``a``. See :func:`sp_gla`."""
    _check_group(group)
    fingerprint = (_Fingerprint("sp_scan").tensor("x", x).tensor("a", a)
                   .tensor("initial_state", initial_state, time_dim=None)
                   .options(reverse, output_final_state, cu_seqlens).length(x))

    def local() -> tuple[Tensor, Tensor, Tensor | None, Tensor, torch.dtype, bool]:
        flip = _check_local_options(reverse, output_final_state, cu_seqlens)
        V.check_float("x", x, 3, "(B, T, D)")
        V.check_float("a", a, 3, "(B, T, D)")
        V.check_shape("a", a, x.shape, "(B, T, D) like x")
        b, _, d = x.shape
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        start = torch.cat([torch.zeros(b, d, dtype=acc, device=x.device),
                           torch.ones(b, d, dtype=acc, device=x.device)], dim=-1)
        out, final = ops.scan(torch.cat([x, torch.zeros_like(x)], dim=-1), torch.cat([a, a], dim=-1),
                              initial_state=start, output_final_state=True, reverse=flip, backend=backend)
        initial = _initial(initial_state, (b, d), "(B, D)", x, acc)
        return out[..., :d], out[..., d:], final, initial, acc, flip

    result, error = _attempt(local)
    _agree(fingerprint, group, x, error)
    h_zero, prefix, final, initial, acc, flip = result
    d = x.shape[-1]
    gathered = all_gather_autograd(final, group)
    mine, final_state = _fold(gathered[..., :d], gathered[..., d:], initial, dist.get_rank(group), flip,
                              lambda p, s: p * s)
    h = h_zero + (prefix.to(acc) * mine[:, None, :]).to(h_zero.dtype)
    return h, (final_state if output_final_state else None)


def previous_tail(x: Tensor, n: int, group: Any = None) -> Tensor:
    """The last ``n`` steps ``(B, n, C)`` of the previous rank's slice of ``x: (B, T_r, C)`` (zeros on rank 0): the
    halo a causal convolution of width ``n + 1`` needs. Every slice must hold at least ``n`` steps (checked on
    every rank from the exchanged slice lengths, so all raise alike). Differentiable; every rank joins the
    collective in both directions (rank 0's zeros are taken from the same gathered stack)."""
    _check_group(group)
    fingerprint = _Fingerprint("previous_tail").tensor("x", x).count("n", n).length(x)

    def local() -> None:
        V.check_float("x", x, 3, "(B, T_r, C)")
        V.check_int("n", n, 0)

    _, error = _attempt(local)
    lengths = fingerprint.lengths(_agree(fingerprint, group, x, error))
    if min(lengths) < n:
        raise ValueError(f"each rank's slice must hold at least {n} steps for the short convolution, got slice "
                         f"lengths {lengths} (rank r's at position r)")
    gathered = all_gather_autograd(x[:, x.shape[1] - n:], group)
    halos = torch.cat([torch.zeros_like(gathered[:1]), gathered[:-1]])
    return halos[dist.get_rank(group)]


def gather_sequence(x: Tensor, group: Any = None) -> tuple[Tensor, int]:
    """Every rank's slice of ``x: (B, T_r, ...)`` joined in rank order, ``(B, sum T_r, ...)``, and where this
    rank's slice starts in it. Slices may differ in length (they are padded for the all-gather; the lengths travel
    in the fingerprint exchange). Differentiable; its traffic grows with ``T``: softmax attention needs every key
    (LASP-2's hybrid layers do the same)."""
    _check_group(group)
    fingerprint = _Fingerprint("gather_sequence").tensor("x", x).length(x)

    def local() -> None:
        if not isinstance(x, Tensor) or x.dim() < 2:
            raise TypeError(f"x must be a tensor (B, T_r, ...), got {type(x).__name__} "
                            f"{tuple(x.shape) if isinstance(x, Tensor) else ''}")

    _, error = _attempt(local)
    sizes = fingerprint.lengths(_agree(fingerprint, group, x, error))
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
