"""Train every tokenizer x global-encoder pair of GSM++ and the GCN, GIN and GPS baselines on the graph tasks.

    python examples/graphs/benchmark_tasks.py                        # all tasks and models (tens of minutes)
    python examples/graphs/benchmark_tasks.py --tasks connectivity node_degree --models hac_dfs/hybrid gin
    python examples/graphs/benchmark_tasks.py --quick                # about a minute: two tasks, four models
    python examples/graphs/benchmark_tasks.py --from-results a/results.json b/results.json   # merge runs

Tasks come from ``graphs.tasks`` (seeded, balanced labels): the algorithmic tasks of the GSM++ paper (local:
node degree, cycle check, triangle counting; global: connectivity, colour counting, shortest path), a
PATTERN-like stochastic block model and CSL. Each task's graphs are split 80/10/10 (stratified); every model
is trained with AdamW, the epoch with the best validation accuracy is kept and its test accuracy reported.

Models: GSM++ named ``<tokenizer>/<encoder>``, tokenizers ``hac_dfs``, ``hac_bfs``, ``degree``, ``khop``,
encoders ``recurrent`` (three bidirectional Mamba-2 layers), ``attention`` (three softmax attention layers)
and ``hybrid`` (two Mamba-2 layers then one attention layer, the GSM++ default); all with a gated-GCN local encoder
and the hierarchical positional encoding. Baselines: ``gcn``, ``gin``, ``gps`` (GIN + full attention,
torch-geometric's ``GPSConv``). All models have the same width and depth.

Writes ``results.json`` and ``accuracy.png`` (a heat map of test accuracy) to ``--out`` and ends with a
markdown table (test accuracy in %, median over seeds).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Python puts this script's folder first on sys.path; the project root in front makes `graphs` the repo's package.
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
from typing import Any  # noqa: E402

from seqcore.extras import require_extra  # noqa: E402

require_extra("examples", "examples/graphs/benchmark_tasks.py")  # matplotlib and tqdm: name the extra, not a bare ModuleNotFoundError

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only: the script must run without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from seqcore.atomic import atomic_write, atomic_write_text  # noqa: E402
from graphs import GNNBaseline, GSMPlusPlus  # noqa: E402
from graphs.tasks import TASKS, make_task, split  # noqa: E402
from graphs.training import fit_classifier  # noqa: E402

TOKENIZERS = ("hac_dfs", "hac_bfs", "degree", "khop")
ENCODERS = {"recurrent": ("mamba2",) * 3, "attention": ("attention",) * 3, "hybrid": ("mamba2", "mamba2", "attention")}
BASELINE_NAMES = ("gcn", "gin", "gps")
ALL_MODELS = tuple(f"{t}/{e}" for t in TOKENIZERS for e in ENCODERS) + BASELINE_NAMES
QUICK_MODELS = ("hac_dfs/hybrid", "khop/recurrent", "gin", "gps")


def build_model(name: str, in_channels: int, num_classes: int, level: str, hidden: int) -> torch.nn.Module:
    """A model of the table by name (``<tokenizer>/<encoder>`` or a baseline), 3 layers of width ``hidden``."""
    if name in BASELINE_NAMES:
        return GNNBaseline(in_channels, hidden, num_classes, name, num_layers=3, task=level)
    tokenizer, _, encoder = name.partition("/")
    if tokenizer not in TOKENIZERS or encoder not in ENCODERS:
        raise ValueError(f"unknown model {name!r}; models: {', '.join(ALL_MODELS)}")
    return GSMPlusPlus(in_channels, hidden, num_classes, layers=ENCODERS[encoder], tokenization=tokenizer, task=level)


def run(task: str, model_name: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one model on one task and seed; returns its row."""
    graphs, spec = make_task(task, args.graphs, seed=seed)
    train, val, test = split(graphs, seed=seed)
    torch.manual_seed(seed)
    model = build_model(model_name, spec.in_channels, spec.num_classes, spec.level, args.hidden)
    result = fit_classifier(
        model, train, val, test, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=seed,
        progress=False,
    )
    return {
        "task": task, "model": model_name, "seed": seed, "test_acc": result.test_acc, "val_acc": result.best_val_acc,
        "best_epoch": result.best_epoch, "train_s": result.train_seconds,
        "params": sum(p.numel() for p in model.parameters()), "graphs": args.graphs, "epochs": args.epochs,
    }


