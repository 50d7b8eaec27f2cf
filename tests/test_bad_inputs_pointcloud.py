"""Bad inputs to every public ``pointcloud`` entry point: one row per case, each a named error or a documented result.

A row is ``(entry point: input description, call, expected)``: ``call(tmp_path)`` runs the entry point (writing any
file it needs into ``tmp_path``), ``expected`` is ``Raises(type, regex)`` -- the message must name the argument or
the file and line -- or ``Documented(check, doc)``, a documented result. The classes covered: wrong shapes and ranks,
dtypes, devices (the ``meta`` device stands in for a second device), NaN and inf, empty inputs, out-of-range values,
malformed files, non-bool flags.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bad_inputs import Documented, Raises, assert_unique, expect
from kitti_files import CALIB_TEXT
from pointcloud import (
    Compose, collate, DynamicVFE, GTDatabase, GTSampling, KittiDataset, ObjectNoise, RandomFlip, RandomRotation,
    RandomScaling, RandomTranslation, SyntheticScenes, VoxelGrid, box_corners, boxes_camera_to_lidar,
    boxes_lidar_to_camera, evaluate, multiclass_nms, nms_rotated, points_in_boxes, read_labels, read_points,
    read_result_files, voxelize, write_labels, write_points, write_result_files,
)
from pointcloud.augment import flip_sample, rotate_sample, scale_sample, translate_sample
from pointcloud.calibration import Calibration
from pointcloud.evaluation import FrameBoxes, frame_from_labels, image_boxes
from pointcloud.iou import (
    bev_corners, bev_iou, bev_iou_aligned, iou_3d, iou_3d_aligned, rotated_bev_intersection,
    rotated_bev_intersection_aligned,
)
from pointcloud.kitti_io import KittiObject
from pointcloud.lion import (
    LIONConfig, LIONDetector, SparseBEV, dense_bev, expand_voxels, generate_voxels, merge_voxels, partition,
)
from pointcloud.synthetic import kitti_calibration


NAN, INF = float("nan"), float("inf")
LABEL = "Car 0.00 0 -1.50 600.00 150.00 700.00 250.00 1.50 1.60 3.90 1.00 1.70 20.00 -1.55\n"
RESULT = LABEL.rstrip("\n") + " 0.9\n"
NAN_CALIB = CALIB_TEXT.replace("721.5377 0 609.5593 44.85728", "721.5377 0 nan 44.85728")  # P2, line 3
def _calib() -> Calibration:
    return kitti_calibration()


def box(x=10.0, y=0.0, z=-1.0, dx=3.9, dy=1.6, dz=1.5, h=0.0) -> list[float]:
    return [x, y, z, dx, dy, dz, h]


def boxes(*rows, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor([list(r) for r in rows], dtype=dtype)


GOOD = boxes(box(), box(x=10.5))
GRID = VoxelGrid([0, 0, 0, 1, 1, 1], [0.5] * 3)
VOXELS = torch.tensor([[0, 0, 0, 0], [0, 1, 2, 3], [0, 3, 7, 7], [1, 0, 0, 1], [1, 2, 4, 4], [1, 3, 5, 6]])
SCORES = torch.tensor([0.9, 0.8])


def _file(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _object(score: float | None = None, alpha: float = 0.0) -> KittiObject:
    return KittiObject("Car", 0.0, 0, alpha, np.zeros(4), np.ones(3), np.zeros(3), 0.0, score)


def _results(tmp: Path, content: str | bytes) -> Path:
    """A result folder holding frame 000000's file."""
    return _file(tmp, "000000.txt", content).parent


def _points_file(tmp: Path, points) -> Path:
    path = tmp / "scan.bin"
    np.asarray(points, dtype="<f4").tofile(path)
    return path


def _tree(tmp: Path, *, label: str | bytes = LABEL, calib: str | bytes = CALIB_TEXT, points=None,
          image_set: str | bytes | None = None) -> Path:
    """A one-frame KITTI tree (frame ``000000``) under ``tmp/kitti``, with ``ImageSets/train.txt`` when given."""
    root = tmp / "kitti"
    for sub in ("velodyne", "label_2", "calib"):
        (root / "training" / sub).mkdir(parents=True)
    pts = np.array([[10.0, 0.0, -1.0, 0.5], [12.0, 1.0, -1.2, 0.3]]) if points is None else points
    np.asarray(pts, dtype="<f4").tofile(root / "training" / "velodyne" / "000000.bin")
    _file(root / "training" / "label_2", "000000.txt", label)
    _file(root / "training" / "calib", "000000.txt", calib)
    if image_set is not None:
        (root / "ImageSets").mkdir()
        _file(root / "ImageSets", "train.txt", image_set)
    return root


def _no_scans(tmp: Path) -> Path:
    """A KITTI tree whose velodyne folder is empty, without ImageSets."""
    root = _tree(tmp)
    (root / "training" / "velodyne" / "000000.bin").unlink()
    return root


def _sample(points=None, gt_boxes=None, names=None) -> dict[str, Any]:
    return {
        "points": np.array([[10.0, 0.0, -1.0, 0.5], [30.0, 5.0, -1.0, 0.2]]) if points is None else points,
        "gt_boxes": np.array([box()]) if gt_boxes is None else gt_boxes,
        "gt_names": np.array(["Car"]) if names is None else names,
    }


def _frames(detection_boxes=None, scores=None, n_gt: int = 1):
    gt = FrameBoxes(np.array([box()] * n_gt), np.array(["Car"] * n_gt), np.array([[600, 150, 700, 250]] * n_gt),
                    occluded=np.zeros(n_gt, int), truncated=np.zeros(n_gt))
    dt_boxes = np.array([box()]) if detection_boxes is None else np.asarray(detection_boxes)
    dt = FrameBoxes(dt_boxes, np.array(["Car"] * len(dt_boxes)), np.array([[600, 150, 700, 250]] * len(dt_boxes)),
                    scores=np.array([0.9] * len(dt_boxes)) if scores is None else scores)
    return gt, dt


@functools.lru_cache(maxsize=None)
def _model() -> LIONDetector:
    torch.manual_seed(0)
    return LIONDetector(LIONConfig.tiny(classes=["Car"], operator="retnet")).eval()


def _points(rows=((0, 10.0, 0.0, -1.0, 0.5), (0, 12.0, 1.0, -1.2, 0.3))) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def _with(tensor: torch.Tensor, index, value) -> torch.Tensor:
    out = tensor.clone()
    out[index] = value
    return out


def _preds(batch: int = 1):
    with torch.no_grad():
        return _model()(_points(), batch)


def _gt(rows=(box(),), classes=(1,)):  # noqa: B008 -- the default box is only read
    return torch.tensor([list(rows)], dtype=torch.float32), torch.tensor([list(classes)])


_RNG = np.random.default_rng(0)
_FLAG = "no"  # a string that Python would count as True


