"""The one-scan claim: LightNet (one global product per block) against multiplicative-decay mixers that scan an
image in 1, 2 or 4 orders, on the same backbone, data and budget.

    python benchmarks/vision_scans.py                       # digits, LightNet + GLA and RetNet x {1, 2, 4} orders
    python benchmarks/vision_scans.py --mixers gla --epochs 10
    python benchmarks/vision_scans.py --quick               # one epoch on a subset: mechanics only

Every configuration is ``lightnet_mini``, ``examples/vision/train.py``'s default for the digits (patch 8 on 32 px,
width 128, depth 4, 4 heads, MD-TPE on) and only the token mixer changed: ``mixer="lightnet"`` (MD-LRPE, one
``softmax_T(K)^T V`` per block) or a ``seqcore.nn`` decay mixer with ``scan_orders`` 1 (row-major, causal),
2 (row-major forward and reverse) or 4 (row- and column-major, each forward and reverse; weights shared). Each is
trained by ``examples/vision/train.py`` with the same seed, epochs and schedule on the digits (1,347 training /
450 test images); the table gives the last epoch's test accuracy and the training images/s. Inference and
training speed and peak memory are then measured at ``--size`` px (default 224: 196 tokens with patch 16) with
``benchmarks/vision.py``'s forked-child method, so the cost of extra scans shows at a realistic token count.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks import vision as SPEED
from benchmarks.measure import Stopwatch
from benchmarks.scripts import load_script

TRAIN = load_script("examples/vision/train.py", "vision_train_example")


def configurations(mixers: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(label, model kwargs) for LightNet and each decay mixer at 1, 2 and 4 scan orders."""
    configs = [("LightNet (1 scan)", {"mixer": "lightnet"})]
    for mixer in mixers:
        for orders in (1, 2, 4):
            configs.append((f"{mixer} ({orders} scan{'s' if orders > 1 else ''})", {"mixer": mixer, "scan_orders": orders}))
    return configs


def train_one(label: str, kwargs: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Train one configuration on the digits with examples/vision/train.py; returns its metrics."""
    out = args.out / label.split()[0].lower() / str(kwargs.get("scan_orders", 1))
    argv = ["--model-kwargs", json.dumps(kwargs), "--epochs", str(args.epochs), "--seed", str(args.seed),
            "--out", str(out), "--threads", str(args.threads)]
    if args.quick:
        argv.append("--quick")
    return TRAIN.main(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Train and time every configuration; print one table; return its rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mixers", nargs="+", default=["gla", "retnet"], help="seqcore.nn decay mixers")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=224, help="image size for the speed and memory columns")
    parser.add_argument("--batch-size", type=int, default=8, help="batch for the speed and memory columns")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/vision_scans"))
    parser.add_argument("--quick", action="store_true", help="one epoch on a subset, 64 px timing: mechanics only")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.size, args.batch_size = 1, 64, 2
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    rows = []
    watch = Stopwatch()
    for label, kwargs in configurations(args.mixers):
        metrics = train_one(label, kwargs, args)
        spec = SPEED.ModelSpec("lightnet_tiny", kwargs=kwargs)
        timing = {mode: SPEED.measure(args.threads, device, label, spec, args.size, mode, args.batch_size, 1, 3,
                                      120.0, "cpu")
                  for mode in SPEED.MODES}
        rows.append({
            "config": label, "params": metrics["params"], "test_acc": metrics["test_acc"],
            "train_images_per_s": metrics["images_per_s"],
            "infer_images_per_s": timing["forward"]["images_per_s"], "infer_peak_mib": timing["forward"]["peak_mib"],
            "step_images_per_s": timing["forward+backward"]["images_per_s"],
            "step_peak_mib": timing["forward+backward"]["peak_mib"],
        })
    light = rows[0]
    print(f"\n### One scan against several: digits ({args.epochs} epochs, seed {args.seed}); speed and peak memory "
          f"of lightnet_tiny-shaped models at {args.size} px, batch {args.batch_size}, {args.threads} thread(s), "
          "CPU-time clock\n")
    print(f"| mixer (scan orders) | params | digits test acc | train images/s (digits) | forward images/s @{args.size}"
          f" | forward peak MiB | fwd+bwd images/s @{args.size} | fwd+bwd peak MiB | fwd+bwd speed vs LightNet |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['config']} | {r['params']:,} | {r['test_acc']:.4f} | {r['train_images_per_s']:.1f} | "
              f"{r['infer_images_per_s']:.2f} | {r['infer_peak_mib']:,.0f} | {r['step_images_per_s']:.2f} | "
              f"{r['step_peak_mib']:,.0f} | {r['step_images_per_s'] / light['step_images_per_s']:.2f}x |")
    print(f"\nWall time: {watch.seconds():.0f} s")
    return rows


if __name__ == "__main__":
    main()
