"""Behaviour beyond single-call numerics: long sequences, determinism, the custom-op path, torch.compile."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import seqcore.ops as ops
from opcases import Case, make_inputs, new_seed, outputs_and_grads, rel_err
from seqcore.ops.layout import SequenceLayout


def test_final_state_only_on_request():
    x, a = torch.randn(2, 5, 3), torch.rand(2, 5, 3)
    y, final = ops.scan(x, a)
    assert final is None and y.shape == x.shape
    _, final = ops.scan(x, a, output_final_state=True)
    assert final.shape == (2, 3) and final.dtype == torch.float32


@pytest.mark.parametrize("per_key", [False, True])
def test_gla_long_sequence_strong_decay(per_key: bool):
    """T = 65,536 with g = -20 every step: the state forgets everything but the current step."""
    t, h, dk, dv = 65_536, 1, 8, 8
    q, k, v = (torch.randn(1, t, h, d, requires_grad=True) for d in (dk, dk, dv))
    g = torch.full((1, t, h, dk) if per_key else (1, t, h), -20.0, requires_grad=True)
    o, final = ops.gla(q, k, v, g, output_final_state=True, backend="chunk")
    local = dk**-0.5 * (q * k).sum(-1, keepdim=True) * v
    assert rel_err(o.detach(), local.detach()) < 1e-6
    (o.sum() + final.sum()).backward()
    for tensor in (q, k, v, g):
        assert torch.isfinite(tensor.grad).all()


def test_delta_rule_long_sequence_strong_decay():
    t, h, dk, dv = 65_536, 1, 8, 8
    q, v = torch.randn(1, t, h, dk, requires_grad=True), torch.randn(1, t, h, dv, requires_grad=True)
    k = F.normalize(torch.randn(1, t, h, dk), dim=-1).requires_grad_()
    beta = torch.rand(1, t, h).mul(2).requires_grad_()
    g = torch.full((1, t, h), -20.0, requires_grad=True)
    o, _ = ops.delta_rule(q, k, v, beta, g, backend="chunk")
    local = dk**-0.5 * beta[..., None] * (q * k).sum(-1, keepdim=True) * v
    assert rel_err(o.detach(), local.detach()) < 1e-6
    o.sum().backward()
    for tensor in (q, k, v, beta, g):
        assert torch.isfinite(tensor.grad).all()


@pytest.mark.slow
@pytest.mark.parametrize("family, gate", [("gla", "key"), ("gla", "head"), ("delta_rule", "head")])
def test_long_sequence_chunk_matches_recurrent(family: str, gate: str):
    """Random decays down to -20 per step over 65,536 steps: chunk against the step loop, forward and backward."""
    case = Case(family, lens=(65_536,), heads=1, dk=8, dv=8, gate=gate, strength=10.0)
    seed = new_seed()
    inputs = make_inputs(case, seed)
    loop = outputs_and_grads(case, inputs, "recurrent", seed=seed)
    chunk = outputs_and_grads(case, inputs, "chunk", seed=seed)
    for name in loop:
        assert rel_err(chunk[name], loop[name]) < 1e-4, name


@pytest.mark.parametrize("backend", ["recurrent", "chunk"])
@pytest.mark.parametrize("family", ["scan", "gla", "delta_rule"])
def test_cpu_paths_are_deterministic(family: str, backend: str):
    case = Case(family, lens=(3, 70, 9), varlen=True, gate="key" if family == "gla" else "head")
    seed = new_seed()
    inputs = make_inputs(case, seed)
    first = outputs_and_grads(case, inputs, backend, seed=seed)
    second = outputs_and_grads(case, inputs, backend, seed=seed)
    for name in first:
        assert torch.equal(first[name], second[name]), name


@pytest.mark.parametrize("family", ["scan", "gla", "delta_rule"])
def test_custom_op_matches_eager(family: str):
    """The custom op (used under torch.compile) recomputes the forward in its backward: same numbers."""
    case = Case(family, lens=(5, 40), varlen=True, reverse=True, gate="key" if family == "gla" else "head")
    inputs = make_inputs(case, new_seed())
    leaves = [None if t is None else t.float().requires_grad_() for t in inputs["tensors"].values()]
    h0 = inputs["initial_state"].float().requires_grad_()
    cu = inputs["cu_seqlens"]
    op = getattr(torch.ops.seqcore, family)
    out_op, final_op = op(*leaves, h0, cu, 1.0 if family == "scan" else 0.5, True, "chunk")
    kwargs = dict(initial_state=h0, cu_seqlens=cu, reverse=True, backend="chunk", output_final_state=True)
    if family != "scan":
        kwargs["scale"] = 0.5
    out, final = getattr(ops, family)(*leaves, **kwargs)
    present = [t for t in [*leaves, h0] if t is not None]
    grads_op = torch.autograd.grad(out_op.sum() + final_op.sum(), present)
    grads = torch.autograd.grad(out.sum() + final.sum(), present)
    assert torch.allclose(out_op, out, atol=1e-6) and torch.allclose(final_op, final, atol=1e-6)
    for a, b in zip(grads_op, grads):
        assert torch.allclose(a, b, atol=1e-5)


class _TinyMixer(nn.Module):
    def __init__(self, family: str, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.family, self.heads = family, heads
        self.proj = nn.Linear(dim, 5 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v, gate, extra = self.proj(x).chunk(5, dim=-1)
        split = lambda z: z.reshape(b, t, self.heads, c // self.heads)  # noqa: E731
        if self.family == "scan":
            y, _ = ops.scan(v, torch.sigmoid(gate), backend="chunk")
        elif self.family == "gla":
            y, _ = ops.gla(split(q), split(k), split(v), F.logsigmoid(split(gate)), backend="chunk")
        else:
            beta = 2 * torch.sigmoid(split(extra).mean(-1))
            y, _ = ops.delta_rule(
                split(q), F.normalize(split(k), dim=-1), split(v), beta, F.logsigmoid(split(gate).mean(-1)), backend="chunk"
            )
        return self.out(y.reshape(b, t, c))


@pytest.mark.parametrize("family", ["scan", "gla", "delta_rule"])
def test_torch_compile_full_graph(family: str):
    """fullgraph=True fails on any graph break, so each op must compile to one opaque node."""
    torch._dynamo.reset()
    model = _TinyMixer(family)
    x = torch.randn(2, 37, 16, requires_grad=True)
    eager = model(x)
    (g_eager,) = torch.autograd.grad(eager.square().sum(), x)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    (g_comp,) = torch.autograd.grad(out.square().sum(), x)
    assert torch.allclose(out, eager, atol=1e-5)
    assert torch.allclose(g_comp, g_eager, atol=1e-4)


@pytest.mark.parametrize("reverse", [False, True])
def test_layout_round_trips(reverse: bool):
    cu = torch.tensor([0, 1, 5, 12])
    layout = SequenceLayout(1, 12, cu, reverse)
    x = torch.arange(12.0).view(1, 12, 1)
    padded = layout.to_padded(x, multiple=4, fill=-1.0)
    assert padded.shape == (3, 8, 1)
    expected_row1 = [4.0, 3.0, 2.0, 1.0] if reverse else [1.0, 2.0, 3.0, 4.0]
    assert padded[0, 0, 0].item() == 0.0 and padded[0, 1:, 0].eq(-1).all()
    assert padded[1, :4, 0].tolist() == expected_row1
    assert torch.equal(layout.from_padded(padded), x)
    packed = layout.to_packed(x)
    assert torch.equal(layout.from_packed(packed), x)
    if reverse:
        assert packed[0, 1:5, 0].tolist() == [4.0, 3.0, 2.0, 1.0]


@pytest.mark.parametrize("backend", ["recurrent", "chunk", "triton"])
@pytest.mark.parametrize("family", ["scan", "gla", "delta_rule"])
def test_gradients_arriving_as_views(family: str, backend: str):
    """Upstream gradients that are views (here the shares of a concatenation) give the same input gradients as
    contiguous ones; the Triton backward once read such views with the wrong strides."""
    case = Case(family, lens=(2, 21), gate="head" if family != "scan" else None, initial_state=True)
    inputs = make_inputs(case, new_seed())
    results = []
    for as_views in (False, True):
        leaves = {n: t.float().detach().requires_grad_() for n, t in inputs["tensors"].items() if t is not None}
        h0 = inputs["initial_state"].float().detach().requires_grad_()
        out, final = getattr(ops, family)(*leaves.values(), initial_state=h0, output_final_state=True,
                                          backend=backend)
        gen = torch.Generator().manual_seed(3)
        d_out, d_final = torch.randn(out.shape, generator=gen), torch.randn(final.shape, generator=gen)
        if as_views:
            out, final = torch.cat([out, out.detach()], -1), torch.cat([final, final.detach()], -1)
            d_out, d_final = torch.cat([d_out, d_out], -1), torch.cat([d_final, d_final], -1)
        loss = (out * d_out).sum() + (final * d_final).sum()
        results.append(torch.autograd.grad(loss, [*leaves.values(), h0]))
    for plain, viewed in zip(*results):
        assert rel_err(viewed, plain) < 1e-5