CASES = [
    # ---------------------------------------------------------------------------------------- KITTI files
    pytest.param(lambda t: read_points(_file(t, "scan.bin", b"\x00" * 15)),
                 Raises(ValueError, r"scan\.bin: size 15 bytes is not a multiple of 16"), id="read_points: truncated"),
    pytest.param(lambda t: read_points(_points_file(t, [[1, 2, 3, 0.5], [1, NAN, 3, 0.5]])),
                 Raises(ValueError, r"scan\.bin: point 1 .*NaN or inf"), id="read_points: NaN coordinate"),
    pytest.param(lambda t: read_points(_points_file(t, [[1, 2, 3, INF]])),
                 Raises(ValueError, r"scan\.bin: point 0 .*NaN or inf"), id="read_points: inf intensity"),
    pytest.param(lambda t: read_points(_file(t, "scan.bin", b"")),
                 Documented(lambda r: r.shape == (0, 4) and r.dtype == np.float32, "an empty scan: (0, 4)"),
                 id="read_points: empty file"),
    pytest.param(lambda t: read_points(t / "missing.bin"), Raises(FileNotFoundError, r"missing\.bin"),
                 id="read_points: missing file"),
    pytest.param(lambda t: write_points(t / "w.bin", np.zeros((3, 3))), Raises(ValueError, r"shape \(N, 4\)"),
                 id="write_points: 3 columns"),
    pytest.param(lambda t: write_points(t / "w.bin", np.array([[1, 2, NAN, 0]])),
                 Raises(ValueError, r"points.*point 0 .*NaN or inf"), id="write_points: NaN"),
    pytest.param(lambda t: read_labels(_file(t, "label.txt", b"\x89PNG\r\n\x1a\n\xff\xfe binary")),
                 Raises(ValueError, r"label\.txt:1: .*not UTF-8 text"), id="read_labels: binary garbage"),
    pytest.param(lambda t: read_labels(_file(t, "label.txt", LABEL + LABEL.replace("1.70", "nan"))),
                 Raises(ValueError, r"label\.txt:2: .*location.* must be finite"), id="read_labels: NaN field"),
    pytest.param(lambda t: read_labels(_file(t, "label.txt", LABEL.replace("-1.55", "inf"))),
                 Raises(ValueError, r"label\.txt:1: .*ry.* must be finite"), id="read_labels: inf field"),
    pytest.param(lambda t: read_labels(_file(t, "label.txt", "Car 0 0 1\n")),
                 Raises(ValueError, r"label\.txt:1: expected 15 fields"), id="read_labels: too few fields"),
    pytest.param(lambda t: read_labels(_file(t, "label.txt", LABEL.replace("600.00", "6OO"))),
                 Raises(ValueError, r"label\.txt:1: non-numeric field"), id="read_labels: non-numeric"),
    pytest.param(lambda t: read_labels(_file(t, "label.txt", "")),
                 Documented(lambda r: r == [], "a frame without objects: []"), id="read_labels: empty file"),
    pytest.param(lambda t: read_labels(_file(t, "label.txt", RESULT.replace(" 0.9\n", " nan\n"))),
                 Raises(ValueError, r"label\.txt:1: .*score.* must be finite"), id="read_labels: NaN score"),
    pytest.param(lambda t: write_labels(t / "l.txt", [_object(alpha=NAN)]),
                 Raises(ValueError, r"KittiObject\.alpha must be finite"), id="write_labels: NaN alpha"),
    pytest.param(lambda t: _object(score=NAN),
                 Raises(ValueError, r"KittiObject\.score must be finite"), id="KittiObject: NaN score"),
    pytest.param(lambda t: Calibration.from_file(_file(t, "calib.txt", b"P2: \xff\xfe\x00\x01\n")),
                 Raises(ValueError, r"calib\.txt:1: .*not UTF-8 text"), id="Calibration.from_file: binary garbage"),
    pytest.param(lambda t: Calibration.from_file(_file(t, "calib.txt", NAN_CALIB)),
                 Raises(ValueError, r"calib\.txt:3: P2 .*NaN or inf"), id="Calibration.from_file: NaN value"),
    pytest.param(lambda t: Calibration.from_file(_file(t, "calib.txt", "")),
                 Raises(ValueError, r"calib\.txt: missing calibration key"), id="Calibration.from_file: empty file"),
    pytest.param(lambda t: Calibration.from_file(_file(t, "calib.txt", "P2: 1 2 3\n")),
                 Raises(ValueError, r"calib\.txt:1: P2 needs 12 values"), id="Calibration.from_file: short P2"),
    pytest.param(lambda t: Calibration(P2=np.full((3, 4), NAN), R0_rect=np.eye(3), Tr_velo_to_cam=np.eye(3, 4)),
                 Raises(ValueError, r"Calibration\.P2 contains NaN or inf"), id="Calibration: NaN matrix"),
    pytest.param(lambda t: Calibration(P2=np.eye(3), R0_rect=np.eye(3), Tr_velo_to_cam=np.eye(3, 4)),
                 Raises(ValueError, r"Calibration\.P2 must have shape \(3, 4\)"), id="Calibration: P2 3x3"),
    pytest.param(lambda t: _calib().lidar_to_rect(np.zeros((2, 2))),
                 Raises(ValueError, r"points must have shape \(N, 3\)"),
                 id="Calibration.lidar_to_rect: 2 columns"),
    # ---------------------------------------------------------------------------------------- KittiDataset
    pytest.param(lambda t: KittiDataset(_tree(t, image_set="../..\n")),
                 Raises(ValueError, r"train\.txt:1: frame id '\.\./\.\.' is not a plain frame name"),
                 id="KittiDataset: frame id ../.. in ImageSets"),
    pytest.param(lambda t: KittiDataset(_tree(t, image_set="000000\n/etc/passwd\n")),
                 Raises(ValueError, r"train\.txt:2: frame id '/etc/passwd' is not a plain frame name"),
                 id="KittiDataset: absolute frame id"),
    pytest.param(lambda t: KittiDataset(_tree(t, image_set="training/000000\n")),
                 Raises(ValueError, r"train\.txt:1: frame id 'training/000000' is not a plain frame name"),
                 id="KittiDataset: frame id with a folder"),
    pytest.param(lambda t: KittiDataset(_tree(t, image_set="000000 000001\n")),
                 Raises(ValueError, r"train\.txt:1: expected one frame id per line, got 2 fields"),
                 id="KittiDataset: two ids on a line"),
    pytest.param(lambda t: KittiDataset(_tree(t, image_set="000000\n000000\n")),
                 Raises(ValueError, r"train\.txt:2: frame id '000000' is listed twice"),
                 id="KittiDataset: duplicate id"),
    pytest.param(lambda t: KittiDataset(_tree(t, image_set=b"\xff\xfe\x00garbage\n")),
                 Raises(ValueError, r"train\.txt:1: .*not UTF-8 text"), id="KittiDataset: binary ImageSets"),
    pytest.param(lambda t: KittiDataset(_tree(t, image_set="\n\n")),
                 Raises(ValueError, r"train\.txt: lists no frames"), id="KittiDataset: empty ImageSets"),
    pytest.param(lambda t: KittiDataset(_no_scans(t), None), Raises(ValueError, r"velodyne: holds no \.bin scan"),
                 id="KittiDataset: no scans, split=None"),
    pytest.param(lambda t: KittiDataset(_tree(t), "val"),
                 Raises(FileNotFoundError, r"ImageSets[/\\]val\.txt, so split 'val' lists no frames.*split=None"),
                 id="KittiDataset: split without its ImageSets file"),
    pytest.param(lambda t: KittiDataset(_tree(t) / "training", None),
                 Raises(ValueError, r"training holds velodyne/ itself: it is a split folder"),
                 id="KittiDataset: a split folder as root"),
    pytest.param(lambda t: KittiDataset(_tree(t), None, calibration=CALIB_TEXT),
                 Raises(TypeError, r"calibration must be a Calibration or None"),
                 id="KittiDataset: calibration as text"),
    pytest.param(lambda t: KittiDataset(_tree(t, label=b"\x00\x9f\x92\x96 garbage\n"), None)[0],
                 Raises(ValueError, r"000000\.txt:1: .*not UTF-8 text"), id="KittiDataset[i]: binary label file"),
    pytest.param(lambda t: KittiDataset(_tree(t, points=[[10.0, NAN, -1.0, 0.5]]), None)[0],
                 Raises(ValueError, r"000000\.bin: point 0 .*NaN or inf"), id="KittiDataset[i]: NaN point"),
    pytest.param(lambda t: KittiDataset(_tree(t, calib="P2: 1 2\n"), None)[0],
                 Raises(ValueError, r"000000\.txt:1: P2 needs 12 values"), id="KittiDataset[i]: malformed calib"),
    pytest.param(lambda t: KittiDataset(_tree(t), fov_only=_FLAG),
                 Raises(TypeError, r"fov_only must be a bool"), id="KittiDataset: fov_only='no'"),
    pytest.param(lambda t: KittiDataset(_tree(t), transform="flip"),
                 Raises(TypeError, r"transform must be callable"), id="KittiDataset: transform not callable"),
    pytest.param(lambda t: KittiDataset(_tree(t), point_cloud_range=(0, -40, -3, NAN, 40, 1)),
                 Raises(ValueError, r"point_cloud_range"), id="KittiDataset: NaN range"),
    pytest.param(lambda t: KittiDataset(_tree(t), point_cloud_range=(0, -40, -3, 70)),
                 Raises(ValueError, r"point_cloud_range"), id="KittiDataset: 4-value range"),
    pytest.param(lambda t: KittiDataset(_tree(t), split="testing"), Raises(ValueError, r"split must be one of"),
                 id="KittiDataset: unknown split"),
    pytest.param(lambda t: KittiDataset(_tree(t), classes=()), Raises(ValueError, r"classes must be non-empty"),
                 id="KittiDataset: no classes"),
    pytest.param(lambda t: KittiDataset(t / "nope"),
                 Raises(FileNotFoundError, r"nope"), id="KittiDataset: missing root"),
    pytest.param(lambda t: KittiDataset(_tree(t), None)[1], Raises(IndexError, r"index 1 out of range for 1 frames"),
                 id="KittiDataset[i]: out of range"),
    pytest.param(lambda t: KittiDataset(_tree(t), None)[0.5], Raises(TypeError, r"index must be an integer"),
                 id="KittiDataset[i]: float index"),
    pytest.param(lambda t: KittiDataset(_tree(t), None)[True], Raises(TypeError, r"index must be an integer"),
                 id="KittiDataset[i]: bool index"),
    # ---------------------------------------------------------------------------------------- voxelization
    pytest.param(lambda t: voxelize(torch.zeros(5), None, GRID),
                 Raises(ValueError, r"points must be a float \(N, 3 \+ C\)"), id="voxelize: rank 1"),
    pytest.param(lambda t: voxelize(torch.zeros(5, 4, dtype=torch.int64), None, GRID),
                 Raises(ValueError, r"points must be a float"), id="voxelize: int points"),
    pytest.param(lambda t: voxelize(torch.tensor([[0.1, NAN, 0.1, 1.0]]), None, GRID),
                 Raises(ValueError, r"NaN coordinates"), id="voxelize: NaN coordinate"),
    pytest.param(lambda t: voxelize(torch.tensor([[0.1, 0.1, 0.1, NAN]]), None, GRID),
                 Raises(ValueError, r"points column 3 .*NaN or inf"), id="voxelize: NaN intensity"),
    pytest.param(lambda t: voxelize(torch.tensor([[INF, 0.1, 0.1, 1.0], [0.1, 0.1, 0.1, 1.0]]), None,
                                    GRID),
                 Documented(lambda v: v.num_voxels == 1 and v.dropped == 1, "inf coordinates are out of range: dropped"),
                 id="voxelize: inf coordinate"),
    pytest.param(lambda t: voxelize(torch.zeros(0, 4), None, GRID),
                 Documented(lambda v: v.num_voxels == 0 and v.coords.shape == (0, 4), "no points: no voxels"),
                 id="voxelize: empty"),
    pytest.param(lambda t: voxelize(torch.full((2, 4), 0.1), torch.tensor([0.0, 0.7]), GRID),
                 Raises(TypeError, r"batch must be an integer tensor"), id="voxelize: float batch"),
    pytest.param(lambda t: voxelize(torch.full((2, 4), 0.1), torch.tensor([0, -1]), GRID),
                 Raises(ValueError, r"batch indices must be non-negative"), id="voxelize: negative batch"),
    pytest.param(lambda t: voxelize(torch.full((2, 4), 0.1), torch.tensor([0]), GRID),
                 Raises(ValueError, r"batch must have shape \(2,\)"), id="voxelize: batch length"),
    pytest.param(lambda t: voxelize(torch.full((2, 4), 0.1), torch.zeros(2, dtype=torch.long, device="meta"),
                                    GRID),
                 Raises(ValueError, r"one device"), id="voxelize: batch on another device"),
    pytest.param(lambda t: voxelize(torch.full((2, 4), 0.1), None, [0, 0, 0, 1, 1, 1]),
                 Raises(TypeError, r"grid must be a VoxelGrid"), id="voxelize: grid a list"),
    pytest.param(lambda t: VoxelGrid([0, 0, 0, 1, 1, NAN], [0.5] * 3), Raises(ValueError, r"finite"),
                 id="VoxelGrid: NaN range"),
    pytest.param(lambda t: VoxelGrid([0, 0, 0, 1, 1, 1], [0.5, 0.0, 0.5]),
                 Raises(ValueError, r"voxel_size must be positive"),
                 id="VoxelGrid: zero voxel size"),
    pytest.param(lambda t: VoxelGrid([0, 0, 0, 1, 1, 1], [0.3] * 3),
                 Raises(ValueError, r"not a multiple of voxel size"),
                 id="VoxelGrid: size does not divide"),
    pytest.param(lambda t: DynamicVFE(4, (8,), with_distance=_FLAG), Raises(TypeError, r"with_distance must be a bool"),
                 id="DynamicVFE: with_distance='no'"),
    pytest.param(lambda t: DynamicVFE(2, (8,)),
                 Raises(ValueError, r"in_channels must be >= 3"), id="DynamicVFE: 2 columns"),
    pytest.param(lambda t: DynamicVFE(4, (8,), norm="group"),
                 Raises(ValueError, r"norm must be"), id="DynamicVFE: norm"),
    pytest.param(lambda t: DynamicVFE(4, (8,))(torch.zeros(2, 5), voxelize(torch.zeros(2, 5), None,
                                                                           GRID),
                                               GRID),
                 Raises(ValueError, r"expected 4 point columns, got 5"), id="DynamicVFE.forward: 5 columns"),
    # ---------------------------------------------------------------------------------------- box conversions
    pytest.param(lambda t: boxes_lidar_to_camera(torch.zeros(2, 6, dtype=torch.float64), _calib()),
                 Raises(ValueError, r"boxes must have shape \(M, 7\)"), id="boxes_lidar_to_camera: 6 columns"),
    pytest.param(lambda t: boxes_lidar_to_camera(GOOD.long(), _calib()), Raises(TypeError, r"boxes must be a floating"),
                 id="boxes_lidar_to_camera: int boxes"),
    pytest.param(lambda t: boxes_lidar_to_camera(_with(GOOD, (1, 0), NAN), _calib()),
                 Raises(ValueError, r"boxes\[1\] contains NaN or inf"), id="boxes_lidar_to_camera: NaN"),
    pytest.param(lambda t: boxes_camera_to_lidar(_with(GOOD, (0, 4), 0.0), _calib()),
                 Raises(ValueError, r"boxes\[0\] has a non-positive size"), id="boxes_camera_to_lidar: zero height"),
    pytest.param(lambda t: boxes_camera_to_lidar(GOOD, "calib"), Raises(TypeError, r"calib must be a Calibration"),
                 id="boxes_camera_to_lidar: calib a string"),
    pytest.param(lambda t: boxes_lidar_to_camera(torch.zeros(0, 7, dtype=torch.float64), _calib()),
                 Documented(lambda r: r.shape == (0, 7), "no boxes: (0, 7)"), id="boxes_lidar_to_camera: empty"),
    pytest.param(lambda t: box_corners(_with(GOOD, (0, 3), -1.0)),
                 Raises(ValueError, r"boxes\[0\] has a non-positive size"),
                 id="box_corners: negative size"),
    pytest.param(lambda t: points_in_boxes(torch.zeros(4, 2), GOOD),
                 Raises(ValueError, r"points must be a tensor of shape \(N, 3\+\)"),
                 id="points_in_boxes: 2 columns"),
    pytest.param(lambda t: points_in_boxes(torch.tensor([[NAN, 0.0, -1.0]]), GOOD),
                 Documented(lambda r: r.shape == (2, 1) and not r.any(), "a NaN point lies in no box"),
                 id="points_in_boxes: NaN point"),
    pytest.param(lambda t: points_in_boxes(torch.zeros(3, 3, device="meta"), GOOD),
                 Raises(ValueError, r"one device"), id="points_in_boxes: points on another device"),
    # ---------------------------------------------------------------------------------------- IoU
    pytest.param(lambda t: bev_iou(torch.zeros(3, 6, dtype=torch.float64), GOOD),
                 Raises(ValueError, r"a must have shape \(M, 7\)"),
                 id="bev_iou: 6 columns"),
    pytest.param(lambda t: bev_iou(GOOD[0], GOOD),
                 Raises(ValueError, r"a must have shape \(M, 7\)"), id="bev_iou: rank 1"),
    pytest.param(lambda t: bev_iou(GOOD.long(), GOOD.long()), Raises(TypeError, r"a must be a floating-point torch\.Tensor"),
                 id="bev_iou: int boxes"),
    pytest.param(lambda t: bev_iou(GOOD, GOOD.float()), Raises(ValueError, r"a and b must share dtype and device"),
                 id="bev_iou: mixed dtypes"),
    pytest.param(lambda t: bev_iou(GOOD, GOOD.to("meta")), Raises(ValueError, r"a and b must share dtype and device"),
                 id="bev_iou: b on another device"),
    pytest.param(lambda t: bev_iou(_with(GOOD, (1, 2), NAN), GOOD), Raises(ValueError, r"a\[1\] contains NaN or inf"),
                 id="bev_iou: NaN"),
    pytest.param(lambda t: bev_iou(GOOD, _with(GOOD, (0, 6), INF)), Raises(ValueError, r"b\[0\] contains NaN or inf"),
                 id="bev_iou: inf heading"),
    pytest.param(lambda t: bev_iou(_with(GOOD, (0, 4), 0.0), GOOD), Raises(ValueError, r"a\[0\] has a non-positive size"),
                 id="bev_iou: zero width"),
    pytest.param(lambda t: bev_iou(torch.zeros(0, 7, dtype=torch.float64), GOOD),
                 Documented(lambda r: r.shape == (0, 2), "no boxes: an empty (0, K) matrix"), id="bev_iou: empty"),
    pytest.param(lambda t: bev_iou([box()], GOOD),
                 Raises(TypeError, r"a must be a floating-point torch\.Tensor \(M, 7\), got list"), id="bev_iou: a list"),
    pytest.param(lambda t: bev_iou_aligned(GOOD, GOOD[:1]),
                 Raises(ValueError, r"equal lengths"), id="bev_iou_aligned: lengths"),
    pytest.param(lambda t: iou_3d(GOOD, _with(GOOD, (1, 5), -1.0)), Raises(ValueError, r"b\[1\] has a non-positive size"),
                 id="iou_3d: negative height"),
    pytest.param(lambda t: iou_3d(_with(GOOD, (0, 0), INF), GOOD), Raises(ValueError, r"a\[0\] contains NaN or inf"),
                 id="iou_3d: inf"),
    pytest.param(lambda t: iou_3d(GOOD, torch.zeros(0, 7, dtype=torch.float64)),
                 Documented(lambda r: r.shape == (2, 0), "no boxes: an empty (M, 0) matrix"), id="iou_3d: empty"),
    pytest.param(lambda t: iou_3d_aligned(GOOD, _with(GOOD, (0, 1), NAN)), Raises(ValueError, r"b\[0\] contains NaN"),
                 id="iou_3d_aligned: NaN"),
    pytest.param(lambda t: rotated_bev_intersection(GOOD, GOOD.to("meta")),
                 Raises(ValueError, r"share dtype and device"),
                 id="rotated_bev_intersection: another device"),
    pytest.param(lambda t: rotated_bev_intersection_aligned(GOOD, GOOD.float()), Raises(ValueError, r"share dtype"),
                 id="rotated_bev_intersection_aligned: dtypes"),
    pytest.param(lambda t: bev_corners(_with(GOOD, (0, 3), NAN)), Raises(ValueError, r"boxes\[0\] contains NaN"),
                 id="bev_corners: NaN"),
    # ---------------------------------------------------------------------------------------- NMS
    pytest.param(lambda t: nms_rotated(boxes(box(), box(x=10.2)), torch.tensor([NAN, 0.9]), 0.5),
                 Raises(ValueError, r"scores\[0\] is NaN"), id="nms_rotated: NaN score over a 0.9 one"),
    pytest.param(lambda t: nms_rotated(boxes(box(), box(x=10.2)), torch.tensor([INF, 0.9]), 0.5),
                 Documented(lambda r: r.tolist() == [0], "an inf score ranks first"), id="nms_rotated: inf score"),
    pytest.param(lambda t: nms_rotated(GOOD, torch.tensor([0.9]), 0.5),
                 Raises(ValueError, r"scores must have shape \(2,\)"),
                 id="nms_rotated: scores length"),
    pytest.param(lambda t: nms_rotated(GOOD, SCORES[:, None], 0.5),
                 Raises(ValueError, r"scores must have shape \(2,\)"),
                 id="nms_rotated: scores rank 2"),
    pytest.param(lambda t: nms_rotated(GOOD, torch.tensor([True, False]), 0.5),
                 Raises(TypeError, r"scores must be a real-valued tensor"), id="nms_rotated: bool scores"),
    pytest.param(lambda t: nms_rotated(GOOD, SCORES.to("meta"), 0.5), Raises(ValueError, r"one device"),
                 id="nms_rotated: scores on another device"),
    pytest.param(lambda t: nms_rotated(_with(GOOD, (0, 1), NAN), SCORES, 0.5),
                 Raises(ValueError, r"boxes\[0\] contains NaN"),
                 id="nms_rotated: NaN box"),
    pytest.param(lambda t: nms_rotated(_with(GOOD, (0, 3), 0.0), SCORES, 0.5),
                 Raises(ValueError, r"boxes\[0\] has a non-positive size"),
                 id="nms_rotated: zero size"),
    pytest.param(lambda t: nms_rotated(GOOD.long(), SCORES, 0.5), Raises(TypeError, r"boxes must be a floating-point"),
                 id="nms_rotated: int boxes"),
    pytest.param(lambda t: nms_rotated(torch.zeros(0, 7), torch.zeros(0), 0.5),
                 Documented(lambda r: r.shape == (0,) and r.dtype == torch.int64, "no boxes: no indices"),
                 id="nms_rotated: empty"),
    pytest.param(lambda t: nms_rotated(GOOD, SCORES, NAN), Raises(ValueError, r"iou_threshold must lie in \[0, 1\]"),
                 id="nms_rotated: NaN threshold"),
    pytest.param(lambda t: nms_rotated(GOOD, SCORES, 1.5), Raises(ValueError, r"iou_threshold must lie in \[0, 1\]"),
                 id="nms_rotated: threshold 1.5"),
    pytest.param(lambda t: nms_rotated(GOOD, SCORES, 0.5, pre_max=-1),
                 Raises(ValueError, r"pre_max must be >= 0, got -1"),
                 id="nms_rotated: pre_max -1"),
    pytest.param(lambda t: nms_rotated(GOOD, SCORES, 0.5, pre_max=0),
                 Documented(lambda r: r.shape == (0,), "pre_max=0 keeps nothing"), id="nms_rotated: pre_max 0"),
    pytest.param(lambda t: nms_rotated(GOOD, SCORES, 0.5, post_max=1.5), Raises(TypeError, r"post_max must be an int"),
                 id="nms_rotated: float post_max"),
    pytest.param(lambda t: nms_rotated(GOOD, SCORES, 0.5, use_3d=_FLAG), Raises(TypeError, r"use_3d must be a bool"),
                 id="nms_rotated: use_3d='no'"),
    pytest.param(lambda t: multiclass_nms(GOOD, torch.tensor([0.9, NAN]), torch.tensor([0, 1]), 0.5),
                 Raises(ValueError, r"scores\[1\] is NaN"), id="multiclass_nms: NaN score"),
    pytest.param(lambda t: multiclass_nms(GOOD, SCORES, torch.tensor([0.0, 1.0]), 0.5),
                 Raises(TypeError, r"labels must be an integer tensor"), id="multiclass_nms: float labels"),
    pytest.param(lambda t: multiclass_nms(GOOD, SCORES, torch.tensor([0]), 0.5),
                 Raises(ValueError, r"labels must have shape \(2,\)"),
                 id="multiclass_nms: labels length"),
    pytest.param(lambda t: multiclass_nms(GOOD, SCORES, torch.tensor([0, 1]), 0.5, use_3d=1),
                 Raises(TypeError, r"use_3d must be a bool"), id="multiclass_nms: use_3d=1"),
    pytest.param(lambda t: multiclass_nms(torch.zeros(0, 7), torch.zeros(0), torch.zeros(0, dtype=torch.long), 0.5),
                 Documented(lambda r: r.shape == (0,), "no boxes: no indices"), id="multiclass_nms: empty"),
    # ---------------------------------------------------------------------------------------- KITTI evaluation
    pytest.param(lambda t: evaluate([_frames()[0]], []),
                 Raises(ValueError, r"1 ground-truth frames but 0 detection frames"),
                 id="evaluate: mismatched frames"),
    pytest.param(lambda t: evaluate(*map(list, zip(_frames(np.zeros((0, 7)))))),
                 Documented(lambda r: r.ap[("Car", "3d", "easy")] == 0.0 and r.num_gt[("Car", "3d", "easy")] == 1,
                         "no detections: AP 0 over the counted ground truth"), id="evaluate: empty detections"),
    pytest.param(lambda t: evaluate([], []),
                 Documented(lambda r: r.num_gt[("Car", "3d", "easy")] == 0 and r.ap[("Car", "3d", "easy")] == 0.0,
                                                     "no frames: AP 0, num_gt 0"), id="evaluate: no frames"),
    pytest.param(lambda t: _frames(scores=np.array([NAN])), Raises(ValueError, r"scores must be finite"),
                 id="FrameBoxes: NaN score"),
    pytest.param(lambda t: evaluate(*map(list, zip(_frames(np.array([box(y=NAN)]))))),
                 Raises(ValueError, r"detections of frame 0: boxes\[0\] contains NaN or inf"),
                 id="evaluate: NaN detection box"),
    pytest.param(lambda t: evaluate(*map(list, zip(_frames(np.array([box(dz=0.0)]))))),
                 Raises(ValueError, r"detections of frame 0: boxes\[0\] has a non-positive size"),
                 id="evaluate: zero-size detection"),
    pytest.param(lambda t: evaluate([FrameBoxes(np.full((1, 7), NAN), ["Car"], np.zeros((1, 4)), occluded=np.zeros(1),
                                                truncated=np.zeros(1))], [_frames()[1]]),
                 Raises(ValueError, r"ground truth of frame 0: boxes\[0\] \(Car\) has no finite 3-D extent"),
                 id="evaluate: a Car ground truth without a box"),
    pytest.param(lambda t: evaluate([_frames()[0]], [_frames()[0]]),
                 Raises(ValueError, r"detections of frame 0 need scores"),
                 id="evaluate: detections without scores"),
    pytest.param(lambda t: evaluate([_frames()[1]], [_frames()[1]]),
                 Raises(ValueError, r"ground truth of frame 0 needs occluded"),
                 id="evaluate: ground truth without occlusion"),
    pytest.param(lambda t: evaluate([np.zeros((1, 7))], [_frames()[1]]),
                 Raises(TypeError, r"ground_truth\[0\] must be a FrameBoxes"),
                 id="evaluate: arrays instead of FrameBoxes"),
    pytest.param(lambda t: evaluate(*map(list, zip(_frames())), classes=("Van",)),
                 Raises(ValueError, r"unknown class 'Van'"),
                 id="evaluate: class Van"),
    pytest.param(lambda t: evaluate(*map(list, zip(_frames())), metrics=("image",)),
                 Raises(ValueError, r"metric must be one of \('2d', 'bev', '3d', 'aos'\), got 'image'"),
                 id="evaluate: metric image"),
    pytest.param(lambda t: FrameBoxes(np.zeros((7, 6)), np.array(["Car"] * 6), np.zeros((6, 4))),
                 Raises(ValueError, r"boxes must have shape \(M, 7\), got \(7, 6\)"), id="FrameBoxes: 6 columns"),
    pytest.param(lambda t: FrameBoxes(np.zeros((1, 7)), np.array(["Car"]), np.zeros((2, 2))),
                 Raises(ValueError, r"bbox must have shape \(1, 4\), got \(2, 2\)"), id="FrameBoxes: bbox shape"),
    pytest.param(lambda t: FrameBoxes(np.zeros((1, 7)), np.array(["Car", "Van"]), np.zeros((1, 4))),
                 Raises(ValueError, r"names has 2 rows for 1 boxes"), id="FrameBoxes: names length"),
    pytest.param(lambda t: image_boxes(np.zeros((7, 6)), _calib()),
                 Raises(ValueError, r"boxes must have shape \(M, 7\)"),
                 id="image_boxes: 6 columns"),
    pytest.param(lambda t: frame_from_labels([_object(),
                                              _object(score=0.5)],
                                             _calib()),
                 Raises(ValueError, r"every object carries a score"), id="frame_from_labels: mixed scores"),
    pytest.param(lambda t: read_result_files(t, ["000000"], [_calib()]),
                 Raises(FileNotFoundError, r"no result file for frame 000000"),
                 id="read_result_files: missing file"),
    pytest.param(lambda t: read_result_files(_results(t, LABEL), ["000000"], [_calib()]),
                 Raises(ValueError, r"000000\.txt: result lines need a 16th field"), id="read_result_files: no score"),
    pytest.param(lambda t: read_result_files(_results(t, RESULT.replace("0.9\n", "nan\n")), ["000000"], [_calib()]),
                 Raises(ValueError, r"000000\.txt:1: .*score.* must be finite"), id="read_result_files: NaN score"),
    pytest.param(lambda t: read_result_files(_results(t, b"\xff\xd8\xff\xe0 jpeg"), ["000000"], [_calib()]),
                 Raises(ValueError, r"000000\.txt:1: .*not UTF-8 text"), id="read_result_files: binary garbage"),
    pytest.param(lambda t: read_result_files(t, ["000000", "000001"], [_calib()]),
                 Raises(ValueError, r"2 frame ids but 1 calibrations"), id="read_result_files: lengths"),
    pytest.param(lambda t: read_result_files(t, ["../000000"], [_calib()]),
                 Raises(ValueError, r"frame id '\.\./000000' is not a plain frame name"),
                 id="read_result_files: ../ frame id"),
    pytest.param(lambda t: write_result_files(t, ["000000"], [_frames()[1]] * 2, [_calib()]),
                 Raises(ValueError, r"1 frame ids, 2 detection frames and 1 calibrations"),
                 id="write_result_files: lengths"),
    pytest.param(lambda t: write_result_files(t, ["/tmp/x"], [_frames()[1]], [_calib()]),
                 Raises(ValueError, r"frame id '/tmp/x' is not a plain frame name"),
                 id="write_result_files: absolute frame id"),
    # ---------------------------------------------------------------------------------------- augmentation
    pytest.param(lambda t: flip_sample(_sample(points=np.array([[NAN, 0, 0, 1.0]]))),
                 Raises(ValueError, r"points contains NaN or inf"), id="flip_sample: NaN point"),
    pytest.param(lambda t: flip_sample(_sample(gt_boxes=np.array([box(h=INF)]))),
                 Raises(ValueError, r"gt_boxes\[0\] contains NaN or inf"), id="flip_sample: inf heading"),
    pytest.param(lambda t: flip_sample(_sample(gt_boxes=np.array([box(dx=0.0)]))),
                 Raises(ValueError, r"gt_boxes\[0\] has a non-positive size"), id="flip_sample: zero-size box"),
    pytest.param(lambda t: flip_sample(_sample(points=np.zeros(4))),
                 Raises(ValueError, r"points must have shape \(N, 3\+C\)"),
                 id="flip_sample: rank-1 points"),
    pytest.param(lambda t: flip_sample(_sample(names=np.array(["Car", "Van"]))),
                 Raises(ValueError, r"gt_names must have shape \(1,\)"),
                 id="flip_sample: names length"),
    pytest.param(lambda t: flip_sample({"points": np.zeros((1, 4))}),
                 Raises(KeyError, r"gt_boxes"), id="flip_sample: missing key"),
    pytest.param(lambda t: flip_sample(_sample(), axis="z"),
                 Raises(ValueError, r"axis must be"), id="flip_sample: axis z"),
    pytest.param(lambda t: flip_sample(_sample(points=np.zeros((0, 4)), gt_boxes=np.zeros((0, 7)), names=np.array([]))),
                 Documented(lambda r: r["points"].shape == (0, 4) and r["gt_boxes"].shape == (0, 7),
                         "an empty scene stays empty"),
                 id="flip_sample: empty scene"),
    pytest.param(lambda t: rotate_sample(_sample(), NAN),
                 Raises(ValueError, r"angle must be finite"), id="rotate_sample: NaN angle"),
    pytest.param(lambda t: scale_sample(_sample(), INF),
                 Raises(ValueError, r"scale must be finite and > 0"), id="scale_sample: inf"),
    pytest.param(lambda t: scale_sample(_sample(), 0.0),
                 Raises(ValueError, r"scale must be finite and > 0"), id="scale_sample: 0"),
    pytest.param(lambda t: translate_sample(_sample(), (1.0, NAN, 0.0)),
                 Raises(ValueError, r"offset must be 3 finite values"),
                 id="translate_sample: NaN offset"),
    pytest.param(lambda t: translate_sample(_sample(), (1.0, 2.0)),
                 Raises(ValueError, r"offset must be 3 finite values"),
                 id="translate_sample: 2 values"),
    pytest.param(lambda t: RandomFlip(p=1.5), Raises(ValueError, r"p must be in \[0, 1\]"), id="RandomFlip: p 1.5"),
    pytest.param(lambda t: RandomFlip(p=NAN), Raises(ValueError, r"p must be in \[0, 1\]"), id="RandomFlip: p NaN"),
    pytest.param(lambda t: RandomFlip()(_sample(), 0), Raises(TypeError, r"rng must be a numpy\.random\.Generator"),
                 id="RandomFlip: seed instead of a Generator"),
    pytest.param(lambda t: RandomRotation(INF),
                 Raises(ValueError, r"max_angle must be finite and >= 0"), id="RandomRotation: inf"),
    pytest.param(lambda t: RandomRotation(-1.0),
                 Raises(ValueError, r"max_angle must be finite and >= 0"), id="RandomRotation: negative"),
    pytest.param(lambda t: RandomScaling((0.9, INF)),
                 Raises(ValueError, r"range must be finite"), id="RandomScaling: inf high"),
    pytest.param(lambda t: RandomScaling((1.1, 0.9)),
                 Raises(ValueError, r"0 < low <= high"), id="RandomScaling: low > high"),
    pytest.param(lambda t: RandomTranslation((0.2, NAN, 0.2)), Raises(ValueError, r"std must be 3 finite values >= 0"),
                 id="RandomTranslation: NaN std"),
    pytest.param(lambda t: RandomTranslation((0.2, 0.2)), Raises(ValueError, r"std must be 3 finite values >= 0"),
                 id="RandomTranslation: 2 values"),
    pytest.param(lambda t: ObjectNoise(remove_intruders=_FLAG), Raises(TypeError, r"remove_intruders must be a bool"),
                 id="ObjectNoise: remove_intruders='no'"),
    pytest.param(lambda t: ObjectNoise(attempts=0),
                 Raises(ValueError, r"attempts must be >= 1, got 0"), id="ObjectNoise: 0 attempts"),
    pytest.param(lambda t: ObjectNoise(rotation_range=(-INF, 0.1)), Raises(ValueError, r"rotation_range must be"),
                 id="ObjectNoise: inf rotation"),
    pytest.param(lambda t: ObjectNoise(translation_std=(NAN, 0, 0)),
                 Raises(ValueError, r"translation_std must be 3 finite"),
                 id="ObjectNoise: NaN std"),
    pytest.param(lambda t: ObjectNoise()(_sample(gt_boxes=np.array([box(z=NAN)])), _RNG),
                 Raises(ValueError, r"gt_boxes\[0\] contains NaN"), id="ObjectNoise: NaN box"),
    pytest.param(lambda t: GTSampling(GTDatabase(), {"Car": -1}),
                 Raises(ValueError, r"sample_groups counts must be >= 0"),
                 id="GTSampling: negative count"),
    pytest.param(lambda t: GTSampling(GTDatabase.build([_sample()]), {"Car": 3}, min_points=1)(_sample(), _RNG),
                 Documented(lambda r: len(r["gt_boxes"]) == 1, "a full database adds nothing that collides"),
                 id="GTSampling: only colliding candidates"),
    pytest.param(lambda t: GTDatabase.build([_sample(points=np.array([[1.0, 2.0, NAN, 0.0]]))]),
                 Raises(ValueError, r"points contains NaN or inf"), id="GTDatabase.build: NaN point"),
    pytest.param(lambda t: Compose([RandomFlip(), "rotate"]), Raises(TypeError, r"transforms\[1\] must be callable"),
                 id="Compose: a string transform"),
    # ---------------------------------------------------------------------------------------- LION detector
    pytest.param(lambda t: _model()(torch.zeros(4, 4), 1), Raises(ValueError, r"points must be a float \(N, 5\)"),
                 id="LIONDetector.forward: 4 columns"),
    pytest.param(lambda t: _model()(torch.zeros(4, 5, dtype=torch.int64), 1),
                 Raises(ValueError, r"points must be a float"),
                 id="LIONDetector.forward: int points"),
    pytest.param(lambda t: _model()(_with(_points(), (1, 3), NAN), 1), Raises(ValueError, r"NaN coordinates"),
                 id="LIONDetector.forward: NaN coordinate"),
    pytest.param(lambda t: _model()(_with(_points(), (0, 4), NAN), 1),
                 Raises(ValueError, r"points column 4 .*NaN or inf"),
                 id="LIONDetector.forward: NaN intensity"),
    pytest.param(lambda t: _model()(_with(_points(), (0, 0), NAN), 1),
                 Raises(ValueError, r"batch column must hold integers"),
                 id="LIONDetector.forward: NaN batch index"),
    pytest.param(lambda t: _model()(_with(_points(), (0, 0), 0.5), 1),
                 Raises(ValueError, r"batch column must hold integers"),
                 id="LIONDetector.forward: fractional batch index"),
    pytest.param(lambda t: _model()(_with(_points(), (0, 0), 1.0), 1),
                 Raises(ValueError, r"batch column must lie in \[0, 1\)"),
                 id="LIONDetector.forward: batch index = batch_size"),
    pytest.param(lambda t: _model()(_points(), 0), Raises(ValueError, r"batch_size must be >= 1, got 0"),
                 id="LIONDetector.forward: batch_size 0"),
    pytest.param(lambda t: _model()(_points(), 1.0), Raises(TypeError, r"batch_size must be an int"),
                 id="LIONDetector.forward: float batch_size"),
    pytest.param(lambda t: _model()(_points().to("meta"), 1),
                 Raises(ValueError, r"points must be on the model's device"),
                 id="LIONDetector.forward: points on another device"),
    pytest.param(lambda t: _model()(_with(_points(), (0, 1), INF), 1),
                 Documented(lambda r: torch.isfinite(r["box"]).all(), "an inf coordinate is out of range: dropped"),
                 id="LIONDetector.forward: inf coordinate"),
    pytest.param(lambda t: _model().predict(torch.zeros(0, 5), 2),
                 Documented(lambda r: len(r) == 2 and all(len(d["boxes"]) == len(d["names"]) for d in r),
                         "empty scans: one (possibly empty) detection list per sample"),
                 id="LIONDetector.predict: empty scans"),
    pytest.param(lambda t: _model().predict(_with(_points(), (0, 2), NAN), 1), Raises(ValueError, r"NaN coordinates"),
                 id="LIONDetector.predict: NaN coordinate"),
    pytest.param(lambda t: _model().loss(_preds(), torch.zeros(1, 1, 6), torch.ones(1, 1, dtype=torch.long)),
                 Raises(ValueError, r"gt_boxes must have shape \(B=1, M, 7\)"), id="LIONDetector.loss: 6 box columns"),
    pytest.param(lambda t: _model().loss(_preds(), torch.zeros(2, 1, 7), torch.ones(2, 1, dtype=torch.long)),
                 Raises(ValueError, r"gt_boxes must have shape \(B=1, M, 7\)"), id="LIONDetector.loss: batch mismatch"),
    pytest.param(lambda t: _model().loss(_preds(), *_gt(classes=(1, 1))),
                 Raises(ValueError, r"gt_classes must have shape \(1, 1\)"), id="LIONDetector.loss: classes shape"),
    pytest.param(lambda t: _model().loss(_preds(), _gt()[0], _gt()[1].float()),
                 Raises(TypeError, r"gt_classes must be an integer tensor"), id="LIONDetector.loss: float classes"),
    pytest.param(lambda t: _model().loss(_preds(), *_gt(classes=(2,))),
                 Raises(ValueError, r"gt_classes must lie in \[0, 1\]"), id="LIONDetector.loss: class out of range"),
    pytest.param(lambda t: _model().loss(_preds(), *_gt(rows=(box(x=NAN),))),
                 Raises(ValueError, r"gt_boxes contains NaN or inf"), id="LIONDetector.loss: NaN gt box"),
    pytest.param(lambda t: _model().loss(_preds(), *_gt(rows=(box(dx=0.0),))),
                 Raises(ValueError, r"gt_boxes\[0, 0\] has a non-positive size"),
                 id="LIONDetector.loss: zero-size gt box"),
    pytest.param(lambda t: _model().loss(_preds(), *_gt(rows=(box(dx=0.0),), classes=(0,))),
                 Documented(lambda r: torch.isfinite(r[0]), "padding rows (class 0) are not looked at"),
                 id="LIONDetector.loss: zero-size padding row"),
    pytest.param(lambda t: _model().loss(_preds(), torch.zeros(1, 0, 7), torch.zeros(1, 0, dtype=torch.long)),
                 Documented(lambda r: torch.isfinite(r[0]) and r[1]["box"] == 0.0, "no objects: heatmap loss only"),
                 id="LIONDetector.loss: no objects"),
    pytest.param(lambda t: _model().loss({"heatmap": torch.zeros(1, 1, 4, 4)}, *_gt()),
                 Raises(ValueError, r"preds must hold 'heatmap' and 'box'"), id="LIONDetector.loss: missing box map"),
    pytest.param(lambda t: LIONDetector({"dim": 16}), Raises(TypeError, r"config must be a LIONConfig"),
                 id="LIONDetector: dict config"),
    # ---------------------------------------------------------------------------------------- LION voxel plumbing
    pytest.param(lambda t: partition(VOXELS.float(), (4, 4, 4), 8),
                 Raises(ValueError, r"coords must be an integer \(V, 4\)"), id="partition: float coords"),
    pytest.param(lambda t: partition(VOXELS[:, :3], (4, 4, 4), 8),
                 Raises(ValueError, r"coords must be an integer \(V, 4\)"), id="partition: 3 columns"),
    pytest.param(lambda t: partition(_with(VOXELS, (0, 0), -1), (4, 4, 4), 8), Raises(ValueError, r"non-negative"),
                 id="partition: negative batch"),
    pytest.param(lambda t: partition(VOXELS, (4, 0, 4), 8), Raises(ValueError, r"three positive sizes"),
                 id="partition: zero window"),
    pytest.param(lambda t: partition(VOXELS, (4, 4, 4), 0), Raises(ValueError, r"group_size must be >= 1"),
                 id="partition: group_size 0"),
    pytest.param(lambda t: partition(VOXELS, (4, 4, 4), 8, axis="z"), Raises(ValueError, r"axis must be one of"),
                 id="partition: axis z"),
    pytest.param(lambda t: partition(VOXELS, (4, 4, 4), 8, shift=_FLAG), Raises(TypeError, r"shift must be a bool"),
                 id="partition: shift='no'"),
    pytest.param(lambda t: partition(VOXELS[:0], (4, 4, 4), 8),
                 Documented(lambda r: r.order.numel() == 0 and r.cu_seqlens.tolist() == [0], "no voxels: no groups"),
                 id="partition: empty"),
    pytest.param(lambda t: merge_voxels(VOXELS, torch.zeros(len(VOXELS), 4), (4, 8, 8), pool="sum"),
                 Raises(ValueError, r"pool must be 'mean' or 'max'"), id="merge_voxels: pool sum"),
    pytest.param(lambda t: merge_voxels(VOXELS, torch.zeros(len(VOXELS), 4), (4, 8, 8), stride=(0, 1, 1)),
                 Raises(ValueError, r"stride must be positive"), id="merge_voxels: zero stride"),
    pytest.param(lambda t: merge_voxels(_with(VOXELS, (0, 3), 8), torch.zeros(len(VOXELS), 4), (4, 8, 8)),
                 Raises(ValueError, r"coords must lie on the grid"), id="merge_voxels: voxel outside the grid"),
    pytest.param(lambda t: merge_voxels(VOXELS, torch.zeros(len(VOXELS) - 1, 4), (4, 8, 8)),
                 Raises(ValueError, r"features must be \(V, C\) with V = 6"), id="merge_voxels: feature rows"),
    pytest.param(lambda t: generate_voxels(VOXELS, torch.ones(len(VOXELS), 4), (4, 8, 8), ratio=NAN),
                 Raises(ValueError, r"ratio must lie in \[0, 1\]"), id="generate_voxels: NaN ratio"),
    pytest.param(lambda t: generate_voxels(_with(VOXELS, (1, 2), 9), torch.ones(len(VOXELS), 4), (4, 8, 8)),
                 Raises(ValueError, r"coords must lie on the grid"), id="generate_voxels: voxel outside the grid"),
    pytest.param(lambda t: generate_voxels(VOXELS[:0], torch.ones(0, 4), (4, 8, 8)),
                 Documented(lambda r: r[0].shape == (0, 4) and r[1].shape == (0, 4), "no voxels: nothing generated"),
                 id="generate_voxels: empty"),
    pytest.param(lambda t: expand_voxels(torch.zeros(2, 4), merge_voxels(VOXELS, torch.zeros(6, 4), (4, 8, 8)),
                                         torch.zeros(6, 4)),
                 Raises(ValueError, r"must match the merge they expand"), id="expand_voxels: coarse rows"),
    pytest.param(lambda t: dense_bev(SparseBEV(torch.tensor([[1, 0, 2, 2]]), torch.ones(1, 4), (1, 8, 8)), 1),
                 Raises(ValueError, r"sample 1 do not fit batch_size=1"), id="dense_bev: sample beyond the batch"),
    pytest.param(lambda t: dense_bev(SparseBEV(torch.tensor([[0, 0, 8, 2]]), torch.ones(1, 4), (1, 8, 8)), 1),
                 Raises(ValueError, r"coords must lie on the grid"), id="dense_bev: voxel outside the map"),
    pytest.param(lambda t: collate([]), Raises(ValueError, r"collate needs at least one sample"),
                 id="collate: no samples"),
    pytest.param(lambda t: collate([{**_sample(names=np.array(["Van"])), "frame_id": "0"}], ["Car"]),
                 Raises(ValueError, r"gt names \['Van'\] not in classes"), id="collate: unknown class name"),
    # ---------------------------------------------------------------------------------------- LIONConfig
    pytest.param(lambda t: LIONConfig.tiny(operator="lstm"),
                 Raises(ValueError, r"unknown operator 'lstm'"), id="LIONConfig: operator"),
    pytest.param(lambda t: LIONConfig.tiny(voxel_size=[0.4, -0.4, 0.5]),
                 Raises(ValueError, r"voxel_size must be positive"),
                 id="LIONConfig: negative voxel"),
    pytest.param(lambda t: LIONConfig.tiny(point_cloud_range=[0, -12.8, -3, NAN, 12.8, 1]),
                 Raises(ValueError, r"finite"),
                 id="LIONConfig: NaN range"),
    pytest.param(lambda t: LIONConfig.tiny(generate_ratio=1.5),
                 Raises(ValueError, r"generate_ratio must lie in \[0, 1\]"),
                 id="LIONConfig: generate_ratio 1.5"),
    pytest.param(lambda t: LIONConfig.tiny(generate_ratio=NAN),
                 Raises(ValueError, r"generate_ratio must lie in \[0, 1\]"),
                 id="LIONConfig: generate_ratio NaN"),
    pytest.param(lambda t: LIONConfig.tiny(dim=15), Raises(ValueError, r"dim 15 must be divisible by num_heads 2"),
                 id="LIONConfig: dim not divisible"),
    pytest.param(lambda t: LIONConfig.tiny(bev_stride=3),
                 Raises(ValueError, r"bev_stride must be 1, 2 or 4"), id="LIONConfig: bev_stride 3"),
    pytest.param(lambda t: LIONConfig.tiny(windows=[[8, 8, 0], [8, 8, 4]]), Raises(ValueError, r"three positive sizes"),
                 id="LIONConfig: zero window"),
    pytest.param(lambda t: LIONConfig.tiny(group_sizes=[0, 64]),
                 Raises(ValueError, r"group_sizes\[0\] must be >= 1, got 0"),
                 id="LIONConfig: zero group"),
    pytest.param(lambda t: LIONConfig.tiny(classes=[]),
                 Raises(ValueError, r"classes must not be empty"), id="LIONConfig: no classes"),
    pytest.param(lambda t: LIONConfig.tiny(nms_iou=1.5),
                 Raises(ValueError, r"nms_iou must lie in \[0, 1\]"), id="LIONConfig: nms_iou 1.5"),
    pytest.param(lambda t: LIONConfig.tiny(score_threshold=NAN),
                 Raises(ValueError, r"score_threshold must lie in \[0, 1\]"),
                 id="LIONConfig: NaN score threshold"),
    pytest.param(lambda t: LIONConfig.tiny(max_detections=0), Raises(ValueError, r"max_detections must be >= 1, got 0"),
                 id="LIONConfig: max_detections 0"),
    pytest.param(lambda t: LIONConfig.tiny(min_overlap=0.0), Raises(ValueError, r"min_overlap must lie in \(0, 1\)"),
                 id="LIONConfig: min_overlap 0"),
    pytest.param(lambda t: LIONConfig.tiny(min_radius=-1), Raises(ValueError, r"min_radius must be >= 0, got -1"),
                 id="LIONConfig: negative min_radius"),
    pytest.param(lambda t: LIONConfig.tiny(reg_radius=1.5), Raises(TypeError, r"reg_radius must be an int >= 0, got float 1.5"),
                 id="LIONConfig: fractional reg_radius"),
    pytest.param(lambda t: LIONConfig.tiny(point_features=2), Raises(ValueError, r"point_features must be >= 3, got 2"),
                 id="LIONConfig: 2 point features"),
    pytest.param(lambda t: LIONConfig.tiny(vfe_channels=[]),
                 Raises(ValueError, r"vfe_channels must be positive widths"),
                 id="LIONConfig: no VFE layer"),
    pytest.param(lambda t: LIONConfig.tiny(class_priors={"Car": [3.9, 1.6, 0.0, -1.0]}, classes=["Car"]),
                 Raises(ValueError, r"class_priors\['Car'\] must be four finite values"),
                 id="LIONConfig: zero prior height"),
    pytest.param(lambda t: LIONConfig.from_dict({"dim": 16, "colour": "red"}),
                 Raises(ValueError, r"unknown LIONConfig fields \['colour'\]"),
                 id="LIONConfig.from_dict: unknown field"),
    # ---------------------------------------------------------------------------------------- synthetic scenes
    pytest.param(lambda t: SyntheticScenes(-1),
                 Raises(ValueError, r"num_scenes must be >= 0"), id="SyntheticScenes: -1 scenes"),
    pytest.param(lambda t: SyntheticScenes(1, classes=("Tram",)), Raises(ValueError, r"unknown classes \['Tram'\]"),
                 id="SyntheticScenes: unknown class"),
    pytest.param(lambda t: SyntheticScenes(1)[1], Raises(IndexError, r"index 1 out of range for 1 scenes"),
                 id="SyntheticScenes[i]: out of range"),
    pytest.param(lambda t: SyntheticScenes(1).write_kitti(t),
                 Raises(ValueError, r"split='training' needs at least 2 scene\(s\) \(train and val both non-empty\)"),
                 id="SyntheticScenes.write_kitti: one training scene"),
    pytest.param(lambda t: SyntheticScenes(2).write_kitti(t, val_fraction=1.0),
                 Raises(ValueError, r"val_fraction must be in \(0, 1\)"),
                 id="SyntheticScenes.write_kitti: val_fraction 1"),
]


@pytest.mark.parametrize("call, expected", CASES)
def test_bad_input(tmp_path, call, expected):
    expect(lambda: call(tmp_path), expected)


def test_every_row_has_a_unique_id():
    assert_unique([case.id for case in CASES])
