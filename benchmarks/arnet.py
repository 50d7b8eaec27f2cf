"""AR-Net against least squares: the paper's coefficient-recovery claim and fit time against the AR order.

    python benchmarks/arnet.py            # 5 seeds; p = 10, 30, 100, 300, 1000
    python benchmarks/arnet.py --quick    # 2 seeds; p = 10, 30, 100

(a) The AR(3) process of Triebe et al. 2019 (lags 1, 3, 10 = 0.2, 0.3, -0.5, unit Gaussian noise), 1,000
samples, fitted with 20 lags: sTPE of least squares, of unregularized AR-Net (SGD) and of sparse AR-Net
(``sparsity=0.05``, default ``c_lambda``, ``lr``, ``epochs``; those were picked on seeds 0-5, the table uses
seeds 100+ so it is not scored on the data it was tuned on).
(b) Wall-clock fit time on 10 p + 1,000 samples of the same process, fitted with p lags, for the closed-form
solver, AR-Net's SGD (100 epochs, batch 32, with and without the regularizer) and statsmodels' ``AutoReg``
(OLS). One fit each after a warm-up; CPU, one thread (set before numpy and torch load).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Callable

# One thread for every library: the timings then compare algorithms rather than thread pools (tiny SGD steps
# on a busy machine slow down badly with several threads). Must be set before numpy/torch load their pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchmarks.measure import time_calls  # noqa: E402
from timeseries.arnet import LagRegressor, lag_matrix, stpe  # noqa: E402

AR3 = np.zeros(10)
AR3[[0, 2, 9]] = [0.2, 0.3, -0.5]
N_LAGS = 20
SPARSITY = 0.05
PAPER_STPE = {"least squares": 18.3, "AR-Net, no regularizer": "= least squares", "sparse AR-Net": 3.2}


def simulate(n: int, seed: int, burn: int = 500) -> np.ndarray:
    """``(n,)`` samples of the paper's AR(3) process after a burn-in."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n + burn + len(AR3))
    noise = rng.normal(size=y.shape)
    for t in range(len(AR3), len(y)):
        y[t] = AR3 @ y[t - len(AR3):t][::-1] + noise[t]
    return y[-n:]


def recovery_table(seeds: list[int]) -> None:
    truth = np.concatenate([AR3, np.zeros(N_LAGS - len(AR3))])
    models: dict[str, Callable[[], LagRegressor]] = {
        "least squares": lambda: LagRegressor(solver="lstsq"),
        "AR-Net, no regularizer": lambda: LagRegressor(solver="sgd", random_state=0),
        f"sparse AR-Net (s={SPARSITY})": lambda: LagRegressor(solver="sgd", sparsity=SPARSITY, random_state=0),
    }
    scores: dict[str, list[float]] = {name: [] for name in models}
    gap_to_ls = []
    for seed in seeds:
        X, Y = lag_matrix(simulate(1_000, seed), N_LAGS, 1)
        coefs = {name: make().fit(X, Y[:, 0]).coef_ for name, make in models.items()}
        for name, coef in coefs.items():
            scores[name].append(stpe(coef, truth))
        gap_to_ls.append(float(np.abs(coefs["AR-Net, no regularizer"] - coefs["least squares"]).max()))
    print(f"### sTPE on the paper's AR(3), {N_LAGS} lags, 1,000 samples, seeds {seeds[0]}..{seeds[-1]}\n")
    print("| model | sTPE mean ± std | per seed | paper |")
    print("|---|---|---|---|")
    for name, values in scores.items():
        paper = PAPER_STPE.get("sparse AR-Net" if name.startswith("sparse") else name, "")
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        per_seed = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {statistics.mean(values):.1f} ± {spread:.1f} | {per_seed} | {paper} |")
    print(f"\nUnregularized AR-Net vs least squares: max |coef difference| over seeds = {max(gap_to_ls):.4f}\n")


def _time(fit: Callable[[], object]) -> float:
    """Wall seconds of one ``fit()`` (the table's warm-up is torch's first call, once, before it)."""
    return time_calls(fit, warmup=0, repeats=1).median


def timing_table(orders: list[int]) -> None:
    from statsmodels.tsa.ar_model import AutoReg

    warm = simulate(300, 0)
    LagRegressor(solver="sgd", epochs=1).fit(*lag_matrix(warm, 5, 1))  # torch's first-call start-up
    print("### Fit time (s) against the AR order p, 10 p + 1,000 samples\n")
    print("| p | samples | lstsq | AR-Net SGD | sparse AR-Net SGD | statsmodels AutoReg |")
    print("|---|---|---|---|---|---|")
    for p in orders:
        y = simulate(10 * p + 1_000, seed=p)
        X, Y = lag_matrix(y, p, 1)
        target = Y[:, 0]
        row = [
            _time(lambda: LagRegressor(solver="lstsq").fit(X, target)),  # noqa: B023 -- _time calls each lambda at once
            _time(lambda: LagRegressor(solver="sgd", random_state=0).fit(X, target)),  # noqa: B023
            _time(lambda: LagRegressor(solver="sgd", sparsity=SPARSITY, random_state=0).fit(X, target)),  # noqa: B023
            _time(lambda: AutoReg(y, lags=p, trend="c").fit()),  # noqa: B023
        ]
        print(f"| {p} | {len(y)} | " + " | ".join(f"{t:.3f}" for t in row) + " |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds and p up to 100")
    args = parser.parse_args()
    seeds = list(range(100, 102 if args.quick else 105))
    orders = [10, 30, 100] if args.quick else [10, 30, 100, 300, 1000]
    recovery_table(seeds)
    timing_table(orders)


if __name__ == "__main__":
    main()
