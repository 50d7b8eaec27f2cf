"""The chunked Triton GLA kernels with a per-key gate (``seqcore/ops/gla/triton_chunk_key.py``) against the float64
step reference: output, final state and every gradient.

Chunks are 64 steps and sub-chunks 16: lengths 70 and 130 end on a short chunk, resets are placed inside a
sub-chunk, on both sides of a sub-chunk boundary and of a chunk boundary.
"""
from __future__ import annotations

import pytest
import torch

from opcases import TOL, Case, assert_matches, make_inputs, new_seed, outputs_and_grads, poisoned_empty, rel_err

BACKEND = "triton_chunk"

CASES = [
    Case("gla", gate="key", lens=(70,), heads=1),
    Case("gla", gate="key", lens=(130,), initial_state=False, reverse=True),
    Case("gla", gate="key", lens=(1,)),
    Case("gla", gate="key", lens=(70,), heads=1, dk=60, dv=100),
    Case("gla", gate="key", lens=(1, 70, 3, 64), varlen=True, strength=20.0, reverse=True),
    Case("gla", gate="key", lens=(70, 70), heads=1, strength=20.0, initial_state=False),
]


@pytest.mark.triton
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference(case: Case) -> None:
    assert_matches(case, BACKEND)


@pytest.mark.triton
def test_unwritten_outputs_show() -> None:
    # NaN-filled fresh tensors: a tile a kernel never stores (a short last chunk, a length-1 sequence) shows up.
    with poisoned_empty():
        assert_matches(Case("gla", gate="key", lens=(1, 70, 3), varlen=True), BACKEND)


@pytest.mark.triton
def test_bfloat16() -> None:
    assert_matches(Case("gla", gate="key", lens=(70,), heads=1), BACKEND, tol=3e-2, dtype=torch.bfloat16)


# Reset steps (g = -inf) within a sequence of 130 steps, in processing order.
RESETS = {
    "inside_sub_chunk": [5, 37, 100],
    "sub_chunk_boundary": [15, 16, 47, 80],
    "chunk_boundary": [63, 64, 127, 128],
}


@pytest.mark.triton
@pytest.mark.parametrize("placement", [*RESETS, "scattered"])
def test_resets(placement: str) -> None:
    """Resets on every key, on half of them, or on a random fifth of all entries: exact forgetting, dg = 0 there."""
    case = Case("gla", gate="key", lens=(130, 40), varlen=True, heads=1, reverse=placement == "chunk_boundary")
    seed = new_seed()
    inputs = make_inputs(case, seed)
    g = inputs["tensors"]["g"]
    if placement == "scattered":
        mask = torch.rand(g.shape, generator=torch.Generator().manual_seed(seed)) < 0.2
    else:
        mask = torch.zeros(g.shape, dtype=torch.bool)
        steps = torch.tensor(RESETS[placement])
        # processing order: reverse runs each sequence from its end
        mask[0, 129 - steps if case.reverse else steps] = True
        # a reset on some keys only: the others keep their state
        mask[0, 130 + 7, 0, : case.dk // 2] = True
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
