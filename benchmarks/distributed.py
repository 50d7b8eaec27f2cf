"""LASP-2 sequence parallelism on the CPU: one process against ranks that each hold a slice of the sequence.

    python benchmarks/distributed.py                          # T = 65,536 and 262,144, 1 process vs 2 ranks
    python benchmarks/distributed.py --lengths 16384 --ranks 2 4
    python benchmarks/distributed.py --quick                  # T = 2,048 (what the test runs)

Method. The operator is ``gla`` with a per-head decay (the RetNet / Mamba-2 form), ``B = 1``, ``H = 4``,
``K = V = 64``, float32, the chunked CPU backend, forward + backward of ``sum(o * w)``. The single-process run calls
``seqcore.ops.gla`` on the whole sequence; the sharded run calls ``seqcore.distributed.sp_gla`` on ``T / W`` steps
per rank, with ``W`` processes forked on this machine and joined by gloo. Every configuration runs in fresh
processes: one untimed step, then ``--repeats`` timed steps (median wall time; the slowest rank's). Peak memory is
each process's resident-set peak above what it held before the first step (inputs and gradients of its own slice
included). Communication is what each rank hands to the collectives per step (``communicated_bytes``): the
fingerprint exchange (``FINGERPRINT_BYTES`` = 384 bytes, the check that every rank passes the same shapes), the
all-gather of its (state, transition) pair forward and the all-reduce of the gathered gradients backward; none of
it depends on ``T``.
"""
from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import sys
import tempfile
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
import torch.distributed as dist

from benchmarks.measure import in_child, peak_bytes, reset_peak, time_calls
from seqcore import ops
from seqcore.distributed import communicated_bytes, sp_gla

H, K, V = 4, 64, 64


@dataclass
class Row:
    length: int
    ranks: int
    seconds: float
    peak_mb: float
    comm_bytes: int


def inputs(length: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(1, length, H, K, generator=gen) for _ in range(2))
    v = torch.randn(1, length, H, V, generator=gen)
    g = -torch.rand(1, length, H, generator=gen) * 0.1
    return [t.requires_grad_() for t in (q, k, v, g)]


def timed_steps(step, repeats: int) -> tuple[float, float]:
    """Median seconds of ``repeats`` steps after one untimed step, and the peak RSS above the start (MB)."""
    base = reset_peak()
    return time_calls(step, warmup=1, repeats=repeats).median, peak_bytes(base) / 2**20


def single(length: int, repeats: int) -> Row:
    q, k, v, g = inputs(length)
    w = torch.randn(1, length, H, V)

    def step() -> None:
        o, _ = ops.gla(q, k, v, g, backend="chunk")
        (o * w).sum().backward()

    seconds, peak = timed_steps(step, repeats)
    return Row(length, 1, seconds, peak, 0)


def rank_main(rank: int, world: int, length: int, repeats: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(minutes=10))
    part = length // world
    q, k, v, g = (t.detach()[:, rank * part:(rank + 1) * part].clone().requires_grad_() for t in inputs(length))
    w = torch.randn(1, part, H, V)

    def step() -> None:
        o, _ = sp_gla(q, k, v, g, backend="chunk")
        (o * w).sum().backward()

    step()  # warm-up outside the byte count
    communicated_bytes(reset=True)
    seconds, peak = timed_steps(step, repeats)
    sent = communicated_bytes() // (repeats + 1)
    with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
        f.write(f"{seconds} {peak} {sent}")
    dist.destroy_process_group()


def sharded(length: int, world: int, repeats: int) -> Row:
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as tmp:
        procs = [context.Process(target=rank_main, args=(r, world, length, repeats, os.path.join(tmp, "init"), tmp))
                 for r in range(world)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode for p in procs):
            raise RuntimeError(f"a rank failed at T={length}, W={world}: exit codes {[p.exitcode for p in procs]}")
        stats = [tuple(float(x) for x in open(os.path.join(tmp, f"rank{r}.txt")).read().split()) for r in range(world)]
    return Row(length, world, max(s[0] for s in stats), max(s[1] for s in stats), int(max(s[2] for s in stats)))


def table(rows: list[Row]) -> str:
    lines = ["| T | processes | wall s / step | vs 1 process | peak MB per process | vs 1 process | "
             "bytes sent per rank per step |", "|---:|---:|---:|---:|---:|---:|---:|"]
    base = {r.length: r for r in rows if r.ranks == 1}
    for r in rows:
        b = base.get(r.length)
        speed = f"{b.seconds / r.seconds:.2f}x" if b else "-"
        memory = f"{r.peak_mb / b.peak_mb:.2f}" if b else "-"
        lines.append(f"| {r.length:,} | {r.ranks} | {r.seconds:.3f} | {speed} | {r.peak_mb:.0f} | {memory} | "
                     f"{r.comm_bytes:,} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[65_536, 262_144])
    parser.add_argument("--ranks", type=int, nargs="+", default=[2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="T = 2,048, one repeat")
    args = parser.parse_args(argv)
    if not os.path.exists("/proc/self/clear_refs"):
        parser.error("the benchmark forks processes and reads /proc: it needs Linux")
    if args.quick:
        args.lengths, args.repeats = [2_048], 1
    rows = []
    for length in args.lengths:
        if any(length % w for w in args.ranks):
            parser.error(f"T={length} must divide evenly among {args.ranks} ranks")
        rows.append(in_child(single, length, args.repeats, threads=1))
        print(f"  T={length:,} 1 process: {rows[-1].seconds:.3f} s, {rows[-1].peak_mb:.0f} MB", flush=True)
        for world in args.ranks:
            rows.append(sharded(length, world, args.repeats))
            print(f"  T={length:,} {world} ranks: {rows[-1].seconds:.3f} s, {rows[-1].peak_mb:.0f} MB, "
                  f"{rows[-1].comm_bytes:,} bytes", flush=True)
    print()
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
