"""Run a trained LION on one split of a KITTI root and write KITTI result files (scored when the split has labels).

    python examples/pointcloud/infer.py --checkpoint runs/lion/mamba2/best.pt \
        --data path/to/kitti --split val --out runs/lion/results

``--data`` is the KITTI root (holding ``training/``, ``testing/``, ``ImageSets/``) and ``--split`` picks the frames
exactly as ``KittiDataset(root, split)`` does: ``train``, ``val`` and ``trainval`` list frames of ``training/`` in
``ImageSets/<split>.txt``, ``test`` those of ``testing/`` in ``ImageSets/test.txt``, and ``all`` every scan under
``training/`` (``split=None``, for a folder without ImageSets). Every frame needs its ``calib/<id>.txt``; a missing
one is an error. ``--synthetic-calib`` instead gives every frame the calibration ``SyntheticScenes`` writes, which
is only right for synthetic scenes (a warning says so). Points are cropped to the model's range and to the camera
field of view, as in training. One ``<frame>.txt`` per frame goes to ``--out`` in the format of the KITTI
benchmark. Splits with labels (all but ``test``) are then evaluated from those files read back (KITTI AP|R40). A
score over a handful of frames says little about a detector; it checks that the pipeline runs end to end.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

from seqcore.extras import require_extra  # noqa: E402

require_extra("examples", "examples/pointcloud/infer.py")  # matplotlib and tqdm: name the extra, not a bare ModuleNotFoundError

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pointcloud.data import SPLITS, KittiDataset  # noqa: E402
from pointcloud.evaluation import IOU_THRESHOLDS, evaluate, read_result_files, write_result_files  # noqa: E402
from pointcloud.lion import LIONDetector, detect  # noqa: E402
from pointcloud.synthetic import kitti_calibration  # noqa: E402

# The command-line name of split=None.
ALL = "all"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Returns ``{"frame_ids": [...], "num_detections": [...], "evaluation": KittiEvaluation | None}``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True,
                        help="KITTI root (holding training/, testing/, ImageSets/), not a split folder")
    parser.add_argument("--split", choices=[*SPLITS, ALL], default="val",
                        help="frames of ImageSets/<split>.txt, as KittiDataset; 'all' = every scan under training/ "
                        "(default: val)")
    parser.add_argument("--out", type=Path, default=Path("runs/lion/results"))
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--no-fov", action="store_true", help="keep points outside the camera's field of view")
    parser.add_argument("--synthetic-calib", action="store_true",
                        help="use SyntheticScenes' calibration for every frame instead of calib/ (synthetic data "
                        "only: real KITTI frames each have their own)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be positive")
    torch.set_num_threads(1)
    model = LIONDetector.load(args.checkpoint).to(args.device)
    calibration = None
    if args.synthetic_calib:
        warnings.warn("--synthetic-calib: every frame gets SyntheticScenes' calibration, calib/ is not read; boxes, "
                      "2-D boxes and the camera crop are wrong for any data not written by SyntheticScenes",
                      UserWarning, stacklevel=1)
        calibration = kitti_calibration()
    try:
        dataset = KittiDataset(args.data, None if args.split == ALL else args.split, classes=model.config.classes,
                               point_cloud_range=model.config.point_cloud_range, fov_only=not args.no_fov,
                               calibration=calibration)
    except (FileNotFoundError, ValueError) as err:
        parser.error(f"--data {args.data} --split {args.split}: {err}")
    samples = [dataset[i] for i in range(len(dataset))]
    frame_ids = dataset.frame_ids
    calibs = [s["calib"] for s in samples]
    detections = []
    for start in tqdm(range(0, len(samples), args.batch_size), desc="LION inference", unit="batch"):
        detections += detect(model, samples[start:start + args.batch_size], args.batch_size)
    write_result_files(args.out, frame_ids, detections, calibs)
    print(f"{len(samples)} result files ({sum(len(d.boxes) for d in detections)} detections) in {args.out}")

    evaluation = None
    if dataset.has_labels:
        truth = [dataset.ground_truth(i) for i in range(len(dataset))]
        read_back = read_result_files(args.out, frame_ids, calibs)
        classes = [c for c in model.config.classes if c in IOU_THRESHOLDS]
        evaluation = evaluate(truth, read_back, classes=classes)
        print(f"\n### AP|R40 (%) on {len(samples)} labelled frame(s)\n\n{evaluation.table()}")
        if len(samples) < 20:
            print(f"\n({len(samples)} frame(s): this checks the pipeline, it does not measure the detector.)")
    else:
        print(f"(split {args.split!r} has no labels: result files only, no evaluation)")
    return {"frame_ids": frame_ids, "num_detections": [len(d.boxes) for d in detections], "evaluation": evaluation}


if __name__ == "__main__":
    main()
