"""Tests of pointcloud.synthetic: seeded ray-cast KITTI-like scenes and their KITTI export."""
import math
import os

import numpy as np
import pytest
import torch

from pointcloud.boxes import points_in_boxes
from pointcloud.synthetic import (
    CLASS_MEAN_SIZES,
    Clutter,
    SyntheticScenes,
    boxes_bev_overlap,
    kitti_calibration,
    render_scene,
)

RANGE = (0, -40, -3, 70.4, 40, 1)


@pytest.fixture(scope="module")
def ds():
    return SyntheticScenes(6, seed=3)


@pytest.fixture(scope="module")
def scenes(ds):
    return [ds.scene(i) for i in range(len(ds))]


def _car(x, y, heading=0.0, size=CLASS_MEAN_SIZES["Car"]):
    dx, dy, dz = size
    return np.array([x, y, -1.73 + dz / 2, dx, dy, dz, heading])


def _in_boxes(points, boxes):
    """(N, M) numpy mask from pointcloud.boxes.points_in_boxes (which returns (M, N)), in float64."""
    pts = torch.from_numpy(np.ascontiguousarray(points))
    bx = torch.from_numpy(np.asarray(boxes, dtype=np.float64).reshape(-1, 7))
    return points_in_boxes(pts, bx).numpy().T


def _count_in_box(points, box):
    # Independent of points_in_boxes: explicit rotation matrix into the box frame.
    c, s = math.cos(box[6]), math.sin(box[6])
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    local = (points[:, :3].astype(np.float64) - box[:3]) @ rot
    return int(np.all(np.abs(local) <= np.asarray(box[3:6], np.float64) / 2 + 1e-9, axis=1).sum())


def test_sample_format(ds, scenes):
    assert len(ds) == 6
    d = ds[0]
    assert set(d) == {"points", "gt_boxes", "gt_names", "num_points_in_gt", "frame_id"}
    assert d["frame_id"] == "000000"
    for sc in scenes:
        assert sc.points.dtype == np.float32 and sc.points.ndim == 2 and sc.points.shape[1] == 4
        assert 15_000 <= sc.points.shape[0] <= 60_000
        M = sc.gt_boxes.shape[0]
        assert sc.gt_boxes.dtype == np.float32 and sc.gt_boxes.shape == (M, 7)
        assert sc.gt_names.shape == (M,) and set(sc.gt_names) <= set(CLASS_MEAN_SIZES)
        assert sc.num_points_in_gt.shape == (M,)
        assert 1 <= M <= 12
        assert np.all((sc.points[:, 3] >= 0) & (sc.points[:, 3] <= 1))
    with pytest.raises(IndexError):
        ds[6]


def test_deterministic_per_seed_and_index(ds):
    a, b = ds[2], SyntheticScenes(6, seed=3)[2]
    for k in ("points", "gt_boxes", "num_points_in_gt"):
        np.testing.assert_array_equal(a[k], b[k])
    np.testing.assert_array_equal(a["gt_names"], b["gt_names"])
    other_index, other_seed = ds[3], SyntheticScenes(6, seed=4)[2]
    for other in (other_index, other_seed):
        assert other["points"].shape != a["points"].shape or not np.array_equal(other["points"], a["points"])
        assert other["gt_boxes"].shape != a["gt_boxes"].shape or not np.allclose(other["gt_boxes"], a["gt_boxes"])


def test_points_inside_range(scenes):
    lo, hi = np.array(RANGE[:3]), np.array(RANGE[3:])
    for sc in scenes:
        p = sc.points[:, :3]
        assert np.all(p >= lo) and np.all(p < hi)


def test_ground_near_minus_1_73(scenes):
    # Bare ground only: every point at the ground height (noise 2 cm, slope <= 0.06 deg, offset <= 3 cm).
    r = render_scene(np.zeros((0, 7)), [], None, np.random.default_rng(0))
    assert r.points.shape[0] > 10_000 and np.all(r.hit_index == -1)
    assert np.all(np.abs(r.points[:, 2] + 1.73) < 0.06)
    # In full scenes, most points are ground points within 15 cm of -1.73.
    for sc in scenes:
        assert np.mean(np.abs(sc.points[:, 2] + 1.73) < 0.15) > 0.5


