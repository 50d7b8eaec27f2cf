"""Every family on every backend against the float64 step-by-step reference: outputs, final states, gradients."""
from __future__ import annotations

import importlib

import pytest
import torch

from opcases import Case, assert_matches, make_inputs, new_seed, outputs_and_grads, rel_err

GENERAL_CASES = [
    Case("scan", lens=(70, 70, 70)),
    Case("scan", lens=(1,), initial_state=False),
    Case("scan", lens=(5, 1, 64, 66), varlen=True, reverse=True),
    Case("gla", gate=None),
    Case("gla", gate="head", lens=(130, 130), reverse=True),
    Case("gla", gate="key", lens=(130, 130)),
    Case("gla", gate="key", strength=20.0, lens=(1, 70, 3, 64), varlen=True, reverse=True),
    Case("gla", gate="head", strength=20.0, lens=(1, 9, 67), varlen=True, initial_state=False),
    Case("gla", gate="key", lens=(1,), heads=1, dk=60, dv=100),
    Case("delta_rule", gate=None, lens=(100, 100)),
    Case("delta_rule", gate="head", lens=(130,), reverse=True),
    Case("delta_rule", gate="head", strength=20.0, lens=(1, 70, 2, 65), varlen=True, reverse=True),
    Case("delta_rule", gate=None, lens=(1, 1, 3), varlen=True, initial_state=False, dk=60, dv=100),
]

# The Triton interpreter runs every program instance in Python: keep these small.
TRITON_CASES = [
    Case("scan", lens=(9, 9)),
    Case("scan", lens=(1, 7, 3), varlen=True, reverse=True),
    Case("gla", gate=None, lens=(9,), heads=1),
    Case("gla", gate="head", lens=(1, 11, 4), varlen=True, reverse=True, dk=6, dv=10),
    Case("gla", gate="key", strength=20.0, lens=(10, 10), dk=6, dv=10),
    Case("delta_rule", gate=None, lens=(9, 9), dk=6, dv=10, initial_state=False),
    Case("delta_rule", gate="head", strength=20.0, lens=(1, 12, 5), varlen=True, reverse=True, dk=6, dv=10),
]


@pytest.mark.parametrize("case", GENERAL_CASES, ids=str)
@pytest.mark.parametrize("backend", ["recurrent", "chunk"])
def test_matches_reference(case: Case, backend: str) -> None:
    assert_matches(case, backend)


@pytest.mark.triton
@pytest.mark.parametrize("case", TRITON_CASES, ids=str)
def test_triton_matches_reference(case: Case) -> None:
    assert_matches(case, "triton_recurrent")


@pytest.mark.triton
def test_triton_delta_rule_across_checkpoints(monkeypatch):
    """The delta-rule backward restarts from a state checkpoint every chunk: use tiny chunks so tests cross them."""
    # importlib: the attribute seqcore.ops.delta_rule is the public function, which shadows the subpackage.
    kernels = importlib.import_module("seqcore.ops.delta_rule.triton_recurrent")
    monkeypatch.setattr(kernels, "CHUNK_SIZE", 4)
    assert_matches(Case("delta_rule", gate="head", lens=(1, 13, 9), varlen=True, dk=6, dv=10), "triton_recurrent")


@pytest.mark.parametrize("backend", ["recurrent", "chunk", *[pytest.param(b, marks=pytest.mark.triton) for b in ("triton_recurrent", "triton_chunk")]])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("family", ["scan", "gla", "delta_rule"])
def test_half_precision(family: str, dtype: torch.dtype, backend: str) -> None:
    case = Case(family, lens=(9, 9), dk=8, dv=8, gate="head")
    seed = new_seed()
    inputs = make_inputs(case, seed)
    ref = outputs_and_grads(case, inputs, None, seed=seed)
    out = outputs_and_grads(case, inputs, backend, dtype=dtype, seed=seed)
    for name in ref:
        assert torch.isfinite(out[name]).all(), name
        assert rel_err(out[name], ref[name]) < 3e-2, f"{name} ({family}, {dtype}, {backend}, seed {seed})"
