"""Non-finite inputs: ``-inf`` log decays are exact resets; NaN and inf in the data propagate, never hide.

A log decay of ``-inf`` (``gla``'s and ``delta_rule``'s ``g``) or a coefficient of 0 (``scan``'s and
``gla_signed``'s ``a``) forgets the state: a hard reset, at a document boundary for example. Every backend must
give the float64 step reference's finite result, forward and gradients, wherever the resets fall: the first or
last step, inside a chunk, on either side of a chunk or sub-chunk boundary, several in a row, everywhere. The
gradient with respect to a reset entry itself is exactly 0.

NaN and inf in ``q``, ``k``, ``v``, ``x`` or ``initial_state`` are not checked: the outputs that depend on them
come out non-finite on every backend, and other sequences are untouched.
"""
from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F

import seqcore.ops as ops
from opcases import TOL, Case, make_inputs, new_seed, outputs_and_grads, rel_err

# Chunk length of the chunked backend per variant (and 4 for the per-key sub-chunks, 64 for the Triton delta
# rule's checkpoints, patched down to 4 below): resets are placed around these boundaries.
TRITON = [pytest.param(b, marks=pytest.mark.triton) for b in ("triton_recurrent", "triton_chunk")]

VARIANTS = {
    "gla-key": dict(family="gla", gate="key", chunk=16, length=40),
    "gla-head": dict(family="gla", gate="head", chunk=64, length=70),
    "gla_signed": dict(family="gla_signed", gate="head", chunk=64, length=70),
    "delta_rule": dict(family="delta_rule", gate="head", chunk=64, length=70),
    "scan": dict(family="scan", gate=None, chunk=32, length=40),
}


def placements(name: str, length: int, chunk: int) -> list[int]:
    """Reset steps in processing order within a sequence of ``length`` steps."""
    steps = {
        "first": [0],
        "last": [length - 1],
        "inside": [chunk // 2 + 1],
        "chunk_start": [chunk],
        "chunk_end": [chunk - 1],
        "sub_chunk": [3, 4, 8],
        "run": [chunk - 2, chunk - 1, chunk, chunk + 1],
        "everywhere": list(range(length)),
    }[name]
    return [p for p in steps if p < length]


PLACEMENTS = ["first", "last", "inside", "chunk_start", "chunk_end", "sub_chunk", "run", "everywhere", "scattered"]

# (lens, varlen, reverse, initial state, decay strength)
OPTIONS = {
    "batch-h0": (2, False, False, True, 1.0),
    "varlen-rev-h0": (3, True, True, True, 1.0),
    "batch-rev-strong": (1, False, True, False, 20.0),
}


def _lens(n: int, length: int) -> tuple[int, ...]:
    return (length, 3, length - 7)[:n] if n == 3 else (length,) * n


def _reset_mask(shape, lens, varlen, reverse, steps, scattered, gen) -> torch.Tensor:
    """Boolean mask over the gate's shape ``(B, T, H[, K])``: True where the decay is a reset."""
    mask = torch.zeros(shape, dtype=torch.bool)
    if scattered:
        return torch.rand(shape, generator=gen) < 0.2
    starts = [0] * len(lens) if not varlen else torch.tensor([0, *lens[:-1]]).cumsum(0).tolist()
    for n, (start, length) in enumerate(zip(starts, lens)):
        row = 0 if varlen else n
        for p in steps(length):
            t = start + (length - 1 - p if reverse else p)
            mask[row, t] = True
    return mask


def make_reset_inputs(variant: str, placement: str, option: str, seed: int, small: bool = False):
    """Random inputs of one variant with resets placed as named; returns (case, inputs, reset mask)."""
    spec = VARIANTS[variant]
    n, varlen, reverse, h0, strength = OPTIONS[option]
    length, chunk = spec["length"], spec["chunk"]
    dims = dict(heads=2, dk=6, dv=10) if small else {}
    if small:
        length, chunk = 12, 4
    lens = _lens(n, length)
    base = "gla" if spec["family"] == "gla_signed" else spec["family"]
    case = Case(base, lens=lens, varlen=varlen, gate=spec["gate"], strength=strength, initial_state=h0,
                reverse=reverse, **dims)
    inputs = make_inputs(case, seed)
    gen = torch.Generator().manual_seed(seed + 2)
    steps = lambda length: placements(placement, length, chunk) if placement != "scattered" else []  # noqa: E731
    tensors = inputs["tensors"]
    name = "a" if base == "scan" else "g"
    if spec["family"] == "gla_signed":
        # |a| >= 0.05 away from the resets: the Triton backward's da = dg / a loses ~1e-7 / |a| (docs/ops.md)
        shape = tensors.pop("g").shape
        sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).double()
        tensors["a"] = sign * (0.05 + 0.95 * torch.rand(shape, generator=gen, dtype=torch.float64))
        name = "a"
    mask = _reset_mask(tensors[name].shape, lens, varlen, reverse, steps, placement == "scattered", gen)
    tensors[name] = tensors[name].masked_fill(mask, 0.0 if name == "a" else float("-inf"))
    return case, inputs, mask, spec["family"]


