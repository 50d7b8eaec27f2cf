"""Time one GTF training step (forward + backward) of the clipped shallow PLRNN: the autograd step loop against
the hand-written backward pass of :class:`timeseries.dynamics.fused.ShallowGTF`, once as PyTorch operations per
step (the path on GPUs) and once as the compiled whole-sequence CPU kernels of
:mod:`timeseries.dynamics.fused_cpu` (the path on CPUs).

    python benchmarks/gtf_loop.py            # the paper's sizes: Lorenz-63 (M=3, H=50) and ECG (M=5, H=250)
    python benchmarks/gtf_loop.py --threads 2

Batch 16, sequence length 200 (the paper's settings), identity read-out, alpha 0.3, float32. Both paths are
run in the same process, alternately, and the median of ``--repeats`` timed steps is reported; the ratio is
what matters (absolute times move with the machine's load).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.measure import Stopwatch
from timeseries.dynamics import fused as fused_module
from timeseries.dynamics.models import ShallowPLRNN
from timeseries.dynamics.observation import IdentityObservation
from timeseries.dynamics.training import gtf_forward

SIZES = ((3, 50), (5, 250))  # (M, H): the paper's Lorenz-63 and ECG models


PATHS = ("autograd loop", "hand-written backward, PyTorch ops", "hand-written backward, compiled")


def step_time(model: ShallowPLRNN, obs: IdentityObservation, x: torch.Tensor, path: str) -> float:
    """Seconds for one forward + backward of the GTF loss on one of :data:`PATHS`."""
    compiled = fused_module.use_compiled
    if path == PATHS[1]:
        fused_module.use_compiled = lambda _x: False
    try:
        watch = Stopwatch()
        pred = gtf_forward(model, obs, x, 0.3, fused=path != PATHS[0])
        torch.mean((obs(pred) - x[:, 1:]) ** 2).backward()
        return watch.seconds()
    finally:
        fused_module.use_compiled = compiled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sequence-length", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"### GTF step, clipped shPLRNN, B={args.batch_size}, T={args.sequence_length}, "
          f"{args.threads} thread(s), median of {args.repeats}\n")
    print("| M | H | " + " | ".join(f"{p} (ms)" for p in PATHS) + " | speed-up, compiled vs autograd |")
    print("|---|---|---:|---:|---:|---:|")
    for m, h in SIZES:
        model, obs = ShallowPLRNN(m, h, clipped=True), IdentityObservation(m, m)
        x = torch.randn(args.batch_size, args.sequence_length + 1, m)
        times: dict[str, list[float]] = {path: [] for path in PATHS}
        for i in range(args.repeats + 2):
            for path in PATHS:
                elapsed = step_time(model, obs, x, path)
                if i >= 2:  # the first two rounds compile the kernels and warm up allocators and caches
                    times[path].append(elapsed)
        ms = [statistics.median(times[path]) * 1e3 for path in PATHS]
        print(f"| {m} | {h} | " + " | ".join(f"{t:.1f}" for t in ms) + f" | {ms[0] / ms[-1]:.1f}x |")


if __name__ == "__main__":
    main()
