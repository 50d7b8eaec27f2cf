"""Forward+backward time and peak memory of the operators against causal softmax attention.

    python benchmarks/ops.py            # T = 1,024 ... 16,384 (the table in benchmarks/RESULTS.md)
    python benchmarks/ops.py --quick    # T = 1,024 and 4,096, as `make demo` runs it

B = 1, H = 4, K = V = 64 (the scan runs over D = H * K = 256 channels). Every ratio comes from this one run.
On CUDA the Triton backend gets a column and T goes up to 65,536. Peak memory is the rise of the process's
resident set over the inputs during the first forward+backward, each in a fresh forked process (CPU), or the
rise of allocated device memory (CUDA).
"""
from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

import seqcore.ops as ops

B, H, D = 1, 4, 64


@dataclass
class Measure:
    ms: float
    peak_mb: float


def proc_status_kb(field: str) -> int:
    """A ``/proc/self/status`` memory field (``"VmRSS:"``, ``"VmHWM:"``) in KiB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _time_and_peak(step: Callable[[], None], device: torch.device, repeats: int) -> Measure:
    # The first call's peak is the one that counts on the CPU: afterwards freed blocks stay cached in the
    # process heap, and later calls reuse them without raising the resident set.
    if device.type == "cuda":
        step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        base = proc_status_kb("VmRSS:")
        step()
        peak_mb = (proc_status_kb("VmHWM:") - base) / 2**10
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    return Measure(statistics.median(times), peak_mb)


def measure(family: str, backend: str, t: int, device: torch.device, repeats: int) -> Measure:
    """On the CPU each measurement runs in a forked child, so its peak resident set starts from a clean heap."""
    if device.type == "cuda":
        return _time_and_peak(make_step(family, backend, t, device), device, repeats)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            result = _time_and_peak(make_step(family, backend, t, device), device, repeats)
            os.write(write, pickle.dumps(result))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        payload = pipe.read()
    os.waitpid(pid, 0)
    if not payload:
        raise RuntimeError(f"benchmark child failed: {family} {backend} T={t}")
    return pickle.loads(payload)


def make_step(family: str, backend: str, t: int, device: torch.device) -> Callable[[], None]:
    gen = torch.Generator(device="cpu").manual_seed(t)

    def leaf(*shape, fn=lambda z: z):
        return fn(torch.randn(*shape, generator=gen)).to(device).requires_grad_()

    if backend == "sdpa":
        q, k, v = (leaf(B, H, t, D) for _ in range(3))
        return lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
    if family == "scan":
        x = leaf(B, t, H * D)
        a = leaf(B, t, H * D, fn=lambda z: torch.tanh(z))
        return lambda: ops.scan(x, a, backend=backend)[0].sum().backward()
    q, v = leaf(B, t, H, D), leaf(B, t, H, D)
    if family == "delta_rule":
        k = leaf(B, t, H, D, fn=lambda z: F.normalize(z, dim=-1))
        beta = leaf(B, t, H, fn=lambda z: 2 * torch.sigmoid(z))
        g = leaf(B, t, H, fn=lambda z: F.logsigmoid(z + 3))
        return lambda: ops.delta_rule(q, k, v, beta, g, backend=backend)[0].sum().backward()
    k = leaf(B, t, H, D, fn=lambda z: z / D**0.5)
    gate_shape = (B, t, H, D) if family == "gla (per-key gate)" else (B, t, H)
    g = leaf(*gate_shape, fn=lambda z: F.logsigmoid(z + 3))
    return lambda: ops.gla(q, k, v, g, backend=backend)[0].sum().backward()


FAMILIES = ["scan", "gla (per-head gate)", "gla (per-key gate)", "delta_rule"]


def run(lengths: list[int], max_recurrent: int, repeats: int, device: torch.device) -> dict:
    backends = ["recurrent", "chunk"] + (["triton"] if device.type == "cuda" else [])
    results: dict = {}
    for t in lengths:
        results[("sdpa", t)] = measure("", "sdpa", t, device, repeats)
        for family in FAMILIES:
            for backend in backends:
                if backend == "recurrent" and t > max_recurrent:
                    continue
                results[(family, backend, t)] = measure(family, backend, t, device, repeats)
                print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    return results


def _cell(m: Measure | None, kind: str) -> str:
    if m is None:
        return "-"
    return f"{m.ms:,.1f}" if kind == "ms" else f"{m.peak_mb:,.0f}"


def print_tables(results: dict, lengths: list[int], device: torch.device) -> list[tuple[str, bool, str]]:
    backends = ["recurrent", "chunk"] + (["triton"] if device.type == "cuda" else [])
    checks = []
    for family in FAMILIES:
        print(f"\n### {family}\n")
        head = ["T"] + [f"{b} ms" for b in backends] + ["sdpa ms", "recurrent/chunk", "sdpa/chunk"]
        head += [f"{b} MB" for b in backends] + ["sdpa MB"]
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for t in lengths:
            ms = [results.get((family, b, t)) for b in backends]
            sdpa = results[("sdpa", t)]
            chunk = results[(family, "chunk", t)]
            rec = results.get((family, "recurrent", t))
            speedup = f"{rec.ms / chunk.ms:,.1f}x" if rec else "-"
            row = [f"{t:,}"] + [_cell(m, "ms") for m in ms] + [_cell(sdpa, "ms"), speedup, f"{sdpa.ms / chunk.ms:,.2f}x"]
            row += [_cell(m, "mb") for m in ms] + [_cell(sdpa, "mb")]
            print("| " + " | ".join(row) + " |")
        if device.type == "cpu":
            checks += _targets(results, family, lengths)
    return checks


def _targets(results: dict, family: str, lengths: list[int]) -> list[tuple[str, bool, str]]:
    out = []
    chunk = lambda t: results[(family, "chunk", t)].ms  # noqa: E731
    rec = results.get((family, "recurrent", 4096))
    if rec:
        ratio = rec.ms / chunk(4096)
        out.append((f"{family}: chunk >= 20x faster than recurrent at T=4,096", ratio >= 20, f"{ratio:.1f}x"))
    if 4096 in lengths and 16384 in lengths:
        growth = chunk(16384) / chunk(4096)
        out.append((f"{family}: chunk time T=4,096 -> 16,384 grows <= 4.6x", growth <= 4.6, f"{growth:.2f}x"))
    for t in (t for t in lengths if t >= 4096):
        ratio = results[("sdpa", t)].ms / chunk(t)
        out.append((f"{family}: chunk faster than SDPA at T={t:,}", ratio > 1, f"{ratio:.2f}x"))
    return out


def main(argv: list[str] | None = None) -> list[tuple[str, bool, str]]:
    """Run the benchmark, print its tables; returns the CPU target checks ``(target, met, measured)``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="T = 1,024 and 4,096 only, one repeat")
    parser.add_argument("--lengths", type=int, nargs="+", help="sequence lengths to run")
    parser.add_argument("--max-recurrent", type=int, default=4096, help="longest T for the step loop (slow)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.lengths:
        lengths = args.lengths
    elif args.quick:
        lengths = [1024, 4096]
    elif device.type == "cuda":
        lengths = [1024, 4096, 16384, 65536]
    else:
        lengths = [1024, 2048, 4096, 8192, 16384]
    repeats = 1 if args.quick else args.repeats
    torch.manual_seed(0)
    print(f"# seqcore.ops forward+backward: B={B}, H={H}, K=V={D}, device={device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    results = run(lengths, args.max_recurrent, repeats, device)
    checks = print_tables(results, lengths, device)
    if checks:
        print("\n### Targets (CPU)\n")
        print("| target | measured | met |")
        print("|---|---|---|")
        for name, ok, value in checks:
            print(f"| {name} | {value} | {'yes' if ok else 'NO'} |")
    return checks


if __name__ == "__main__":
    main()
