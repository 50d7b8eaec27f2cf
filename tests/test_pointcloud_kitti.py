"""KITTI calibration, box conversion, points-in-boxes, and label/scan I/O (fast, CPU)."""
import math
import os

import numpy as np
import pytest
import torch

from kitti_files import CALIB_TEXT, FRAME, KITTI_SAMPLE
from pointcloud.boxes import (
    box_corners,
    boxes_camera_to_lidar,
    boxes_lidar_to_camera,
    limit_period,
    points_in_boxes,
)
from pointcloud.calibration import Calibration
from pointcloud.kitti_io import KittiObject, difficulty, read_labels, read_points, write_labels, write_points

FRAME_DIR = os.path.join(KITTI_SAMPLE, "training")
# Points inside each Car box of frame 000008 (ground truth from the task statement).
CAR_POINT_COUNTS = [1325, 1900, 881, 659, 55, 162]


def _frame_path(sub: str, ext: str) -> str:
    return os.path.join(FRAME_DIR, sub, f"{FRAME}.{ext}")


requires_frame = pytest.mark.skipif(
    not all(os.path.exists(_frame_path(s, e)) for s, e in (("velodyne", "bin"), ("label_2", "txt"), ("calib", "txt"))),
    reason=f"KITTI sample frame {FRAME} not found under {os.path.abspath(FRAME_DIR)}",
)

@pytest.fixture
def calib(tmp_path):
    p = tmp_path / "calib.txt"
    p.write_text(CALIB_TEXT)
    return Calibration.from_file(p)


