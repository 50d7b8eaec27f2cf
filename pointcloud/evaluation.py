"""KITTI object-detection evaluation (3-D and BEV average precision) that runs anywhere PyTorch does.

The protocol is the official KITTI devkit's, as the widely used Python port implements it:

- Difficulties (easy, moderate, hard) keep ground truth whose 2-D box is taller than 40 / 25 / 25 px, occlusion
  at most 0 / 1 / 2 and truncation at most 0.15 / 0.30 / 0.50. Ground truth of the class that fails these is
  *ignored* (neither a hit nor a miss), as is ground truth of the neighbouring class (Van for Car,
  Person_sitting for Pedestrian). Detections whose 2-D box is not taller than the minimum height are ignored too.
  DontCare regions only matter for the 2-D image metric, which this module does not compute.
- A detection matches a ground truth box when their IoU (rotated 3-D, or rotated bird's-eye view) is strictly
  above the class threshold: Car 0.7, Pedestrian 0.5, Cyclist 0.5. Each ground truth takes the highest-scoring
  unassigned detection above the threshold.
- AP|R40 averages the interpolated precision ``p(r) = max {precision at recall r' >= r}`` at the 40 recall
  positions 1/40, ..., 1, and the legacy AP|R11 at 0, 0.1, ..., 1 (both in percent). For each recall position
  the score threshold is the score of the ``ceil(r * num_gt)``-th true positive, and precision is counted there
  with the devkit's matching. The devkit instead samples thresholds while walking the sorted scores and indexes
  precision by threshold, which equals this when a class has many more than 40 ground truth boxes, but with
  fewer undercounts (all of 5 boxes found perfectly scores 10.0 there, 100 here).

Boxes are OpenPCDet's LiDAR-frame ``(x, y, z, dx, dy, dz, heading)``; IoU is unchanged by the rigid LiDAR-to-
camera transform, so evaluating in the LiDAR frame gives the camera-frame numbers. 2-D boxes (for the height
rules) come from the label files, or from projecting the 3-D boxes with :func:`image_boxes`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .boxes import box_corners, boxes_camera_to_lidar, boxes_lidar_to_camera, validate_boxes
from .calibration import Calibration
from .iou import bev_iou, iou_3d
from .kitti_io import KittiObject, check_frame_id, read_labels, write_labels

__all__ = [
    "IOU_THRESHOLDS",
    "FrameBoxes",
    "KittiEvaluation",
    "evaluate",
    "frame_from_labels",
    "image_boxes",
    "read_result_files",
    "write_result_files",
]

IOU_THRESHOLDS = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}
NEIGHBOURS = {"Car": "Van", "Pedestrian": "Person_sitting"}
MIN_HEIGHT = (40.0, 25.0, 25.0)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
DIFFICULTIES = ("easy", "moderate", "hard")
SAMPLE_POINTS = 41
IMAGE_SHAPE = (375, 1242)  # KITTI images are about 375 x 1242 (rows, columns)


def _rows(values: Any, width: int, name: str, rows: str) -> np.ndarray:
    """``values`` as a float64 ``(M, width)`` array; an empty input of any shape is ``(0, width)``."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, width)
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{name} must have shape ({rows}, {width}), got {array.shape}")
    return array


@dataclass
class FrameBoxes:
    """One frame's ground truth or detections.

    Attributes:
        boxes: ``(M, 7)`` LiDAR-frame boxes.
        names: ``(M,)`` class names (ground truth keeps every class, including Van and DontCare).
        bbox: ``(M, 4)`` 2-D boxes ``(left, top, right, bottom)`` in pixels (only their heights are used).
        scores: ``(M,)`` detection scores (``None`` for ground truth).
        occluded, truncated: ``(M,)`` ground truth occlusion level and truncation (``None`` for detections).
    """

    boxes: np.ndarray
    names: np.ndarray
    bbox: np.ndarray
    scores: np.ndarray | None = None
    occluded: np.ndarray | None = None
    truncated: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = _rows(self.boxes, 7, "boxes", "M")
        self.names = np.asarray(self.names, dtype=str).reshape(-1)
        m = len(self.boxes)
        self.bbox = _rows(self.bbox, 4, "bbox", str(m))
        for name in ("names", "bbox", "scores", "occluded", "truncated"):
            value = getattr(self, name)
            if value is not None and len(value) != m:
                raise ValueError(f"{name} has {len(value)} rows for {m} boxes")
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
            if not np.isfinite(self.scores).all():
                raise ValueError("detection scores must be finite")


