"""PyTorch tooling: torch.jit.trace and torch.export.export run every op; the TorchScript ONNX exporter is refused
with a message that names the way that works."""
from __future__ import annotations

import io
import warnings

import pytest
import torch
import torch.nn.functional as F

import seqcore.ops as ops


def _inputs(family: str, length: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(length)
    q, k, v = (torch.randn(2, length, 2, 8, generator=gen) for _ in range(3))
    g = -F.softplus(torch.randn(2, length, 2, generator=gen))
    if family == "scan":
        return (torch.randn(2, length, 16, generator=gen), torch.rand(2, length, 16, generator=gen) * 2 - 1)
    if family == "delta_rule":
        return (q, F.normalize(k, dim=-1), v, torch.rand(2, length, 2, generator=gen), g)
    if family == "gla_signed":
        return (q, k, v, torch.rand(2, length, 2, generator=gen) * 2 - 1)
    return (q, k / 8**0.5, v, g)


class Op(torch.nn.Module):
    def __init__(self, family: str) -> None:
        super().__init__()
        self.fn = getattr(ops, family)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.fn(*tensors, backend="chunk")[0]


FAMILIES = ["scan", "gla", "gla_signed", "delta_rule"]


@pytest.mark.parametrize("family", FAMILIES)
def test_jit_trace_records_the_op_and_generalizes_over_length(family: str) -> None:
    model = Op(family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the shape checks are recorded as constants
        traced = torch.jit.trace(model, _inputs(family, 40))
    longer = _inputs(family, 70)  # another length than the trace saw, across a chunk boundary
    torch.testing.assert_close(traced(*longer), model(*longer), rtol=0, atol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_torch_export(family: str) -> None:
    model = Op(family)
    exported = torch.export.export(model, _inputs(family, 40))
    torch.testing.assert_close(exported.module()(*_inputs(family, 40)), model(*_inputs(family, 40)), rtol=0, atol=0)


def test_torchscript_onnx_export_is_refused_by_name() -> None:
    with pytest.raises(RuntimeError, match=r"seqcore::gla, which has no ONNX symbolic. Use torch.export.export"):
        torch.onnx.export(Op("gla"), _inputs("gla", 40), io.BytesIO(), dynamo=False)