def _random_lidar_boxes(m: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(m, 3, generator=g, dtype=torch.float64) * torch.tensor([70.0, 80.0, 4.0], dtype=torch.float64) \
        - torch.tensor([0.0, 40.0, 3.0], dtype=torch.float64)
    size = torch.rand(m, 3, generator=g, dtype=torch.float64) * 4 + 0.2
    heading = (torch.rand(m, 1, generator=g, dtype=torch.float64) - 0.5) * 4 * math.pi
    return torch.cat([centre, size, heading], dim=1)


# ---------------------------------------------------------------- calibration


def test_calibration_points_round_trip(calib):
    pts = np.random.default_rng(0).uniform(-50, 50, size=(100, 3))
    np.testing.assert_allclose(calib.rect_to_lidar(calib.lidar_to_rect(pts)), pts, atol=1e-9)
    # LiDAR x (forward) is camera z (forward): a point 10 m ahead has rect depth ~10.
    rect = calib.lidar_to_rect(np.array([[10.0, 0.0, 0.0]]))
    assert abs(rect[0, 2] - 10.0) < 0.5


def test_calibration_projects_ahead_point_near_principal_point(calib):
    pixels, depth = calib.rect_to_image(np.array([[0.0, 0.0, 20.0]]))
    assert pixels.shape == (1, 2) and depth.shape == (1,)
    # u = (fx * X + cx * Z + P2[0,3]) / (Z + P2[2,3]); the small P2[2,3] term must not be dropped.
    assert abs(pixels[0, 0] - (609.5593 * 20 + 44.85728) / (20 + 0.002745884)) < 1e-9
    assert abs(pixels[0, 1] - (172.854 * 20 + 0.2163791) / (20 + 0.002745884)) < 1e-9
    assert abs(depth[0] - 20.0) < 1e-9


@pytest.mark.parametrize(
    "text, match",
    [
        ("P2: 1 2 3\nR0_rect: 1 0 0 0 1 0 0 0 1\nTr_velo_to_cam: 1 0 0 0 0 1 0 0 0 0 1 0\n", r":1: P2 needs 12 values, got 3"),
        ("P2: 1 0 0 0 0 1 0 0 0 0 1 x\n", r":1: non-numeric value in 'P2'"),
        ("this line has no colon\n", r":1: expected 'KEY: numbers'"),
        ("P2: 1 0 0 0 0 1 0 0 0 0 1 0\nR0_rect: 1 0 0 0 1 0 0 0 1\n", r"missing calibration key\(s\) \['Tr_velo_to_cam'\]"),
    ],
)
def test_calibration_malformed_files(tmp_path, text, match):
    p = tmp_path / "bad_calib.txt"
    p.write_text(text)
    with pytest.raises(ValueError, match=match) as info:
        Calibration.from_file(p)
    assert "bad_calib.txt" in str(info.value)


# ---------------------------------------------------------------- boxes


def test_camera_lidar_round_trip_float64(calib):
    lidar = _random_lidar_boxes(200)
    cam = boxes_lidar_to_camera(lidar, calib)
    assert cam.shape == (200, 7) and cam.dtype == torch.float64
    torch.testing.assert_close(boxes_camera_to_lidar(cam, calib), lidar, atol=1e-9, rtol=0)
    # Dimension reordering: camera (l, h, w) = lidar (dx, dz, dy).
    torch.testing.assert_close(cam[:, 3:6], lidar[:, [3, 5, 4]], atol=0, rtol=0)
    torch.testing.assert_close(cam[:, 6], -lidar[:, 6] - math.pi / 2, atol=1e-12, rtol=0)
    # And the other way round.
    torch.testing.assert_close(boxes_lidar_to_camera(boxes_camera_to_lidar(cam, calib), calib), cam, atol=1e-9, rtol=0)


def test_camera_lidar_float32_keeps_dtype(calib):
    lidar = _random_lidar_boxes(10).float()
    back = boxes_camera_to_lidar(boxes_lidar_to_camera(lidar, calib), calib)
    assert back.dtype == torch.float32
    torch.testing.assert_close(back, lidar, atol=1e-4, rtol=0)


def test_bottom_centre_vs_centre(calib):
    # A box sitting with its centre 1 m above LiDAR origin level, 2 m tall: bottom centre at z=0.
    lidar = torch.tensor([[10.0, 0.0, 1.0, 4.0, 2.0, 2.0, 0.0]], dtype=torch.float64)
    cam = boxes_lidar_to_camera(lidar, calib)
    expected = calib.lidar_to_rect(np.array([[10.0, 0.0, 0.0]]))
    np.testing.assert_allclose(cam[0, :3].numpy(), expected[0], atol=1e-12)


def test_box_corners_axis_aligned_and_rotated():
    box = torch.tensor([[1.0, 2.0, 3.0, 4.0, 2.0, 6.0, 0.0]])
    c = box_corners(box)
    assert c.shape == (1, 8, 3)
    torch.testing.assert_close(c[0].min(0).values, torch.tensor([-1.0, 1.0, 0.0]))
    torch.testing.assert_close(c[0].max(0).values, torch.tensor([3.0, 3.0, 6.0]))
    torch.testing.assert_close(c[0, 0], torch.tensor([3.0, 3.0, 0.0]))  # (+x, +y, bottom) first
    # Heading pi/2 swaps the x/y extents.
    rot = box_corners(torch.tensor([[0.0, 0.0, 0.0, 4.0, 2.0, 2.0, math.pi / 2]], dtype=torch.float64))[0]
    torch.testing.assert_close(rot[:, 0].abs().max(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(rot[:, 1].abs().max(), torch.tensor(2.0, dtype=torch.float64))


def test_points_in_boxes_rotated_and_corner_points_consistent():
    boxes = _random_lidar_boxes(5, seed=1)
    # Points shrunk toward the centre from each corner are inside that box; pushed outward are not.
    corners = box_corners(boxes)
    centre = boxes[:, None, :3]
    inner = (centre + 0.99 * (corners - centre)).reshape(-1, 3)
    outer = (centre + 1.01 * (corners - centre)).reshape(-1, 3)
    m_in, m_out = points_in_boxes(inner, boxes), points_in_boxes(outer, boxes)
    assert m_in.shape == (5, 40) and m_in.dtype == torch.bool
    owner = torch.arange(5).repeat_interleave(8)
    assert bool(m_in[owner, torch.arange(40)].all())
    assert not bool(m_out[owner, torch.arange(40)].any())


def test_points_in_boxes_empty_cloud():
    boxes = _random_lidar_boxes(3).float()
    mask = points_in_boxes(torch.zeros(0, 4), boxes)
    assert mask.shape == (3, 0) and mask.dtype == torch.bool and not bool(mask.any())


def test_limit_period():
    a = torch.tensor([-3 * math.pi, -math.pi, 0.0, math.pi, 2.5 * math.pi], dtype=torch.float64)
    out = limit_period(a)
    assert bool(((out >= -math.pi) & (out < math.pi)).all())
    torch.testing.assert_close(torch.cos(out), torch.cos(a))
    np.testing.assert_allclose(limit_period(np.array([3 * math.pi]), offset=0, period=math.pi), [0.0], atol=1e-12)


@pytest.mark.parametrize("col", [3, 4, 5])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_nonpositive_size_raises_with_index(calib, col, value):
    boxes = _random_lidar_boxes(4)
    boxes[2, col] = value
    for fn in (box_corners, lambda b: points_in_boxes(torch.zeros(1, 3, dtype=b.dtype), b),
               lambda b: boxes_lidar_to_camera(b, calib), lambda b: boxes_camera_to_lidar(b, calib)):
        with pytest.raises(ValueError, match=r"boxes\[2\] has a non-positive size"):
            fn(boxes)


def test_nan_box_raises(calib):
    boxes = _random_lidar_boxes(4)
    boxes[1, 6] = float("nan")
    with pytest.raises(ValueError, match=r"boxes\[1\] contains NaN"):
        points_in_boxes(torch.zeros(2, 3), boxes)
    with pytest.raises(ValueError, match=r"boxes\[1\] contains NaN"):
        boxes_lidar_to_camera(boxes, calib)


def test_bad_box_shape_raises():
    with pytest.raises(ValueError, match=r"shape \(M, 7\)"):
        box_corners(torch.zeros(3, 6))


# ---------------------------------------------------------------- real frame


@requires_frame
def test_real_frame_points_in_car_boxes():
    calib = Calibration.from_file(_frame_path("calib", "txt"))
    points = read_points(_frame_path("velodyne", "bin"))
    assert points.shape == (17238, 4) and points.dtype == np.float32
    objects = read_labels(_frame_path("label_2", "txt"))
    assert [o.type for o in objects].count("Car") == 6 and [o.type for o in objects].count("DontCare") == 4
    cars = [o for o in objects if o.type == "Car"]
    cam = torch.tensor(
        np.array([[*o.location, o.dims_hwl[2], o.dims_hwl[0], o.dims_hwl[1], o.ry] for o in cars]),
        dtype=torch.float64,
    )
    lidar = boxes_camera_to_lidar(cam, calib)
    pts = torch.from_numpy(points)
    counts = points_in_boxes(pts, lidar).sum(dim=1).tolist()
    assert counts == CAR_POINT_COUNTS
    # Same answer when everything is float32 (what a training pipeline feeds).
    assert points_in_boxes(pts, lidar.float()).sum(dim=1).tolist() == CAR_POINT_COUNTS


@requires_frame
def test_real_frame_box_centres_project_into_2d_boxes():
    calib = Calibration.from_file(_frame_path("calib", "txt"))
    cars = [o for o in read_labels(_frame_path("label_2", "txt")) if o.type == "Car"]
    cam = torch.tensor(
        np.array([[*o.location, o.dims_hwl[2], o.dims_hwl[0], o.dims_hwl[1], o.ry] for o in cars]),
        dtype=torch.float64,
    )
    lidar = boxes_camera_to_lidar(cam, calib)
    pixels, depth = calib.lidar_to_image(lidar[:, :3].numpy())
    assert bool((depth > 0).all())
    for obj, (u, v) in zip(cars, pixels):
        left, top, right, bottom = obj.bbox
        assert left <= u <= right and top <= v <= bottom, (obj, u, v)


# ---------------------------------------------------------------- labels and scans


def _obj(height=50.0, occluded=0, truncated=0.0, type_="Car", score=None):
    return KittiObject(type_, truncated, occluded, -1.5, np.array([100.0, 100.0, 200.0, 100.0 + height]),
                       np.array([1.5, 1.6, 3.9]), np.array([1.0, 1.7, 20.0]), -1.55, score)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(height=40.01, occluded=0, truncated=0.15), 0),
        (dict(height=40.0, occluded=0, truncated=0.0), 1),  # devkit: height <= 40 is not easy
        (dict(height=50.0, occluded=0, truncated=0.16), 1),
        (dict(height=50.0, occluded=1, truncated=0.0), 1),
        (dict(height=25.01, occluded=1, truncated=0.30), 1),
        (dict(height=25.0, occluded=0, truncated=0.0), -1),
        (dict(height=50.0, occluded=2, truncated=0.0), 2),
        (dict(height=50.0, occluded=0, truncated=0.31), 2),
        (dict(height=25.01, occluded=2, truncated=0.50), 2),
        (dict(height=50.0, occluded=3, truncated=0.0), -1),
        (dict(height=50.0, occluded=0, truncated=0.51), -1),
        (dict(height=100.0, occluded=-1, truncated=-1.0, type_="DontCare"), -1),
    ],
)
def test_difficulty_thresholds(kwargs, expected):
    assert difficulty(_obj(**kwargs)) == expected


