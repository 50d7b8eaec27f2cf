"""The KITTI devkit's evaluation (the default) against hand-computed cases and a literal slow reference; the
exact-recall deviation where it differs; each ignore rule; 2-D AP and AOS; camera-frame IoU; bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kitti_devkit_reference import overlaps_of, reference_ap
from kitti_files import CALIB_TEXT

from pointcloud.boxes import boxes_camera_to_lidar
from pointcloud.calibration import Calibration
from pointcloud.evaluation import FrameBoxes, evaluate, frame_from_labels
from pointcloud.kitti_io import KittiObject

CAR = (4.0, 1.6, 1.5)  # dx, dy, dz
BBOX = (100.0, 100.0, 200.0, 200.0)  # 100 px tall: counted at every difficulty


def cars(n: int, names: str | list[str] = "Car", start: float = 8.0) -> FrameBoxes:
    """``n`` axis-aligned ground truth boxes 6 m apart along x, fully visible, 100 px tall in the image."""
    x = start + 6.0 * np.arange(n)
    boxes = np.column_stack([x, np.zeros(n), np.full(n, -0.9), *[np.full(n, s) for s in CAR], np.zeros(n)])
    bbox = np.tile(BBOX, (n, 1)) + np.column_stack([x * 10, np.zeros(n), x * 10, np.zeros(n)])
    names = [names] * n if isinstance(names, str) else names
    return FrameBoxes(boxes, names, bbox, occluded=np.zeros(n, int), truncated=np.zeros(n))


def detect(gt: FrameBoxes, scores, rows=None, names=None) -> FrameBoxes:
    """Exact copies of ground truth ``rows`` (default all) with the given scores."""
    rows = np.arange(len(gt.boxes)) if rows is None else np.asarray(rows)
    return FrameBoxes(gt.boxes[rows], gt.names[rows] if names is None else names, gt.bbox[rows],
                      scores=np.asarray(scores, dtype=float))


def add(frame: FrameBoxes, box, name: str, bbox, score: float) -> FrameBoxes:
    """``frame`` with one more detection."""
    return FrameBoxes(np.vstack([frame.boxes, box]), [*frame.names, name], np.vstack([frame.bbox, bbox]),
                      scores=np.append(frame.scores, score))


def add_gt(frame: FrameBoxes, box, name: str, bbox, occluded: int = 0, truncated: float = 0.0) -> FrameBoxes:
    return FrameBoxes(np.vstack([frame.boxes, box]), [*frame.names, name], np.vstack([frame.bbox, bbox]),
                      occluded=np.append(frame.occluded, occluded), truncated=np.append(frame.truncated, truncated))


def ap(gt, dt, metric="3d", difficulty="moderate", method="devkit", cls="Car", **kwargs) -> float:
    return evaluate([gt], [dt], classes=[cls], metrics=[metric], method=method, **kwargs).ap[(cls, metric, difficulty)]


EMPTY_SPACE = [70.0, 20.0, -0.9, *CAR, 0.0]  # far from every ground truth box
FP_ONE = 100 * 41 / 42  # 41 cars found, one false positive ranked first: precision 41/42 at every recall


# ------------------------------------------------------------------------------------------- devkit vs exact recall
def test_two_cars_and_a_false_positive_devkit_against_exact_recall():
    # Two cars A, B; detections scored 0.9 (on A), 0.8 (nothing), 0.7 (on B). True-positive scores [0.9, 0.7].
    # Devkit thresholds: i = 0: left recall 1/2, right 2/2, position 0 -> (1 - 0) < (0 - 1/2) is false, keep 0.9,
    # position 1/40; i = 1 is the last, keep 0.7. Precision by threshold index: 0.9 -> 1/1, 0.7 -> 2/3, then 0 for
    # indices 2..40. Max to the right leaves [1, 2/3, 0, ...]:
    #   AP|R40 = (2/3) / 40 = 1.6667 %, AP|R11 = (index 0) 1 / 11 = 9.0909 %.
    # Exact recall: positions j <= 20 (recall <= 1/2) reach precision 1 at 0.9, positions 21..40 need 0.7 (2/3):
    #   AP|R40 = (20 * 1 + 20 * 2/3) / 40 = 83.333 %, AP|R11 = (6 * 1 + 5 * 2/3) / 11 = 84.848 %.
    gt = cars(2)
    dt = add(detect(gt, [0.9, 0.7]), EMPTY_SPACE, "Car", BBOX, 0.8)
    devkit = evaluate([gt], [dt], classes=["Car"], metrics=["3d"])
    exact = evaluate([gt], [dt], classes=["Car"], metrics=["3d"], method="exact_recall")
    key = ("Car", "3d", "moderate")
    assert devkit.ap[key] == pytest.approx(100 / 60) and devkit.ap11[key] == pytest.approx(100 / 11)
    assert exact.ap[key] == pytest.approx(250 / 3) and exact.ap11[key] == pytest.approx(2800 / 33)
    assert devkit.method == "devkit" and exact.method == "exact_recall"


@pytest.mark.parametrize("n, r40, r11", [
    # N cars found perfectly: the devkit keeps every one of the N scores (each recall step 1/N is at least the
    # 1/40 step), so precision 1 fills indices 0..N-1: AP|R40 = (N - 1) / 40, AP|R11 counts indices 0, 4, ... < N.
    (1, 0.0, 100 / 11), (5, 10.0, 200 / 11), (40, 97.5, 1000 / 11),
    # From 41 boxes on, 41 thresholds are kept (with 80, every second score after the first): all 100.
    (41, 100.0, 100.0), (80, 100.0, 100.0),
])
def test_perfect_detections_score_what_the_devkit_samples(n, r40, r11):
    gt = cars(n)
    result = evaluate([gt], [detect(gt, np.linspace(1, 0.01, n))], classes=["Car"], metrics=["3d"])
    assert result.ap[("Car", "3d", "hard")] == pytest.approx(r40)
    assert result.ap11[("Car", "3d", "hard")] == pytest.approx(r11)
    exact = evaluate([gt], [detect(gt, np.linspace(1, 0.01, n))], classes=["Car"], metrics=["3d"],
                     method="exact_recall")
    assert exact.ap[("Car", "3d", "hard")] == pytest.approx(100.0)


def test_threshold_walk_keeps_the_left_score_on_a_tie():
    # 52 cars found perfectly plus one false positive scored between the 6th and 7th hit. The walk keeps the
    # i-th score when (i + 2)/52 - p >= p - (i + 1)/52 for the next position p = k/40. At i = 5, k = 5 both sides
    # are 7/52 - 1/8 = 1/8 - 6/52 (a tie, equal in floating point too): the devkit keeps the 6th hit's score, the
    # last one above the false positive, as threshold 5 (precision 6/6). Every later threshold is below the false
    # positive: precision k'/(k' + 1), rising to 52/53 at the last, so the maximum to the right is 52/53 from
    # index 6 on:
    #   devkit AP|R40 = (5 * 1 + 35 * 52/53) / 40, AP|R11 = (2 * 1 + 9 * 52/53) / 11.
    # Exact recall: 6 hits above the false positive reach recall 6/52 = 0.115, i.e. positions 0..4 (5/40 = 0.125
    # needs the 7th): AP|R40 = (4 * 1 + 36 * 52/53) / 40.
    gt = cars(52)
    scores = np.linspace(0.9, 0.1, 52)
    dt = add(detect(gt, scores), EMPTY_SPACE, "Car", BBOX, (scores[5] + scores[6]) / 2)
    devkit = evaluate([gt], [dt], classes=["Car"], metrics=["3d"])
    exact = evaluate([gt], [dt], classes=["Car"], metrics=["3d"], method="exact_recall")
    key = ("Car", "3d", "moderate")
    assert devkit.ap[key] == pytest.approx(100 * (5 + 35 * 52 / 53) / 40, rel=1e-12)
    assert devkit.ap11[key] == pytest.approx(100 * (2 + 9 * 52 / 53) / 11, rel=1e-12)
    assert exact.ap[key] == pytest.approx(100 * (4 + 36 * 52 / 53) / 40, rel=1e-12)


# ------------------------------------------------------------------------------------------------- ignore rules
# Each case: 41 cars found perfectly (100 by both methods) plus one detection scored 0.99 in the situation under
# test. Counted as a false positive it lowers AP to 100 * 41/42 = 97.619 (precision k / (k + 1) at the k-th hit,
# maximum to the right 41/42 everywhere); ignored it leaves 100.
@pytest.fixture
def base():
    gt = cars(41)
    return gt, detect(gt, np.linspace(0.9, 0.1, 41))


@pytest.mark.parametrize("method", ["devkit", "exact_recall"])
def test_a_false_positive_counts(base, method):
    gt, dt = base
    assert ap(gt, dt, method=method) == pytest.approx(100)
    assert ap(gt, add(dt, EMPTY_SPACE, "Car", BBOX, 0.99), method=method) == pytest.approx(FP_ONE)


@pytest.mark.parametrize("method", ["devkit", "exact_recall"])
def test_car_detection_on_a_van_is_no_false_positive(base, method):
    gt, dt = base
    van = [EMPTY_SPACE[0], 0.0, -0.9, 5.0, 2.0, 2.0, 0.0]
    gt = add_gt(gt, van, "Van", BBOX)
    assert ap(gt, add(dt, van, "Car", BBOX, 0.99), method=method) == pytest.approx(100)
    # The same Van labelled Truck is no neighbour: the Car detection on it is a false positive.
    truck = add_gt(cars(41), van, "Truck", BBOX)
    assert ap(truck, add(dt, van, "Car", BBOX, 0.99), method=method) == pytest.approx(FP_ONE)


def test_detections_of_other_classes_are_not_looked_at(base):
    gt, dt = base
    assert ap(gt, add(dt, EMPTY_SPACE, "Van", BBOX, 0.99)) == pytest.approx(100)
    assert ap(gt, add(dt, EMPTY_SPACE, "Pedestrian", BBOX, 0.99)) == pytest.approx(100)


def test_pedestrian_on_person_sitting_is_no_false_positive():
    gt = cars(41, "Pedestrian")
    dt = detect(gt, np.linspace(0.9, 0.1, 41))
    sitting = add_gt(gt, EMPTY_SPACE, "Person_sitting", BBOX)
    extra = add(dt, EMPTY_SPACE, "Pedestrian", BBOX, 0.99)
    assert ap(sitting, extra, cls="Pedestrian") == pytest.approx(100)
    assert ap(gt, extra, cls="Pedestrian") == pytest.approx(FP_ONE)


def test_dontcare_region_absorbs_detections_in_2d_only(base):
    # The extra detection's 2-D box [1000, 300, 1100, 400] (below every car's) lies 80 % inside the DontCare
    # region [980, 290, 1080, 410] (intersection 80 x 100 over its own area 100 x 100 = 0.8 > 0.7): no false
    # positive in 2-D. Its 3-D box is in empty space and a DontCare region has no 3-D box: a false positive in BEV
    # and 3-D.
    gt, dt = base
    region = [980.0, 290.0, 1080.0, 410.0]
    gt = add_gt(gt, [np.nan] * 7, "DontCare", region, occluded=-1, truncated=-1)
    extra = add(dt, EMPTY_SPACE, "Car", [1000, 300, 1100, 400], 0.99)
    assert ap(gt, extra, "2d") == pytest.approx(100)
    assert ap(gt, extra, "bev") == pytest.approx(FP_ONE) and ap(gt, extra, "3d") == pytest.approx(FP_ONE)
    # Only 60 % inside ([1020, 300, 1120, 400]: 60 x 100 / 100 x 100 = 0.6 <= 0.7): a false positive in 2-D too.
    assert ap(gt, add(dt, EMPTY_SPACE, "Car", [1020, 300, 1120, 400], 0.99), "2d") == pytest.approx(FP_ONE)


@pytest.mark.parametrize("height, easy, moderate", [
    (20.0, 100, 100),  # shorter than 25 px: ignored at every difficulty
    (30.0, 100, FP_ONE),  # shorter than 40 (easy) only
    (25.0, 100, FP_ONE),  # exactly 25 is not shorter than 25: counts at moderate
    (40.0, FP_ONE, FP_ONE),  # exactly 40 counts at easy
])
def test_short_detections_are_ignored(base, height, easy, moderate):
    gt, dt = base
    extra = add(dt, EMPTY_SPACE, "Car", [0.0, 0.0, 50.0, height], 0.99)
    assert ap(gt, extra, difficulty="easy") == pytest.approx(easy)
    assert ap(gt, extra, difficulty="moderate") == pytest.approx(moderate)


@pytest.mark.parametrize("field, value, counted_from", [
    ("occluded", 1, "moderate"), ("occluded", 2, "hard"), ("occluded", 3, None),
    ("truncated", 0.2, "moderate"), ("truncated", 0.4, "hard"), ("truncated", 0.6, None),
    ("height", 40.0, "moderate"),  # the easy minimum is exclusive: 40 px is too short for easy
    ("height", 30.0, "moderate"), ("height", 25.0, None), ("height", 41.0, "easy"),
])
def test_difficulty_filtering_of_ground_truth(base, field, value, counted_from):
    # A 42nd car, too hard for some difficulties and detected (score 0.99). Where it counts: 42 of 42 found. Where
    # it is ignored: num_gt 41 and its detection is no false positive -- 100 either way.
    gt, dt = base
    car = [EMPTY_SPACE[0], 0.0, -0.9, *CAR, 0.0]
    bbox = [0.0, 0.0, 50.0, value if field == "height" else 100.0]
    gt = add_gt(gt, car, "Car", bbox, occluded=value if field == "occluded" else 0,
                truncated=value if field == "truncated" else 0.0)
    dt = add(dt, car, "Car", [0.0, 0.0, 50.0, 100.0], 0.99)
    result = evaluate([gt], [dt], classes=["Car"], metrics=["3d"])
    levels = ["easy", "moderate", "hard"]
    first = levels.index(counted_from) if counted_from else 3
    for k, level in enumerate(levels):
        assert result.num_gt[("Car", "3d", level)] == (42 if k >= first else 41), level
        assert result.ap[("Car", "3d", level)] == pytest.approx(100), level


def test_missed_ignored_ground_truth_is_no_miss(base):
    # A heavily occluded car (level 3) nobody detects: not counted at any difficulty, so no miss either.
    gt, dt = base
    gt = add_gt(gt, [EMPTY_SPACE[0], 0.0, -0.9, *CAR, 0.0], "Car", BBOX, occluded=3)
    assert all(ap(gt, dt, difficulty=level) == pytest.approx(100) for level in ("easy", "moderate", "hard"))


# ------------------------------------------------------------------------------------------------- 2-D and AOS
def test_2d_ap_matches_on_image_boxes():
    # 41 cars with perfect 3-D boxes. The 21 best-scored detections' 2-D boxes are shifted 10 px along a 100 px
    # box (IoU 90 * 100 / (2 * 100 * 100 - 90 * 100) = 0.818 > 0.7: a hit), the other 20 by 20 px (IoU 80 / 120 =
    # 0.667: false positives, ranked after every hit). 2-D recall stops at 21/41 with precision 1:
    #   exact recall: positions j / 40 <= 21/41 are j <= 20, AP|R40 = 20 / 40 = 50 %;
    #   devkit: 21 thresholds (every score kept, as with 41 perfect boxes), precision 1 at indices 0..20 -> 50 %.
    # 3-D ignores the image boxes: 100.
    gt = cars(41)
    dt = detect(gt, np.linspace(0.9, 0.1, 41))
    dt.bbox[:, [0, 2]] += np.where(np.arange(41) < 21, 10.0, 20.0)[:, None]
    for method in ("devkit", "exact_recall"):
        assert ap(gt, dt, "2d", method=method) == pytest.approx(50.0)
        assert ap(gt, dt, "3d", method=method) == pytest.approx(100.0)


def test_aos_with_a_known_orientation_error():
    # Every detection's alpha is off by pi/3: orientation similarity (1 + cos(pi/3)) / 2 = 0.75 per true positive,
    # and precision is 1 throughout, so AOS = 75 % at every recall position (both methods, 41 cars).
    gt = cars(41)
    gt.alpha = np.full(41, 0.3)
    dt = detect(gt, np.linspace(0.9, 0.1, 41))
    dt.alpha = gt.alpha + math.pi / 3
    for method in ("devkit", "exact_recall"):
        result = evaluate([gt], [dt], classes=["Car"], method=method)
        assert result.ap[("Car", "aos", "moderate")] == pytest.approx(75.0)
        assert result.ap11[("Car", "aos", "moderate")] == pytest.approx(75.0)
        assert result.ap[("Car", "2d", "moderate")] == pytest.approx(100.0)


def test_aos_two_cars_by_hand():
    # Two cars: the 0.9 detection's alpha is right (similarity 1), the 0.8 one's is off by pi/2 ((1 + 0) / 2).
    # Per threshold: 0.9 -> 1/1; 0.8 -> (1 + 0.5) / 2 = 0.75.
    #   devkit: AOS by threshold index [1, 0.75, 0, ...] -> AOS|R40 = 0.75 / 40 = 1.875 %, AP|R40 2-D 1 / 40 = 2.5 %.
    #   exact recall: recall <= 1/2 reaches 1, above it 0.75 -> (20 * 1 + 20 * 0.75) / 40 = 87.5 %; 2-D AP 100.
    gt = cars(2)
    gt.alpha = np.array([0.2, -1.0])
    dt = detect(gt, [0.9, 0.8])
    dt.alpha = gt.alpha + np.array([0.0, math.pi / 2])
    devkit = evaluate([gt], [dt], classes=["Car"], metrics=["2d", "aos"])
    exact = evaluate([gt], [dt], classes=["Car"], metrics=["2d", "aos"], method="exact_recall")
    assert devkit.ap[("Car", "aos", "easy")] == pytest.approx(1.875)
    assert devkit.ap[("Car", "2d", "easy")] == pytest.approx(2.5)
    assert exact.ap[("Car", "aos", "easy")] == pytest.approx(87.5)
    assert exact.ap[("Car", "2d", "easy")] == pytest.approx(100.0)


def test_aos_is_left_out_without_orientations():
    # A result file's alpha -10 means "no orientation": the devkit then reports no AOS.
    gt = cars(3)
    dt = detect(gt, [0.9, 0.8, 0.7])
    dt.alpha = np.array([-10.0, 0.1, 0.2])
    result = evaluate([gt], [dt], classes=["Car"])
    assert {m for _, m, _ in result.ap} == {"2d", "bev", "3d"}
    assert "AOS" not in result.table() and "| Car | 2D | 0.7 |" in result.table()


def test_derived_alpha_follows_the_heading():
    # Without alpha, both sides derive it from the LiDAR boxes; turning a detection by pi flips it (similarity 0).
    gt = cars(41)
    dt = detect(gt, np.linspace(0.9, 0.1, 41))
    assert ap(gt, dt, "aos") == pytest.approx(100)
    dt.boxes[:, 6] += math.pi
    assert ap(gt, dt, "aos") == pytest.approx(0) and ap(gt, dt, "bev") == pytest.approx(100)


# ------------------------------------------------------------------------------------------- IoU and overlaps
def _calib(tmp_path) -> Calibration:
    path = tmp_path / "calib.txt"
    path.write_text(CALIB_TEXT)
    return Calibration.from_file(path)


def test_iou_is_measured_in_the_camera_frame(tmp_path):
    # Label boxes 4 m long along camera x (ry = 0), the detection moved 0.7 m along it: camera-frame 3-D IoU
    # (4 - 0.7) / (4 + 0.7) = 0.7021 > 0.7, a hit, as the devkit measures it. The real calibration's LiDAR axes
    # are tilted (about 0.015 rad in pitch), so the same boxes in the LiDAR frame overlap 0.696: a miss there.
    calib = _calib(tmp_path)

    def label(x, score=None):
        return KittiObject("Car", 0.0, 0, 0.0, np.array([500.0, 150.0, 600.0, 250.0]), np.array([1.5, 1.6, 4.0]),
                           np.array([x, 1.7, 20.0]), 0.0, score)

    gt, dt = frame_from_labels([label(0.0)], calib), frame_from_labels([label(0.7, 0.9)], calib)
    assert ap(gt, dt, "3d", "easy", method="exact_recall") == pytest.approx(100)
    lidar_only = FrameBoxes(dt.boxes, dt.names, dt.bbox, scores=dt.scores)
    assert ap(gt, lidar_only, "3d", "easy", method="exact_recall") == 0.0


@pytest.mark.parametrize("shift, strict, loose", [(0.5, 100, 100), (1.0, 0, 100), (2.0, 0, 0)])
def test_loose_min_overlaps(shift, strict, loose):
    # A car moved along its 4 m length: BEV IoU (4 - d) / (4 + d) = 0.778 (d = 0.5), 0.6 (d = 1), 0.333 (d = 2):
    # a hit at 0.7 only for d = 0.5, at the loose 0.5 also for d = 1.
    gt = cars(1)
    dt = detect(gt, [0.9])
    dt.boxes[:, 0] += shift
    assert ap(gt, dt, "bev", method="exact_recall") == strict
    assert ap(gt, dt, "bev", method="exact_recall", min_overlaps="loose") == loose
    assert evaluate([gt], [dt], classes=["Car"], min_overlaps="loose").min_overlap[("Car", "bev")] == 0.5


# ------------------------------------------------------------------------------------- against the slow reference
CLASSES = ["Car", "Car", "Car", "Van", "Pedestrian", "Person_sitting", "Cyclist", "Truck", "DontCare"]
SIZES = {"Car": (3.9, 1.56, 1.6), "Van": (5.0, 2.0, 1.9), "Truck": (8.0, 3.0, 2.5), "Pedestrian": (0.8, 1.75, 0.6),
         "Person_sitting": (0.8, 1.2, 0.6), "Cyclist": (1.8, 1.7, 0.6)}  # l, h, w
HEIGHTS = [15.0, 24.9, 25.0, 26.0, 30.0, 40.0, 41.0, 60.0, 60.0, 60.0, 90.0, 90.0, 90.0]


def random_frames(rng: np.random.Generator, count: int, calib: Calibration):
    """Frames with every ignore situation: neighbour classes, DontCare regions, boxes at the height, occlusion
    and truncation limits, duplicate and shifted detections, other-class and short detections, tied scores."""
    gts, dts, refs_gt, refs_dt = [], [], [], []
    for _ in range(count):
        names, camera, bbox, occ, trunc, alpha = [], [], [], [], [], []
        for _ in range(rng.integers(0, 12)):
            name = str(rng.choice(CLASSES))
            left, top = rng.uniform(0, 1100), rng.uniform(100, 250)
            box2d = [left, top, left + rng.uniform(20, 150), top + float(rng.choice(HEIGHTS))]
            names.append(name)
            bbox.append(box2d)
            if name == "DontCare":
                camera.append([np.nan] * 7)
                occ.append(-1)
                trunc.append(-1.0)
                alpha.append(-10.0)
                continue
            l, h, w = (s * rng.uniform(0.9, 1.1) for s in SIZES[name])
            camera.append([rng.uniform(-15, 15), rng.uniform(1.4, 2.0), rng.uniform(5, 50), l, h, w,
                           rng.uniform(-math.pi, math.pi)])
            occ.append(int(rng.choice([0, 0, 1, 2, 3])))
            trunc.append(float(rng.choice([0.0, 0.0, 0.0, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6])))
            alpha.append(rng.uniform(-math.pi, math.pi))
        camera = np.array(camera, dtype=float).reshape(-1, 7)
        d_names, d_camera, d_bbox, d_alpha = [], [], [], []
        for i, name in enumerate(names):
            if name == "DontCare":
                if rng.random() < 0.5:  # a false positive inside the region
                    region = bbox[i]
                    d_names.append(str(rng.choice(["Car", "Pedestrian", "Cyclist"])))
                    d_camera.append([rng.uniform(-15, 15), 1.7, rng.uniform(5, 50), 3.9, 1.5, 1.6, 0.0])
                    d_bbox.append([region[0] + 2, region[1] + 2, region[2] - 2, region[3] - 2])
                    d_alpha.append(0.0)
                continue
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
                box, noise = camera[i].copy(), float(rng.choice([0.02, 0.1, 0.3]))  # IoUs on both sides of 0.7
                box[[0, 2]] += rng.normal(0, noise, 2)
                box[1] += rng.normal(0, noise / 3)
                box[3:6] *= 1 + rng.normal(0, noise / 6, 3)
                box[6] += rng.normal(0, noise / 3)
                label = {"Van": "Car", "Person_sitting": "Pedestrian"}.get(name, name) if rng.random() < 0.8 \
                    else str(rng.choice(["Car", "Pedestrian", "Cyclist"]))
                d_names.append(label)
                d_camera.append(box)
                d_bbox.append(list(np.array(bbox[i]) + rng.normal(0, 20 * noise, 4)))
                d_alpha.append(alpha[i] + rng.normal(0, 0.4))
        for _ in range(rng.integers(0, 3)):  # false positives anywhere
            d_names.append(str(rng.choice(["Car", "Pedestrian", "Cyclist"])))
            d_camera.append([rng.uniform(-15, 15), 1.7, rng.uniform(5, 50), 3.9, 1.5, 1.6, rng.uniform(-3, 3)])
            left, top = rng.uniform(0, 1100), rng.uniform(100, 250)
            d_bbox.append([left, top, left + 80, top + float(rng.choice(HEIGHTS))])
            d_alpha.append(rng.uniform(-3, 3))
        d_camera = np.array(d_camera, dtype=float).reshape(-1, 7)
        scores = np.round(rng.uniform(0, 1, len(d_names)), 2)  # two decimals: ties happen
        real = np.isfinite(camera).all(axis=1)
        lidar = np.full((len(names), 7), np.nan)
        if real.any():
            lidar[real] = boxes_camera_to_lidar(torch.from_numpy(camera[real]), calib).numpy()
        d_lidar = boxes_camera_to_lidar(torch.from_numpy(d_camera), calib).numpy() if len(d_camera) else d_camera
        gts.append(FrameBoxes(lidar, names, np.array(bbox).reshape(-1, 4), occluded=np.array(occ),
                              truncated=np.array(trunc), alpha=np.array(alpha), camera=camera))
        dts.append(FrameBoxes(d_lidar, d_names, np.array(d_bbox).reshape(-1, 4), scores=scores,
                              alpha=np.array(d_alpha), camera=d_camera))
        refs_gt.append({"names": names, "bbox": bbox, "occluded": occ, "truncated": trunc, "alpha": alpha,
                        "camera": camera})
        refs_dt.append({"names": d_names, "bbox": d_bbox, "scores": list(scores), "alpha": d_alpha,
                        "camera": d_camera})
    return gts, dts, refs_gt, refs_dt


@pytest.mark.parametrize("seed, frames, min_overlaps", [(0, 60, "strict"), (1, 60, "loose"), (2, 12, "strict")])
def test_devkit_default_equals_the_literal_reference(tmp_path, seed, frames, min_overlaps):
    gts, dts, refs_gt, refs_dt = random_frames(np.random.default_rng(seed), frames, _calib(tmp_path))
    result = evaluate(gts, dts, min_overlaps=min_overlaps)
    overlaps = {m: [overlaps_of(g, d, m) for g, d in zip(refs_gt, refs_dt)] for m in ("2d", "bev", "3d")}
    checked = 0
    for cls, threshold in (("Car", 0.7), ("Pedestrian", 0.5), ("Cyclist", 0.5)):
        for d, level in enumerate(("easy", "moderate", "hard")):
            for metric in ("2d", "bev", "3d"):
                loose = {"Car": 0.5, "Pedestrian": 0.25, "Cyclist": 0.25}[cls]
                overlap = loose if min_overlaps == "loose" and metric != "2d" else threshold
                r40, r11, aos40, aos11 = reference_ap(refs_gt, refs_dt, cls, d, metric, overlap, overlaps[metric])
                assert result.ap[(cls, metric, level)] == pytest.approx(r40, abs=1e-9), (cls, metric, level)
                assert result.ap11[(cls, metric, level)] == pytest.approx(r11, abs=1e-9), (cls, metric, level)
                if metric == "2d":
                    assert result.ap[(cls, "aos", level)] == pytest.approx(aos40, abs=1e-9), (cls, level)
                    assert result.ap11[(cls, "aos", level)] == pytest.approx(aos11, abs=1e-9), (cls, level)
                checked += r40 > 0
    assert checked >= 15  # most entries are non-trivial


# ------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, error, match", [
    ({"method": "official"}, ValueError, r"method must be one of \('devkit', 'exact_recall'\), got 'official'"),
    ({"method": 1}, TypeError, r"method must be a string"),
    ({"min_overlaps": "medium"}, ValueError, r"min_overlaps must be one of \('strict', 'loose'\)"),
    ({"metrics": ("bbox",)}, ValueError, r"metric must be one of \('2d', 'bev', '3d', 'aos'\), got 'bbox'"),
    ({"metrics": "3d"}, TypeError, r"metrics must be a sequence of strings"),
    ({"classes": "Car"}, TypeError, r"classes must be a sequence of strings"),
    ({"classes": ["car"]}, ValueError, r"unknown class 'car'"),
])
def test_bad_arguments(kwargs, error, match):
    gt = cars(2)
    with pytest.raises(error, match=match):
        evaluate([gt], [detect(gt, [0.9, 0.8])], **kwargs)


@pytest.mark.parametrize("build, match", [
    (lambda gt: FrameBoxes(gt.boxes, gt.names, gt.bbox, scores=np.array([0.9, np.nan])),
     r"scores must be finite, got nan at row 1"),
    (lambda gt: FrameBoxes(gt.boxes, gt.names, gt.bbox, scores=np.ones((2, 2))), r"scores must have shape \(2,\)"),
    (lambda gt: FrameBoxes(gt.boxes, gt.names, gt.bbox, scores=np.ones(2), alpha=np.array([0.0, np.inf])),
     r"alpha must be finite"),
    (lambda gt: FrameBoxes(gt.boxes, gt.names, gt.bbox, scores=np.ones(2), alpha=np.zeros(3)),
     r"alpha has 3 rows for 2 boxes"),
    (lambda gt: FrameBoxes(gt.boxes, gt.names, np.array([[0, 0, 1, np.nan], [0, 0, 1, 1]])),
     r"bbox\[0\] must be finite"),
    (lambda gt: FrameBoxes(gt.boxes, gt.names, gt.bbox, camera=np.zeros((2, 6))), r"camera must have shape \(2, 7\)"),
    (lambda gt: FrameBoxes(gt.boxes, gt.names, gt.bbox, occluded=np.array([0, np.nan]), truncated=np.zeros(2)),
     r"occluded must be finite"),
    (lambda gt: FrameBoxes(gt.boxes, np.array([["Car"], ["Car"]]), gt.bbox), r"names must have shape \(2,\)"),
])
def test_malformed_frames(build, match):
    with pytest.raises(ValueError, match=match):
        build(cars(2))


def test_detection_camera_boxes_are_validated():
    gt = cars(2)
    dt = detect(gt, [0.9, 0.8])
    dt.camera = np.array([[0, 1.7, 10, 4, 1.5, 1.6, 0], [0, 1.7, 20, 4, np.nan, 1.6, 0]])
    gt.camera = np.array([[0, 1.7, 10, 4, 1.5, 1.6, 0], [0, 1.7, 20, 4, 1.5, 1.6, 0]])
    with pytest.raises(ValueError, match=r"detections of frame 0: camera\[1\] contains NaN or inf"):
        evaluate([gt], [dt])
    gt.camera[0, 3] = np.nan
    dt.camera[1, 4] = 1.5
    with pytest.raises(ValueError, match=r"ground truth of frame 0: camera\[0\] \(Car\) has no finite 3-D extent"):
        evaluate([gt], [dt])