def table(rows: list[dict[str, Any]], tasks: list[str], models: list[str]) -> str:
    """Markdown: one row per model, one column per task, median test accuracy (%) over seeds; best per task bold."""
    acc = {(r["task"], r["model"]): [] for r in rows}
    for r in rows:
        acc[(r["task"], r["model"])].append(100 * r["test_acc"])
    median = {key: statistics.median(values) for key, values in acc.items()}
    best = {t: max(median.get((t, m), -1.0) for m in models) for t in tasks}
    lines = ["| model | " + " | ".join(tasks) + " |", "|---|" + "---:|" * len(tasks)]
    for m in models:
        cells = []
        for t in tasks:
            value = median.get((t, m))
            text = "" if value is None else f"{value:.1f}"
            cells.append(f"**{text}**" if value is not None and value == best[t] else text)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], tasks: list[str], models: list[str], path: Path) -> None:
    grid = np.full((len(models), len(tasks)), np.nan)
    for i, m in enumerate(models):
        for j, t in enumerate(tasks):
            values = [r["test_acc"] for r in rows if r["task"] == t and r["model"] == m]
            if values:
                grid[i, j] = 100 * statistics.median(values)
    fig, ax = plt.subplots(figsize=(1.3 * len(tasks) + 3, 0.35 * len(models) + 1.5))
    image = ax.imshow(grid, cmap="viridis", vmin=np.nanmin(grid), vmax=100, aspect="auto")
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_yticks(range(len(models)), models)
    for i in range(len(models)):
        for j in range(len(tasks)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", color="white", fontsize=8)
    fig.colorbar(image, ax=ax, label="test accuracy (%)")
    ax.set_title("GSM++ tokenizers x encoders and baselines")
    fig.tight_layout()
    with atomic_write(path) as handle:
        fig.savefig(handle, dpi=120, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the benchmark; returns one row per (task, model, seed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--models", nargs="+", default=list(ALL_MODELS), choices=list(ALL_MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--graphs", type=int, default=400, help="graphs per task (80/10/10 split)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("runs/graphs"))
    parser.add_argument("--quick", action="store_true", help="connectivity and node_degree, 4 models, 120 graphs, 8 epochs")
    parser.add_argument("--from-results", type=Path, nargs="+", help="print the table and plot of saved results.json files instead of training")
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.models, args.graphs, args.epochs = ["connectivity", "node_degree"], list(QUICK_MODELS), 120, 8
    # One thread: the graphs are small, and several runs may share the CPU.
    torch.set_num_threads(1)
    if args.from_results:
        rows = [row for path in args.from_results for row in json.loads(path.read_text())]
        args.tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
        args.models = [m for m in ALL_MODELS if any(r["model"] == m for r in rows)]
        args.seeds = sorted({r["seed"] for r in rows})
    else:
        jobs = [(t, m, s) for t in args.tasks for m in args.models for s in args.seeds]
        rows = [run(task, model, seed, args) for task, model, seed in tqdm(jobs, desc="graph tasks")]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "results.json", json.dumps(rows, indent=1))
    plot(rows, args.tasks, args.models, args.out / "accuracy.png")
    settings = f"{rows[0]['graphs']} graphs per task, {rows[0]['epochs']} epochs" if rows else ""
    print(f"\n## Graph tasks: test accuracy (%), {settings}, median over seeds {args.seeds}\n")
    print(table(rows, args.tasks, args.models))
    seconds = {m: statistics.median(r["train_s"] for r in rows if r["model"] == m) for m in args.models}
    print("\ntraining time per run (s, median): " + ", ".join(f"{m} {s:.1f}" for m, s in seconds.items()))
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'accuracy.png'}")
    return rows


if __name__ == "__main__":
    main()
