"""Reconstruct the Lorenz-63 attractor with a clipped shallow PLRNN trained by generalized teacher forcing.

    python examples/timeseries/dynamics.py --quick        # under a minute: mechanics, not a good model
    python examples/timeseries/dynamics.py                # 200 epochs x 50 batches: about 2 minutes on one CPU core
    python examples/timeseries/dynamics.py --simulate     # simulated data even if the paper's files exist

Data: the GTF paper's Lorenz-63 files (``load_dsr("lorenz63")``, already z-scored, 5 % observation noise in
the training file) when they are in ``../shared/data/dsr``, else a simulated trajectory with the same noise
(standardized inside the estimator). The model is the paper's default (``settings/defaults.json``): clipped
shPLRNN with ``M = 3``, ``H = 50``, identity read-out, adaptive GTF (``product_upper_bound``), but trained for
far fewer than its 5000 x 50 gradient steps. The script prints ``D_stsp``, ``D_H`` and ``PE(20)`` on the
test series as a markdown table, beside the floor of the training data itself (train vs test), and saves the
true and generated attractors (``attractor.png``) and their power spectra (``spectra.png``) to ``--out``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from seqcore.extras import require_extra

require_extra("examples", "examples/timeseries/dynamics.py")  # matplotlib and tqdm: name the extra, not a bare ModuleNotFoundError

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only: the script must run without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from seqcore.atomic import atomic_write  # noqa: E402
from timeseries.dynamics import DynamicsReconstructor, load_dsr, simulate_lorenz63  # noqa: E402
from timeseries.dynamics.metrics import power_spectrum, power_spectrum_error, state_space_divergence  # noqa: E402

QUICK_TRAIN, QUICK_TEST = 20_000, 10_000  # --quick keeps this many samples (test: fewer steps to generate)
SIMULATED_TRAIN, SIMULATED_TEST = 100_000, 100_000
# Spectra are plotted up to this fraction of the Nyquist band: Lorenz-63's power sits at low frequencies.
SPECTRUM_BAND = 0.05


def load_lorenz(simulate: bool, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Training and test series ``(T, 3)`` and where they came from."""
    if not simulate:
        try:
            return load_dsr("lorenz63", "train"), load_dsr("lorenz63", "test"), "GTF paper files"
        except FileNotFoundError:
            pass
    train = simulate_lorenz63(SIMULATED_TRAIN, noise=0.05, random_state=seed)
    test = simulate_lorenz63(SIMULATED_TEST, random_state=seed + 1)
    return train, test, "simulated"


def plot_attractor(x_true: np.ndarray, x_gen: np.ndarray, path: Path, title: str) -> None:
    """True and generated trajectories (first three dimensions) side by side in 3-D, saved to ``path``."""
    fig = plt.figure(figsize=(10, 4.5))
    for i, (x, label) in enumerate(((x_true, "true (test)"), (x_gen, "generated"))):
        ax = fig.add_subplot(1, 2, i + 1, projection="3d")
        dims = [x[:, d] if d < x.shape[1] else np.zeros(len(x)) for d in range(3)]
        ax.plot(*[dim[np.isfinite(dim)] for dim in dims] if i else dims, linewidth=0.3, color="black" if i == 0 else "tab:red")
        ax.set_title(label)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path) as handle:
        fig.savefig(handle, dpi=100, format="png")
    plt.close(fig)


def plot_spectra(x_true: np.ndarray, x_gen: np.ndarray, path: Path, title: str) -> None:
    """Smoothed power spectra (:func:`power_spectrum`) of each dimension, true vs generated, saved to ``path``."""
    p_true = power_spectrum(x_true)
    # a diverged trajectory has no spectrum; the true one is still worth seeing
    p_gen = power_spectrum(x_gen) if np.all(np.isfinite(x_gen)) else None
    keep = max(int(SPECTRUM_BAND * len(p_true)), 2)
    freqs = np.arange(keep) / len(x_true)
    n_dims = x_true.shape[1]
    fig, axes = plt.subplots(1, n_dims, figsize=(3.2 * n_dims, 3), squeeze=False)
    for d, ax in enumerate(axes[0]):
        ax.plot(freqs, p_true[:keep, d], color="black", label="true")
        if p_gen is not None:
            ax.plot(freqs, p_gen[:keep, d], color="tab:red", label="generated")
        ax.set_title(f"dim {d + 1}")
        ax.set_xlabel("cycles per step")
    axes[0, 0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_write(path) as handle:
        fig.savefig(handle, dpi=100, format="png")
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 200, --quick 8)")
    parser.add_argument("--batches", type=int, default=None, help="batches per epoch (default 50, --quick 15)")
    parser.add_argument("--simulate", action="store_true", help="use simulated Lorenz-63 data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/dynamics"), help="folder for the plots")
    parser.add_argument("--quick", action="store_true", help="tiny training on shortened series")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Fit, score and plot; returns one metrics row for the model and one for the train-data floor."""
    args = parse_args(argv)
    # one thread: the step loop is latency bound, and extra threads only contend on a shared machine
    torch.set_num_threads(1)
    train, test, source = load_lorenz(args.simulate, args.seed)
    if args.quick:
        train, test = train[:QUICK_TRAIN], test[:QUICK_TEST]
    epochs = args.epochs or (8 if args.quick else 200)
    batches = args.batches or (15 if args.quick else 50)
    est = DynamicsReconstructor(
        model="clipped_shallow", latent_dim=3, hidden_dim=50, observation="identity", alpha="adaptive",
        epochs=epochs, batches_per_epoch=batches, standardize=source == "simulated", verbose=True,
        random_state=args.seed,
    )
    est.fit(train)
    begin = time.perf_counter()
    scores = est.dynamics_measures(test)
    score_s = time.perf_counter() - begin

    steps = len(test)
    x_gen = est.generate(steps + steps // 4, x0=test[0])[steps // 4 :]
    floor_train = train[: len(test)]
    rows = [
        {"data": source, "model": "clipped shPLRNN + aGTF", "epochs": est.n_epochs_, "steps": est.n_steps_,
         "final_alpha": est.alpha_, "fit_s": est.fit_time_, "score_s": score_s, **scores},
        {"data": source, "model": "train data (floor)", "epochs": 0, "steps": 0, "final_alpha": float("nan"),
         "fit_s": 0.0, "score_s": 0.0, "D_stsp": state_space_divergence(test, floor_train),
         "D_H": power_spectrum_error(test, floor_train), "PE": float("nan")},
    ]
    print(f"\nLorenz-63 ({source}): {len(train)} training / {len(test)} test samples, {est.n_steps_} gradient steps,"
          f" final alpha {est.alpha_:.3f}, loss {est.history_['loss'][0]:.4g} -> {est.history_['loss'][-1]:.4g}\n")
    print("| model | D_stsp | D_H | PE(20) | fit (s) |\n|---|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['model']} | {row['D_stsp']:.3g} | {row['D_H']:.3g} | {row['PE']:.3g} | {row['fit_s']:.1f} |")

    args.out.mkdir(parents=True, exist_ok=True)
    title = f"Lorenz-63, clipped shPLRNN, {est.n_steps_} steps"
    plot_attractor(test, x_gen, args.out / "attractor.png", title)
    plot_spectra(test, x_gen, args.out / "spectra.png", title)
    print(f"\nplots: {args.out / 'attractor.png'}, {args.out / 'spectra.png'}")
    return rows


if __name__ == "__main__":
    main()
