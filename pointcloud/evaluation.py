"""KITTI object-detection evaluation (2-D, BEV and 3-D AP, and AOS) that runs anywhere NumPy and PyTorch do.

The default, ``method="devkit"``, is the official KITTI devkit's algorithm (``evaluate_object.cpp``; OpenPCDet's
``kitti_object_eval_python`` is a port of it) -- the numbers papers report:

- Difficulties (easy, moderate, hard) count ground truth whose 2-D box is taller than 40 / 25 / 25 px, with
  occlusion at most 0 / 1 / 2 and truncation at most 0.15 / 0.30 / 0.50. Ground truth of the class that fails
  these is *ignored* (neither a hit nor a miss; a detection on it is no false positive), as is ground truth of the
  neighbouring class (Van for Car, Person_sitting for Pedestrian). Detections whose 2-D box is shorter than the
  minimum height are ignored too, whatever their class. In the 2-D metric a detection left unmatched that lies
  inside a DontCare region (intersection over the detection's area above the class threshold) is no false
  positive. Class names compare case-insensitively.
- Matching: a detection and a ground truth overlap when their IoU is strictly above the class threshold
  (``min_overlaps="strict"``: Car 0.7, Pedestrian 0.5, Cyclist 0.5 everywhere; ``"loose"``: the same in 2-D, and
  0.5 / 0.25 / 0.25 in BEV and 3-D). To collect score thresholds, each ground truth takes the highest-scoring free
  detection; the devkit then keeps at most 41 of the true-positive scores, walking them from the highest and
  keeping the one whose recall is nearest the next of 41 evenly spaced recall positions. At each threshold,
  detections below it are dropped and each ground truth takes the free detection of largest IoU.
- Precision is indexed by threshold, not by recall: precision[i] at the i-th threshold (0 past the last), then
  each replaced by the maximum to its right; AP|R40 averages indices 1..40 and the legacy AP|R11 indices 0, 4,
  ..., 40 (in percent). With few ground truth boxes this reads low -- N boxes found perfectly score
  ``min(N - 1, 40) / 40`` -- and that is what the devkit reports. AOS is the same curve with the summed
  orientation similarity ``(1 + cos(alpha_gt - alpha_dt)) / 2`` of the true positives in place of their count,
  on the 2-D matching.
- IoU: 2-D intersection over union of the image boxes (no pixel added); BEV the rotated footprints; 3-D the
  footprint intersection times the overlap of the vertical extents, over the union volume. When both frames of
  a pair carry their camera-frame label boxes (:func:`frame_from_labels`, :func:`read_result_files`), BEV and 3-D
  are computed on those, in the camera frame as the devkit does; otherwise on the LiDAR boxes, the same numbers
  whenever the LiDAR-to-camera rotation is an exact axis permutation (synthetic scenes).

``method="exact_recall"`` is a documented deviation: the same matching and ignore rules, but the threshold for
recall position ``r`` is the score of the ``ceil(r * num_gt)``-th true positive and precision is the best reached
at recall ``>= r``, so N boxes found perfectly score 100 for any N. It is not what papers report.

Boxes are OpenPCDet's LiDAR-frame ``(x, y, z, dx, dy, dz, heading)``. 2-D boxes come from the label files, or
from projecting the 3-D boxes with :func:`image_boxes`.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .boxes import box_corners, boxes_camera_to_lidar, boxes_lidar_to_camera, limit_period, validate_boxes
from .calibration import Calibration
from .evaluation_ap import (
    METHODS, NEIGHBOURS, FrameMatcher, average_precision, dontcare_mask, ignored_detections, ignored_ground_truth,
    image_overlaps,
)
from .iou import bev_iou, iou_3d
from .kitti_io import KittiObject, check_frame_id, read_labels, write_labels

__all__ = [
    "IOU_THRESHOLDS",
    "METHODS",
    "METRICS",
    "MIN_OVERLAPS",
    "FrameBoxes",
    "KittiEvaluation",
    "evaluate",
    "frame_from_labels",
    "image_boxes",
    "read_result_files",
    "write_result_files",
]

IOU_THRESHOLDS = {"Car": 0.7, "Pedestrian": 0.5, "Cyclist": 0.5}
_LOOSE = {"Car": 0.5, "Pedestrian": 0.25, "Cyclist": 0.25}
# The devkit's two settings (OpenPCDet prints both): per metric, the IoU a match must exceed.
MIN_OVERLAPS = {
    "strict": {"2d": IOU_THRESHOLDS, "bev": IOU_THRESHOLDS, "3d": IOU_THRESHOLDS, "aos": IOU_THRESHOLDS},
    "loose": {"2d": IOU_THRESHOLDS, "bev": _LOOSE, "3d": _LOOSE, "aos": IOU_THRESHOLDS},
}
METRICS = ("2d", "bev", "3d", "aos")
DIFFICULTIES = ("easy", "moderate", "hard")
IMAGE_SHAPE = (375, 1242)  # KITTI images are about 375 x 1242 (rows, columns)
NO_ALPHA = -10.0  # what a KITTI result file writes for "no orientation"; the devkit then computes no AOS


def _rows(values: Any, width: int, name: str, rows: str) -> np.ndarray:
    """``values`` as a float64 ``(M, width)`` array; an empty input of any shape is ``(0, width)``."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return array.reshape(0, width)
    if array.ndim != 2 or array.shape[1] != width:
        raise ValueError(f"{name} must have shape ({rows}, {width}), got {array.shape}")
    return array


