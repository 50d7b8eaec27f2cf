"""Data augmentation (pointcloud.augment) on small synthetic scenes: geometry, purity, determinism, collisions."""

import copy
import math

import numpy as np
import pytest
import torch

from pointcloud.augment import (
    Compose,
    GTDatabase,
    GTSampling,
    ObjectNoise,
    RandomFlip,
    RandomRotation,
    RandomScaling,
    RandomTranslation,
    flip_sample,
    rotate_sample,
    scale_sample,
    translate_sample,
)
from pointcloud.boxes import points_in_boxes
from pointcloud.iou import bev_iou

SIZES = {"Car": (3.9, 1.6, 1.5), "Pedestrian": (0.8, 0.6, 1.7), "Cyclist": (1.8, 0.6, 1.7)}


def _local_to_world(local, box):
    c, s = math.cos(box[6]), math.sin(box[6])
    x = local[:, 0] * c - local[:, 1] * s + box[0]
    y = local[:, 0] * s + local[:, 1] * c + box[1]
    return np.stack([x, y, local[:, 2] + box[2]], axis=1)


def make_scene(rng, n_boxes=6, spacing=9.0, origin=(0.0, 0.0), n_background=300, pts_per_box=(5, 40),
               jitter=1.0, heading=None, classes=tuple(SIZES)):
    """Non-overlapping boxes on a jittered grid, points strictly inside them (0.9 of the half sizes, so float
    rounding never moves one across a face) and background points kept clear of every box by a 25% margin."""
    names = rng.choice(list(classes), size=n_boxes)
    side = int(math.ceil(math.sqrt(n_boxes)))
    boxes, points = [], []
    for i, name in enumerate(names):
        gx, gy = i % side, i // side
        dx, dy, dz = SIZES[name]
        box = [origin[0] + gx * spacing + rng.uniform(-jitter, jitter),
               origin[1] + gy * spacing + rng.uniform(-jitter, jitter), rng.uniform(-1.0, -0.5), dx, dy, dz,
               rng.uniform(-math.pi, math.pi) if heading is None else heading]
        boxes.append(box)
        k = int(rng.integers(*pts_per_box))
        local = (rng.uniform(-1, 1, size=(k, 3)) * 0.45) * np.array([dx, dy, dz])
        xyz = _local_to_world(local, box)
        points.append(np.concatenate([xyz, rng.uniform(0, 1, size=(k, 1))], axis=1))
    boxes = np.array(boxes, dtype=np.float32).reshape(-1, 7)
    lo = np.array(origin) - 5
    hi = np.array(origin) + side * spacing + 5
    bg = np.concatenate([rng.uniform(lo, hi, size=(n_background, 2)), rng.uniform(-2, 1, size=(n_background, 1)),
                         rng.uniform(0, 1, size=(n_background, 1))], axis=1)
    if len(boxes):
        grown = boxes.astype(np.float64).copy()
        grown[:, 3:6] *= 1.25
        bg = bg[~in_boxes(bg, grown).any(axis=0)]
    points.append(bg)
    return {
        "points": np.concatenate(points, axis=0).astype(np.float32),
        "gt_boxes": boxes,
        "gt_names": np.array(names, dtype=str),
        "frame_id": "000042",
    }


def in_boxes(points, boxes):
    """(M, N) membership, float64."""
    if len(boxes) == 0:
        return np.zeros((0, len(points)), dtype=bool)
    return points_in_boxes(torch.as_tensor(np.asarray(points, np.float64)[:, :3]),
                           torch.as_tensor(np.asarray(boxes, np.float64))).numpy()


def counts(sample):
    return in_boxes(sample["points"], sample["gt_boxes"]).sum(axis=1)


def bev_overlaps(boxes):
    """Number of off-diagonal pairs with BEV IoU > 0."""
    b = torch.as_tensor(np.asarray(boxes, np.float64))
    if len(b) < 2:
        return 0
    iou = bev_iou(b, b)
    iou.fill_diagonal_(0)
    return int((iou > 0).sum())


def assert_same_sample(a, b, atol=0.0):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray) and a[key].dtype.kind == "f":
            np.testing.assert_allclose(a[key], b[key], atol=atol, rtol=0)
        elif isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key])
        else:
            assert a[key] == b[key]


@pytest.fixture
def scene():
    return make_scene(np.random.default_rng(0))


@pytest.fixture(scope="module")
def database():
    rng = np.random.default_rng(1)
    # Scenes laid out at different origins so the pool covers a wide area with some candidates colliding.
    scenes = [make_scene(rng, n_boxes=9, spacing=7.0, origin=(rng.uniform(-30, 10), rng.uniform(-30, 10)),
                         n_background=20) for _ in range(20)]
    return GTDatabase.build(scenes)