@dataclass
class KittiEvaluation:
    """AP in percent: ``ap[(class, metric, difficulty)]`` for metric ``"3d"`` / ``"bev"``, difficulty
    ``"easy"`` / ``"moderate"`` / ``"hard"``; ``ap11`` the same with 11 recall positions; ``num_gt`` the ground
    truth boxes each entry counted."""

    ap: dict[tuple[str, str, str], float] = field(default_factory=dict)
    ap11: dict[tuple[str, str, str], float] = field(default_factory=dict)
    num_gt: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def table(self) -> str:
        """Markdown: one row per class and metric, AP|R40 for easy / moderate / hard ("-": no ground truth)."""
        lines = ["| class | metric | IoU | easy | moderate | hard |", "|---|---|---:|---:|---:|---:|"]
        for cls, metric in dict.fromkeys((c, m) for c, m, _ in self.ap):
            values = " | ".join(
                f"{self.ap[(cls, metric, d)]:.2f}" if self.num_gt[(cls, metric, d)] else "-" for d in DIFFICULTIES
            )
            lines.append(f"| {cls} | {metric.upper()} | {IOU_THRESHOLDS[cls]} | {values} |")
        return "\n".join(lines)


def _ignored_gt(gt: FrameBoxes, cls: str, difficulty: int) -> np.ndarray:
    """Per ground truth box: 0 counts, 1 ignored (too hard, or the neighbouring class), -1 other classes."""
    height = gt.bbox[:, 3] - gt.bbox[:, 1]
    too_hard = (
        (gt.occluded > MAX_OCCLUSION[difficulty])
        | (gt.truncated > MAX_TRUNCATION[difficulty])
        | (height <= MIN_HEIGHT[difficulty])
    )
    same = gt.names == cls
    neighbour = gt.names == NEIGHBOURS.get(cls, "")
    return np.where(same & ~too_hard, 0, np.where(neighbour | (same & too_hard), 1, -1))


def _ignored_dt(dt: FrameBoxes, cls: str, difficulty: int) -> np.ndarray:
    """Per detection: 0 counts, 1 ignored (2-D box not taller than the minimum height), -1 other classes."""
    height = np.abs(dt.bbox[:, 3] - dt.bbox[:, 1])
    return np.where(height < MIN_HEIGHT[difficulty], 1, np.where(dt.names == cls, 0, -1))


def _statistics(
    overlaps: np.ndarray, scores: np.ndarray, ignored_gt: np.ndarray, ignored_dt: np.ndarray, min_overlap: float,
    threshold: float | None,
) -> tuple[int, int, int, list[float]]:
    """Match one frame: ``(tp, fp, fn, scores of the true positives)``.

    Without ``threshold`` each ground truth takes the highest-scoring free detection above ``min_overlap`` (this
    collects the candidate score thresholds). With it, detections below it are dropped, each ground truth takes
    the free detection of largest overlap (an ignored detection only when no counted one matches), and the
    unmatched counted detections are the false positives.
    """
    no_detection = -1e7
    assigned = np.zeros(len(scores), dtype=bool)
    below = np.zeros(len(scores), dtype=bool) if threshold is None else scores < threshold
    tp = fp = fn = 0
    hit_scores: list[float] = []
    for i in np.flatnonzero(ignored_gt != -1):
        best, valid, max_overlap, took_ignored = -1, no_detection, 0.0, False
        for j in range(len(scores)):
            if ignored_dt[j] == -1 or assigned[j] or below[j]:
                continue
            overlap = overlaps[j, i]
            if overlap <= min_overlap:
                continue
            if threshold is None:
                if scores[j] > valid:
                    best, valid = j, scores[j]
            elif ignored_dt[j] == 0 and (overlap > max_overlap or took_ignored):
                best, valid, max_overlap, took_ignored = j, 1.0, overlap, False
            elif valid == no_detection and ignored_dt[j] == 1:
                best, valid, took_ignored = j, 1.0, True
        if valid == no_detection:
            fn += int(ignored_gt[i] == 0)
        elif ignored_gt[i] == 1 or ignored_dt[best] == 1:
            assigned[best] = True
        else:
            tp += 1
            hit_scores.append(float(scores[best]))
            assigned[best] = True
    if threshold is not None:
        fp = int(np.sum(~assigned & (ignored_dt == 0) & ~below))
    return tp, fp, fn, hit_scores