def test_objects_do_not_overlap_in_bev(scenes):
    for sc in scenes:
        allb = np.concatenate([sc.gt_boxes.astype(np.float64), sc.clutter.boxes])
        for i in range(len(allb)):
            for j in range(i + 1, len(allb)):
                assert not boxes_bev_overlap(allb[i], allb[j]), (i, j)
        # Objects stand on the ground: box bottom within a few cm of -1.73.
        bottom = sc.gt_boxes[:, 2] - sc.gt_boxes[:, 5] / 2
        assert np.all(np.abs(bottom + 1.73) < 0.12)


def test_num_points_in_gt_matches_direct_count(scenes):
    nonzero = 0
    for sc in scenes:
        for m, box in enumerate(sc.gt_boxes):
            assert sc.num_points_in_gt[m] == _count_in_box(sc.points, box)
        nonzero += int((sc.num_points_in_gt > 0).sum())
        np.testing.assert_array_equal(sc.num_points_in_gt, _in_boxes(sc.points, sc.gt_boxes).sum(0))
        # Objects with no point are kept and flagged as heavily occluded.
        assert np.all(sc.occlusion[sc.num_points_in_gt == 0] == 2)
    assert nonzero > 0


def test_points_on_visible_side(scenes):
    for sc in scenes:
        inside = _in_boxes(sc.points, sc.gt_boxes)
        for m, box in enumerate(sc.gt_boxes):
            if sc.num_points_in_gt[m] < 5:
                continue
            dist = np.linalg.norm(sc.points[inside[:, m], :3], axis=1)
            assert dist.mean() <= np.linalg.norm(box[:3]) + 0.1


def test_object_points_stay_inside_their_boxes():
    boxes = np.stack([_car(8.0, 0.0, 0.3), _car(15.0, 5.0, -1.2)])
    r = render_scene(boxes, ["Car", "Car"], None, np.random.default_rng(1), range_noise=0.02)
    inside = _in_boxes(r.points, boxes)
    for m in range(2):
        own = r.hit_index == m
        assert own.sum() > 50
        assert np.all(inside[own, m])


def test_density_falls_with_range():
    near, far = [], []
    for k, heading in enumerate(np.linspace(0, np.pi, 4)):
        for x, out in ((10.0, near), (30.0, far)):
            r = render_scene(_car(x, 1.0, heading)[None], ["Car"], None, np.random.default_rng(k))
            out.append(int((r.hit_index == 0).sum()))
    assert min(far) > 0
    assert np.mean(far) < 0.5 * np.mean(near)


def test_occlusion():
    # A pedestrian straight behind a wall gets no point.
    ped = np.array([[25.0, 0.0, -1.73 + 0.865, 0.8, 0.6, 1.73, 0.4]])
    wall = Clutter(np.array([[15.0, 0.0, -1.73 + 1.5, 0.3, 8.0, 3.0, 0.0]]), np.array(["wall"]))
    r = render_scene(ped, ["Pedestrian"], wall, np.random.default_rng(0))
    assert (r.hit_index == 0).sum() == 0 and r.visible_fraction[0] == 0.0
    alone = render_scene(ped, ["Pedestrian"], None, np.random.default_rng(0))
    assert (alone.hit_index == 0).sum() > 20 and alone.visible_fraction[0] == 1.0
    # A car behind a taller, wider van gets only a few points.
    van = _car(10.0, 0.0, 0.0, (5.0, 2.4, 3.0))
    hidden = _car(20.0, 0.0, 0.0)
    r = render_scene(np.stack([van, hidden]), ["Car", "Car"], None, np.random.default_rng(0))
    alone = render_scene(hidden[None], ["Car"], None, np.random.default_rng(0))
    n_hidden, n_alone = int((r.hit_index == 1).sum()), int((alone.hit_index == 0).sum())
    assert n_hidden <= 0.1 * n_alone and r.visible_fraction[1] < 0.1
    assert r.visible_fraction[0] == 1.0


