"""Throughput and peak memory of LightNet-Tiny against DeiT-Tiny (softmax attention) as the resolution grows.

    python benchmarks/vision.py                      # 224, 448 and 896 px on the CPU, 2 threads
    python benchmarks/vision.py --threads 1 --sizes 224 448
    python benchmarks/vision.py --device cuda        # peak memory from torch.cuda.max_memory_allocated
    python benchmarks/vision.py --quick              # 64 and 128 px, batch 2, one repeat: checks the mechanics

Models: ``timm.create_model("lightnet_tiny")`` (``vision``: width 192, depth 12, 3 heads, patch 16, one global
``softmax_T(K)^T V`` product per block, linear in the tokens) and timm's ``deit_tiny_patch16_224`` (same shape,
softmax attention over the tokens plus a class token, built with ``pretrained=False`` and ``img_size`` set to the
benchmarked resolution; timm runs it through ``F.scaled_dot_product_attention`` when its fused attention is on,
which the header reports; ``TIMM_FUSED_ATTN=0`` in the environment measures the explicit ``T x T`` attention
instead). Untrained weights, 1,000 classes, float32, random inputs.

Modes: ``forward`` is ``model.eval()`` under ``torch.inference_mode``; ``forward+backward`` is one training step
without an optimizer (``model.train()``, gradients set to None, cross-entropy against random labels, backward).

Batch: ``--batch-size`` (8) at 224 px, scaled by ``(224 / size)^2`` so every batch holds about the same number of
tokens (at least 1 image): 8 at 224 px, 2 at 448 px, 1 at 896 px. ``--fixed-batch`` uses ``--batch-size`` at
every size (``--quick`` does, with batch 2). Images/s is per image (batch / median step time), so the sizes stay
comparable; peak memory is per batch, so compare it within a resolution (the ratios table does).

Timing: ``--warmup`` (1) untimed steps, then the median of ``--repeats`` (3) timed steps. A configuration whose
warm-up step says the timed steps would take longer than ``--budget`` seconds (180) runs fewer repeats (at least
one); the table marks it. The ratios are what matter: absolute times move with the machine's load. On a shared
CPU, ``--clock cpu --threads 1`` times each step by the process's CPU time (``time.process_time``) instead of the
wall clock, which leaves out the time other processes hold the core (with more threads it would sum them).

Peak memory on the CPU: each (model, size, mode) runs in a freshly forked child of a parent that has only
imported torch, timm and vision (no tensor work, so no warm heap or thread pool is inherited). The child builds the
model and the batch, resets the kernel's peak resident set (``echo 5 > /proc/self/clear_refs``), records its
resident set, runs the warm-up and the timed steps, and reports the peak resident set (``VmHWM``) minus that
baseline: activations, gradients and workspace of the steps, not the weights or the input. Linux only (forking is
also ~10x faster than spawning a new interpreter, which needs ~10 s to import torch and timm). On CUDA everything
runs in this process and the peak is ``torch.cuda.max_memory_allocated`` minus the memory allocated before the
first step.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import timm

import vision  # noqa: F401  (registers lightnet_* with timm)
from benchmarks.measure import ChildError, Stopwatch, in_child, peak_bytes, reset_peak, time_calls

@dataclass(frozen=True)
class ModelSpec:
    """A timm model to benchmark: registered name, creation kwargs, and what its token count depends on."""

    timm_name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    size_at_creation: bool = False  # DeiT's position table is built for one img_size
    extra_tokens: int = 0  # DeiT's class token
    patch: int = 16


MODELS = {
    "LightNet-Tiny": ModelSpec("lightnet_tiny"),
    "DeiT-Tiny": ModelSpec("deit_tiny_patch16_224", size_at_creation=True, extra_tokens=1),
}
MODES = ("forward", "forward+backward")
PATCH = 16
REFERENCE_SIZE = 224


def tokens_per_image(spec: ModelSpec, size: int) -> int:
    """Tokens the blocks mix for one ``size x size`` image: the patches, plus any class token."""
    return (size // spec.patch) ** 2 + spec.extra_tokens


def batch_for(size: int, batch_size: int, fixed: bool) -> int:
    """``batch_size`` at 224 px scaled to keep the tokens per batch constant (at least 1), unless ``fixed``."""
    if fixed:
        return batch_size
    return max(1, round(batch_size * (REFERENCE_SIZE / size) ** 2))


def build(spec: ModelSpec, size: int, device: torch.device) -> torch.nn.Module:
    kwargs = {"img_size": size} if spec.size_at_creation else {}
    return timm.create_model(spec.timm_name, pretrained=False, **spec.kwargs, **kwargs).to(device)


def run_config(model: str, spec: ModelSpec, size: int, mode: str, batch: int, warmup: int, repeats: int, budget: float,
               clock: str, device: torch.device) -> dict[str, Any]:
    """Build, warm up and time one configuration in this process; returns its row."""
    torch.manual_seed(0)
    net = build(spec, size, device)
    x = torch.randn(batch, 3, size, size, device=device)
    labels = torch.randint(0, 1000, (batch,), device=device)
    if mode == "forward":
        net.eval()

        def step() -> None:
            with torch.inference_mode():
                net(x)
    else:
        net.train()

        def step() -> None:
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), labels).backward()

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = reset_peak()
    # The warm-up steps are timed too: the last one predicts whether the timed steps fit the budget.
    first = time_calls(step, warmup=0, repeats=max(1, warmup), clock=clock, device=device).seconds[-1]
    planned = repeats
    repeats = max(1, min(repeats, int(budget // first))) if first * repeats > budget else repeats
    seconds = time_calls(step, warmup=0, repeats=repeats, clock=clock, device=device).median
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = peak_bytes(base)
    return {
        "resolution": size, "tokens": tokens_per_image(spec, size), "model": model, "mode": mode,
        "batch": batch, "images_per_s": batch / seconds, "peak_mib": peak / 2**20, "step_s": seconds,
        "repeats": repeats, "reduced": repeats < planned,
    }


def measure(threads: int, device: torch.device, *args: Any) -> dict[str, Any]:
    """One configuration: in a forked child on the CPU (a clean heap for the peak resident set), here on CUDA."""
    if device.type == "cuda":
        return run_config(*args, device=device)
    try:
        return in_child(run_config, *args, threads=threads, device=device)
    except ChildError as err:
        raise RuntimeError(f"benchmark failed for {args[:3]}: {err}") from err


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def print_tables(rows: list[dict[str, Any]], sizes: list[int]) -> None:
    print("| resolution | tokens | model | mode | batch | images/s | peak MiB |")
    print("|---:|---:|---|---|---:|---:|---:|")
    for r in rows:
        mark = f" ({r['repeats']} rep.)" if r["reduced"] else ""
        print(f"| {r['resolution']} | {r['tokens']:,} | {r['model']} | {r['mode']} | {r['batch']} | "
              f"{r['images_per_s']:.2f}{mark} | {r['peak_mib']:,.0f} |")
    get = {(r["resolution"], r["model"], r["mode"]): r for r in rows}
    print("\n### LightNet-Tiny / DeiT-Tiny\n")
    print("| resolution | mode | throughput ratio | memory ratio |")
    print("|---:|---|---:|---:|")
    for size in sizes:
        for mode in MODES:
            light, deit = get[(size, "LightNet-Tiny", mode)], get[(size, "DeiT-Tiny", mode)]
            print(f"| {size} | {mode} | {_ratio(light['images_per_s'], deit['images_per_s'])} | "
                  f"{_ratio(light['peak_mib'], deit['peak_mib'])} |")
    if len(sizes) > 1:
        print("\n### Cost growth per image between consecutive sizes (time per image ratio vs token ratio)\n")
        print("| model | mode | " + " | ".join(f"{a} -> {b}" for a, b in zip(sizes, sizes[1:])) + " |")
        print("|---|---|" + "---:|" * (len(sizes) - 1))
        for model in MODELS:
            for mode in MODES:
                cells = []
                for a, b in zip(sizes, sizes[1:]):
                    ra, rb = get[(a, model, mode)], get[(b, model, mode)]
                    growth = ra["images_per_s"] / rb["images_per_s"]
                    cells.append(f"{growth:.2f}x time for {rb['tokens'] / ra['tokens']:.2f}x tokens")
                print(f"| {model} | {mode} | " + " | ".join(cells) + " |")
    print()
    for mode in MODES:
        cross = crossover(rows, sizes, mode)
        print(f"Crossover ({mode}): " + (f"{cross} px" if cross else "none measured")
              + " (smallest resolution at which LightNet-Tiny's images/s exceeds DeiT-Tiny's)")


def crossover(rows: list[dict[str, Any]], sizes: list[int], mode: str) -> int | None:
    """Smallest measured resolution at which LightNet-Tiny's images/s exceeds DeiT-Tiny's in ``mode``."""
    get = {(r["resolution"], r["model"], r["mode"]): r["images_per_s"] for r in rows}
    for size in sorted(sizes):
        if get[(size, "LightNet-Tiny", mode)] > get[(size, "DeiT-Tiny", mode)]:
            return size
    return None


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark and print its tables; returns one row per (resolution, model, mode)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 448, 896], help="square image sizes (px)")
    parser.add_argument("--batch-size", type=int, default=8, help="batch at 224 px (scaled for other sizes)")
    parser.add_argument("--fixed-batch", action="store_true", help="use --batch-size at every size")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--budget", type=float, default=180.0,
                        help="seconds of timed steps per configuration before repeats are cut (at least 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda (if available)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time steps by the wall clock or by the process's CPU time (use with --threads 1)")
    parser.add_argument("--quick", action="store_true", help="64 and 128 px, batch 2, one repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.batch_size, args.fixed_batch, args.repeats = [64, 128], 2, True, 1
    bad = [s for s in args.sizes if s <= 0 or s % PATCH]
    if bad:
        parser.error(f"sizes must be positive multiples of {PATCH}, got {bad}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available: running on the CPU", file=sys.stderr)
        args.device = "cpu"
    device = torch.device(args.device)
    if device.type == "cpu" and not os.path.exists("/proc/self/clear_refs"):
        parser.error("CPU peak memory needs Linux (/proc/self/clear_refs)")
    if device.type == "cuda":
        torch.set_num_threads(args.threads)
        args.clock = "wall"
    if args.clock == "cpu" and args.threads > 1:
        print("--clock cpu sums the CPU time of all threads: images/s is then per CPU-second", file=sys.stderr)
    sizes = sorted(set(args.sizes))
    fused = timm.layers.use_fused_attn()
    rule = (f"batch {args.batch_size} at every size" if args.fixed_batch
            else f"batch {args.batch_size} at 224 px, scaled by (224/size)^2, at least 1")
    print(f"# LightNet-Tiny vs DeiT-Tiny: device={device}, {args.threads} thread(s), torch {torch.__version__}, "
          f"timm {timm.__version__} (DeiT attention: {'F.scaled_dot_product_attention' if fused else 'explicit'}); "
          f"{rule}; median of {args.repeats} after {args.warmup} warm-up; {args.clock} clock\n", flush=True)
    watch = Stopwatch()
    rows = []
    for size in sizes:
        batch = batch_for(size, args.batch_size, args.fixed_batch)
        for model in MODELS:
            for mode in MODES:
                rows.append(measure(args.threads, device, model, MODELS[model], size, mode, batch, args.warmup, args.repeats,
                                    args.budget, args.clock))
                print(".", end="", flush=True, file=sys.stderr)
    print(file=sys.stderr)
    print_tables(rows, sizes)
    print(f"\nWall time: {watch.seconds():.0f} s")
    return rows


if __name__ == "__main__":
    main()