def _transforms(database):
    return {
        "flip_x": RandomFlip("x", p=1.0),
        "flip_y": RandomFlip("y", p=1.0),
        "rotation": RandomRotation(),
        "scaling": RandomScaling(),
        "translation": RandomTranslation(),
        "object_noise": ObjectNoise(),
        "gt_sampling": GTSampling(database),
        "compose": Compose([GTSampling(database), ObjectNoise(), RandomFlip(), RandomRotation(),
                            RandomScaling(), RandomTranslation()]),
    }


NAMES = ["flip_x", "flip_y", "rotation", "scaling", "translation", "object_noise", "gt_sampling", "compose"]


@pytest.mark.parametrize("name", NAMES)
def test_points_stay_in_their_boxes(name, scene, database):
    t = _transforms(database)[name]
    before = counts(scene)
    assert (before > 0).all()
    out = t(scene, np.random.default_rng(3))
    m = len(scene["gt_boxes"])
    # GT sampling only appends boxes; the original ones come first and keep their points.
    np.testing.assert_array_equal(counts(out)[:m], before)
    np.testing.assert_array_equal(out["gt_names"][:m], scene["gt_names"])
    assert out["points"].dtype == np.float32 and out["gt_boxes"].dtype == np.float32
    assert out["points"].shape[1] == 4
    assert out["frame_id"] == "000042"  # other keys pass through


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_per_seed(name, scene, database):
    t = _transforms(database)[name]
    a = t(scene, np.random.default_rng(7))
    b = t(scene, np.random.default_rng(7))
    assert_same_sample(a, b)
    if name not in ("flip_x", "flip_y"):  # flips with p=1 do not depend on the seed
        c = t(scene, np.random.default_rng(8))
        assert not np.array_equal(a["gt_boxes"], c["gt_boxes"])


@pytest.mark.parametrize("name", NAMES)
def test_no_mutation(name, scene, database):
    t = _transforms(database)[name]
    snapshot = copy.deepcopy(scene)
    out = t(scene, np.random.default_rng(5))
    assert_same_sample(scene, snapshot)
    assert out is not scene
    for key in ("points", "gt_boxes", "gt_names"):
        assert not np.shares_memory(out[key], scene[key])


@pytest.mark.parametrize("axis", ["x", "y"])
def test_flip_twice_is_identity(axis, scene):
    once = flip_sample(scene, axis)
    assert not np.array_equal(once["points"], scene["points"])
    # x: exact; y: heading -> -(heading + pi) rounds the float32 heading once each way.
    assert_same_sample(flip_sample(once, axis), scene, atol=0.0 if axis == "x" else 1e-6)


def test_flip_x_semantics(scene):
    out = RandomFlip("x", p=1.0)(scene, np.random.default_rng(0))
    np.testing.assert_array_equal(out["points"][:, 1], -scene["points"][:, 1])
    np.testing.assert_array_equal(out["points"][:, [0, 2, 3]], scene["points"][:, [0, 2, 3]])
    np.testing.assert_array_equal(out["gt_boxes"][:, 1], -scene["gt_boxes"][:, 1])
    np.testing.assert_array_equal(out["gt_boxes"][:, 6], -scene["gt_boxes"][:, 6])
    kept = RandomFlip("x", p=0.0)(scene, np.random.default_rng(0))
    assert_same_sample(kept, scene)


