"""The chunked Triton scan kernels (``seqcore/ops/scan/triton_chunk.py``) against the float64 step reference:
output, final state and every gradient.

Tiles are 64 steps: lengths 66, 70 and 130 end on a short tile. The Triton interpreter runs
``tl.associative_scan`` element by element, so most cases keep 3 channels (one padded channel block); one case
shrinks the tiles to 4 steps and the carry pass to 2 tiles a step to cross many tiles, carry blocks and two
channel blocks cheaply.
"""
from __future__ import annotations

import importlib

import pytest
import torch

import seqcore.ops as ops
from opcases import TOL, Case, assert_matches, make_inputs, new_seed, outputs_and_grads, poisoned_empty, rel_err

BACKEND = "triton_chunk"
SMALL = dict(heads=1, dk=3)

CASES = [
    Case("scan", lens=(70, 70), **SMALL),
    Case("scan", lens=(130,), initial_state=False, reverse=True, **SMALL),
    Case("scan", lens=(1,), **SMALL),
    Case("scan", lens=(1,), initial_state=False, **SMALL),
    Case("scan", lens=(1, 66, 1, 5), varlen=True, reverse=True, **SMALL),
    Case("scan", lens=(1, 66, 1, 5), varlen=True, initial_state=False, **SMALL),
]


def _kernels():
    # importlib: the attribute seqcore.ops.scan is the public function, which shadows the subpackage.
    return importlib.import_module("seqcore.ops.scan.triton_chunk")


@pytest.mark.triton
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference(case: Case) -> None:
    assert_matches(case, BACKEND)


@pytest.mark.triton
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_many_tiles(reverse: bool, monkeypatch) -> None:
    """4-step tiles, 2 tiles per carry step, 40 channels (two channel blocks, the second one masked)."""
    monkeypatch.setattr(_kernels(), "BT", 4)
    monkeypatch.setattr(_kernels(), "MAX_BC", 2)
    case = Case("scan", lens=(9, 1, 14, 4), varlen=True, reverse=reverse, heads=2, dk=20)
    assert_matches(case, BACKEND)


# Zero coefficients (exact resets) in a sequence of 130 steps (processing order): on both sides of the tile
# boundaries, at the first and the last step.
RESET_STEPS = [0, 5, 63, 64, 127, 128, 129]


@pytest.mark.triton
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_resets(reverse: bool) -> None:
    case = Case("scan", lens=(130, 40), varlen=True, reverse=reverse, **SMALL)
    seed = new_seed()
    inputs = make_inputs(case, seed)
    a = inputs["tensors"]["a"]
    mask = torch.zeros(a.shape, dtype=torch.bool)
    steps = torch.tensor(RESET_STEPS)
    mask[0, 129 - steps if reverse else steps, 0] = True
    mask[0, 130 + 17, 1:] = True
    inputs["tensors"]["a"] = a.masked_fill(mask, 0.0)
    ref = outputs_and_grads(case, inputs, None, seed=seed)
    out = outputs_and_grads(case, inputs, BACKEND, seed=seed)
    for name in ref:
        assert torch.isfinite(out[name]).all(), f"{name} not finite (seed {seed})"
        err = rel_err(out[name], ref[name])
        assert err < TOL, f"{name}: relative error {err:.2e} (seed {seed})"


@pytest.mark.triton
@pytest.mark.parametrize("reset", [64, 70], ids=["tile_start", "inside_tile"])
def test_reset_forgets_a_huge_state(reset: int) -> None:
    """After a = 0 the outputs are those of a fresh start: a leak of a 1e30 state would show at any size."""
    gen = torch.Generator().manual_seed(new_seed())
    x, a = torch.randn(1, 130, 3, generator=gen), torch.rand(1, 130, 3, generator=gen) * 2 - 1
    a[0, reset] = 0.0
    h0 = torch.full((1, 3), 1e30)
    out, final = ops.scan(x, a, initial_state=h0, output_final_state=True, backend=BACKEND)
    fresh, fresh_final = ops.scan(x[:, reset:], a[:, reset:], output_final_state=True, backend="recurrent")
    torch.testing.assert_close(out[:, reset:], fresh, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(final, fresh_final, rtol=1e-5, atol=1e-5)


@pytest.mark.triton
def test_bfloat16() -> None:
    assert_matches(Case("scan", lens=(70,), **SMALL), BACKEND, tol=3e-2, dtype=torch.bfloat16)


@pytest.mark.triton
def test_unwritten_outputs_show() -> None:
    # NaN-filled fresh tensors: a tile a kernel never stores (a short last tile, a length-1 sequence) shows up.
    with poisoned_empty():
        assert_matches(Case("scan", lens=(1, 70, 3), varlen=True, **SMALL), BACKEND)