def test_labels_write_read_round_trip(tmp_path):
    objs = [_obj(score=0.87654321), _obj(height=30.0, occluded=2, truncated=0.42, type_="Pedestrian", score=1e-3)]
    p = tmp_path / "000001.txt"
    write_labels(p, objs)
    lines = p.read_text().splitlines()
    assert lines[0] == "Car 0.00 0 -1.50 100.00 100.00 200.00 150.00 1.50 1.60 3.90 1.00 1.70 20.00 -1.55 0.87654321"
    back = read_labels(p)
    assert len(back) == 2
    for a, b in zip(objs, back):
        assert (a.type, a.occluded, a.score) == (b.type, b.occluded, b.score)
        for name in ("truncated", "alpha", "ry"):
            assert getattr(a, name) == pytest.approx(getattr(b, name), abs=5e-3)
        for name in ("bbox", "dims_hwl", "location"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=5e-3)
    # Ground-truth style (no score) gives 15 fields and reads back score None.
    write_labels(p, [_obj()])
    assert len(p.read_text().split()) == 15 and read_labels(p)[0].score is None


@pytest.mark.parametrize(
    "line, match",
    [
        ("Car 0.00 0 -1.50 100 100 200 150 1.5 1.6 3.9 1.0 1.7 20.0", r":2: expected 15 fields \(16 with score\), got 14"),
        ("Car 0.00 0 -1.50 100 100 200 150 1.5 1.6 3.9 1.0 1.7 20.0 -1.55 0.9 7", r":2: expected 15 fields"),
        ("Car 0.00 0 -1.50 100 100 abc 150 1.5 1.6 3.9 1.0 1.7 20.0 -1.55", r":2: non-numeric field"),
        ("Car 0.00 0.5 -1.50 100 100 200 150 1.5 1.6 3.9 1.0 1.7 20.0 -1.55", r":2: occluded must be an integer"),
    ],
)
def test_malformed_label_lines(tmp_path, line, match):
    p = tmp_path / "bad_label.txt"
    p.write_text("Car 0.00 0 -1.50 100 100 200 150 1.5 1.6 3.9 1.0 1.7 20.0 -1.55\n" + line + "\n")
    with pytest.raises(ValueError, match=match) as info:
        read_labels(p)
    assert "bad_label.txt" in str(info.value)