def _recall_thresholds(hit_scores: list[float], num_gt: int) -> dict[int, float]:
    """For each recall position ``j / 40`` reachable by the true positives, the score of the
    ``ceil(j / 40 * num_gt)``-th best one (position 0 takes the best)."""
    ordered = sorted(hit_scores, reverse=True)
    thresholds = {}
    for j in range(SAMPLE_POINTS):
        k = max(1, -(-j * num_gt // (SAMPLE_POINTS - 1)))
        if k <= len(ordered):
            thresholds[j] = ordered[k - 1]
    return thresholds


def _has_extent(boxes: np.ndarray) -> np.ndarray:
    """Rows that are real 3-D boxes (DontCare regions are stored as NaN rows)."""
    return np.isfinite(boxes).all(axis=1) & (boxes[:, 3:6] > 0).all(axis=1)


def _overlaps(dt: FrameBoxes, gt: FrameBoxes, metric: str) -> np.ndarray:
    """``(D, G)`` IoU of detections with ground truth; zero for ground truth without a 3-D box."""
    out = np.zeros((len(dt.boxes), len(gt.boxes)))
    real = _has_extent(gt.boxes)
    if len(dt.boxes) and real.any():
        a, b = torch.from_numpy(dt.boxes), torch.from_numpy(gt.boxes[real])
        out[:, real] = (iou_3d(a, b) if metric == "3d" else bev_iou(a, b)).numpy()
    return out


def evaluate(
    ground_truth: Sequence[FrameBoxes],
    detections: Sequence[FrameBoxes],
    classes: Sequence[str] = ("Car", "Pedestrian", "Cyclist"),
    metrics: Sequence[str] = ("3d", "bev"),
) -> KittiEvaluation:
    """KITTI AP|R40 and AP|R11 for every class, metric and difficulty.

    Args:
        ground_truth: one :class:`FrameBoxes` per frame with ``occluded`` and ``truncated``.
        detections: one per frame, same order, with ``scores``.
        classes: any of ``Car``, ``Pedestrian``, ``Cyclist``.
        metrics: ``"3d"`` and/or ``"bev"``.

    Documented results: no frames, or frames without detections, give AP 0 (``num_gt`` says how many ground
    truth boxes counted). Frames are matched by position; nothing can tell two lists of the same length apart.

    Raises:
        TypeError: a frame is not a :class:`FrameBoxes`.
        ValueError: different frame counts; a detection box with NaN / inf or a non-positive size, or a ground
            truth box of an evaluated class (or its neighbour) without a finite 3-D extent (names frame and row);
            missing scores / occlusion; an unknown class or metric.
    """
    if len(ground_truth) != len(detections):
        raise ValueError(f"{len(ground_truth)} ground-truth frames but {len(detections)} detection frames")
    for name, frames in (("ground_truth", ground_truth), ("detections", detections)):
        for k, frame in enumerate(frames):
            if not isinstance(frame, FrameBoxes):
                raise TypeError(f"{name}[{k}] must be a FrameBoxes, got {type(frame).__name__}")
    for cls in classes:
        if cls not in IOU_THRESHOLDS:
            raise ValueError(f"unknown class {cls!r}; the KITTI classes are {sorted(IOU_THRESHOLDS)}")
    for metric in metrics:
        if metric not in ("3d", "bev"):
            raise ValueError(f"metric must be '3d' or 'bev', got {metric!r}")
    for k, (gt, dt) in enumerate(zip(ground_truth, detections)):
        if gt.occluded is None or gt.truncated is None:
            raise ValueError(f"ground truth of frame {k} needs occluded and truncated")
        if dt.scores is None:
            raise ValueError(f"detections of frame {k} need scores")
        try:
            validate_boxes(torch.from_numpy(dt.boxes))
        except ValueError as exc:
            raise ValueError(f"detections of frame {k}: {exc}") from None
        # A box without extent is how DontCare is stored; for a class that counts it would be a ground truth no
        # detection can ever match, silently lowering the AP.
        counted = np.isin(gt.names, [*classes, *(NEIGHBOURS.get(c, "") for c in classes)])
        flat = np.flatnonzero(counted & ~_has_extent(gt.boxes))
        if flat.size:
            i = int(flat[0])
            raise ValueError(f"ground truth of frame {k}: boxes[{i}] ({gt.names[i]}) has no finite 3-D extent: "
                             f"{gt.boxes[i].tolist()}")
    result = KittiEvaluation()
    for metric in metrics:
        overlaps = [_overlaps(dt, gt, metric) for gt, dt in zip(ground_truth, detections)]
        for cls in classes:
            for d, difficulty in enumerate(DIFFICULTIES):
                key = (cls, metric, difficulty)
                ap40, ap11, num_gt = _class_ap(ground_truth, detections, overlaps, cls, d)
                result.ap[key], result.ap11[key], result.num_gt[key] = ap40, ap11, num_gt
    return result


def _class_ap(ground_truth, detections, overlaps, cls: str, difficulty: int) -> tuple[float, float, int]:
    min_overlap = IOU_THRESHOLDS[cls]
    frames = []
    num_gt = 0
    candidate_scores: list[float] = []
    for gt, dt, overlap in zip(ground_truth, detections, overlaps):
        ig, idt = _ignored_gt(gt, cls, difficulty), _ignored_dt(dt, cls, difficulty)
        num_gt += int(np.sum(ig == 0))
        frames.append((overlap, dt.scores, ig, idt))
        candidate_scores += _statistics(overlap, dt.scores, ig, idt, min_overlap, None)[3]
    if num_gt == 0:
        return 0.0, 0.0, 0
    thresholds = _recall_thresholds(candidate_scores, num_gt)
    curve = {}  # threshold -> (recall, precision)
    for threshold in set(thresholds.values()):
        tp = fp = 0
        for overlap, scores, ig, idt in frames:
            t, f, _, _ = _statistics(overlap, scores, ig, idt, min_overlap, threshold)
            tp, fp = tp + t, fp + f
        curve[threshold] = (tp / num_gt, tp / max(tp + fp, 1))
    precision = np.zeros(SAMPLE_POINTS)
    for j in range(SAMPLE_POINTS):
        reached = [p for r, p in curve.values() if r >= j / (SAMPLE_POINTS - 1) - 1e-12]
        precision[j] = max(reached, default=0.0)
    return 100 * precision[1:].sum() / 40, 100 * precision[::4].sum() / 11, num_gt


def image_boxes(boxes: np.ndarray, calib: Calibration, image_shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """2-D boxes ``(M, 4)`` ``(left, top, right, bottom)``: the projected corners of LiDAR boxes ``(M, 7)``,
    clipped to the image (for detectors that predict no 2-D box)."""
    boxes = _rows(boxes, 7, "boxes", "M")
    if len(boxes) == 0:
        return np.zeros((0, 4))
    corners = box_corners(torch.from_numpy(boxes)).numpy().reshape(-1, 3)
    pixels, _ = calib.lidar_to_image(corners)
    pixels = pixels.reshape(-1, 8, 2)
    rows, cols = image_shape
    low = np.clip(pixels.min(axis=1), 0, [cols - 1, rows - 1])
    high = np.clip(pixels.max(axis=1), 0, [cols - 1, rows - 1])
    return np.concatenate([low, high], axis=1)


def frame_from_labels(objects: Sequence[KittiObject], calib: Calibration) -> FrameBoxes:
    """A frame's :class:`FrameBoxes` from KITTI label objects (ground truth, or detections when they carry
    scores); DontCare regions are kept with their names and 2-D boxes, their 3-D box a row of NaN, and never
    match."""
    objects = list(objects)
    camera = np.array([[*o.location, o.dims_hwl[2], o.dims_hwl[0], o.dims_hwl[1], o.ry] for o in objects],
                      dtype=np.float64).reshape(-1, 7)
    boxes = np.full((len(objects), 7), np.nan)
    real = _has_extent(camera) & np.array([o.type != "DontCare" for o in objects], dtype=bool).reshape(-1)
    if real.any():
        boxes[real] = boxes_camera_to_lidar(torch.from_numpy(camera[real]), calib).numpy()
    scored = [o.score is not None for o in objects]
    if any(scored) and not all(scored):
        raise ValueError("either every object carries a score (detections) or none does (ground truth)")
    return FrameBoxes(
        boxes=boxes,
        names=np.array([o.type for o in objects], dtype=str),
        bbox=np.array([o.bbox for o in objects], dtype=np.float64).reshape(-1, 4),
        scores=np.array([o.score for o in objects], dtype=np.float64) if objects and all(scored) else
        (None if objects else np.zeros(0)),
        occluded=np.array([o.occluded for o in objects]) if not any(scored) else None,
        truncated=np.array([o.truncated for o in objects]) if not any(scored) else None,
    )


def write_result_files(folder: str | os.PathLike, frame_ids: Sequence[str], detections: Sequence[FrameBoxes],
                       calibs: Sequence[Calibration]) -> None:
    """Write KITTI result files ``folder/<frame_id>.txt`` (one line per detection, with its score; an empty file
    for a frame without detections), the format the official devkit and benchmark server read.

    Raises:
        ValueError: the three sequences differ in length, or a frame id is not a plain frame name.
    """
    if not len(frame_ids) == len(detections) == len(calibs):
        raise ValueError(f"need one detection frame and one calibration per frame id, got {len(frame_ids)} frame ids, "
                         f"{len(detections)} detection frames and {len(calibs)} calibrations")
    for frame_id in frame_ids:
        check_frame_id(frame_id)
    os.makedirs(folder, exist_ok=True)
    for frame_id, dt, calib in zip(frame_ids, detections, calibs, strict=True):
        camera = boxes_lidar_to_camera(torch.from_numpy(dt.boxes), calib).numpy() if len(dt.boxes) else dt.boxes
        objects = []
        for k in range(len(dt.boxes)):
            x, y, z, l, h, w, ry = camera[k]
            alpha = ry - np.arctan2(-dt.boxes[k, 1], dt.boxes[k, 0])  # observation angle from the LiDAR azimuth
            objects.append(KittiObject(
                type=str(dt.names[k]), truncated=-1.0, occluded=-1, alpha=float(alpha), bbox=dt.bbox[k],
                dims_hwl=np.array([h, w, l]), location=np.array([x, y, z]), ry=float(ry),
                score=float(dt.scores[k]),
            ))
        write_labels(os.path.join(folder, f"{frame_id}.txt"), objects)


def read_result_files(folder: str | os.PathLike, frame_ids: Sequence[str],
                      calibs: Sequence[Calibration]) -> list[FrameBoxes]:
    """Read KITTI result files written by :func:`write_result_files` or any KITTI-format detector; a missing
    file is an error (a frame without detections has an empty file).

    Raises:
        FileNotFoundError: a frame's file is missing.
        ValueError: ``frame_ids`` and ``calibs`` differ in length, a frame id is not a plain frame name, or a
            file is malformed (not UTF-8, a line without a score, NaN / inf: names the file and line).
    """
    if len(frame_ids) != len(calibs):
        raise ValueError(f"need one calibration per frame id, got {len(frame_ids)} frame ids but {len(calibs)} "
                         "calibrations")
    for frame_id in frame_ids:
        check_frame_id(frame_id)
    frames = []
    for frame_id, calib in zip(frame_ids, calibs, strict=True):
        path = os.path.join(folder, f"{frame_id}.txt")
        if not os.path.exists(path):
            raise FileNotFoundError(f"no result file for frame {frame_id}: {path}")
        objects = read_labels(path)
        if any(o.score is None for o in objects):
            raise ValueError(f"{path}: result lines need a 16th field, the score")
        frames.append(frame_from_labels(objects, calib))
    return frames
