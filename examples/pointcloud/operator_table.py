"""The operator table: LION runs that differ only in ``--operator``, side by side, with their learning curves.

    python examples/pointcloud/train.py --operator retnet --steps 1200 --out runs/lion/retnet
    python examples/pointcloud/train.py --operator mamba2 --steps 1200 --out runs/lion/mamba2
    python examples/pointcloud/train.py --operator gla --steps 1200 --out runs/lion/gla
    python examples/pointcloud/operator_table.py runs/lion/retnet runs/lion/mamba2 runs/lion/gla \
        --plot docs/img/lion_operators.png

Reads each run's ``curve.json`` and ``last.pt`` (for the operator) and prints one markdown row per run: the final
moderate AP|R40 per class (3-D, and BEV for Car), the best Car 3-D AP on the curve, and the CPU minutes of the
training steps. ``--plot`` draws Car 3-D AP against CPU minutes for every run.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
from typing import Any  # noqa: E402

from pointcloud.lion.detector import CHECKPOINT_KIND  # noqa: E402
from seqcore.atomic import atomic_write  # noqa: E402
from seqcore.checkpoint import load_checkpoint  # noqa: E402

COLUMNS = ("Car 3D", "Car BEV", "Pedestrian 3D", "Cyclist 3D")


def load_run(folder: Path) -> dict[str, Any]:
    curve_path = folder / "curve.json"
    if not curve_path.exists():
        raise FileNotFoundError(f"{folder} has no curve.json: is it a train.py --out folder?")
    curve = json.loads(curve_path.read_text())
    if not curve:
        raise ValueError(f"{curve_path} is empty")
    checkpoint = load_checkpoint(folder / "last.pt", kind=CHECKPOINT_KIND)
    return {"folder": str(folder), "operator": checkpoint.config["operator"], "curve": curve,
            "total_steps": checkpoint.state.get("total_steps", curve[-1]["step"])}


def table(runs: list[dict[str, Any]]) -> str:
    head = "| operator | steps | CPU min | " + " | ".join(COLUMNS) + " | best Car 3D (step) |"
    lines = [head, "|---|---:|---:|" + "---:|" * len(COLUMNS) + "---:|"]
    for run in runs:
        last = run["curve"][-1]
        best = max(run["curve"], key=lambda p: p["ap"].get("Car 3D", -1.0))
        cpu = last.get("cpu_seconds", last["train_seconds"]) / 60
        values = " | ".join(f"{last['ap'][c]:.1f}" if c in last["ap"] else "-" for c in COLUMNS)
        lines.append(f"| {run['operator']} | {last['step']} | {cpu:.1f} | {values} | "
                     f"{best['ap'].get('Car 3D', float('nan')):.1f} ({best['step']}) |")
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for run in runs:
        xs = [p.get("cpu_seconds", p["train_seconds"]) / 60 for p in run["curve"]]
        ax.plot(xs, [p["ap"].get("Car 3D", float("nan")) for p in run["curve"]], marker="o", label=run["operator"])
    ax.axhline(70, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("training CPU minutes (one thread)")
    ax.set_ylabel("Car 3-D AP|R40 moderate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        fig.savefig(handle, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="train.py --out folders")
    parser.add_argument("--plot", type=Path, help="write the Car 3-D curves here")
    args = parser.parse_args(argv)
    runs = [load_run(folder) for folder in args.runs]
    print(table(runs))
    if args.plot:
        plot(runs, args.plot)
        print(f"\ncurves: {args.plot}")
    return runs


if __name__ == "__main__":
    main()
