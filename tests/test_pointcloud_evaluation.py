"""KITTI evaluation: perfect and shifted detections, the ignore rules, result files, and the real frame.

Most cases here read AP with ``method="exact_recall"``, where a perfect detector scores 100 at any box count, so
that the expected numbers say what the IoU and ignore rules did; the devkit's own sampling (the default) is
checked against hand-computed cases in ``test_pointcloud_evaluation_devkit.py``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from kitti_files import CALIB_TEXT, FRAME, KITTI_SAMPLE
from pointcloud.calibration import Calibration
from pointcloud.evaluation import FrameBoxes, evaluate, frame_from_labels, image_boxes, read_result_files, write_result_files
from pointcloud.kitti_io import read_labels

KITTI = os.path.join(KITTI_SAMPLE, "training")


def ground_truth(rng: np.random.Generator, n: int = 6, name: str = "Car") -> FrameBoxes:
    """``n`` axis-aligned boxes far apart, tall enough in the image for every difficulty."""
    size = {"Car": (4.0, 1.6, 1.5), "Pedestrian": (0.8, 0.6, 1.7), "Cyclist": (1.8, 0.6, 1.7)}[name]
    x = 8.0 + 6.0 * np.arange(n)
    y = rng.uniform(-3, 3, n)
    boxes = np.column_stack([x, y, np.full(n, -0.9), *[np.full(n, s) for s in size], np.zeros(n)])
    bbox = np.tile([100.0, 100.0, 200.0, 200.0], (n, 1))
    return FrameBoxes(boxes, [name] * n, bbox, occluded=np.zeros(n, int), truncated=np.zeros(n))


def as_detections(gt: FrameBoxes, scores: np.ndarray, shift: np.ndarray | float = 0.0) -> FrameBoxes:
    boxes = gt.boxes.copy()
    boxes[:, 0] += shift
    return FrameBoxes(boxes, gt.names.copy(), gt.bbox.copy(), scores=scores)


def test_ground_truth_as_detections():
    rng = np.random.default_rng(0)
    gts = [ground_truth(rng, 5, "Car"), ground_truth(rng, 3, "Pedestrian"), ground_truth(rng, 4, "Cyclist")]
    dts = [as_detections(g, rng.uniform(0.1, 1, len(g.boxes))) for g in gts]
    exact = evaluate(gts, dts, method="exact_recall")
    assert all(v == pytest.approx(100.0) for v in exact.ap.values())
    assert all(v == pytest.approx(100.0) for v in exact.ap11.values())
    assert exact.num_gt[("Car", "3d", "easy")] == 5
    assert "| Car | 3D | 0.7 | 100.00 | 100.00 | 100.00 |" in exact.table()
    # The devkit keeps one threshold per found box here (N <= 40): precision 1 at indices 0..N-1 only, so
    # AP|R40 = (N - 1) / 40 and AP|R11 counts indices 0, 4, ... below N -- for every metric, AOS included.
    devkit = evaluate(gts, dts)
    for cls, n in (("Car", 5), ("Pedestrian", 3), ("Cyclist", 4)):
        for metric in ("2d", "bev", "3d", "aos"):
            assert devkit.ap[(cls, metric, "hard")] == pytest.approx(100 * (n - 1) / 40), (cls, metric)
            assert devkit.ap11[(cls, metric, "hard")] == pytest.approx(100 * len(range(0, n, 4)) / 11)
    assert "| Car | 3D | 0.7 | 10.00 | 10.00 | 10.00 |" in devkit.table()
    assert "| Car | AOS | 0.7 |" in devkit.table()


def test_shifted_copies_score_what_their_iou_implies():
    # An axis-aligned Car shifted by d along its length 4 has IoU (4 - d) / (4 + d): 0.739 at d = 0.6 (a hit at
    # the 0.7 threshold), 0.667 at d = 0.8 (a miss).
    rng = np.random.default_rng(1)
    gts = [ground_truth(rng, 10)]
    exact = {"method": "exact_recall"}
    assert evaluate(gts, [as_detections(gts[0], np.linspace(1, 0.1, 10), 0.6)], **exact).ap[("Car", "3d", "easy")] == pytest.approx(100)
    assert evaluate(gts, [as_detections(gts[0], np.linspace(1, 0.1, 10), 0.8)], **exact).ap[("Car", "3d", "easy")] == 0.0
    # The five best-scored detections hit, the rest miss: precision 1 up to recall 0.5, nothing after.
    half = as_detections(gts[0], np.linspace(1, 0.1, 10), np.where(np.arange(10) < 5, 0.6, 0.8))
    result = evaluate(gts, [half], classes=["Car"], **exact)
    assert result.ap[("Car", "3d", "moderate")] == pytest.approx(50.0)
    assert result.ap11[("Car", "3d", "moderate")] == pytest.approx(100 * 6 / 11)
    # The devkit keeps the five hits' scores as thresholds 0..4 (each recall step 1/10 is at least 1/40):
    # precision 1 at indices 0..4, AP|R40 = 4 / 40, AP|R11 = 2 / 11 (indices 0 and 4).
    result = evaluate(gts, [half], classes=["Car"])
    assert result.ap[("Car", "3d", "moderate")] == pytest.approx(10.0)
    assert result.ap11[("Car", "3d", "moderate")] == pytest.approx(100 * 2 / 11)
    # Misses scored above the hits: each hit comes after its false positives, precision at most 0.5.
    worse = as_detections(gts[0], np.linspace(0.1, 1, 10), np.where(np.arange(10) < 5, 0.6, 0.8))
    assert evaluate(gts, [worse], classes=["Car"], **exact).ap[("Car", "3d", "moderate")] < 30.0
    # BEV ignores height: a copy raised by half its height misses in 3-D (IoU 1/3) and hits in BEV.
    raised = as_detections(gts[0], np.ones(10))
    raised.boxes[:, 2] += 0.75
    result = evaluate(gts, [raised], classes=["Car"], **exact)
    assert result.ap[("Car", "3d", "easy")] == 0.0 and result.ap[("Car", "bev", "easy")] == pytest.approx(100)


def test_ignore_rules_neighbour_class_difficulty_and_small_detections():
    rng = np.random.default_rng(2)
    gt = ground_truth(rng, 4)
    gt.names[0] = "Van"  # a Car detected on a Van is neither a hit nor a false positive
    gt.occluded[1] = 2  # only the hard difficulty counts this car
    dt = as_detections(gt, np.array([0.9, 0.8, 0.7, 0.6]))
    dt.names[:] = "Car"
    result = evaluate([gt], [dt], classes=["Car"], metrics=["3d"], method="exact_recall")
    assert result.num_gt[("Car", "3d", "easy")] == 2 and result.num_gt[("Car", "3d", "hard")] == 3
    assert result.ap[("Car", "3d", "easy")] == pytest.approx(100)
    assert result.ap[("Car", "3d", "hard")] == pytest.approx(100)
    # A false positive whose 2-D box is 20 px tall is ignored at every difficulty (minimum 25 px).
    extra = FrameBoxes(np.vstack([dt.boxes, [60, 10, -0.9, 4, 1.6, 1.5, 0]]), [*dt.names, "Car"],
                       np.vstack([dt.bbox, [0, 0, 50, 20]]), scores=np.append(dt.scores, 0.99))
    assert evaluate([gt], [extra], classes=["Car"], method="exact_recall").ap[("Car", "3d", "hard")] == pytest.approx(100)
    # The same detection 60 px tall is a false positive ranked first.
    extra.bbox[-1] = [0, 0, 50, 60]
    assert evaluate([gt], [extra], classes=["Car"], method="exact_recall").ap[("Car", "3d", "hard")] < 100


def test_empty_frames_and_errors():
    rng = np.random.default_rng(3)
    gt = ground_truth(rng, 3)
    empty = FrameBoxes(np.zeros((0, 7)), [], np.zeros((0, 4)), scores=np.zeros(0))
    no_gt = FrameBoxes(np.zeros((0, 7)), [], np.zeros((0, 4)), occluded=np.zeros(0), truncated=np.zeros(0))
    result = evaluate([gt, no_gt], [empty, empty], classes=["Car"])
    assert result.ap[("Car", "3d", "easy")] == 0.0
    assert evaluate([no_gt], [empty], classes=["Car"]).num_gt[("Car", "3d", "easy")] == 0
    with pytest.raises(ValueError, match="ground-truth frames"):
        evaluate([gt], [])
    with pytest.raises(ValueError, match="need scores"):
        evaluate([gt], [gt])
    with pytest.raises(ValueError, match="unknown class"):
        evaluate([gt], [empty], classes=["Truck"])
    with pytest.raises(ValueError, match="4 rows for 3 boxes"):
        FrameBoxes(gt.boxes, gt.names, np.zeros((4, 4)))


def test_result_files_round_trip(tmp_path):
    calib_path = tmp_path / "calib.txt"
    calib_path.write_text(CALIB_TEXT)
    calib = Calibration.from_file(calib_path)
    rng = np.random.default_rng(4)
    gt = ground_truth(rng, 4)
    gt.boxes[:, 6] = rng.uniform(-np.pi, np.pi, 4)
    gt.bbox = image_boxes(gt.boxes, calib)
    dt = as_detections(gt, rng.uniform(0, 1, 4), 0.3)
    write_result_files(tmp_path / "results", ["000000", "000001"], [dt, FrameBoxes(np.zeros((0, 7)), [], np.zeros((0, 4)), scores=np.zeros(0))], [calib, calib])
    assert (tmp_path / "results" / "000001.txt").read_text() == ""
    back = read_result_files(tmp_path / "results", ["000000", "000001"], [calib, calib])
    np.testing.assert_allclose(back[0].boxes[:, :6], dt.boxes[:, :6], atol=0.01)  # files keep 2 decimals
    np.testing.assert_allclose(np.cos(back[0].boxes[:, 6] - dt.boxes[:, 6]), 1, atol=1e-3)
    np.testing.assert_allclose(back[0].scores, dt.scores)
    assert len(back[1].boxes) == 0
    with pytest.raises(FileNotFoundError, match="000002"):
        read_result_files(tmp_path / "results", ["000002"], [calib])


@pytest.mark.skipif(not os.path.isdir(KITTI), reason=f"the shared KITTI frame is not at {KITTI}")
def test_real_frame_labels_as_detections():
    calib = Calibration.from_file(os.path.join(KITTI, "calib", f"{FRAME}.txt"))
    objects = read_labels(os.path.join(KITTI, "label_2", f"{FRAME}.txt"))
    gt = frame_from_labels(objects, calib)
    assert list(gt.names).count("Car") == 6 and list(gt.names).count("DontCare") == 4
    cars = gt.names == "Car"
    dt = FrameBoxes(gt.boxes[cars], gt.names[cars], gt.bbox[cars], scores=np.linspace(1, 0.5, 6))
    result = evaluate([gt], [dt], classes=["Car"], method="exact_recall")
    devkit = evaluate([gt], [dt], classes=["Car"])
    for difficulty in ("easy", "moderate", "hard"):
        n = result.num_gt[("Car", "3d", difficulty)]
        if n:
            assert result.ap[("Car", "3d", difficulty)] == pytest.approx(100)
            assert devkit.ap[("Car", "3d", difficulty)] == pytest.approx(100 * (n - 1) / 40)
    projected = image_boxes(gt.boxes[cars], calib)
    np.testing.assert_allclose(projected, gt.bbox[cars], atol=40)  # labels' 2-D boxes come from the images
