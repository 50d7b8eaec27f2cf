"""The point-cloud foundation end to end, on synthetic KITTI-layout scenes (and the real KITTI frame if present).

    python examples/pointcloud/kitti_tour.py                    # 20 synthetic scenes
    python examples/pointcloud/kitti_tour.py --quick            # 8 scenes, two noise levels
    python examples/pointcloud/kitti_tour.py --kitti path/to/kitti   # your KITTI root: ImageSets/train.txt's frames
    python examples/pointcloud/kitti_tour.py --kitti ../shared/data/kitti_sample --split all   # no ImageSets

Steps: ``SyntheticScenes`` renders seeded LiDAR scenes and writes them in KITTI layout; ``KittiDataset`` reads
them back (points cropped to the range and camera field of view, boxes in the LiDAR frame); augmentations,
voxelization and the dynamic voxel feature encoder run on one sample; a stand-in detector (the ground truth
jittered by a chosen noise, scored by how little it moved, plus false positives) writes KITTI result files; the
KITTI evaluation reads them and prints AP tables; a bird's-eye view of one frame goes to ``--out``. The stand-in
shows what the evaluator reports for known errors; it is not a detector (that is LION, a later issue).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pointcloud import DynamicVFE, VoxelGrid, voxelize  # noqa: E402
from pointcloud.data import KittiDataset  # noqa: E402
from pointcloud.evaluation import (  # noqa: E402
    FrameBoxes, evaluate, image_boxes, read_result_files, write_result_files,
)
from pointcloud.synthetic import SyntheticScenes  # noqa: E402
from pointcloud.viz import save_bev  # noqa: E402

RANGE = (0.0, -40.0, -3.0, 70.4, 40.0, 1.0)
VOXEL = (0.05, 0.05, 0.1)


def stand_in_detections(sample: dict[str, Any], noise: float, rng: np.random.Generator) -> FrameBoxes:
    """Ground truth moved by ``noise`` metres (and ``noise / 4`` radians) per box, scored by how little it moved,
    plus one false positive per frame."""
    boxes = sample["gt_boxes"].astype(np.float64).copy()
    shift = rng.normal(0.0, noise, (len(boxes), 3))
    boxes[:, :3] += shift
    boxes[:, 6] += rng.normal(0.0, noise / 4, len(boxes))
    scores = np.exp(-np.linalg.norm(shift, axis=1))
    fake = np.array([[rng.uniform(10, 60), rng.uniform(-10, 10), -0.9, 3.9, 1.6, 1.56, rng.uniform(-3, 3)]])
    boxes = np.vstack([boxes, fake])
    names = np.append(sample["gt_names"], "Car")
    scores = np.append(scores, rng.uniform(0, 1))
    return FrameBoxes(boxes, names, image_boxes(boxes, sample["calib"]), scores=scores)


def tour(dataset: KittiDataset, out: Path, noises: list[float], seed: int) -> list[dict[str, Any]]:
    ground_truth = [dataset.ground_truth(i) for i in range(len(dataset))]
    samples = [dataset[i] for i in range(len(dataset))]

    grid = VoxelGrid(RANGE, VOXEL)
    points = torch.from_numpy(samples[0]["points"])
    begin = time.perf_counter()
    voxels = voxelize(points, None, grid)
    features = DynamicVFE(4)(points, voxels, grid)
    print(f"frame {samples[0]['frame_id']}: {len(points):,} points -> {voxels.num_voxels:,} voxels "
          f"({voxels.dropped} outside the range), VFE features {tuple(features.shape)}, "
          f"{1000 * (time.perf_counter() - begin):.0f} ms")

    rows = []
    rng = np.random.default_rng(seed)
    for noise in noises:
        detections = [stand_in_detections(s, noise, rng) for s in samples]
        results = out / f"results_noise_{noise:g}"
        write_result_files(results, dataset.frame_ids, detections, [s["calib"] for s in samples])
        read_back = read_result_files(results, dataset.frame_ids, [s["calib"] for s in samples])
        evaluation = evaluate(ground_truth, read_back)
        print(f"\n### stand-in detector, box noise {noise} m: AP|R40 (%)\n")
        print(evaluation.table())
        for (cls, metric, difficulty), ap in evaluation.ap.items():
            rows.append({"noise": noise, "class": cls, "metric": metric, "difficulty": difficulty, "ap": ap,
                         "num_gt": evaluation.num_gt[(cls, metric, difficulty)]})
        if noise == noises[0]:
            path = save_bev(out / "bev.png", samples[0]["points"], samples[0]["gt_boxes"], detections[0].boxes,
                            detections[0].scores, point_cloud_range=RANGE,
                            title=f"frame {samples[0]['frame_id']}: ground truth (green), stand-in (red)")
            print(f"\nbird's-eye view: {path}")
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run the tour; returns one row per (noise, class, metric, difficulty)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.05, 0.2, 0.5], help="box jitter (m)")
    parser.add_argument("--kitti", type=Path, help="a KITTI root to read instead of synthetic scenes")
    parser.add_argument("--split", choices=["train", "val", "trainval", "all"],
                        help="--kitti's split (labelled: not test), as KittiDataset; 'all' = every scan under "
                        "training/ (default: train)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/pointcloud"))
    parser.add_argument("--quick", action="store_true", help="8 scenes, two noise levels")
    args = parser.parse_args(argv)
    if args.split is not None and args.kitti is None:
        parser.error("--split picks frames of --kitti; the synthetic scenes are read whole")
    if args.quick:
        args.scenes, args.noise = 8, [0.05, 0.5]
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.kitti is not None:
        split = args.split or "train"
        try:
            dataset = KittiDataset(args.kitti, None if split == "all" else split, point_cloud_range=RANGE)
        except (FileNotFoundError, ValueError) as err:
            parser.error(f"--kitti {args.kitti} --split {split}: {err}")
        return tour(dataset, args.out, args.noise, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        begin = time.perf_counter()
        scenes = SyntheticScenes(args.scenes, seed=args.seed)
        scenes.write_kitti(tmp)
        print(f"{args.scenes} synthetic scenes written in KITTI layout in {time.perf_counter() - begin:.1f} s "
              f"({os.path.join(tmp, 'training')})")
        dataset = KittiDataset(tmp, "trainval", point_cloud_range=RANGE)  # every scene written
        return tour(dataset, args.out, args.noise, args.seed)


if __name__ == "__main__":
    main()