def _column(values: Any, name: str, m: int) -> np.ndarray:
    """``values`` as a finite float64 ``(m,)`` array."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 and array.size:
        raise ValueError(f"{name} must have shape ({m},), got {array.shape}")
    array = array.reshape(-1)
    if len(array) != m:
        raise ValueError(f"{name} has {len(array)} rows for {m} boxes")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} must be finite, got {array[bad[0]]} at row {int(bad[0])}")
    return array


@dataclass
class FrameBoxes:
    """One frame's ground truth or detections.

    Attributes:
        boxes: ``(M, 7)`` LiDAR-frame boxes (a DontCare region: a row of NaN).
        names: ``(M,)`` class names (ground truth keeps every class, including Van and DontCare).
        bbox: ``(M, 4)`` 2-D boxes ``(left, top, right, bottom)`` in pixels (the 2-D metric, AOS, the height
            rules and DontCare regions).
        scores: ``(M,)`` detection scores (``None`` for ground truth).
        occluded, truncated: ``(M,)`` ground truth occlusion level and truncation (``None`` for detections).
        alpha: ``(M,)`` observation angles for AOS; ``None`` derives them from ``boxes`` as OpenPCDet writes its
            result files (``ry - arctan2(-y, x)`` with ``ry = -heading - pi/2``).
        camera: ``(M, 7)`` the label files' camera-frame boxes ``(x, y, z, l, h, w, ry)`` (bottom centre), or
            ``None``; BEV and 3-D IoU use them when both frames of a pair have them.

    Raises:
        ValueError: a shape or row count that does not match ``boxes``; NaN / inf in ``bbox``, ``scores``,
            ``occluded``, ``truncated`` or ``alpha`` (names the row).
    """

    boxes: np.ndarray
    names: np.ndarray
    bbox: np.ndarray
    scores: np.ndarray | None = None
    occluded: np.ndarray | None = None
    truncated: np.ndarray | None = None
    alpha: np.ndarray | None = None
    camera: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = _rows(self.boxes, 7, "boxes", "M")
        m = len(self.boxes)
        names = np.asarray(self.names, dtype=str)
        if names.ndim > 1:
            raise ValueError(f"names must have shape ({m},), got {names.shape}")
        self.names = names.reshape(-1)
        if len(self.names) != m:
            raise ValueError(f"names has {len(self.names)} rows for {m} boxes")
        self.bbox = _rows(self.bbox, 4, "bbox", str(m))
        if len(self.bbox) != m:
            raise ValueError(f"bbox has {len(self.bbox)} rows for {m} boxes")
        bad = np.flatnonzero(~np.isfinite(self.bbox).all(axis=1))
        if bad.size:
            raise ValueError(f"bbox[{int(bad[0])}] must be finite, got {self.bbox[bad[0]].tolist()}")
        for name in ("scores", "occluded", "truncated", "alpha"):
            if getattr(self, name) is not None:
                setattr(self, name, _column(getattr(self, name), name, m))
        if self.camera is not None:
            self.camera = _rows(self.camera, 7, "camera", str(m))
            if len(self.camera) != m:
                raise ValueError(f"camera has {len(self.camera)} rows for {m} boxes")


@dataclass
class KittiEvaluation:
    """KITTI results in percent: ``ap[(class, metric, difficulty)]`` is AP|R40 (AOS|R40 for metric ``"aos"``),
    ``ap11`` the same at 11 recall positions, for metric ``"2d"`` / ``"bev"`` / ``"3d"`` / ``"aos"`` and difficulty
    ``"easy"`` / ``"moderate"`` / ``"hard"``; ``num_gt`` the ground truth boxes each entry counted;
    ``min_overlap[(class, metric)]`` the IoU a match had to exceed; ``method`` how precision was sampled."""

    ap: dict[tuple[str, str, str], float] = field(default_factory=dict)
    ap11: dict[tuple[str, str, str], float] = field(default_factory=dict)
    num_gt: dict[tuple[str, str, str], int] = field(default_factory=dict)
    min_overlap: dict[tuple[str, str], float] = field(default_factory=dict)
    method: str = "devkit"

    def table(self) -> str:
        """Markdown: one row per class and metric, R40 for easy / moderate / hard ("-": no ground truth)."""
        lines = ["| class | metric | IoU | easy | moderate | hard |", "|---|---|---:|---:|---:|---:|"]
        for cls, metric in dict.fromkeys((c, m) for c, m, _ in self.ap):
            values = " | ".join(
                f"{self.ap[(cls, metric, d)]:.2f}" if self.num_gt[(cls, metric, d)] else "-" for d in DIFFICULTIES
            )
            lines.append(f"| {cls} | {metric.upper()} | {self.min_overlap[(cls, metric)]} | {values} |")
        return "\n".join(lines)


def _has_extent(boxes: np.ndarray) -> np.ndarray:
    """Rows that are real 3-D boxes (DontCare regions are stored as NaN rows)."""
    return np.isfinite(boxes).all(axis=1) & (boxes[:, 3:6] > 0).all(axis=1)


def _camera_as_lidar(camera: np.ndarray) -> np.ndarray:
    """Camera-frame boxes ``(x, y, z, l, h, w, ry)`` moved rigidly into LiDAR axes (x forward, y left, z up, box
    centre) by the nominal axis permutation only: the rotated IoU of the result is the camera-frame IoU."""
    x, y, z, l, h, w, ry = camera.T
    return np.column_stack([z, -x, -y + h / 2, l, w, h, -ry - np.pi / 2])


def _overlaps(dt: FrameBoxes, gt: FrameBoxes, metric: str) -> np.ndarray:
    """``(D, G)`` IoU of detections with ground truth; zero for ground truth without a 3-D box."""
    if metric == "2d":
        return image_overlaps(dt.bbox, gt.bbox)
    if dt.camera is not None and gt.camera is not None:
        dt_boxes, gt_boxes = _camera_as_lidar(dt.camera), _camera_as_lidar(gt.camera)
    else:
        dt_boxes, gt_boxes = dt.boxes, gt.boxes
    out = np.zeros((len(dt_boxes), len(gt_boxes)))
    real = _has_extent(gt_boxes)
    if len(dt_boxes) and real.any():
        a, b = torch.from_numpy(dt_boxes), torch.from_numpy(gt_boxes[real])
        out[:, real] = (iou_3d(a, b) if metric == "3d" else bev_iou(a, b)).numpy()
    return out


def _alpha(frame: FrameBoxes) -> np.ndarray:
    """The frame's observation angles: given, or derived from the LiDAR boxes as OpenPCDet does."""
    if frame.alpha is not None:
        return frame.alpha
    ry = -frame.boxes[:, 6] - np.pi / 2
    return ry - np.arctan2(-frame.boxes[:, 1], frame.boxes[:, 0])


