"""The GTF paper's dynamical-systems-reconstruction benchmark (Hess et al., ICML 2023) on Lorenz-63 and ECG.

    python benchmarks/dsr.py --quick                         # mechanics only, one seed, ~1 min
    python benchmarks/dsr.py --system ecg --minutes 30       # 3 seeds, each annealed over and stopped at 30 minutes
    python benchmarks/dsr.py --system both --epochs 5000     # the paper's budget: hours per run on a CPU

Settings (``DurstewitzLab/GTF-shPLRNN``): Lorenz-63 uses ``settings/defaults.json`` (there is no Lorenz file in
``paper_experiments``): clipped shPLRNN ``M = 3``, ``H = 50``, identity read-out, adaptive GTF with
``product_upper_bound`` starting at 1. ECG uses ``paper_experiments/ECG/Table1/shPLRNN_GTF.jl``: clipped
shPLRNN ``M = 5``, ``H = 250``, affine read-out, constant ``alpha = 0.3``, ``obs_reg = 1e-7``. Both: RAdam,
learning rate 1e-3 -> 1e-6, 16 windows of 200 steps per batch, 50 batches per epoch, 5000 epochs.

Each run is scored on the test file as ``evaluate_run`` in ``src/evaluation.jl`` does (see
:meth:`timeseries.dynamics.DynamicsReconstructor.dynamics_measures`): ``D_stsp`` (30 bins), ``D_H`` (smoothing 20) and
``PE(20)``. Tables give the median and min-max over seeds, the time per gradient step and the steps done
against the paper's 250,000. The floor is train vs test data (the same system, a different trajectory), computed
live from the files. ``--quick`` trains a few epochs on one seed and scores the first 5,000 test samples; it
checks that the loss falls, that adaptive alpha moves and that all measures compute -- not the paper's numbers.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks.measure import Stopwatch
from benchmarks.scripts import load_script
from timeseries.dynamics import DynamicsReconstructor, load_dsr
from timeseries.dynamics.metrics import power_spectrum_error, state_space_divergence

PAPER_STEPS = 5000 * 50
QUICK_TEST = 5_000


@dataclass(frozen=True)
class SystemSetup:
    """The paper's settings and published numbers for one data set."""

    name: str
    params: dict[str, Any]
    paper: dict[str, str]  # published values ("n/a" where the paper gives none we could check)
    paper_floor: dict[str, str]  # train vs test data as quoted for the paper


SYSTEMS = {
    "lorenz63": SystemSetup(
        "lorenz63",
        dict(model="clipped_shallow", latent_dim=3, hidden_dim=50, observation="identity", alpha="adaptive",
             alpha_method="product_upper_bound"),
        {"D_stsp": "~0.26", "D_H": "n/a", "PE": "n/a"},
        {"D_stsp": "~0.12", "D_H": "~0.07"},
    ),
    "ecg": SystemSetup(
        "ecg",
        dict(model="clipped_shallow", latent_dim=5, hidden_dim=250, observation="affine", alpha=0.3,
             alpha_method="constant", obs_reg=1e-7),
        {"D_stsp": "4.3", "D_H": "0.34", "PE": "2.4e-3"},
        {"D_stsp": "n/a", "D_H": "n/a"},
    ),
}


def load_plots() -> Any:
    """The example's plotting helpers (``examples/timeseries/dynamics.py``)."""
    return load_script("examples/timeseries/dynamics.py", "dynamics_example")


