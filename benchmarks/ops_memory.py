"""Peak memory of one forward+backward: the chunked Triton kernels against the PyTorch chunk backend (CPU).

    TRITON_INTERPRET=1 python benchmarks/ops_memory.py                 # T = 2,048, B = 1, H = 2, K = V = 64
    TRITON_INTERPRET=1 python benchmarks/ops_memory.py --lengths 512 4096

Without a GPU the Triton kernels run through the interpreter on CPU tensors; the memory counted is the peak of
live torch tensors during the call (:func:`benchmarks.measure.torch_allocation_peak`), which leaves out the
interpreter's own numpy copies, so it is what the kernels' launchers allocate: outputs, gradients, chunk states and
scratch. The chunk backend runs in eager mode under autograd, as a user's training step does. float32 inputs; the
inputs themselves are allocated before the call and not counted. The ratio column is triton_chunk / chunk.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TRITON_INTERPRET", "1")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
import torch.nn.functional as F

import seqcore.ops as ops
from benchmarks.measure import torch_allocation_peak

FAMILIES = {"gla, per-head gate": "head", "gla, per-key gate": "key", "delta_rule, gated": "delta"}


def make_inputs(family: str, length: int, heads: int, dim: int, seed: int = 0) -> list[torch.Tensor]:
    """``q, k, v: (1, T, H, D)`` and the gates of ``family``, all requiring grad."""
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, length, heads, dim, generator=gen) for _ in range(3))
    gate_shape = (1, length, heads, dim) if family == "key" else (1, length, heads)
    g = -F.softplus(torch.randn(*gate_shape, generator=gen))
    if family == "delta":
        tensors = [q, F.normalize(k, dim=-1), v, torch.rand(1, length, heads, generator=gen), g]
    else:
        tensors = [q, k / dim**0.5, v, g]
    return [t.requires_grad_() for t in tensors]


def peak_mib(family: str, backend: str, length: int, heads: int, dim: int) -> float:
    tensors = make_inputs(family, length, heads, dim)
    op = ops.delta_rule if family == "delta" else ops.gla

    def step() -> None:
        out, _ = op(*tensors, backend=backend)
        out.backward(torch.ones_like(out))

    return torch_allocation_peak(step) / 2**20


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048])
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--dim", type=int, default=64, help="K = V")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") != "1" and not torch.cuda.is_available():
        parser.error("set TRITON_INTERPRET=1 before starting Python to run the Triton kernels on the CPU")
    rows = []
    print(f"B=1 H={args.heads} K=V={args.dim}, float32, forward+backward\n")
    print("| operator | T | chunk MiB | triton_chunk MiB | triton_chunk / chunk |\n|---|---:|---:|---:|---:|")
    for name, family in FAMILIES.items():
        for length in args.lengths:
            chunk = peak_mib(family, "chunk", length, args.heads, args.dim)
            triton = peak_mib(family, "triton_chunk", length, args.heads, args.dim)
            rows.append(dict(operator=name, T=length, chunk=chunk, triton_chunk=triton))
            print(f"| {name} | {length:,} | {chunk:.1f} | {triton:.1f} | {triton / chunk:.2f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