def signed_ref(q, k, v, a, scale=None, initial_state=None, cu_seqlens=None, reverse=False):
    """Float64 step loop of ``S_t = a_t S_{t-1} + k_t v_t^T``, ``o_t = scale * S_t^T q_t`` (batch or packed)."""
    b, t, h, dk = q.shape
    scale = dk**-0.5 if scale is None else scale
    bounds = [(i, 0, t) for i in range(b)] if cu_seqlens is None else [
        (0, s, e) for s, e in zip(cu_seqlens.tolist(), cu_seqlens.tolist()[1:])
    ]
    outs, finals = [], []
    for n, (row, s, e) in enumerate(bounds):
        state = q.new_zeros(h, dk, v.shape[-1]) if initial_state is None else initial_state[n]
        steps = range(e - 1, s - 1, -1) if reverse else range(s, e)
        out = [None] * (e - s)
        for i in steps:
            state = a[row, i, :, None, None] * state + torch.einsum("hk,hv->hkv", k[row, i], v[row, i])
            out[i - s] = scale * torch.einsum("hk,hkv->hv", q[row, i], state)
        outs.append(torch.stack(out))
        finals.append(state)
    out = torch.stack(outs) if cu_seqlens is None else torch.cat(outs)[None]
    return out, torch.stack(finals)


def signed_outputs_and_grads(inputs: dict, reverse: bool, backend: str | None, seed: int) -> dict:
    """As :func:`opcases.outputs_and_grads` for ``gla_signed``; ``backend=None`` runs :func:`signed_ref`."""
    dtype = torch.float64 if backend is None else torch.float32
    leaves = {name: t.to(dtype).requires_grad_() for name, t in inputs["tensors"].items()}
    h0 = inputs["initial_state"]
    if h0 is not None:
        leaves["initial_state"] = h0.to(dtype).requires_grad_()
    kwargs = dict(initial_state=leaves.get("initial_state"), cu_seqlens=inputs["cu_seqlens"], reverse=reverse)
    if backend is None:
        out, final = signed_ref(*(leaves[n] for n in "qkva"), **kwargs)
    else:
        out, final = ops.gla_signed(*(leaves[n] for n in "qkva"), output_final_state=True, backend=backend, **kwargs)
    gen = torch.Generator().manual_seed(seed + 1)
    loss = (out * torch.randn(out.shape, generator=gen, dtype=torch.float64).to(dtype)).sum()
    loss = loss + (final * torch.randn(final.shape, generator=gen, dtype=torch.float64).to(dtype)).sum()
    grads = torch.autograd.grad(loss, list(leaves.values()))
    result = {"out": out, "final_state": final, **{f"d{name}": g for name, g in zip(leaves, grads)}}
    return {name: t.detach() for name, t in result.items()}


def assert_resets_match(variant: str, placement: str, option: str, backends: list[str], small: bool = False) -> None:
    """Each backend against the float64 step loop (run once: it dominates the test's time)."""
    seed = new_seed()
    case, inputs, mask, family = make_reset_inputs(variant, placement, option, seed, small)
    gate = "dg" if family in ("gla", "delta_rule") else "da"
    if family == "gla_signed":
        run = lambda backend: signed_outputs_and_grads(inputs, case.reverse, backend, seed)  # noqa: E731
    else:
        run = lambda backend: outputs_and_grads(case, inputs, backend, seed=seed)  # noqa: E731
    ref = run(None)
    if family == "gla_signed":
        # gla_signed runs on log|a|, so a = 0 passes on the 0 gradient of a -inf log decay (the step loop's
        # derivative there, <dS_t, S_{t-1}>, is lost with the state: see docs/ops.md); compared apart below.
        ref[gate] = ref[gate].masked_fill(mask, 0.0)
    for backend in backends:
        out = run(backend)
        where = f"({variant}, {placement}, {option}, backend {backend}, seed {seed})"
        if family != "scan":
            # d/dg of exp(g) at g = -inf is 0, exactly: no 0 * inf, no leftover of a cancellation.
            assert torch.equal(out[gate][mask], torch.zeros_like(out[gate][mask])), f"{gate} at the resets {where}"
        for name in ref:
            assert torch.isfinite(out[name]).all(), f"{name} not finite {where}"
            err = rel_err(out[name], ref[name])
            assert err < TOL, f"{name}: relative error {err:.2e} >= {TOL:.0e} {where}"


