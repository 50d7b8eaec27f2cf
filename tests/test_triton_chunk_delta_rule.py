"""The chunked Triton kernels for the (gated) delta rule (``seqcore/ops/delta_rule/triton_chunk.py``) against the
float64 step reference: output, final state and every gradient.

Chunks are 64 steps: lengths 70 and 130 end on a short chunk, varlen batches hold length-1 sequences, resets are
placed inside a chunk and on both sides of a chunk boundary, and ``beta`` spans ``[0, 2]`` (negative eigenvalues
of ``I - beta k k^T`` above 1).
"""
from __future__ import annotations

import pytest
import torch

from opcases import TOL, Case, assert_matches, make_inputs, new_seed, outputs_and_grads, poisoned_empty, rel_err

BACKEND = "triton_chunk"

CASES = [
    Case("delta_rule", lens=(70,), heads=1),
    Case("delta_rule", lens=(130,), initial_state=False, reverse=True),
    Case("delta_rule", lens=(1,)),
    Case("delta_rule", lens=(70,), heads=1, dk=60, dv=100),
    Case("delta_rule", lens=(1, 70, 2, 65), varlen=True, heads=1, strength=20.0, reverse=True),
    Case("delta_rule", lens=(70, 70), heads=1, strength=20.0, initial_state=False),
    Case("delta_rule", gate=None, lens=(130,), heads=1),
    Case("delta_rule", gate=None, lens=(1, 70, 2, 65), varlen=True, heads=1, initial_state=False, reverse=True),
]


@pytest.mark.triton
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference(case: Case) -> None:
    assert_matches(case, BACKEND)


@pytest.mark.triton
def test_unwritten_outputs_show() -> None:
    # NaN-filled fresh tensors: a tile a kernel never stores (a short last chunk, a length-1 sequence) shows up.
    with poisoned_empty():
        assert_matches(Case("delta_rule", lens=(1, 70, 2), varlen=True, heads=1), BACKEND)


def _compare(case: Case, inputs: dict, seed: int, against: tuple[str | None, ...] = (None,)) -> dict:
    out = outputs_and_grads(case, inputs, BACKEND, seed=seed)
    for backend in against:
        want = outputs_and_grads(case, inputs, backend, seed=seed)
        for name in want:
            assert torch.isfinite(out[name]).all(), f"{name} not finite (seed {seed})"
            err = rel_err(out[name], want[name])
            assert err < TOL, f"{name}: relative error {err:.2e} against {backend or 'reference'} (seed {seed})"
    return out


@pytest.mark.triton
def test_beta_extremes() -> None:
    """beta exactly 0 (no write), 1 (full replacement) and 2 (reflection), with and without a gate."""
    case = Case("delta_rule", lens=(70,), heads=2)
    seed = new_seed()
    inputs = make_inputs(case, seed)
    beta = inputs["tensors"]["beta"]
    beta[0, ::3, 0], beta[0, 1::3, 0], beta[0, 2::3, 0] = 0.0, 1.0, 2.0
    beta[0, 10:40, 1] = 2.0
    _compare(case, inputs, seed)


@pytest.mark.triton
def test_bfloat16() -> None:
    assert_matches(Case("delta_rule", lens=(70,), heads=1), BACKEND, tol=3e-2, dtype=torch.bfloat16)


# Reset steps (g = -inf) of head 0 in a sequence of 130 steps, in processing order.
RESETS = {
    "inside_chunk": [5, 37, 100],
    "chunk_boundary": [63, 64, 127, 128],
    "first_and_last_step": [0, 129],
}


@pytest.mark.triton
@pytest.mark.parametrize("placement", RESETS)
def test_resets(placement: str) -> None:
    """Exact forgetting at each reset, dg exactly 0 there, equal to the step loop and to the recurrent backend."""
    case = Case("delta_rule", lens=(130, 40), varlen=True, reverse=placement == "chunk_boundary")
    seed = new_seed()
    inputs = make_inputs(case, seed)
    g = inputs["tensors"]["g"]
    mask = torch.zeros(g.shape, dtype=torch.bool)
    steps = torch.tensor(RESETS[placement])
    # processing order: reverse runs each sequence from its end
    mask[0, 129 - steps if case.reverse else steps, 0] = True
    mask[0, 130 + 7, 1] = True
    inputs["tensors"]["g"] = g.masked_fill(mask, float("-inf"))
    out = _compare(case, inputs, seed, against=(None, "recurrent"))
    assert torch.equal(out["dg"][mask], torch.zeros_like(out["dg"][mask])), f"dg at the resets (seed {seed})"
