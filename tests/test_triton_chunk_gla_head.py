"""The chunked Triton kernels for linear attention with a per-head gate or none
(``seqcore/ops/gla/triton_chunk_head.py``) against the float64 step reference: output, final state and every
gradient.

Chunks are 64 steps: lengths 70 and 130 end on a short chunk, varlen batches hold length-1 sequences, and resets
are placed inside a chunk and on both sides of a chunk boundary.
"""
from __future__ import annotations

import pytest
import torch

import seqcore.ops as ops
from opcases import TOL, Case, assert_matches, make_inputs, new_seed, outputs_and_grads, poisoned_empty, rel_err

BACKEND = "triton_chunk"

CASES = [
    Case("gla", gate="head", lens=(70,), heads=1),
    Case("gla", gate="head", lens=(130,), initial_state=False, reverse=True),
    Case("gla", gate="head", lens=(1,)),
    Case("gla", gate="head", lens=(70,), heads=1, dk=60, dv=100),
    Case("gla", gate="head", lens=(70,), heads=1, dk=72, dv=24),  # two key blocks
    Case("gla", gate="head", lens=(1, 70, 3, 64), varlen=True, strength=20.0, reverse=True),
    Case("gla", gate="head", lens=(70, 70), heads=1, strength=20.0, initial_state=False),
    Case("gla", gate=None, lens=(130,), heads=1),
    Case("gla", gate=None, lens=(1, 70, 3, 64), varlen=True, initial_state=False, reverse=True),
]


@pytest.mark.triton
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference(case: Case) -> None:
    assert_matches(case, BACKEND)


@pytest.mark.triton
@pytest.mark.parametrize("gate", ["head", None])
def test_unwritten_outputs_show(gate: str | None) -> None:
    # NaN-filled fresh tensors: a tile a kernel never stores (a short last chunk, a length-1 sequence) shows up.
    with poisoned_empty():
        assert_matches(Case("gla", gate=gate, lens=(1, 70, 3), varlen=True), BACKEND)


@pytest.mark.triton
def test_bfloat16() -> None:
    assert_matches(Case("gla", gate="head", lens=(70,), heads=1), BACKEND, tol=3e-2, dtype=torch.bfloat16)


# Reset steps (g = -inf) of head 0 in a sequence of 130 steps, in processing order.
RESETS = {
    "inside_chunk": [5, 37, 100],
    "chunk_boundary": [63, 64, 127, 128],
    "last_step": [0, 129],
}


@pytest.mark.triton
@pytest.mark.parametrize("placement", RESETS)
def test_resets(placement: str) -> None:
    """Exact forgetting at each reset, dg exactly 0 there, equal to the step loop and to the recurrent backend."""
    case = Case("gla", gate="head", lens=(130, 40), varlen=True, reverse=placement == "chunk_boundary")
    seed = new_seed()
    inputs = make_inputs(case, seed)
    g = inputs["tensors"]["g"]
    mask = torch.zeros(g.shape, dtype=torch.bool)
    steps = torch.tensor(RESETS[placement])
    # processing order: reverse runs each sequence from its end
    mask[0, 129 - steps if case.reverse else steps, 0] = True
    mask[0, 130 + 7, 1] = True
    inputs["tensors"]["g"] = g.masked_fill(mask, float("-inf"))
    ref = outputs_and_grads(case, inputs, None, seed=seed)
    recurrent = outputs_and_grads(case, inputs, "recurrent", seed=seed)
    out = outputs_and_grads(case, inputs, BACKEND, seed=seed)
    assert torch.equal(out["dg"][mask], torch.zeros_like(out["dg"][mask])), f"dg at the resets (seed {seed})"
    for name in ref:
        assert torch.isfinite(out[name]).all(), f"{name} not finite (seed {seed})"
        for other, against in (("reference", ref), ("recurrent", recurrent)):
            err = rel_err(out[name], against[name])
            assert err < TOL, f"{name}: relative error {err:.2e} against {other} ({placement}, seed {seed})"


@pytest.mark.triton
def test_gla_signed() -> None:
    """gla_signed runs gla with a per-head gate (log|a|) and sign-flipped queries and keys; a = 0 is a reset."""
    seed = new_seed()
    gen = torch.Generator().manual_seed(seed)
    lens, h, dk, dv = (1, 70, 7), 2, 12, 20
    cu = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()])
    q, k, v = (torch.randn(1, sum(lens), h, d, generator=gen, dtype=torch.float64) for d in (dk, dk, dv))
    a = torch.rand(1, sum(lens), h, generator=gen, dtype=torch.float64) * 2 - 1
    a[0, 30, 0] = 0.0
    h0 = torch.randn(len(lens), h, dk, dv, generator=gen, dtype=torch.float64)
    results = {}
    for backend in ("recurrent", BACKEND):
        leaves = [x.float().requires_grad_() for x in (q, k, v, a, h0)]
        out, final = ops.gla_signed(
            *leaves[:4], initial_state=leaves[4], cu_seqlens=cu, reverse=True, output_final_state=True, backend=backend
        )
        (out * torch.cos(out.detach())).sum().add(final.sin().sum()).backward()
        results[backend] = [out.detach(), final.detach(), *(x.grad for x in leaves)]
    for i, (got, want) in enumerate(zip(results[BACKEND], results["recurrent"])):
        assert torch.isfinite(got).all(), f"{i} (seed {seed})"
        assert rel_err(got, want) < TOL, f"{i}: {rel_err(got, want):.2e} (seed {seed})"
