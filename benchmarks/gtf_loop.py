"""Time one GTF training step (forward + backward) of the clipped shallow PLRNN: the autograd step loop against
the hand-written backward pass of :class:`timeseries.dynamics.fused.ShallowGTF`.

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
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from timeseries.dynamics.models import ShallowPLRNN  # noqa: E402
from timeseries.dynamics.observation import IdentityObservation  # noqa: E402
from timeseries.dynamics.training import gtf_forward  # noqa: E402

SIZES = ((3, 50), (5, 250))  # (M, H): the paper's Lorenz-63 and ECG models


def step_time(model: ShallowPLRNN, obs: IdentityObservation, x: torch.Tensor, fused: bool) -> float:
    """Seconds for one forward + backward of the GTF loss."""
    begin = time.perf_counter()
    pred = gtf_forward(model, obs, x, 0.3, fused=fused)
    torch.mean((obs(pred) - x[:, 1:]) ** 2).backward()
    return time.perf_counter() - begin


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
    print("| M | H | autograd loop (ms) | fused backward (ms) | speed-up |")
    print("|---|---|---|---|---|")
    for m, h in SIZES:
        model, obs = ShallowPLRNN(m, h, clipped=True), IdentityObservation(m, m)
        x = torch.randn(args.batch_size, args.sequence_length + 1, m)
        times = {False: [], True: []}
        for i in range(args.repeats + 2):
            for fused in (False, True):
                elapsed = step_time(model, obs, x, fused)
                if i >= 2:  # the first two rounds warm up allocators and caches
                    times[fused].append(elapsed)
        loop, fused = statistics.median(times[False]) * 1e3, statistics.median(times[True]) * 1e3
        print(f"| {m} | {h} | {loop:.1f} | {fused:.1f} | {loop / fused:.1f}x |")


if __name__ == "__main__":
    main()
