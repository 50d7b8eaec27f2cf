"""Scaling of the graph package: HAC time, and GSM++ against GPS (full attention) training steps.

    python benchmarks/graphs.py                           # HAC 1e4..1e6 nodes, train 1e3..1e5 nodes (~10-15 min)
    python benchmarks/graphs.py --parts hac --hac-sizes 100000 --affinity structural
    python benchmarks/graphs.py --parts train --train-sizes 1000 10000 --gps-attention math
    python benchmarks/graphs.py --quick                   # HAC 1e3, 1e4; train 1e3, 3e3, one repeat: mechanics only

Part ``hac``: Hierarchical Affinity Clustering (``graphs.tokenize.hac``) of random graphs with ``N`` nodes,
``--degree * N`` (10 N) edges with uniformly random endpoints (a directed list, as HAC reads edges as undirected)
and ``--features`` (16) standard normal features per node. Random graphs are the hard case: coarsening keeps most
of their edges between clusters until the clusters are few. The time is one call of ``hac`` after one warm-up call
on a 1,000-node graph, on ``--threads`` CPU threads (or the ``--device``).

Part ``train``: one training step on one graph of ``N`` nodes per step, for

- GSM++: ``GSMPlusPlus(16, 64, 2, layers=("mamba2",) * 3, tokenization="hac_dfs", task="node")`` (HAC-DFS
  tokens, a recurrent global encoder of three bidirectional Mamba-2 layers, GatedGCN local layers);
- GPS: ``GNNBaseline(16, 64, 2, "gps", num_layers=3, task="node", heads=4)`` (torch-geometric's ``GPSConv``:
  GIN local layers plus full 4-head softmax attention over all ``N`` nodes).

The graph is connected: a random recursive tree (node ``i`` links to a uniform earlier node) plus uniformly random
non-loop pairs, ``5 N`` undirected edges in all, stored in both directions (``10 N`` directed edges, average degree
10). Features: 16 standard normal columns. Task: node classification into 2 classes with uniformly random labels
(cross-entropy over all nodes), so the step holds the activations of every node. One step: forward (GSM++
tokenizes inside its forward: HAC, DFS order, positional encoding), cross-entropy, backward, ``AdamW.step``.
Reported: the median of ``--repeats`` (3) timed steps after one warm-up step, and the peak memory; a note flags
a step that spent over a quarter of its time in the kernel (``os.times().system``: mostly page faults, as large
freed blocks go back to the kernel and come back zeroed every step); on the 23 GB development machine that share
grew faster than linearly once the peak reached several GB.

GPS attention: ``GPSConv`` calls ``nn.MultiheadAttention``, which runs ``F.scaled_dot_product_attention``.
``--gps-attention sdpa`` (default) lets torch pick its kernel; recent torch picks a fused (flash-style) CPU kernel
that never holds the ``N x N`` scores, so GPS memory grows linearly and only its time grows quadratically.
``--gps-attention math`` forces the explicit kernel (``SDPBackend.MATH``), which materializes the scores as
older torch and the GraphGPS reference did: that is where full attention runs out of memory.

Clock: ``--clock cpu`` (default) times each step by the process's CPU time (``time.process_time``), which leaves
out the time other processes hold the core on a shared machine; with ``--threads`` above 1 it sums the threads'
time, so use ``--clock wall`` there (CUDA HAC always uses the wall clock). Absolute times move with the machine;
the ratios and the growth with ``N`` are what matter.

Peak memory: each (model, size) runs in a freshly forked child (``benchmarks/measure.py``) that builds the model,
the graph and the optimizer, resets the kernel's peak resident set, runs the warm-up and timed steps, and reports
the peak resident set (``VmHWM``) above that baseline: activations, gradients, optimizer state and workspace, not
the weights or the input. Linux only. The train part always runs on the CPU.

Out of memory (``--mem-limit-gb``, 16, lowered to 90% of the machine's ``MemAvailable`` at start if that is
less): a configuration whose predicted peak exceeds the limit is reported as ``OOM`` without running. The
prediction scales the model's measured peak at the previous size linearly in ``N``; for ``--gps-attention math``
it adds ``(2 layers + 2) * heads * N^2 * 4`` bytes for the float32 ``N x N`` scores and probabilities. Measured
with torch 2.14 (GPS math minus GPS sdpa at 2,000 and 4,000 nodes), the extra peak is about 5 such copies for 3
layers (the probabilities each layer keeps for backward, plus the layer in flight and its gradients); the
prediction counts 8, so it errs towards reporting OOM. The child also caps its data segment (``RLIMIT_DATA``) at
its baseline plus the limit, so an allocation past it fails in the child instead of waking the kernel's OOM
killer on a shared machine; a ``MemoryError``, torch's "can't allocate memory" ``RuntimeError`` or a child killed
by a signal is reported as ``OOM`` too.

Time limit (``--max-step-s``, 60): a configuration whose predicted step time exceeds it is reported as ``slow``
without running. The prediction scales the model's measured step at the previous size by ``(N / N_prev)^p``, with
``p = 1`` for GSM++ (its cost is linear by design) and ``p = 2`` for GPS (its attention), an overestimate for
GPS at small ``N``, where its linear parts still dominate.
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from benchmarks.measure import ChildError, Stopwatch, in_child, peak_bytes, proc_status_kb, reset_peak, time_calls
from graphs.baselines import GNNBaseline
from graphs.model import GSMPlusPlus
from graphs.tokenize import hac

FEATURES, HIDDEN, CLASSES, LAYERS, HEADS = 16, 64, 2, 3, 4
EDGES_PER_NODE = 5  # undirected; stored in both directions
MODELS: dict[str, Callable[[], torch.nn.Module]] = {
    "GSM++": lambda: GSMPlusPlus(FEATURES, HIDDEN, CLASSES, layers=("mamba2",) * LAYERS, tokenization="hac_dfs",
                                 task="node"),
    "GPS": lambda: GNNBaseline(FEATURES, HIDDEN, CLASSES, "gps", num_layers=LAYERS, task="node", heads=HEADS),
}
TIME_EXPONENT = {"GSM++": 1, "GPS": 2}
# A step spending more than this share in the kernel is flagged: the time then measures the machine's memory
# management more than the model.
KERNEL_SHARE = 0.25
LINEAR_SLOPE = 1.15  # log-log slope still called linear: timing noise on a shared machine is ~10%


# ---------------------------------------------------------------------------------------------------- hac part


def hac_one(nodes: int, degree: int, features: int, affinity: str, device: str, seed: int,
            clock: str) -> dict[str, Any]:
    """Time one HAC of a random graph; returns its size, levels, top clusters and seconds."""
    gen = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, nodes, (2, degree * nodes), generator=gen).to(device)
    x = torch.randn(nodes, features, generator=gen).to(device)
    cuda = device.startswith("cuda")
    watch = Stopwatch("wall" if cuda else clock, device)  # CPU time would leave out the GPU's work
    tree = hac(x, edge_index, affinity=affinity, seed=seed)
    seconds = watch.seconds()
    return {"nodes": nodes, "edges": edge_index.shape[1], "levels": tree.num_levels,
            "top": int(tree.assignment[-1].max()) + 1, "seconds": seconds}


def hac_with_warmup(nodes: int, *args: Any) -> dict[str, Any]:
    """:func:`hac_one` of ``nodes`` after an untimed one of 1,000 nodes."""
    hac_one(1_000, *args)  # first-call costs (allocator, lazy initialization) stay out of the timing
    return hac_one(nodes, *args)


def run_hac(args: argparse.Namespace) -> list[dict[str, Any]]:
    clock = "wall" if args.device.startswith("cuda") else args.clock
    print(f"## HAC: {args.affinity} affinity, {args.features} features, {args.degree} edges per node, {args.device} "
          f"({args.threads} thread(s)), {clock} clock\n")
    print("| nodes | edges | levels | top clusters | seconds | s per 1M edges |")
    print("|---:|---:|---:|---:|---:|---:|")
    rows = []
    for nodes in args.hac_sizes:
        # A child per size keeps this process's heap untouched for the train part's children.
        row = in_child(hac_with_warmup, nodes, args.degree, args.features, args.affinity, args.device, args.seed,
                       args.clock, threads=args.threads)
        row["s_per_m_edges"] = row["seconds"] / (row["edges"] / 1e6)
        rows.append(row)
        print(f"| {row['nodes']:,} | {row['edges']:,} | {row['levels']} | {row['top']:,} | {row['seconds']:.3f} | "
              f"{row['s_per_m_edges']:.3f} |", flush=True)
    print()
    return rows


# -------------------------------------------------------------------------------------------------- train part


def random_graph(nodes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Features ``(N, 16)``, a connected ``edge_index (2, 10 N)`` (both directions) and random labels ``(N,)``."""
    gen = torch.Generator().manual_seed(seed)
    child = torch.arange(1, nodes)
    parent = (torch.rand(nodes - 1, generator=gen) * child).long()  # uniform in [0, i): a random recursive tree
    extra = EDGES_PER_NODE * nodes - (nodes - 1)
    src = torch.randint(0, nodes, (extra,), generator=gen)
    dst = (src + torch.randint(1, nodes, (extra,), generator=gen)) % nodes  # never src: no self-loops
    a, b = torch.cat([child, src]), torch.cat([parent, dst])
    edge_index = torch.stack([torch.cat([a, b]), torch.cat([b, a])])
    x = torch.randn(nodes, FEATURES, generator=gen)
    y = torch.randint(0, CLASSES, (nodes,), generator=gen)
    return x, edge_index, y


