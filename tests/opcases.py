"""Random inputs and comparison helpers shared by the operator tests."""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F

import seqcore.ops as ops
from reference import delta_rule_ref, gla_ref, scan_ref


# float32 against float64: observed errors are ~1e-7; an off-by-one step or a wrong decay gives > 1e-2.
TOL = 2e-5

# Triton backends run compiled on the GPU when there is one (TRITON_INTERPRET stays unset there, see
# tests/conftest.py), else on CPU tensors through the interpreter; every other backend runs on the CPU.
TRITON_DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def device_for(backend: str | None) -> str:
    """The device a test runs ``backend`` on: :data:`TRITON_DEVICE` for the Triton backends, else the CPU."""
    return TRITON_DEVICE if backend is not None and backend.startswith("triton") else "cpu"


@dataclass
class Case:
    family: str
    lens: tuple[int, ...] = (37,)  # one entry per sequence; several entries and varlen=True pack them
    varlen: bool = False
    heads: int = 2
    dk: int = 12
    dv: int = 20
    gate: str | None = "head"  # None, "head" or "key" (gla); None or "head" (delta_rule)
    strength: float = 1.0  # scale of the log decays: 20 gives steps down to about -20 per step
    initial_state: bool = True
    reverse: bool = False
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [self.family, "x".join(map(str, self.lens)), "varlen" if self.varlen else "batch", f"g={self.gate}"]
        parts += [f"s={self.strength}", "h0" if self.initial_state else "noh0", "rev" if self.reverse else "fwd"]
        parts += [f"H{self.heads}K{self.dk}V{self.dv}"]
        return "-".join(parts)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative RMS error ``||ref - out|| / ||ref||`` in float64.

    Inputs are of order one. A reference whose RMS is below 0.05 (say ``dg`` when every decay is -20 per step,
    where float32 cancellation leaves ~1e-7 absolute error on values of ~1e-9) is measured against RMS 0.05.
    """
    ref, out = ref.double(), out.double()
    floor = 0.05 * ref.numel() ** 0.5
    return ((out - ref).norm() / ref.norm().clamp_min(floor)).item()


def make_inputs(case: Case, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    if case.varlen:
        batch, length = 1, sum(case.lens)
        cu = torch.tensor([0, *torch.tensor(case.lens).cumsum(0).tolist()], dtype=torch.int32)
    else:
        batch, length, cu = len(case.lens), case.lens[0], None
    n, h = len(case.lens), case.heads
    if case.family == "scan":
        d = h * case.dk
        tensors = {"x": randn(batch, length, d), "a": torch.rand(batch, length, d, generator=gen, dtype=torch.float64) * 2 - 1}
        h0 = randn(n, d) if case.initial_state else None
    else:
        tensors = {
            "q": randn(batch, length, h, case.dk),
            "k": randn(batch, length, h, case.dk),
            "v": randn(batch, length, h, case.dv),
        }
        if case.family == "delta_rule":
            tensors["k"] = F.normalize(tensors["k"], dim=-1)
            tensors["beta"] = torch.rand(batch, length, h, generator=gen, dtype=torch.float64) * 2
        else:
            tensors["k"] = tensors["k"] / case.dk**0.5
        gate_shape = {None: None, "head": (batch, length, h), "key": (batch, length, h, case.dk)}[case.gate]
        tensors["g"] = None if gate_shape is None else -F.softplus(randn(*gate_shape)) * case.strength
        h0 = randn(n, h, case.dk, case.dv) if case.initial_state else None
    return {"tensors": tensors, "initial_state": h0, "cu_seqlens": cu}


def call(family: str, tensors: dict, **kwargs):
    fn = {"scan": ops.scan, "gla": ops.gla, "delta_rule": ops.delta_rule}[family]
    return fn(*tensors.values(), output_final_state=True, **kwargs)


def call_ref(family: str, tensors: dict, **kwargs):
    fn = {"scan": scan_ref, "gla": gla_ref, "delta_rule": delta_rule_ref}[family]
    return fn(*tensors.values(), **kwargs)


def _leaves(inputs: dict, dtype, device="cpu"):
    tensors = {
        name: None if t is None else t.to(device=device, dtype=dtype).detach().requires_grad_()
        for name, t in inputs["tensors"].items()
    }
    h0 = inputs["initial_state"]
    h0 = None if h0 is None else h0.to(device=device, dtype=torch.float32 if dtype != torch.float64 else dtype).detach().requires_grad_()
    return tensors, h0


def outputs_and_grads(case: Case, inputs: dict, backend: str | None, dtype=torch.float32, device=None, seed=0):
    """Output, final state and gradients of every input (returned on the CPU); ``backend=None`` runs the float64
    reference. ``device=None`` computes on :func:`device_for` ``(backend)``."""
    device = device_for(backend) if device is None else device
    if backend is None:
        dtype = torch.float64
    tensors, h0 = _leaves(inputs, dtype, device)
    cu = inputs["cu_seqlens"]
    if backend is None:
        out, final = call_ref(case.family, tensors, initial_state=h0, cu_seqlens=cu, reverse=case.reverse)
    else:
        cu = None if cu is None else cu.to(device)
        out, final = call(case.family, tensors, initial_state=h0, cu_seqlens=cu, reverse=case.reverse, backend=backend)
    gen = torch.Generator().manual_seed(seed + 1)
    d_out = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    d_final = torch.randn(final.shape, generator=gen, dtype=torch.float64)
    loss = (out * d_out.to(device, out.dtype)).sum() + (final * d_final.to(device, final.dtype)).sum()
    leaves = {name: t for name, t in tensors.items() if t is not None}
    if h0 is not None:
        leaves["initial_state"] = h0
    grads = torch.autograd.grad(loss, list(leaves.values()))
    result = {"out": out, "final_state": final}
    result.update({f"d{name}": gr for name, gr in zip(leaves, grads)})
    return {name: t.detach().cpu() for name, t in result.items()}


def new_seed() -> int:
    return random.SystemRandom().randrange(2**31)


def assert_matches(case: Case, backend: str, tol: float = TOL, dtype=torch.float32) -> None:
    seed = new_seed()
    inputs = make_inputs(case, seed)
    ref = outputs_and_grads(case, inputs, None, seed=seed)
    out = outputs_and_grads(case, inputs, backend, dtype=dtype, seed=seed)
    assert ref.keys() == out.keys()
    for name in ref:
        assert out[name].shape == ref[name].shape, name
        assert torch.isfinite(out[name]).all(), f"{name} not finite ({case}, seed {seed})"
        err = rel_err(out[name], ref[name])
        assert err < tol, f"{name}: relative error {err:.2e} >= {tol:.0e} ({case}, backend {backend}, seed {seed})"


@contextlib.contextmanager
def poisoned_empty() -> Iterator[None]:
    """``torch.empty``, ``torch.empty_like`` and ``Tensor.new_empty`` return NaN-filled floating tensors inside.

    On the CPU fresh memory is often zeros, which hides an output a kernel never writes; NaN makes it fail.
    """
    originals = torch.empty, torch.empty_like, torch.Tensor.new_empty

    def poison(t: torch.Tensor) -> torch.Tensor:
        return t.fill_(float("nan")) if t.is_floating_point() else t

    torch.empty = lambda *a, **k: poison(originals[0](*a, **k))
    torch.empty_like = lambda *a, **k: poison(originals[1](*a, **k))
    torch.Tensor.new_empty = lambda self, *a, **k: poison(originals[2](self, *a, **k))
    try:
        yield
    finally:
        torch.empty, torch.empty_like, torch.Tensor.new_empty = originals
