"""KITTI AP by the devkit's algorithm (the default) against the exact-recall deviation, on synthetic scenes.

    python benchmarks/kitti_eval_methods.py                       # 200 scenes and 22 scenes, box noise 0.2 m
    python benchmarks/kitti_eval_methods.py --scenes 50 --noise 0.05 0.2 0.5
    python benchmarks/kitti_eval_methods.py --quick               # 6 scenes (what the test runs)

Method. ``SyntheticScenes(n, seed)`` is written in KITTI layout; its label files are the ground truth. The
stand-in detector is the ground truth of the three KITTI classes with Gaussian noise of the given standard
deviation on each centre coordinate (a quarter of it, in radians, on the heading, which moves alpha too), scored
``exp(-|shift|)``, plus one random Car false positive per frame; its detections go through KITTI result files and
are read back, as a detector's would. Both methods then evaluate the same files. The table gives moderate AP|R40
per class and metric (AOS on the 2-D matching), devkit and exact recall, and their difference.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np

from benchmarks.measure import Stopwatch
from pointcloud.calibration import Calibration
from pointcloud.evaluation import (
    IOU_THRESHOLDS, METRICS, FrameBoxes, KittiEvaluation, evaluate, frame_from_labels, image_boxes,
    read_result_files, write_result_files,
)
from pointcloud.kitti_io import read_labels
from pointcloud.synthetic import SyntheticScenes

CLASSES = tuple(IOU_THRESHOLDS)


def stand_in(truth: FrameBoxes, calib: Calibration, noise: float, rng: np.random.Generator) -> FrameBoxes:
    """The frame's Car / Pedestrian / Cyclist boxes jittered by ``noise`` metres, plus one false positive."""
    keep = np.isin(truth.names, CLASSES)
    boxes = truth.boxes[keep].copy()
    shift = rng.normal(0.0, noise, (len(boxes), 3))
    boxes[:, :3] += shift
    boxes[:, 6] += rng.normal(0.0, noise / 4, len(boxes))
    fake = [[rng.uniform(10, 60), rng.uniform(-10, 10), -0.9, 3.9, 1.6, 1.56, rng.uniform(-3, 3)]]
    boxes = np.vstack([boxes, fake])
    scores = np.append(np.exp(-np.linalg.norm(shift, axis=1)), rng.uniform(0, 1))
    return FrameBoxes(boxes, np.append(truth.names[keep], "Car"), image_boxes(boxes, calib), scores=scores)


def measure(num_scenes: int, noise: float, seed: int) -> tuple[KittiEvaluation, KittiEvaluation, int]:
    """``(devkit, exact_recall, number of labelled objects)`` for ``num_scenes`` scenes at one noise level."""
    with tempfile.TemporaryDirectory() as root:
        frame_ids = SyntheticScenes(num_scenes, seed=seed).write_kitti(root)
        folder = os.path.join(root, "training")
        calibs = [Calibration.from_file(os.path.join(folder, "calib", f"{f}.txt")) for f in frame_ids]
        truth = [frame_from_labels(read_labels(os.path.join(folder, "label_2", f"{f}.txt")), c)
                 for f, c in zip(frame_ids, calibs)]
        rng = np.random.default_rng(seed)
        detections = [stand_in(t, c, noise, rng) for t, c in zip(truth, calibs)]
        write_result_files(os.path.join(root, "results"), frame_ids, detections, calibs)
        read_back = read_result_files(os.path.join(root, "results"), frame_ids, calibs)
    devkit = evaluate(truth, read_back)
    exact = evaluate(truth, read_back, method="exact_recall")
    return devkit, exact, sum(len(t.names) for t in truth)


def table(rows: list[tuple[int, int, float, KittiEvaluation, KittiEvaluation]]) -> str:
    lines = ["| scenes | objects | noise | class | metric | moderate boxes | devkit | exact recall | devkit - exact |",
             "|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for scenes, objects, noise, devkit, exact in rows:
        for cls in CLASSES:
            for metric in METRICS:
                key = (cls, metric, "moderate")
                lines.append(f"| {scenes} | {objects:,} | {noise:g} | {cls} | {metric.upper()} | {devkit.num_gt[key]} "
                             f"| {devkit.ap[key]:.2f} | {exact.ap[key]:.2f} | {devkit.ap[key] - exact.ap[key]:+.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[tuple[int, int, float, KittiEvaluation, KittiEvaluation]]:
    """Print the table; returns one ``(scenes, objects, noise, devkit, exact_recall)`` row per setting."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, nargs="+", default=[200, 22], help="scene counts to evaluate")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.2], help="box jitter (m)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="6 scenes, noise 0.2")
    args = parser.parse_args(argv)
    if args.quick:
        args.scenes, args.noise = [6], [0.2]
    rows = []
    for scenes in args.scenes:
        for noise in args.noise:
            watch = Stopwatch()
            devkit, exact, objects = measure(scenes, noise, args.seed)
            rows.append((scenes, objects, noise, devkit, exact))
            print(f"{scenes} scenes, noise {noise:g} m: {watch.seconds():.1f} s", file=sys.stderr)
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