def _is_oom(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or (
        isinstance(err, RuntimeError) and ("can't allocate memory" in str(err) or "out of memory" in str(err)))


def train_config(model_name: str, nodes: int, warmup: int, repeats: int, clock: str, gps_attention: str,
                 mem_limit: int, seed: int) -> dict[str, Any]:
    """Build and time one (model, size) in this process (a forked child); returns its row."""
    torch.manual_seed(seed)
    model = MODELS[model_name]().train()
    x, edge_index, y = random_graph(nodes, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    explicit = model_name == "GPS" and gps_attention == "math"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with sdpa_kernel(SDPBackend.MATH) if explicit else nullcontext():  # single-use context managers
            F.cross_entropy(model(x, edge_index), y).backward()
        opt.step()

    data = proc_status_kb("VmData:") * 1024
    resource.setrlimit(resource.RLIMIT_DATA, (data + mem_limit, resource.RLIM_INFINITY))
    base = reset_peak()
    try:
        timing = time_calls(step, warmup=warmup, repeats=repeats, clock=clock)
    except (MemoryError, RuntimeError) as err:
        if not _is_oom(err):
            raise
        return {"status": "OOM", "reason": str(err).splitlines()[0][:200], "peak_mb": peak_bytes(base) / 2**20}
    return {"status": "ok", "step_s": timing.median, "kernel_s": timing.system_median,
            "peak_mb": peak_bytes(base) / 2**20, "repeats": repeats}


def predict(model: str, nodes: int, previous: dict[str, Any] | None, gps_attention: str) -> tuple[float, float]:
    """Predicted (step seconds, peak bytes) from the model's measured row at the previous size (0 when none)."""
    seconds = memory = 0.0
    if previous is not None:
        scale = nodes / previous["nodes"]
        seconds = previous["step_s"] * scale ** TIME_EXPONENT[model]
        memory = previous["peak_mb"] * 2**20 * scale
    if model == "GPS" and gps_attention == "math":
        memory += (2 * LAYERS + 2) * HEADS * nodes**2 * 4
    return seconds, memory


def available_bytes() -> int:
    """``MemAvailable`` of ``/proc/meminfo``: what the machine can give without swapping."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("MemAvailable not found in /proc/meminfo")


def run_train(args: argparse.Namespace) -> list[dict[str, Any]]:
    # On a shared machine a limit above what is free would let the kernel's OOM killer pick other processes.
    limit = min(int(args.mem_limit_gb * 2**30), int(0.9 * available_bytes()))
    args.mem_limit_gb = limit / 2**30
    print(f"## Training step, one graph of N nodes, {EDGES_PER_NODE} N undirected edges, node classification: CPU, "
          f"{args.threads} thread(s), {args.clock} clock, median of {args.repeats} after {args.warmup} warm-up; GPS "
          f"attention: {args.gps_attention}; limits {args.mem_limit_gb:.1f} GB, {args.max_step_s:g} s/step; "
          f"torch {torch.__version__}\n", flush=True)
    rows: list[dict[str, Any]] = []
    last: dict[str, dict[str, Any]] = {}  # each model's last measured row: the base of the predictions
    for nodes in args.train_sizes:
        for model in MODELS:
            seconds, memory = predict(model, nodes, last.get(model), args.gps_attention)
            row: dict[str, Any] = {"nodes": nodes, "model": model}
            if memory > limit:
                row.update(status="OOM", reason=f"predicted {memory / 2**30:.1f} GB > {args.mem_limit_gb:.1f} GB")
            elif seconds > args.max_step_s:
                row.update(status="slow", reason=f"predicted {seconds:.0f} s/step > {args.max_step_s:g} s")
            else:
                try:
                    row.update(in_child(train_config, model, nodes, args.warmup, args.repeats, args.clock,
                                        args.gps_attention, limit, args.seed, threads=args.threads))
                except ChildError as err:
                    if err.killed_by is None:
                        raise
                    row.update(status="OOM", reason=str(err))
                if row["status"] == "ok":
                    last[model] = row
            rows.append(row)
            print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    print_train(rows, args.train_sizes)
    return rows


def _cell(row: dict[str, Any], key: str, scale: float) -> str:
    return f"{row[key] * scale:,.0f}" if row["status"] == "ok" else row["status"]


def _ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> str:
    return f"{a[key] / b[key]:.2f}x" if a["status"] == b["status"] == "ok" else "-"


def print_train(rows: list[dict[str, Any]], sizes: list[int]) -> None:
    get = {(r["nodes"], r["model"]): r for r in rows}
    print("| nodes | GSM++ ms/step | GPS ms/step | GPS/GSM++ time | GSM++ MB | GPS MB | GPS/GSM++ memory |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        gsm, gps = get[(n, "GSM++")], get[(n, "GPS")]
        print(f"| {n:,} | {_cell(gsm, 'step_s', 1e3)} | {_cell(gps, 'step_s', 1e3)} | {_ratio(gps, gsm, 'step_s')} | "
              f"{_cell(gsm, 'peak_mb', 1)} | {_cell(gps, 'peak_mb', 1)} | {_ratio(gps, gsm, 'peak_mb')} |")
    print()
    for r in rows:
        if "reason" in r:
            print(f"{r['model']} at {r['nodes']:,} nodes: {r['status']} ({r['reason']})")
        elif r["status"] == "ok" and r["kernel_s"] > KERNEL_SHARE * r["step_s"]:
            print(f"{r['model']} at {r['nodes']:,} nodes: {r['kernel_s'] / r['step_s']:.0%} of the step is system "
                  f"(kernel) time: memory management (page faults), not the model's arithmetic")
    for model in MODELS:
        print(growth_line(model, [r for r in rows if r["model"] == model and r["status"] == "ok"]))


def growth_line(model: str, rows: list[dict[str, Any]]) -> str:
    """How the model's step time grows with N: time per node at the extremes, and the log-log slope of every pair
    of consecutive sizes (the steepest decides: an overall slope would hide a late superlinear turn)."""
    if len(rows) < 2:
        return f"{model}: fewer than two sizes measured, no growth estimate"
    slopes = [math.log(b["step_s"] / a["step_s"]) / math.log(b["nodes"] / a["nodes"]) for a, b in zip(rows, rows[1:])]
    small, large = rows[0], rows[-1]
    per_node = [r["step_s"] / r["nodes"] * 1e6 for r in (small, large)]
    verdict = "linear" if max(slopes) <= LINEAR_SLOPE else f"not linear (slope above {LINEAR_SLOPE})"
    return (f"{model}: {per_node[0]:.1f} us/node at {small['nodes']:,} nodes, {per_node[1]:.1f} us/node at "
            f"{large['nodes']:,} ({per_node[1] / per_node[0]:.2f}x); time ~ N^slope between consecutive sizes: "
            + ", ".join(f"{x:.2f}" for x in slopes) + f": {verdict}")


# -------------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run the selected parts and print their tables; returns ``{"hac": rows, "train": rows}`` (parts run)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=("hac", "train"), default=["hac", "train"])
    parser.add_argument("--quick", action="store_true", help="HAC 1e3 and 1e4 nodes; train 1e3 and 3e3, one repeat")
    parser.add_argument("--hac-sizes", type=int, nargs="+", help="HAC node counts (default 1e4 1e5 1e6)")
    parser.add_argument("--train-sizes", type=int, nargs="+", help="train node counts (default 1e3 3e3 1e4 3e4 1e5)")
    parser.add_argument("--degree", type=int, default=10, help="HAC: edges per node")
    parser.add_argument("--features", type=int, default=16, help="HAC: feature columns per node")
    parser.add_argument("--affinity", choices=["cosine", "structural"], default="cosine", help="HAC affinity")
    parser.add_argument("--device", default="cpu", help="HAC device (the train part runs on the CPU)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="process CPU time (default; with --threads 1) or the wall clock")
    parser.add_argument("--repeats", type=int, default=3, help="train: timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="train: untimed steps first")
    parser.add_argument("--gps-attention", choices=("sdpa", "math"), default="sdpa",
                        help="GPS attention kernel: torch's choice (fused on CPU) or the explicit N x N one")
    parser.add_argument("--mem-limit-gb", type=float, default=16.0, help="train: larger peaks are reported as OOM")
    parser.add_argument("--max-step-s", type=float, default=60.0, help="train: slower predicted steps are skipped")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.hac_sizes = args.hac_sizes or [1_000, 10_000]
        args.train_sizes = args.train_sizes or [1_000, 3_000]
        args.repeats = 1
    args.hac_sizes = args.hac_sizes or [10_000, 100_000, 1_000_000]
    args.train_sizes = sorted(set(args.train_sizes or [1_000, 3_000, 10_000, 30_000, 100_000]))
    if not os.path.exists("/proc/self/clear_refs"):
        parser.error("the benchmark forks a child per configuration and reads /proc: it needs Linux")
    if args.clock == "cpu" and args.threads > 1:
        print("--clock cpu sums the CPU time of all threads: times are CPU-seconds", file=sys.stderr)
    watch = Stopwatch()
    out: dict[str, list[dict[str, Any]]] = {}
    if "hac" in args.parts:
        out["hac"] = run_hac(args)
    if "train" in args.parts:
        out["train"] = run_train(args)
    print(f"\nWall time: {watch.seconds():.0f} s")
    return out


if __name__ == "__main__":
    main()
