"""Bad input to ``seqcore.ops``: one row per (entry point, input), with the named error or the documented result.

Every row runs on every backend it applies to (Triton through ``TRITON_INTERPRET=1``): the checks happen before
dispatch, and the documented results (empty inputs, resets, propagating NaN, strided inputs) must hold on each.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import seqcore.ops as ops
from bad_inputs import Raises
from reference import scan_ref

OPS = {"scan": ops.scan, "gla": ops.gla, "gla_signed": ops.gla_signed, "delta_rule": ops.delta_rule}
BACKENDS = ("recurrent", "chunk", "triton", "triton_chunk")
B, T, H, K, V = 1, 6, 2, 4, 3


def default_args(op: str) -> dict:
    """Valid arguments of ``op``: ``(1, 6, 2, 4)`` queries and keys, ``(1, 6, 2, 3)`` values, ``(1, 6, 3)`` scans."""
    gen = torch.Generator().manual_seed(0)
    randn = lambda *s: torch.randn(*s, generator=gen)  # noqa: E731
    rand = lambda *s: torch.rand(*s, generator=gen)  # noqa: E731
    if op == "scan":
        return {"x": randn(B, T, 3), "a": rand(B, T, 3) * 2 - 1}
    args = {"q": randn(B, T, H, K), "k": F.normalize(randn(B, T, H, K), dim=-1), "v": randn(B, T, H, V)}
    if op == "gla":
        args["g"] = -rand(B, T, H)
    elif op == "gla_signed":
        args["a"] = rand(B, T, H) * 2 - 1
    else:
        args["beta"] = rand(B, T, H) * 2
        args["g"] = -rand(B, T, H)
    return args


def state_shape(op: str, n: int = B) -> tuple[int, ...]:
    return (n, 3) if op == "scan" else (n, H, K, V)


@dataclass(frozen=True)
class Documented:
    """A documented result: ``check(run, args)`` asserts it, where ``run(args)`` calls the op on this backend."""

    result: str
    check: Callable[[Callable[[dict], tuple], dict], None]


@dataclass(frozen=True)
class Row:
    op: str
    case: str
    edit: Callable[[dict], None]  # changes the default arguments in place
    expect: Raises | Documented
    backends: tuple[str, ...] = BACKENDS
    env_unset: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return f"{self.op}-{self.case}"


def put(**changes) -> Callable[[dict], None]:
    """Edit that replaces arguments; a callable value is applied to the current one."""

    def edit(args: dict) -> None:
        for name, value in changes.items():
            args[name] = value(args[name]) if callable(value) else value

    return edit


def main(op: str) -> str:
    return "x" if op == "scan" else "q"


def gate(op: str) -> str:
    return "a" if op in ("scan", "gla_signed") else "g"


def at(index: tuple, value: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def set_value(t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        t[index] = value
        return t

    return set_value


# ---- documented results ----


def empty_outputs(shape_of: str, state: Callable[[dict], tuple[int, ...]]) -> Documented:
    def check(run, args):
        leaves = {n: t.requires_grad_() for n, t in args.items() if isinstance(t, torch.Tensor) and t.is_floating_point()}
        out, final = run({**args, "output_final_state": True})
        assert out.shape == args[shape_of].shape and out.dtype == args[shape_of].dtype, "output shape or dtype"
        assert tuple(final.shape) == state(args), "final state shape"
        grads = torch.autograd.grad(out.sum() + final.sum(), list(leaves.values()))
        assert all(g.shape == t.shape for g, t in zip(grads, leaves.values()))

    return Documented("empty outputs and final state, shaped as the inputs say; backward gives empty gradients", check)


def reset_forgets_initial_state() -> Documented:
    def check(run, args):
        h0 = args["initial_state"]
        out, final = run({**args, "output_final_state": True})
        plain, plain_final = run({**args, "initial_state": None, "output_final_state": True})
        assert torch.isfinite(out).all() and torch.isfinite(final).all()
        torch.testing.assert_close(out, plain, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(final, plain_final, rtol=1e-6, atol=1e-6)
        assert h0.abs().sum() > 0

    return Documented("exact reset at the first step: the initial state is forgotten, outputs finite", check)


def propagates(dependent: tuple, independent: list[tuple]) -> Documented:
    def check(run, args):
        out, _ = run(args)
        assert not torch.isfinite(out[dependent]).any(), "an output that depends on the bad value is finite"
        for index in independent:
            assert torch.isfinite(out[index]).all(), f"an output that does not depend on it is not finite: {index}"

    return Documented("not checked: propagates to the outputs that depend on it (non-finite), others finite", check)


def same_as_contiguous(names: tuple[str, ...]) -> Documented:
    def check(run, args):
        contiguous, strided = dict(args), dict(args)
        for name in names:
            t = args[name]
            contiguous[name] = t.contiguous()
            if t.is_contiguous():
                # the same values in a tensor whose strides are not the contiguous ones
                strided[name] = torch.stack([t, torch.full_like(t, float("nan"))], dim=-1)[..., 0]
            assert not strided[name].is_contiguous()
        out, final = run({**contiguous, "output_final_state": True})
        s_out, s_final = run({**strided, "output_final_state": True})
        same = torch.equal(out, s_out) and torch.equal(final, s_final)
        assert same, "strided inputs changed the result"

    return Documented("non-contiguous inputs give the same result as contiguous ones", check)


def strided_cu_seqlens() -> Documented:
    def check(run, args):
        cu = torch.tensor([0, 2, 6])
        out, final = run({**args, "cu_seqlens": cu, "output_final_state": True})
        strided = torch.tensor([0, 9, 2, 9, 6])[::2]
        assert not strided.is_contiguous()
        s_out, s_final = run({**args, "cu_seqlens": strided, "output_final_state": True})
        same = torch.equal(out, s_out) and torch.equal(final, s_final)
        assert same, "a strided cu_seqlens changed the result"

    return Documented("a non-contiguous cu_seqlens gives the same result as a contiguous one", check)


def matches_scan_ref() -> Documented:
    def check(run, args):
        out, final = run({**args, "output_final_state": True})
        ref, ref_final = scan_ref(args["x"].double(), args["a"].double())
        torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(final.double(), ref_final, rtol=1e-5, atol=1e-5)

    return Documented("any finite coefficient is accepted; |a| > 1 lets the state grow, as the step loop does", check)


def numpy_bool_accepted() -> Documented:
    def check(run, args):
        out, _ = run({**args, "reverse": np.True_})
        ref, _ = run({**args, "reverse": True})
        same = torch.equal(out, ref)
        assert same, "numpy.True_ and True differ"

    return Documented("numpy's bool_ counts as a bool", check)


# ---- the table ----


def rows_for(op: str) -> list[Row]:
    m, gt = main(op), gate(op)
    qkv = op != "scan"
    rows = [
        # shapes and ranks
        Row(op, f"{m} rank 2", put(**{m: lambda t: t[0]}), Raises(ValueError, rf"{m} must have shape \(B, T, ")),
        Row(op, f"{m} rank 5", put(**{m: lambda t: t[..., None]}), Raises(ValueError, rf"{m} must have shape")),
        Row(op, f"{gt} shorter in T", put(**{gt: lambda t: t[:, :5]}), Raises(ValueError, rf"{gt} must have shape")),
        Row(op, "initial_state wrong shape", put(initial_state=torch.zeros(state_shape(op, 2))),
            Raises(ValueError, r"initial_state must have shape \(N, ")),
        Row(op, "initial_state wrong rank", put(initial_state=torch.zeros(4)),
            Raises(ValueError, r"initial_state must have shape")),
        # dtypes
        Row(op, f"{m} int64", put(**{m: lambda t: t.long()}), Raises(TypeError, rf"{m} must be a floating-point")),
        Row(op, f"{m} complex64", put(**{m: lambda t: t.to(torch.complex64)}),
            Raises(TypeError, rf"{m} must be a floating-point")),
        Row(op, f"{m} bool", put(**{m: lambda t: t > 0}), Raises(TypeError, rf"{m} must be a floating-point")),
        Row(op, f"{m} a list", put(**{m: lambda t: t.tolist()}), Raises(TypeError, rf"{m} must be a torch.Tensor")),
        Row(op, f"{gt} int32", put(**{gt: lambda t: t.int()}), Raises(TypeError, rf"{gt} must be a floating-point")),
        Row(op, f"{gt} a list", put(**{gt: lambda t: t.tolist()}), Raises(TypeError, rf"{gt} must be a torch.Tensor")),
        Row(op, "initial_state int64", put(initial_state=torch.zeros(state_shape(op), dtype=torch.long)),
            Raises(TypeError, r"initial_state must be a floating-point")),
        Row(op, "cu_seqlens float", put(cu_seqlens=torch.tensor([0.0, 6.0])), Raises(TypeError, r"cu_seqlens must be an int32 or int64")),
        Row(op, "cu_seqlens int16", put(cu_seqlens=torch.tensor([0, 6], dtype=torch.int16)),
            Raises(TypeError, r"cu_seqlens must be an int32 or int64")),
        Row(op, "cu_seqlens a list", put(cu_seqlens=[0, 2, 6]), Raises(TypeError, r"cu_seqlens must be an int32 or int64 tensor.*list")),
        Row(op, "float64 on triton", put(**{m: lambda t: t.double()}, **({"k": lambda t: t.double(), "v": lambda t: t.double()} if qkv else {})),
            Raises(TypeError, r"backend='triton' supports float32/bfloat16/float16"), backends=("triton",)),
        # devices ('meta' stands in for another device)
        Row(op, f"{gt} on meta", put(**{gt: lambda t: t.to("meta")}), Raises(ValueError, r"all tensors must be on one device")),
        Row(op, "initial_state on meta", put(initial_state=torch.zeros(state_shape(op), device="meta")),
            Raises(ValueError, r"all tensors must be on one device")),
        Row(op, "cu_seqlens on meta", put(cu_seqlens=torch.tensor([0, 6], device="meta")),
            Raises(ValueError, r"all tensors must be on one device")),
        Row(op, "everything on meta", lambda args: args.update({n: t.to("meta") for n, t in args.items()}),
            Raises(ValueError, r"'meta' device.*no data")),
        # NaN and inf
        Row(op, f"NaN in {gt}", put(**{gt: at((0, 2, 0), float("nan"))}), Raises(ValueError, rf"{gt} .*(no NaN)")),
        Row(op, f"+inf in {gt}", put(**{gt: at((0, 2, 0), float("inf"))}), Raises(ValueError, rf"{gt} ")),
        Row(op, f"NaN in {m}", put(**{m: at((0, 2, 0), float("nan"))}),
            propagates((0, slice(2, None), 0), [(0, slice(0, 2)), (0, slice(None), slice(1, None))]) if op == "scan"
            else propagates((0, 2, 0), [(0, slice(0, 2)), (0, slice(3, None)), (0, 2, 1)])),
        Row(op, "inf in initial_state", put(initial_state=at((0,) * len(state_shape(op)), float("inf"))(
            torch.randn(state_shape(op)))),
            propagates((0, slice(None), 0), [(0, slice(None), slice(1, None))]) if op == "scan"
            else propagates((0, slice(None), 0, 0), [(0, slice(None), 1), (0, slice(None), 0, slice(1, None))])),
        # empty inputs
        Row(op, "T=0", put(**{n: (lambda t: t[:, :0]) for n in default_args(op)}), Raises(ValueError, r"at least one step, got T=0")),
        Row(op, "B=0", put(**{n: (lambda t: t[:0]) for n in default_args(op)}),
            empty_outputs("x" if op == "scan" else "v", lambda args: state_shape(op, 0))),
        Row(op, "cu_seqlens with one entry", put(cu_seqlens=torch.tensor([6])), Raises(ValueError, r"at least 2 entries")),
        # out-of-range values
        Row(op, "cu_seqlens not starting at 0", put(cu_seqlens=torch.tensor([1, 3, 6])), Raises(ValueError, r"must start at 0")),
        Row(op, "cu_seqlens decreasing", put(cu_seqlens=torch.tensor([0, 4, 2, 6])), Raises(ValueError, r"strictly increasing")),
        Row(op, "cu_seqlens with an empty sequence", put(cu_seqlens=torch.tensor([0, 3, 3, 6])), Raises(ValueError, r"strictly increasing")),
        Row(op, "cu_seqlens not ending at T", put(cu_seqlens=torch.tensor([0, 3, 5])), Raises(ValueError, r"must end at T=6")),
        Row(op, "cu_seqlens past T", put(cu_seqlens=torch.tensor([0, 3, 9])), Raises(ValueError, r"must end at T=6")),
        Row(op, "cu_seqlens 2-D", put(cu_seqlens=torch.tensor([[0, 6]])), Raises(ValueError, r"cu_seqlens must be 1-D")),
        Row(op, "cu_seqlens with B=2", lambda args: args.update(
            {n: torch.cat([t, t]) for n, t in args.items()}, cu_seqlens=torch.tensor([0, 6])),
            Raises(ValueError, r"batch size must be 1, got B=2")),
        # flags
        Row(op, "reverse='no'", put(reverse="no"), Raises(TypeError, r"reverse must be a bool.*'no'")),
        Row(op, "reverse=1", put(reverse=1), Raises(TypeError, r"reverse must be a bool")),
        Row(op, "reverse=None", put(reverse=None), Raises(TypeError, r"reverse must be a bool")),
        Row(op, "output_final_state='yes'", put(output_final_state="yes"), Raises(TypeError, r"output_final_state must be a bool")),
        Row(op, "output_final_state=0", put(output_final_state=0), Raises(TypeError, r"output_final_state must be a bool")),
        Row(op, "reverse=numpy.True_", lambda args: None, numpy_bool_accepted()),
        Row(op, "backend='cuda'", put(backend="cuda"), Raises(ValueError, r"backend must be one of"), backends=("any",)),
        Row(op, "backend=None", put(backend=None), Raises(ValueError, r"backend must be one of"), backends=("any",)),
        Row(op, "backend='triton' without the interpreter", put(backend="triton"),
            Raises(ValueError, r"backend='triton' cannot run here.*TRITON_INTERPRET=1"), backends=("any",),
            env_unset=("TRITON_INTERPRET",)),
        # strided (non-contiguous) inputs
        Row(op, "non-contiguous inputs", put(initial_state=torch.randn(state_shape(op))),
            same_as_contiguous((*default_args(op), "initial_state"))),
        Row(op, "initial_state transposed in memory",
            put(initial_state=torch.randn(state_shape(op)[::-1]).permute(*range(len(state_shape(op)) - 1, -1, -1))),
            same_as_contiguous(("initial_state",))),
        Row(op, "non-contiguous cu_seqlens", put(initial_state=torch.randn(state_shape(op, 2))), strided_cu_seqlens()),
    ]
    if op == "scan":
        rows += [
            Row(op, "-inf in a", put(a=at((0, 2, 0), float("-inf"))), Raises(ValueError, r"a must be finite")),
            Row(op, "a = 0 at the first step", put(a=at((0, 0), 0.0), initial_state=torch.randn(B, 3)),
                reset_forgets_initial_state()),
            Row(op, "|a| > 1", put(a=lambda t: t * 3), matches_scan_ref()),
            Row(op, "D=0", put(x=lambda t: t[..., :0], a=lambda t: t[..., :0]),
                empty_outputs("x", lambda args: (B, 0))),
        ]
        return rows
    rows += [
        Row(op, "k of another shape", put(k=lambda t: t[..., :3]), Raises(ValueError, r"k must have shape \(B, T, H, K\)")),
        Row(op, "v shorter in T", put(v=lambda t: t[:, :5]), Raises(ValueError, r"v must have shape \(B, T, H, V\)")),
        Row(op, "k float64, q float32", put(k=lambda t: t.double()), Raises(TypeError, r"share a dtype")),
        Row(op, "scale NaN", put(scale=float("nan")), Raises(ValueError, r"scale must be finite")),
        Row(op, "scale inf", put(scale=float("inf")), Raises(ValueError, r"scale must be finite")),
        Row(op, "scale=True", put(scale=True), Raises(TypeError, r"scale must be a float or None, got bool")),
        Row(op, "scale='1'", put(scale="1"), Raises(TypeError, r"scale must be a float or None, got str")),
        Row(op, "K=0", put(q=lambda t: t[..., :0], k=lambda t: t[..., :0]), Raises(ValueError, r"K must be at least 1")),
        Row(op, "H=0", lambda args: args.update({n: t[:, :, :0] for n, t in args.items()}),
            empty_outputs("v", lambda args: (B, 0, K, V))),
        Row(op, "V=0", put(v=lambda t: t[..., :0]), empty_outputs("v", lambda args: (B, H, K, 0))),
        Row(op, "q of rank 3", put(q=lambda t: t[..., 0]), Raises(ValueError, r"q must have shape \(B, T, H, K\)")),
    ]
    if op in ("gla", "delta_rule"):
        rows += [
            Row(op, "-inf in g at the first step", put(g=at((0, 0), float("-inf")), initial_state=torch.randn(B, H, K, V)),
                reset_forgets_initial_state()),
            Row(op, "g > 0", put(g=at((0, 2, 0), 0.5)), Raises(ValueError, r"g is a log decay and must be <= 0")),
        ]
    if op == "gla":
        rows += [
            Row(op, "g of shape (B, T, K)", put(g=-torch.rand(B, T, K)), Raises(ValueError, r"g must have shape \(B, T, H\) = ")),
            Row(op, "-inf in a per-key g at the first step",
                put(g=lambda t: t[..., None].expand(B, T, H, K).clone().index_fill_(1, torch.tensor([0]), float("-inf")),
                    initial_state=torch.randn(B, H, K, V)),
                reset_forgets_initial_state()),
        ]
    if op == "gla_signed":
        rows += [
            Row(op, "-inf in a", put(a=at((0, 2, 0), float("-inf"))), Raises(ValueError, r"a must lie in \[-1.0, 1.0\]")),
            Row(op, "a > 1", put(a=at((0, 2, 0), 1.5)), Raises(ValueError, r"a must lie in \[-1.0, 1.0\]")),
            Row(op, "a = 0 at the first step", put(a=at((0, 0), 0.0), initial_state=torch.randn(B, H, K, V)),
                reset_forgets_initial_state()),
        ]
    if op == "delta_rule":
        rows += [
            Row(op, "beta of shape (B, T)", put(beta=lambda t: t[..., 0]), Raises(ValueError, r"beta must have shape \(B, T, H\)")),
            Row(op, "beta int64", put(beta=lambda t: t.long()), Raises(TypeError, r"beta must be a floating-point")),
            Row(op, "NaN in beta", put(beta=at((0, 2, 0), float("nan"))), Raises(ValueError, r"beta must lie in \[0.0, 2.0\] \(no NaN\)")),
            Row(op, "inf in beta", put(beta=at((0, 2, 0), float("inf"))), Raises(ValueError, r"beta must lie in \[0.0, 2.0\]")),
            Row(op, "beta > 2", put(beta=at((0, 2, 0), 2.5)), Raises(ValueError, r"beta must lie in \[0.0, 2.0\]")),
            Row(op, "beta < 0", put(beta=at((0, 2, 0), -0.1)), Raises(ValueError, r"beta must lie in \[0.0, 2.0\]")),
            Row(op, "beta on meta", put(beta=lambda t: t.to("meta")), Raises(ValueError, r"all tensors must be on one device")),
            Row(op, "per-key g", put(g=-torch.rand(B, T, H, K)), Raises(ValueError, r"g must have shape \(B, T, H\)")),
        ]
    return rows


ROWS = [row for op in OPS for row in rows_for(op)]


def _params() -> list:
    params = []
    for row in ROWS:
        for backend in row.backends:
            marks = [pytest.mark.triton] if backend.startswith("triton") else []
            params.append(pytest.param(row, backend, id=f"{row}-{backend}", marks=marks))
    return params


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the Triton interpreter's numpy
@pytest.mark.parametrize("row, backend", _params())
def test_bad_input(row: Row, backend: str, monkeypatch) -> None:
    for name in row.env_unset:
        monkeypatch.delenv(name, raising=False)
    args = default_args(row.op)
    row.edit(args)
    if backend != "any":
        args.setdefault("backend", backend)
    fn = OPS[row.op]

    def run(call_args: dict):
        return fn(**call_args)

    if isinstance(row.expect, Raises):
        with pytest.raises(row.expect.error, match=row.expect.match):
            run(args)
    else:
        row.expect.check(run, args)


def test_table_covers_every_entry_point_and_class() -> None:
    assert {row.op for row in ROWS} == set(OPS)
    for op in OPS:
        cases = " ".join(row.case for row in ROWS if row.op == op)
        for word in ("rank", "int64", "meta", "NaN", "inf", "=0", "cu_seqlens", "reverse", "backend", "contiguous"):
            assert word in cases, (op, word)
    assert os.environ.get("TRITON_INTERPRET") == "1" or torch.cuda.is_available()