def test_points_round_trip_and_bad_size(tmp_path):
    pts = np.random.default_rng(0).normal(size=(33, 4)).astype(np.float32)
    p = tmp_path / "scan.bin"
    write_points(p, pts)
    np.testing.assert_array_equal(read_points(p), pts)
    empty = tmp_path / "empty.bin"
    write_points(empty, np.zeros((0, 4), np.float32))
    assert read_points(empty).shape == (0, 4)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"\x00" * 15)
    with pytest.raises(ValueError, match=r"size 15 bytes is not a multiple of 16"):
        read_points(bad)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        write_points(p, np.zeros((3, 3), np.float32))


def test_calibration_write_round_trip(calib, tmp_path):
    p3 = np.arange(12, dtype=np.float64).reshape(3, 4) + 0.5
    p = tmp_path / "written.txt"
    calib.write(p, extra={"P3": p3})
    keys = [line.split(":")[0] for line in p.read_text().splitlines()]
    assert keys == ["P2", "P3", "R0_rect", "Tr_velo_to_cam"]
    back = Calibration.from_file(p)
    for name in ("P2", "R0_rect", "Tr_velo_to_cam"):
        np.testing.assert_allclose(getattr(back, name), getattr(calib, name), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="P3 needs 12 values"):
        calib.to_text(extra={"P3": np.zeros(5)})
    with pytest.raises(ValueError, match="must not contain 'P2'"):
        calib.to_text(extra={"P2": p3})