# Every placement with packed sequences, reverse and an initial state; the other options on scattered resets.
# The full cross product runs with -m slow.
QUICK = [(p, "varlen-rev-h0") for p in PLACEMENTS] + [("scattered", "batch-h0"), ("scattered", "batch-rev-strong")]
FULL = [(p, o) for p in PLACEMENTS for o in OPTIONS if (p, o) not in QUICK]


def _params(quick: list[tuple[str, str]], full: list[tuple[str, str]]) -> list:
    slow = [pytest.param(*c, marks=pytest.mark.slow, id="-".join(c)) for c in full]
    return [pytest.param(*c, id="-".join(c)) for c in quick] + slow


@pytest.mark.parametrize("placement, option", _params(QUICK, FULL))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_resets_match_reference(variant: str, placement: str, option: str) -> None:
    assert_resets_match(variant, placement, option, ["recurrent", "chunk"])


TRITON_QUICK = [("scattered", "varlen-rev-h0"), ("run", "batch-h0")]
TRITON_FULL = [(p, o) for p in PLACEMENTS for o in ("batch-h0", "varlen-rev-h0") if (p, o) not in TRITON_QUICK]


@pytest.mark.triton
@pytest.mark.parametrize("placement, option", _params(TRITON_QUICK, TRITON_FULL))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_triton_resets_match_reference(variant: str, placement: str, option: str, monkeypatch) -> None:
    # The delta-rule backward restarts from a checkpoint every CHUNK_SIZE steps: small chunks put resets on them.
    monkeypatch.setattr(importlib.import_module("seqcore.ops.delta_rule.triton_recurrent"), "CHUNK_SIZE", 4)
    assert_resets_match(variant, placement, option, ["triton_recurrent", "triton_chunk"], small=True)


# ---- NaN and inf in the data: documented to propagate to every output that depends on them ----

DATA = {
    "scan": ["x", "initial_state"],
    "gla": ["q", "k", "v", "initial_state"],
    "delta_rule": ["q", "k", "v", "initial_state"],
}


def _dependents(family: str, name: str, t: int, length: int, reverse: bool) -> tuple:
    """Index into ``out[0, :, 0]`` of the outputs of sequence 0, head (or channel) 0 that depend on the bad entry.

    The entry is at step ``t``, head 0, channel 0 (for ``v``, ``x``, ``initial_state`` the value channel 0).
    """
    later = slice(t, None) if not reverse else slice(0, t + 1)
    steps = {"q": slice(t, t + 1), "initial_state": slice(None)}.get(name, later)
    if family == "scan":
        return (steps, 0)
    if name in ("v", "initial_state"):
        return (steps, 0, 0)  # each value column of the state evolves on its own
    return (steps, 0, slice(None))


BAD = [(float("nan"), False), (float("inf"), True)]
FAMILY_DATA = [(f, n) for f, names in DATA.items() for n in names]


@pytest.mark.parametrize("bad, reverse", BAD, ids=["nan-fwd", "inf-rev"])
@pytest.mark.parametrize("family, name", [pytest.param(*c, id="-".join(c)) for c in FAMILY_DATA])
@pytest.mark.parametrize("backend", ["recurrent", "chunk"])
def test_nonfinite_data_propagates(backend: str, family: str, name: str, bad: float, reverse: bool) -> None:
    assert_propagates(backend, family, name, bad, reverse)


@pytest.mark.triton
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the interpreter's numpy, on NaN
@pytest.mark.parametrize("family, name", [pytest.param(*c, id="-".join(c)) for c in FAMILY_DATA])
@pytest.mark.parametrize("backend", ["triton_recurrent", "triton_chunk"])
def test_triton_nonfinite_data_propagates(backend: str, family: str, name: str) -> None:
    assert_propagates(backend, family, name, float("inf"), True)


def assert_propagates(backend: str, family: str, name: str, bad: float, reverse: bool) -> None:
    """One bad value in sequence 0: its dependent outputs are non-finite, sequence 1 is bitwise unaffected."""
    length, t = 12, 5
    case = Case(family, lens=(length, length), gate="head" if family != "scan" else None, dk=6, dv=10)
    inputs = make_inputs(case, new_seed())
    tensors = {n: x.float() for n, x in inputs["tensors"].items()}
    h0 = inputs["initial_state"].float()
    kwargs = dict(output_final_state=True, reverse=reverse, backend=backend)
    clean_out, clean_final = (ops.scan if family == "scan" else getattr(ops, family))(
        *tensors.values(), initial_state=h0, **kwargs
    )
    if name == "initial_state":
        h0 = h0.clone()
        h0[(0,) + (0,) * (h0.dim() - 1)] = bad
    else:
        tensors[name] = tensors[name].clone()
        tensors[name][(0, t) + (0,) * (tensors[name].dim() - 2)] = bad
    out, final = (ops.scan if family == "scan" else getattr(ops, family))(*tensors.values(), initial_state=h0, **kwargs)
    dependent = out[0][_dependents(family, name, t, length, reverse)]
    assert dependent.numel() > 0 and not torch.isfinite(dependent).any(), f"{name}={bad} left dependent outputs finite"
    if name != "q":
        assert not torch.isfinite(final[0]).all(), f"{name}={bad} left the final state finite"
    assert torch.equal(out[1], clean_out[1]) and torch.equal(final[1], clean_final[1]), "another sequence changed"