def _names(values: Any, name: str) -> list[str]:
    """``values`` as a list of names; a bare string (iterated, it would be its letters) is refused."""
    try:
        names = None if isinstance(values, str) else list(values)
    except TypeError:
        names = None
    if names is None or not all(isinstance(v, str) for v in names):
        raise TypeError(f"{name} must be a sequence of strings such as ('Car',), got {values!r}")
    return [str(v) for v in names]


def evaluate(
    ground_truth: Sequence[FrameBoxes],
    detections: Sequence[FrameBoxes],
    classes: Sequence[str] = ("Car", "Pedestrian", "Cyclist"),
    metrics: Sequence[str] = METRICS,
    method: str = "devkit",
    min_overlaps: str = "strict",
) -> KittiEvaluation:
    """KITTI AP|R40 and AP|R11 (and AOS) for every class, metric and difficulty.

    Args:
        ground_truth: one :class:`FrameBoxes` per frame with ``occluded`` and ``truncated`` (every labelled
            object: Van, Person_sitting and DontCare rows feed the ignore rules).
        detections: one per frame, same order, with ``scores``.
        classes: any of ``Car``, ``Pedestrian``, ``Cyclist``.
        metrics: any of ``"2d"`` (image boxes), ``"bev"``, ``"3d"``, ``"aos"`` (orientation similarity on the 2-D
            matching; left out of the result when a detection's alpha is -10, the KITTI "no orientation", as the
            devkit does).
        method: ``"devkit"`` (the official algorithm, module docstring) or ``"exact_recall"`` (precision read at
            the exact recall positions: a documented deviation).
        min_overlaps: ``"strict"`` (Car 0.7, Pedestrian / Cyclist 0.5) or ``"loose"`` (BEV and 3-D at 0.5 /
            0.25 / 0.25, 2-D unchanged).

    Documented results: no frames, or frames without detections, give AP 0 (``num_gt`` says how many ground
    truth boxes counted). Frames are matched by position; nothing can tell two lists of the same length apart.

    Raises:
        TypeError: a frame is not a :class:`FrameBoxes`; ``classes`` / ``metrics`` not a sequence of strings;
            ``method`` / ``min_overlaps`` not a string.
        ValueError: different frame counts; a detection box (or camera box) with NaN / inf or a non-positive
            size, or a ground truth box of an evaluated class (or its neighbour) without a finite 3-D extent
            (names frame and row); missing scores / occlusion; an unknown class, metric, method or setting.
    """
    classes, metrics = _names(classes, "classes"), _names(metrics, "metrics")
    for name, value, allowed in (("method", method, METHODS), ("min_overlaps", min_overlaps, tuple(MIN_OVERLAPS))):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, one of {allowed}, got {type(value).__name__}")
        if value not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    for cls in classes:
        if cls not in IOU_THRESHOLDS:
            raise ValueError(f"unknown class {cls!r}; the KITTI classes are {sorted(IOU_THRESHOLDS)}")
    for metric in metrics:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if len(ground_truth) != len(detections):
        raise ValueError(f"{len(ground_truth)} ground-truth frames but {len(detections)} detection frames")
    for name, frames in (("ground_truth", ground_truth), ("detections", detections)):
        for k, frame in enumerate(frames):
            if not isinstance(frame, FrameBoxes):
                raise TypeError(f"{name}[{k}] must be a FrameBoxes, got {type(frame).__name__}")
    for k, (gt, dt) in enumerate(zip(ground_truth, detections)):
        _check_pair(k, gt, dt, classes)

    settings = MIN_OVERLAPS[min_overlaps]
    with_aos = "aos" in metrics and not any(dt.alpha is not None and bool((dt.alpha == NO_ALPHA).any())
                                            for dt in detections)
    geometric = [m for m in ("2d", "bev", "3d") if m in metrics or (m == "2d" and with_aos)]
    overlaps = {m: [_overlaps(dt, gt, m) for gt, dt in zip(ground_truth, detections)] for m in geometric}
    if "2d" in geometric:
        dontcare = [image_overlaps(dt.bbox, gt.bbox[dontcare_mask(gt.names)], over="first")
                    for gt, dt in zip(ground_truth, detections)]
        similarity = [(1 + np.cos(_alpha(gt)[None, :] - _alpha(dt)[:, None])) / 2 if with_aos else None
                      for gt, dt in zip(ground_truth, detections)]
    values = {}  # (class, metric, difficulty) -> (R40, R11, num_gt)
    for cls in classes:
        for d, difficulty in enumerate(DIFFICULTIES):
            ignored = [(ignored_ground_truth(gt.names, gt.bbox, gt.occluded, gt.truncated, cls, d),
                        ignored_detections(dt.names, dt.bbox, cls, d)) for gt, dt in zip(ground_truth, detections)]
            num_gt = sum(int(np.sum(ig == 0)) for ig, _ in ignored)
            for metric in geometric:
                two_d = metric == "2d"
                matchers = [
                    FrameMatcher(overlap, dt.scores, ig, idt, settings[metric][cls],
                                 dontcare[k] if two_d else None, similarity[k] if two_d else None)
                    for k, (overlap, dt, (ig, idt)) in enumerate(zip(overlaps[metric], detections, ignored))
                ]
                ap40, ap11, aos40, aos11 = average_precision(matchers, num_gt, method)
                values[(cls, metric, difficulty)] = ap40, ap11, num_gt
                if two_d and with_aos:
                    values[(cls, "aos", difficulty)] = aos40, aos11, num_gt
    result = KittiEvaluation(method=method)
    for cls in classes:
        for metric in metrics:
            if (cls, metric, DIFFICULTIES[0]) not in values:
                continue  # AOS without orientations
            result.min_overlap[(cls, metric)] = settings[metric][cls]
            for difficulty in DIFFICULTIES:
                key = (cls, metric, difficulty)
                result.ap[key], result.ap11[key], result.num_gt[key] = values[key]
    return result