def test_rotation_round_trip(scene):
    angle = 0.7
    there = rotate_sample(scene, angle)
    assert (there["gt_boxes"][:, 6] >= -math.pi).all() and (there["gt_boxes"][:, 6] < math.pi).all()
    back = rotate_sample(there, -angle)
    np.testing.assert_allclose(back["points"], scene["points"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(back["gt_boxes"][:, :6], scene["gt_boxes"][:, :6], atol=1e-5, rtol=0)
    dh = back["gt_boxes"][:, 6].astype(np.float64) - scene["gt_boxes"][:, 6]
    # Headings are wrapped, so compare on the circle.
    np.testing.assert_allclose(np.angle(np.exp(1j * dh)), 0, atol=1e-5)
    # Rotation keeps distances from the z axis.
    r0 = np.hypot(scene["points"][:, 0], scene["points"][:, 1])
    np.testing.assert_allclose(np.hypot(there["points"][:, 0], there["points"][:, 1]), r0, atol=1e-4, rtol=1e-6)


def test_random_rotation_within_range(scene):
    out = RandomRotation(max_angle=0.1)(scene, np.random.default_rng(2))
    a0 = np.arctan2(scene["gt_boxes"][:, 1], scene["gt_boxes"][:, 0])
    a1 = np.arctan2(out["gt_boxes"][:, 1], out["gt_boxes"][:, 0])
    d = np.angle(np.exp(1j * (a1 - a0)))
    assert np.all(np.abs(d) <= 0.1 + 1e-5) and np.allclose(d, d[0], atol=1e-5)


def test_scaling_scales_volumes(scene):
    vol = lambda b: b[:, 3].astype(np.float64) * b[:, 4] * b[:, 5]  # noqa: E731
    out = scale_sample(scene, 1.04)
    np.testing.assert_allclose(vol(out["gt_boxes"]), vol(scene["gt_boxes"]) * 1.04**3, rtol=1e-5)
    out = RandomScaling((0.9, 1.1))(scene, np.random.default_rng(4))
    s = out["gt_boxes"][0, 3] / scene["gt_boxes"][0, 3]
    assert 0.9 <= s <= 1.1
    np.testing.assert_allclose(vol(out["gt_boxes"]), vol(scene["gt_boxes"]) * s**3, rtol=1e-5)
    np.testing.assert_allclose(out["points"][:, :3], scene["points"][:, :3] * s, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out["points"][:, 3], scene["points"][:, 3])  # intensity untouched


def test_translation_shifts_everything_equally(scene):
    out = translate_sample(scene, (1.0, -2.0, 0.5))
    np.testing.assert_allclose(out["gt_boxes"][:, :3] - scene["gt_boxes"][:, :3],
                               np.tile([1.0, -2.0, 0.5], (len(scene["gt_boxes"]), 1)), atol=1e-5)
    out = RandomTranslation((0.2, 0.2, 0.0))(scene, np.random.default_rng(0))
    shift = out["points"][:, :3].astype(np.float64) - scene["points"][:, :3]
    np.testing.assert_allclose(shift, shift[:1].repeat(len(shift), 0), atol=1e-5)
    np.testing.assert_allclose(out["gt_boxes"][:, :3] - scene["gt_boxes"][:, :3], shift[:1].repeat(6, 0), atol=1e-5)
    assert shift[0, 2] == 0


def test_object_noise_no_overlaps_and_counts():
    rng = np.random.default_rng(11)
    # Dense scene: boxes close enough that many candidate moves collide and must be rejected.
    dense = make_scene(rng, n_boxes=16, spacing=4.2, n_background=400, jitter=0.0, heading=0.0,
                       classes=["Car"])
    assert bev_overlaps(dense["gt_boxes"]) == 0
    before = counts(dense)
    noise = ObjectNoise(translation_std=(1.0, 1.0, 0.2), rotation_range=(-0.5, 0.5), attempts=5)
    moved_any = kept_any = False
    for seed in range(6):
        out = noise(dense, np.random.default_rng(seed))
        assert bev_overlaps(out["gt_boxes"]) == 0
        np.testing.assert_array_equal(counts(out), before)
        np.testing.assert_array_equal(out["gt_boxes"][:, 3:6], dense["gt_boxes"][:, 3:6])  # sizes unchanged
        same = np.all(out["gt_boxes"] == dense["gt_boxes"], axis=1)
        moved_any |= bool((~same).any())
        kept_any |= bool(same.any())
    assert moved_any and kept_any


def test_object_noise_moves_points_rigidly(scene):
    out = ObjectNoise(attempts=1)(scene, np.random.default_rng(0))
    ib = in_boxes(scene["points"], scene["gt_boxes"])
    ia = in_boxes(out["points"], out["gt_boxes"])
    for i in range(len(scene["gt_boxes"])):
        p0 = scene["points"][ib[i]].astype(np.float64)
        p1 = out["points"][ia[i]].astype(np.float64)
        # Order is preserved, and pairwise distances inside the object are kept by a rigid motion.
        d0 = np.linalg.norm(p0[:, None, :3] - p0[None, :, :3], axis=-1)
        d1 = np.linalg.norm(p1[:, None, :3] - p1[None, :, :3], axis=-1)
        np.testing.assert_allclose(d1, d0, atol=1e-4)
        np.testing.assert_array_equal(p1[:, 3], p0[:, 3])


def test_database_build(database):
    assert set(database.classes) <= set(SIZES)
    assert len(database) == 20 * 9
    for name in database.classes:
        for e in database[name]:
            assert e.name == name and e.points.dtype == np.float32 and e.points.shape == (e.num_points, 4)
            # Absolute coordinates: the points lie inside the stored box where it was.
            assert in_boxes(e.points, e.box[None]).all()


def _entry_for(database, box):
    for name in database.classes:
        for e in database[name]:
            if np.array_equal(e.box, box):
                return e
    raise AssertionError("added box not found in the database")


def test_gt_sampling_reaches_targets_without_overlaps(scene, database):
    groups = {"Car": 8, "Pedestrian": 6, "Cyclist": 5}
    pools = {k: sum(e.num_points >= 5 for e in database[k]) for k in groups}
    assert all(pools[k] >= 3 * groups[k] for k in groups)  # the database suffices
    out = GTSampling(database, groups, min_points=5)(scene, np.random.default_rng(0))
    for name, target in groups.items():
        assert max(target, int(np.sum(scene["gt_names"] == name))) == int(np.sum(out["gt_names"] == name))
    assert bev_overlaps(out["gt_boxes"]) == 0
    m = len(scene["gt_boxes"])
    inside = in_boxes(out["points"], out["gt_boxes"])
    for j in range(m, len(out["gt_boxes"])):
        e = _entry_for(database, out["gt_boxes"][j])
        assert e.num_points >= 5 and e.name == out["gt_names"][j]
        # Exactly the object's own points are inside: scene points there were removed, its points appended.
        got = out["points"][inside[j]]
        np.testing.assert_array_equal(np.sort(got, axis=0), np.sort(e.points, axis=0))
    # Scene points outside the pasted boxes all survive.
    scene_out = ~in_boxes(scene["points"], out["gt_boxes"][m:]).any(axis=0)
    assert len(out["points"]) == scene_out.sum() + inside[m:].sum()


def test_gt_sampling_removes_scene_points_in_pasted_boxes(database):
    # A scene that is nothing but dense background over the database's area: pasted boxes must clear it.
    rng = np.random.default_rng(2)
    bg = np.concatenate([rng.uniform(-35, 35, size=(20000, 2)), rng.uniform(-2, 1, size=(20000, 1)),
                         rng.uniform(0, 1, size=(20000, 1))], axis=1).astype(np.float32)
    sample = {"points": bg, "gt_boxes": np.zeros((0, 7), np.float32), "gt_names": np.array([], dtype=str)}
    out = GTSampling(database, {"Car": 5})(sample, rng)
    assert len(out["gt_boxes"]) == 5
    removed = in_boxes(bg, out["gt_boxes"]).any(axis=0)
    assert removed.sum() > 0
    expected = len(bg) - removed.sum() + sum(_entry_for(database, b).num_points for b in out["gt_boxes"])
    assert len(out["points"]) == expected


def test_gt_sampling_empty_scene(database):
    empty = {"points": np.zeros((0, 4), np.float32), "gt_boxes": np.zeros((0, 7), np.float32),
             "gt_names": np.array([], dtype=str)}
    out = GTSampling(database, {"Car": 4, "Pedestrian": 3})(empty, np.random.default_rng(0))
    assert sorted(out["gt_names"].tolist()) == ["Car"] * 4 + ["Pedestrian"] * 3
    assert out["points"].shape == (sum(_entry_for(database, b).num_points for b in out["gt_boxes"]), 4)
    assert bev_overlaps(out["gt_boxes"]) == 0
    # Every other transform also accepts an empty scene.
    for t in (RandomFlip(p=1.0), RandomRotation(), RandomScaling(), RandomTranslation(), ObjectNoise()):
        e = t(empty, np.random.default_rng(0))
        assert e["points"].shape == (0, 4) and e["gt_boxes"].shape == (0, 7)


def test_gt_sampling_min_points_and_short_database(scene):
    rng = np.random.default_rng(9)
    small = GTDatabase.build([make_scene(rng, n_boxes=4, spacing=30.0, origin=(100.0, 100.0), n_background=0,
                                         pts_per_box=(1, 9))])
    total = {k: len(small[k]) for k in SIZES}
    out = GTSampling(small, {k: 50 for k in SIZES}, min_points=0)(scene, np.random.default_rng(0))
    for k in SIZES:  # the database is too small: everything non-colliding is taken, no more
        assert int(np.sum(out["gt_names"] == k)) == int(np.sum(scene["gt_names"] == k)) + total[k]
    out = GTSampling(small, {k: 50 for k in SIZES}, min_points=5)(scene, np.random.default_rng(0))
    added = out["gt_boxes"][len(scene["gt_boxes"]):]
    assert all(_entry_for(small, b).num_points >= 5 for b in added)


def test_gt_sampling_rejects_duplicates_of_scene_objects(scene):
    # The database built from the scene itself: every candidate sits on its own original, so nothing is added.
    db = GTDatabase.build([scene])
    out = GTSampling(db, {k: 99 for k in SIZES}, min_points=0)(scene, np.random.default_rng(0))
    assert len(out["gt_boxes"]) == len(scene["gt_boxes"])
    np.testing.assert_array_equal(out["points"], scene["points"])


def test_bad_inputs():
    with pytest.raises(KeyError):
        RandomRotation()({"points": np.zeros((0, 4), np.float32)}, np.random.default_rng(0))
    with pytest.raises(ValueError):
        flip_sample({"points": np.zeros((3, 4)), "gt_boxes": np.zeros((1, 6)), "gt_names": np.array(["Car"])})
    with pytest.raises(ValueError):
        RandomFlip(axis="z")
    with pytest.raises(ValueError):
        RandomScaling((1.1, 0.9))
