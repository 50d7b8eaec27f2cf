"""What `make demo` runs: a short run of each example on bundled data, then one summary table.

    python examples/demo.py

Parts: the operator benchmark (``benchmarks/ops.py --quick``), the state-tracking experiment on parity
(``examples/state_tracking.py --quick --tasks parity``) and the forecasting example on statsmodels' sunspots
(``examples/timeseries/forecast.py --quick``), the dynamical-systems reconstruction of Lorenz-63
(``examples/timeseries/dynamics.py --quick``) and a small LightNet trained for a few epochs on scikit-learn's
digits (``examples/vision/train.py --epochs 6``), and the graph task benchmark on two tasks
(``examples/graphs/benchmark_tasks.py --quick``) with the karate club (``examples/graphs/karate.py --quick``), and
the point-cloud tour on synthetic KITTI-layout scenes (``examples/pointcloud/kitti_tour.py --quick``) with a
40-step smoke run of the LION detector (``examples/pointcloud/train.py --quick``).
Each prints its own tables and writes its plots under ``runs/``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Python puts this script's folder (examples/) first on sys.path, where examples/timeseries/ would be found as a
# namespace package before the installed timeseries package; the project root in front resolves the real one.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scripts import load_script

# A short run: the default 30 epochs reach ~97% (benchmarks/RESULTS.md); 6 reach ~80% in about a minute.
VISION_EPOCHS = 6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 1)[1])
    parser.parse_args(argv)
    summary: list[tuple[str, str, str]] = []
    timings: list[tuple[str, float]] = []

    start = time.perf_counter()
    for target, met, value in load_script("benchmarks/ops.py", "demo_ops").main(["--quick"]):
        summary.append(("seqcore.ops (CPU, fwd+bwd)", target, f"{value} ({'met' if met else 'missed'})"))
    timings.append(("operator benchmark", time.perf_counter() - start))

    start = time.perf_counter()
    state_tracking = load_script("examples/state_tracking.py", "demo_state_tracking")
    for row in state_tracking.main(["--quick", "--tasks", "parity"]):
        span = "[-1, 1]" if row["neg_eigval"] else "[0, 1]"
        summary.append(("state tracking", f"{row['task']} {row['mixer']} {span}: accuracy at T=256", f"{100 * row['seq_acc']:.1f}%"))
    timings.append(("state tracking", time.perf_counter() - start))

    start = time.perf_counter()
    forecast = load_script("examples/timeseries/forecast.py", "demo_forecast")
    for row in forecast.main(["--quick", "--series", "sunspots"]):
        summary.append(("forecasting (sunspots)", f"{row['model']} MAE, horizon {row['horizon']}", f"{row['mae']:.2f}"))
    timings.append(("forecasting", time.perf_counter() - start))

    start = time.perf_counter()
    for row in load_script("examples/timeseries/dynamics.py", "demo_dynamics").main(["--quick"]):
        # 120 gradient steps check the mechanics; the model needs tens of thousands (benchmarks/dsr.py).
        trained = f" after {row['steps']} steps" if row["steps"] else ""
        summary.append(("dynamics (Lorenz-63)", f"{row['model']}{trained}: D_stsp / D_H / PE(20)",
                        f"{row['D_stsp']:.3g} / {row['D_H']:.3g} / {row['PE']:.3g}"))
    timings.append(("dynamics", time.perf_counter() - start))

    start = time.perf_counter()
    vision_train = load_script("examples/vision/train.py", "demo_vision_train")
    vision = vision_train.main(["--epochs", str(VISION_EPOCHS), "--out", "runs/vision_demo"])
    summary.append(("vision (digits)", f"small LightNet, {vision['epochs']} epochs: test accuracy",
                    f"{100 * vision['test_acc']:.1f}%"))
    timings.append(("vision", time.perf_counter() - start))

    start = time.perf_counter()
    tasks = load_script("examples/graphs/benchmark_tasks.py", "demo_benchmark_tasks")
    for row in tasks.main(["--quick", "--out", "runs/graphs_demo"]):
        summary.append(("graphs (synthetic tasks)", f"{row['model']} on {row['task']}: test accuracy",
                        f"{100 * row['test_acc']:.1f}%"))
    karate = load_script("examples/graphs/karate.py", "demo_karate").main(["--quick"])
    for name in dict.fromkeys(r["model"] for r in karate):
        accs = [r["test_acc"] for r in karate if r["model"] == name]
        summary.append(("graphs (karate club)", f"{name}, 2 labels per club: mean test accuracy",
                        f"{100 * sum(accs) / len(accs):.1f}%"))
    timings.append(("graphs", time.perf_counter() - start))

    start = time.perf_counter()
    tour = load_script("examples/pointcloud/kitti_tour.py", "demo_kitti_tour")
    for row in tour.main(["--quick", "--out", "runs/pointcloud_demo"]):
        if row["class"] == "Car" and row["difficulty"] == "moderate":
            summary.append(("point clouds (synthetic KITTI)", f"stand-in detector, {row['noise']} m box noise: "
                            f"Car {row['metric'].upper()} AP|R40 moderate", f"{row['ap']:.1f}"))
    lion_train = load_script("examples/pointcloud/train.py", "demo_pointcloud_train")
    lion = lion_train.main(["--quick", "--out", "runs/lion_demo", "--cache", "runs/lion_demo"])
    steps = lion["curve"][-1]["step"]
    ap = lion["final"]["ap"]
    # 40 steps check the pipeline end to end; the trained numbers (about 20 CPU minutes) are in the README.
    summary.append(("point clouds (LION)", f"small LION ({lion['operator']}), {steps} steps: Car 3D / BEV AP|R40 "
                    "moderate on 6 held-out scenes", f"{ap.get('Car 3D', 0.0):.1f} / {ap.get('Car BEV', 0.0):.1f}"))
    timings.append(("point clouds", time.perf_counter() - start))

    print("\n## make demo: summary\n")
    print("| part | measurement | value |")
    print("|---|---|---|")
    for part, what, value in summary:
        print(f"| {part} | {what} | {value} |")
    print("\n" + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings))


if __name__ == "__main__":
    main()