def _check_pair(k: int, gt: FrameBoxes, dt: FrameBoxes, classes: Sequence[str]) -> None:
    """The per-frame requirements of :func:`evaluate` (frame ``k``)."""
    if gt.occluded is None or gt.truncated is None:
        raise ValueError(f"ground truth of frame {k} needs occluded and truncated")
    if dt.scores is None:
        raise ValueError(f"detections of frame {k} need scores")
    try:
        validate_boxes(torch.from_numpy(dt.boxes))
        if dt.camera is not None:
            validate_boxes(torch.from_numpy(dt.camera), name="camera")
    except ValueError as exc:
        raise ValueError(f"detections of frame {k}: {exc}") from None
    # A box without extent is how DontCare is stored; for a class that counts it would be a ground truth no
    # detection can ever match, silently lowering the AP.
    wanted = [c.lower() for c in classes] + [NEIGHBOURS[c.lower()] for c in classes if c.lower() in NEIGHBOURS]
    counted = np.isin(np.char.lower(gt.names), wanted)
    for name, boxes in (("boxes", gt.boxes), ("camera", gt.camera)):
        if boxes is None:
            continue
        flat = np.flatnonzero(counted & ~_has_extent(boxes if name == "boxes" else _camera_as_lidar(boxes)))
        if flat.size:
            i = int(flat[0])
            raise ValueError(f"ground truth of frame {k}: {name}[{i}] ({gt.names[i]}) has no finite 3-D extent: "
                             f"{boxes[i].tolist()}")


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
    scores), with the files' alpha and camera-frame boxes; DontCare regions are kept with their names and 2-D
    boxes, their 3-D boxes rows of NaN, and never match."""
    objects = list(objects)
    camera = np.array([[*o.location, o.dims_hwl[2], o.dims_hwl[0], o.dims_hwl[1], o.ry] for o in objects],
                      dtype=np.float64).reshape(-1, 7)
    real = _has_extent(camera) & np.array([o.type.lower() != "dontcare" for o in objects], dtype=bool).reshape(-1)
    camera[~real] = np.nan
    boxes = np.full((len(objects), 7), np.nan)
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
        alpha=np.array([o.alpha for o in objects], dtype=np.float64),
        camera=camera,
    )


def write_result_files(folder: str | os.PathLike, frame_ids: Sequence[str], detections: Sequence[FrameBoxes],
                       calibs: Sequence[Calibration]) -> None:
    """Write KITTI result files ``folder/<frame_id>.txt`` (one line per detection, with its score and alpha --
    given, or derived as OpenPCDet does; an empty file for a frame without detections), the format the official
    devkit and benchmark server read.

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
        alpha = limit_period(_alpha(dt))
        objects = []
        for k in range(len(dt.boxes)):
            x, y, z, l, h, w, ry = camera[k]
            objects.append(KittiObject(
                type=str(dt.names[k]), truncated=-1.0, occluded=-1, alpha=float(alpha[k]), bbox=dt.bbox[k],
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
