"""Which kernels each backend name runs: ``triton`` picks the recurrent kernels up to 64 steps, chunked beyond."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import seqcore.ops as ops
from seqcore.ops.backends import BACKENDS, RECURRENT_MAX_LEN, resolve_backend, triton_kernel_kind


def test_names() -> None:
    assert set(BACKENDS) == {"auto", "recurrent", "chunk", "triton", "triton_chunk", "triton_recurrent"}
    assert resolve_backend("auto", torch.device("cpu")) == "chunk"
    assert triton_kernel_kind("triton", RECURRENT_MAX_LEN) == "recurrent"
    assert triton_kernel_kind("triton", RECURRENT_MAX_LEN + 1) == "chunk"
    assert triton_kernel_kind("triton_chunk", 1) == "chunk"
    assert triton_kernel_kind("triton_recurrent", 10**6) == "recurrent"


@pytest.mark.parametrize("backend", [None, 3, "Triton", "triton-chunk"])
def test_unknown_backend_is_named(backend) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend(backend, torch.device("cpu"))


def _gla(lens: tuple[int, ...], backend: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    t = sum(lens)
    q, k, v = (torch.randn(1, t, 1, 8, generator=gen) for _ in range(3))
    g = -F.softplus(torch.randn(1, t, 1, generator=gen))
    cu = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()])
    return ops.gla(q, k / 8**0.5, v, g, cu_seqlens=cu, backend=backend)[0]


@pytest.mark.triton
@pytest.mark.parametrize("lens, kind", [((RECURRENT_MAX_LEN, 3), "recurrent"), ((3, RECURRENT_MAX_LEN + 1), "chunk")])
def test_triton_chooses_by_the_longest_sequence(lens: tuple[int, ...], kind: str) -> None:
    """Bitwise equal to the explicit backend it should pick, and not to the other (the kernels round differently)."""
    chosen = _gla(lens, "triton")
    other = {"recurrent": "chunk", "chunk": "recurrent"}[kind]
    assert torch.equal(chosen, _gla(lens, f"triton_{kind}"))
    assert not torch.equal(chosen, _gla(lens, f"triton_{other}"))