def test_bev_overlap_helper():
    a = np.array([0, 0, 0, 4, 2, 1.5, 0.0])
    assert boxes_bev_overlap(a, np.array([3, 0, 0, 4, 2, 1.5, 0.0]))
    assert not boxes_bev_overlap(a, np.array([4.5, 0, 0, 4, 2, 1.5, 0.0]))
    assert boxes_bev_overlap(a, np.array([4.5, 0, 0, 4, 2, 1.5, 0.0]), margin=0.5)
    # Axis-aligned bboxes of these two would overlap; the rotated rectangles do not.
    assert not boxes_bev_overlap(np.array([0, 0, 0, 6, 0.5, 1, np.pi / 4]), np.array([2.2, -2.2, 0, 1, 1, 1, 0.0]))


def _parse_calib(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                key, vals = line.split(":", 1)
                out[key] = np.array([float(v) for v in vals.split()])
    return out


def test_write_kitti(tmp_path):
    ds = SyntheticScenes(2, seed=5, objects_per_scene=(4, 6))
    ids = ds.write_kitti(tmp_path)
    assert ids == ["000000", "000001"]
    image_sets = {name: (tmp_path / "ImageSets" / f"{name}.txt").read_text().split()
                  for name in ("train", "val", "trainval")}
    assert image_sets == {"train": ["000000"], "val": ["000001"], "trainval": ids}
    calib_ref = kitti_calibration()
    for i, fid in enumerate(ids):
        sc = ds.scene(i)
        bin_path = tmp_path / "training" / "velodyne" / f"{fid}.bin"
        assert os.path.getsize(bin_path) == sc.points.shape[0] * 16
        np.testing.assert_array_equal(np.fromfile(bin_path, dtype=np.float32).reshape(-1, 4), sc.points)

        calib = _parse_calib(tmp_path / "training" / "calib" / f"{fid}.txt")
        counts = {"P0": 12, "P1": 12, "P2": 12, "P3": 12, "R0_rect": 9, "Tr_velo_to_cam": 12, "Tr_imu_to_velo": 12}
        assert {k: v.size for k, v in calib.items()} == counts
        np.testing.assert_allclose(calib["P2"].reshape(3, 4), calib_ref.P2)
        tr = calib["Tr_velo_to_cam"].reshape(3, 4)
        np.testing.assert_array_equal(tr[:, :3], [[0, -1, 0], [0, 0, -1], [1, 0, 0]])

        with open(tmp_path / "training" / "label_2" / f"{fid}.txt") as f:
            lines = [ln.split() for ln in f.read().splitlines()]
        assert len(lines) == sc.gt_boxes.shape[0]
        for fields, box, name, occ in zip(lines, sc.gt_boxes, sc.gt_names, sc.occlusion):
            assert len(fields) == 15 and fields[0] == name
            v = np.array([float(x) for x in fields[1:]])
            trunc, occl, alpha = v[0], int(v[1]), v[2]
            x1, y1, x2, y2 = v[3:7]
            h, w, l = v[7:10]
            loc, ry = v[10:13], v[13]
            assert 0 <= trunc <= 1 and occl == occ and -np.pi <= alpha <= np.pi + 0.01
            assert 0 <= x1 <= x2 <= 1241 and 0 <= y1 <= y2 <= 374
            np.testing.assert_allclose([h, w, l], box[[5, 4, 3]], atol=0.006)
            # Bottom centre in the camera frame: x_cam = -y, y_cam = -z_bottom - 0.08, z_cam = x - 0.27.
            bottom_z = box[2] - box[5] / 2
            np.testing.assert_allclose(loc, [-box[1], -bottom_z - 0.08, box[0] - 0.27], atol=0.006)
            d = (ry - (-box[6] - np.pi / 2) + np.pi) % (2 * np.pi) - np.pi
            assert abs(d) < 0.006
            a = (alpha - (ry - math.atan2(-box[1], box[0] - 0.27)) + np.pi) % (2 * np.pi) - np.pi
            assert abs(a) < 0.02


def _image_sets(root) -> dict[str, list[str]]:
    return {p.stem: p.read_text().split() for p in sorted((root / "ImageSets").iterdir())}


@pytest.mark.parametrize("n, fraction, num_val", [(2, None, 1), (4, None, 1), (8, None, 2), (10, None, 3),
                                                   (5, 0.5, 3), (3, 0.01, 1), (3, 0.99, 2), (22, 6 / 22, 6)])
def test_write_kitti_train_val_split(tmp_path, n, fraction, num_val):
    # Cheap scenes: the split only depends on how many are written.
    scenes = SyntheticScenes(n, seed=0, beams=2, azimuth_step=5.0, clutter=False, objects_per_scene=(0, 1))
    kwargs = {} if fraction is None else {"val_fraction": fraction}
    ids = scenes.write_kitti(tmp_path, **kwargs)
    sets = _image_sets(tmp_path)
    assert sorted(sets) == ["train", "trainval", "val"]
    assert sets["val"] == ids[n - num_val:] and sets["train"] == ids[:n - num_val]  # the last scenes are val
    assert sets["trainval"] == ids and not set(sets["train"]) & set(sets["val"])
    scenes.write_kitti(tmp_path / "again", **kwargs)
    assert _image_sets(tmp_path / "again") == sets  # deterministic


def test_write_kitti_testing_has_no_labels_and_a_test_image_set(tmp_path):
    scenes = SyntheticScenes(4, seed=0, beams=2, azimuth_step=5.0, clutter=False)
    assert scenes.write_kitti(tmp_path, indices=[0, 1]) == ["000000", "000001"]
    assert scenes.write_kitti(tmp_path, "testing", indices=[3, 2]) == ["000003", "000002"]
    assert sorted(os.listdir(tmp_path / "testing")) == ["calib", "velodyne"]
    assert sorted(os.listdir(tmp_path / "testing" / "velodyne")) == ["000002.bin", "000003.bin"]
    assert _image_sets(tmp_path) == {"test": ["000003", "000002"], "train": ["000000"], "val": ["000001"],
                                     "trainval": ["000000", "000001"]}


@pytest.mark.parametrize("kwargs, error, match", [
    ({"split": "validation"}, ValueError, "split must be 'training' or 'testing'"),
    ({"val_fraction": 0.0}, ValueError, r"val_fraction must be in \(0, 1\)"),
    ({"val_fraction": 1.0}, ValueError, r"val_fraction must be in \(0, 1\)"),
    ({"val_fraction": float("nan")}, ValueError, r"val_fraction must be in \(0, 1\)"),
    ({"val_fraction": True}, TypeError, "val_fraction must be a float"),
    ({"val_fraction": "0.2"}, TypeError, "val_fraction must be a float"),
    ({"split": "testing", "val_fraction": 0.2}, ValueError, "testing split has no val image set"),
    ({"indices": [0]}, ValueError, r"needs at least 2 scene\(s\) \(train and val both non-empty\), got 1"),
    ({"indices": []}, ValueError, "needs at least 2"),
    ({"split": "testing", "indices": []}, ValueError, r"needs at least 1 scene\(s\), got 0"),
    ({"indices": [0, 3]}, ValueError, r"indices must be in \[0, 3\), got 3"),
    ({"indices": [0, -1]}, ValueError, r"indices must be in \[0, 3\), got -1"),
    ({"indices": [1, 1]}, ValueError, "indices must be distinct"),
    ({"indices": [0, 1.0]}, TypeError, "indices must be ints, got float"),
])
def test_write_kitti_rejects_bad_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        SyntheticScenes(3, seed=0).write_kitti(tmp_path, **kwargs)
    assert not (tmp_path / "ImageSets").exists()  # checked before anything is written