def run_seed(system: str, seed: int, epochs: int, batches: int, minutes: float | None, quick: bool) -> dict[str, Any]:
    """Train and score one seed; returns the metrics, timing and a generated trajectory for plotting."""
    # one thread per run: the step loop is latency bound and seeds run in parallel processes instead
    torch.set_num_threads(1)
    setup = SYSTEMS[system]
    train, test = load_dsr(system, "train"), load_dsr(system, "test")
    if quick:
        test = test[:QUICK_TEST]
    est = DynamicsReconstructor(
        **setup.params, epochs=epochs, batches_per_epoch=batches,
        max_time=None if minutes is None else 60.0 * minutes, verbose=True, random_state=seed,
    )
    est.fit(train)
    watch = Stopwatch()
    scores = est.dynamics_measures(test)
    steps = len(test)
    x_gen = est.generate(steps + steps // 4, x0=test[0])[steps // 4 :]
    loss = est.history_["loss"]
    return {
        "seed": seed, **scores, "score_s": watch.seconds(), "steps": est.n_steps_,
        "epochs": est.n_epochs_, "ms_per_step": 1000 * est.fit_time_ / est.n_steps_, "fit_s": est.fit_time_,
        "loss_first": loss[0], "loss_last": loss[-1], "alpha_first": est.history_["alpha"][0],
        "alpha_last": est.alpha_, "x_gen": x_gen,
    }


def floor(system: str) -> dict[str, float]:
    """``D_stsp`` and ``D_H`` of the training file against the test file (equal lengths)."""
    train, test = load_dsr(system, "train"), load_dsr(system, "test")
    n = min(len(train), len(test))
    return {"D_stsp": state_space_divergence(test[:n], train[:n]), "D_H": power_spectrum_error(test[:n], train[:n])}


def summary(values: list[float]) -> str:
    """``median (min-max)`` of the finite values; inf/NaN runs (diverged, or a constant trajectory for
    ``D_H``) are counted, not included."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return "non-finite"
    text = f"{np.median(finite):.3g}"
    if finite.size > 1:
        text += f" ({finite.min():.3g}-{finite.max():.3g})"
    if finite.size < arr.size:
        text += f", {arr.size - finite.size} non-finite"
    return text


def report(system: str, runs: list[dict[str, Any]], live_floor: dict[str, float], out: Path, quick: bool) -> None:
    """Print the markdown table of one system and save its plots."""
    setup = SYSTEMS[system]
    print(f"\n### {system}: {len(runs)} seed(s), median (min-max)\n")
    print("| | D_stsp | D_H | PE(20) | ms / step | steps done / paper |\n|---|---:|---:|---:|---:|---:|")
    steps = summary([r["steps"] for r in runs])
    print(f"| ours | {summary([r['D_stsp'] for r in runs])} | {summary([r['D_H'] for r in runs])} | "
          f"{summary([r['PE'] for r in runs])} | {summary([r['ms_per_step'] for r in runs])} | "
          f"{steps} / {PAPER_STEPS} |")
    print(f"| paper (shPLRNN + GTF) | {setup.paper['D_stsp']} | {setup.paper['D_H']} | {setup.paper['PE']} | | "
          f"{PAPER_STEPS} |")
    print(f"| floor: train vs test, live | {live_floor['D_stsp']:.3g} | {live_floor['D_H']:.3g} | | | |")
    print(f"| floor: paper | {setup.paper_floor['D_stsp']} | {setup.paper_floor['D_H']} | | | |")
    if quick:
        print(f"\nmechanics (seed {runs[0]['seed']}):")
        for r in runs:
            print(f"- loss {r['loss_first']:.4g} -> {r['loss_last']:.4g} "
                  f"({'falls' if r['loss_last'] < r['loss_first'] else 'DOES NOT FALL'}); "
                  f"alpha {r['alpha_first']:.4g} -> {r['alpha_last']:.4g}; "
                  f"measures {'all finite' if all(np.isfinite([r['D_stsp'], r['D_H'], r['PE']])) else 'NOT all finite'};"
                  f" fit {r['fit_s']:.1f} s, scoring {r['score_s']:.1f} s")

    plots = load_plots()
    best = min(runs, key=lambda r: r["D_stsp"] if np.isfinite(r["D_stsp"]) else np.inf)
    test = load_dsr(system, "test")[: len(best["x_gen"])]
    out.mkdir(parents=True, exist_ok=True)
    title = f"{system}, seed {best['seed']}, {best['steps']} steps"
    plots.plot_attractor(test, best["x_gen"], out / f"{system}_attractor.png", title)
    plots.plot_spectra(test, best["x_gen"], out / f"{system}_spectra.png", title)
    print(f"\nplots: {out / f'{system}_attractor.png'}, {out / f'{system}_spectra.png'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--system", choices=["lorenz63", "ecg", "both"], default="both")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5000, help="the paper's 5000 unless stopped by --minutes")
    parser.add_argument("--batches", type=int, default=50, help="batches per epoch")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock budget per run: the learning rate anneals over it and training stops at its end")
    parser.add_argument("--jobs", type=int, default=1, help="seeds trained in parallel processes")
    parser.add_argument("--out", type=Path, default=Path("runs/dsr"))
    parser.add_argument("--quick", action="store_true", help="5 epochs x 20 batches, first seed, 5,000 test samples")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run the benchmark; returns the per-seed rows (without trajectories) of each system."""
    args = parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.batches = args.seeds[:1], 5, 20
    systems = ["lorenz63", "ecg"] if args.system == "both" else [args.system]
    results = {}
    for system in systems:
        watch = Stopwatch()
        tasks = [(system, seed, args.epochs, args.batches, args.minutes, args.quick) for seed in args.seeds]
        if args.jobs > 1:
            with multiprocessing.get_context("spawn").Pool(min(args.jobs, len(tasks))) as pool:
                runs = pool.starmap(run_seed, tasks)
        else:
            runs = [run_seed(*task) for task in tasks]
        report(system, runs, floor(system), args.out, args.quick)
        print(f"\n{system}: {watch.seconds():.0f} s wall")
        results[system] = [{k: v for k, v in r.items() if k != "x_gen"} for r in runs]
    return results


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