@pytest.mark.parametrize("backend", ["recurrent", "chunk", *TRITON])
def test_nan_does_not_cross_sequences_when_packed(backend: str) -> None:
    """Packed sequences share a row: a NaN in the first must not leak into the second through the chunk maths."""
    q, k, v = torch.randn(1, 30, 2, 6), F.normalize(torch.randn(1, 30, 2, 6), dim=-1), torch.randn(1, 30, 2, 10)
    g = -F.softplus(torch.randn(1, 30, 2, 6))
    cu = torch.tensor([0, 13, 30])
    clean, _ = ops.gla(q, k, v, g, cu_seqlens=cu, backend=backend)
    k = k.clone()
    k[0, 12, 0, 0] = float("nan")
    out, _ = ops.gla(q, k, v, g, cu_seqlens=cu, backend=backend)
    assert not torch.isfinite(out[0, 12, 0]).any()
    assert torch.equal(out[0, 13:], clean[0, 13:])


@pytest.mark.parametrize("backend", ["recurrent", "chunk", *TRITON])
def test_reset_forgets_a_huge_state(backend: str) -> None:
    """A reset is exact, not a strong decay: a state of 1e30 before it leaves nothing behind (e^-60 * 1e30 would)."""
    q, k, v = torch.randn(1, 8, 2, 4), torch.randn(1, 8, 2, 4), torch.randn(1, 8, 2, 3)
    h0 = torch.full((1, 2, 4, 3), 1e30)
    a = torch.rand(1, 8, 2) * 2 - 1
    a[:, 0] = 0.0
    g = -torch.rand(1, 8, 2)
    g[:, 0] = float("-inf")
    for op, gate in ((ops.gla_signed, a), (ops.gla, g), (ops.gla, g[..., None].expand(1, 8, 2, 4).contiguous())):
        out, final = op(q, k, v, gate, initial_state=h0, output_final_state=True, backend=backend)
        plain, plain_final = op(q, k, v, gate, output_final_state=True, backend=backend)
        torch.testing.assert_close(out, plain, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(final, plain_final, rtol=1e-6, atol=1e-6)
    beta = torch.rand(1, 8, 2)
    k = F.normalize(k, dim=-1)
    out, _ = ops.delta_rule(q, k, v, beta, g, initial_state=h0, backend=backend)
    torch.testing.assert_close(out, ops.delta_rule(q, k, v, beta, g, backend=backend)[0], rtol=1e-6, atol=1e-6)


def test_resets_under_torch_compile() -> None:
    """The per-key reset check reads the gate on the host inside the custom op: the graph stays whole."""
    torch._dynamo.reset()
    q, k, v = torch.randn(1, 40, 2, 6), torch.randn(1, 40, 2, 6) / 6**0.5, torch.randn(1, 40, 2, 10)
    g = (-F.softplus(torch.randn(1, 40, 2, 6))).masked_fill(torch.rand(1, 40, 2, 6) < 0.2, float("-inf"))
    leaves = [x.requires_grad_() for x in (q, k, v, g)]

    def loss(q, k, v, g):
        return ops.gla(q, k, v, g, backend="chunk")[0].square().sum()

    eager = torch.autograd.grad(loss(*leaves), leaves)
    compiled = torch.autograd.grad(torch.compile(loss, fullgraph=True)(*leaves), leaves)
    for e, c in zip(eager, compiled):
        assert torch.isfinite(c).all()
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ["recurrent", "chunk", *TRITON])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_resets_in_half_precision(dtype: torch.dtype, backend: str) -> None:
    """-inf survives the cast to the float32 compute dtype; tolerance as in test_ops_numerics.test_half_precision."""
    seed = new_seed()
    case, inputs, _, _ = make_reset_inputs("gla-key", "scattered", "batch-h0", seed, small=True)
    ref = outputs_and_grads(case, inputs, None, seed=seed)
    out = outputs_and_grads(case, inputs, backend, dtype=dtype, seed=seed)
    for name in ref:
        assert torch.isfinite(out[name]).all(), f"{name} (seed {seed})"
        assert rel_err(out[name], ref[name]) < 3e-2, f"{name} ({dtype}, {backend}, seed {seed})"
