"""Run a trained LION on a folder of LiDAR scans and write KITTI result files (scored when labels are there).

    python examples/pointcloud/infer.py --checkpoint runs/lion/mamba2/best.pt \
        --scans path/to/kitti/training --out runs/lion/results

``--scans`` holds ``velodyne/*.bin`` and ``calib/*.txt`` (KITTI layout; without ``calib/`` the standard KITTI
calibration is assumed). Points are cropped to the model's range and to the camera field of view, as in training.
One ``<frame>.txt`` per scan goes to ``--out`` in the format of the KITTI benchmark. When ``label_2/`` is present
the detections are read back from those files and evaluated (KITTI AP|R40). A score over a handful of frames
says little about a detector; it checks that the pipeline runs end to end.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pointcloud.calibration import Calibration  # noqa: E402
from pointcloud.data import fov_mask, range_mask  # noqa: E402
from pointcloud.evaluation import (  # noqa: E402
    IOU_THRESHOLDS, evaluate, frame_from_labels, read_result_files, write_result_files,
)
from pointcloud.kitti_io import read_labels, read_points  # noqa: E402
from pointcloud.lion import LIONDetector, detect  # noqa: E402
from pointcloud.synthetic import kitti_calibration  # noqa: E402


def load_scans(folder: Path, point_cloud_range, fov_only: bool = True) -> list[dict[str, Any]]:
    """``{"frame_id", "points", "calib"}`` per ``folder/velodyne/*.bin``, cropped like the training data."""
    bins = sorted((folder / "velodyne").glob("*.bin"))
    if not bins:
        raise FileNotFoundError(f"no scans in {folder / 'velodyne'}")
    scans = []
    for path in bins:
        calib_path = folder / "calib" / f"{path.stem}.txt"
        calib = Calibration.from_file(calib_path) if calib_path.exists() else kitti_calibration()
        points = read_points(path)
        keep = range_mask(points, point_cloud_range)
        if fov_only:
            keep &= fov_mask(points, calib)
        scans.append({"frame_id": path.stem, "points": np.ascontiguousarray(points[keep]), "calib": calib})
    return scans


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Returns ``{"frame_ids": [...], "num_detections": [...], "evaluation": KittiEvaluation | None}``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--scans", type=Path, required=True, help="folder with velodyne/ (and calib/, label_2/)")
    parser.add_argument("--out", type=Path, default=Path("runs/lion/results"))
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--no-fov", action="store_true", help="keep points outside the camera's field of view")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = LIONDetector.load(args.checkpoint).to(args.device)
    scans = load_scans(args.scans, model.config.point_cloud_range, fov_only=not args.no_fov)
    frame_ids = [s["frame_id"] for s in scans]
    calibs = [s["calib"] for s in scans]
    detections = []
    for start in tqdm(range(0, len(scans), args.batch_size), desc="LION inference", unit="batch"):
        detections += detect(model, scans[start:start + args.batch_size], args.batch_size)
    write_result_files(args.out, frame_ids, detections, calibs)
    print(f"{len(scans)} result files ({sum(len(d.boxes) for d in detections)} detections) in {args.out}")

    evaluation = None
    labels = args.scans / "label_2"
    if labels.is_dir():
        truth = [frame_from_labels(read_labels(labels / f"{fid}.txt"), c) for fid, c in zip(frame_ids, calibs)]
        read_back = read_result_files(args.out, frame_ids, calibs)
        classes = [c for c in model.config.classes if c in IOU_THRESHOLDS]
        evaluation = evaluate(truth, read_back, classes=classes)
        print(f"\n### AP|R40 (%) on {len(scans)} labelled frame(s)\n\n{evaluation.table()}")
        if len(scans) < 20:
            print(f"\n({len(scans)} frame(s): this checks the pipeline, it does not measure the detector.)")
    return {"frame_ids": frame_ids, "num_detections": [len(d.boxes) for d in detections], "evaluation": evaluation}


if __name__ == "__main__":
    main()
