"""LION's layers, backbone, head and detector: packed = padded, equivariance, encode/decode, save/load, training."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pointcloud import SyntheticScenes
from pointcloud.lion import (
    CenterHead, LIONBackbone, LIONConfig, LIONDetector, LIONLayer, SparseBEV, dense_bev, evaluate_detector,
    partition, to_batch,
)
from pointcloud.lion.head import gaussian_radius
from seqcore.nn import build_mixer
from voxel_cases import random_voxels

TINY_RANGE = (0.0, -12.8, -3.0, 25.6, 12.8, 1.0)


@pytest.fixture(scope="module")
def tiny_scenes():
    scenes = SyntheticScenes(2, seed=4, point_cloud_range=TINY_RANGE, objects_per_scene=(2, 4), classes=("Car",))
    return [scenes[i] for i in range(2)]


@pytest.mark.parametrize("operator", ["mamba2", "gla", "retnet"])
def test_packed_groups_equal_a_padded_free_dense_batch(operator):
    """Every sample holds a multiple of the group size, so the groups stack into a dense (G, group, C) batch."""
    coords = random_voxels(1, (48, 32), (4, 10, 10))
    part = partition(coords, (4, 4, 4), 16, axis="x", shift=True)
    assert torch.all(part.cu_seqlens.diff() == 16)
    torch.manual_seed(0)
    mixer = build_mixer(operator, 16, num_heads=2, bidirectional=True).eval()
    x = torch.randn(len(coords), 16)[part.order]
    packed = mixer(x[None], cu_seqlens=part.cu_seqlens)[0]
    dense = mixer(x.view(-1, 16, 16)).reshape(-1, 16)
    assert torch.allclose(packed, dense, atol=1e-5)


def test_lion_layer_is_equivariant_to_voxel_order_and_local_to_groups():
    torch.manual_seed(0)
    layer = LIONLayer(16, "retnet", (4, 4, 4), 8, shift=True, num_heads=2).eval()
    coords = random_voxels(2, (60, 30), (4, 12, 12))
    feats = torch.randn(len(coords), 16)
    out = layer(coords, feats)
    perm = torch.randperm(len(coords))
    assert torch.allclose(layer(coords[perm], feats[perm]), out[perm], atol=1e-5)
    # Sample 1 does not see sample 0: changing sample 0 leaves sample 1's output alone.
    other = feats.clone()
    other[coords[:, 0] == 0] += 1.0
    second = coords[:, 0] == 1
    assert torch.allclose(layer(coords, other)[second], out[second], atol=1e-6)
    with pytest.raises(ValueError, match=r"features must be \(V=90, C=16\)"):
        layer(coords, feats[:, :8])


def test_backbone_generation_switch_and_bev_output():
    coords = random_voxels(3, (200, 150), (8, 32, 32))
    feats = torch.randn(len(coords), 16)
    torch.manual_seed(0)
    kwargs = dict(windows=[[8, 8, 8], [8, 8, 4]], group_sizes=[64, 32], num_heads=2)
    with_gen = LIONBackbone(16, "mamba2", generate_ratio=0.2, **kwargs)
    without = LIONBackbone(16, "mamba2", generate_ratio=0.0, **kwargs)
    without.load_state_dict(with_gen.state_dict())
    a, b = with_gen(coords, feats, (8, 32, 32), 2), without(coords, feats, (8, 32, 32), 2)
    assert isinstance(a, SparseBEV) and a.shape == (1, 32, 32) and torch.all(a.coords[:, 1] == 0)
    bev_cells = {tuple(c) for c in coords[:, [0, 2, 3]].tolist()}
    assert {tuple(c) for c in b.coords[:, [0, 2, 3]].tolist()} == bev_cells
    assert len(a.coords) > len(b.coords)  # generated voxels reach the BEV map
    assert torch.isfinite(a.features).all()
    dense = dense_bev(a, 2)
    bb, _, y, x = a.coords.unbind(1)
    assert dense.shape == (2, 16, 32, 32) and torch.equal(dense[bb, :, y, x], a.features)


def test_gaussian_radius_grows_with_size_and_shrinks_with_overlap():
    r = gaussian_radius(torch.tensor([4.0, 8.0, 8.0]), torch.tensor([2.0, 4.0, 4.0]), 0.1)
    assert r[0] < r[1]
    assert gaussian_radius(torch.tensor(8.0), torch.tensor(4.0), 0.7) < r[1]


def test_head_targets_decode_back_to_the_boxes():
    priors = [[3.9, 1.6, 1.56, -0.95], [0.8, 0.6, 1.73, -0.87]]
    head = CenterHead(8, 8, ["Car", "Pedestrian"], (0.4, 0.4), (0.0, -8.0), priors, reg_radius=0)
    # Headings on both sides of the doubled angle's range, so the direction bit is 0 for one and 1 for the other.
    boxes = torch.tensor([[[5.13, 1.27, -0.9, 3.9, 1.6, 1.5, 0.3], [9.9, -4.05, -1.1, 0.8, 0.6, 1.7, -2.5],
                           [0, 0, 0, 0, 0, 0, 0]]])
    classes = torch.tensor([[1, 2, 0]])
    heatmap, sample, index, code = head.targets(boxes, classes, (40, 50))
    assert heatmap.shape == (1, 2, 40, 50) and len(index) == 2
    assert heatmap[0, 0].flatten()[index[0]] == 1 and heatmap[0, 1].flatten()[index[1]] == 1
    assert heatmap.eq(1).sum() == 2
    assert code[:, 8].tolist() == [0.0, 1.0]
    # Car at x = 5.13 m is in column floor(5.13 / 0.4) = 12, y = 1.27 m in row floor(9.27 / 0.4) = 23.
    assert int(index[0]) == 23 * 50 + 12
    logits = torch.full((1, 2, 40, 50), -10.0)
    logits.view(1, 2, -1)[0, 0, index[0]] = 10.0
    logits.view(1, 2, -1)[0, 1, index[1]] = 10.0
    box = torch.zeros(1, 9, 40 * 50)
    box[0, :, index] = code.T
    out = head.decode({"heatmap": logits, "box": box.view(1, 9, 40, 50)})[0]
    order = torch.argsort(out["labels"])
    assert out["labels"][order].tolist() == [0, 1]
    decoded = out["boxes"][order]
    assert torch.allclose(decoded[:, :6], boxes[0, :2, :6], atol=1e-5)
    turned = torch.remainder(decoded[:, 6] - boxes[0, :2, 6] + math.pi, 2 * math.pi)
    assert torch.allclose(turned, torch.full((2,), math.pi), atol=1e-5)


def test_every_regressed_cell_decodes_to_its_box():
    head = CenterHead(8, 8, ["Car"], (0.4, 0.4), (0.0, -8.0), reg_radius=1)
    boxes = torch.tensor([[[5.13, 1.27, -0.9, 3.9, 1.6, 1.5, 0.3], [0.1, -7.9, -1.0, 3.9, 1.6, 1.5, 1.0]]])
    _, sample, index, code = head.targets(boxes, torch.tensor([[1, 1]]), (40, 50))
    assert len(index) == 9 + 4  # the second car sits in the corner cell: 4 of its 9 cells are on the map
    assert len(set(index.tolist())) == 13
    x = (index % 50 + code[:, 0]) * 0.4
    y = (index // 50 + code[:, 1]) * 0.4 - 8.0
    owner = torch.tensor([0] * 9 + [1] * 4)
    assert torch.allclose(x, boxes[0, owner, 0], atol=1e-5) and torch.allclose(y, boxes[0, owner, 1], atol=1e-5)


def test_config_round_trip_and_errors():
    kitti = LIONConfig.kitti()
    assert kitti.point_cloud_range == [0.0, -40.0, -3.0, 70.4, 40.0, 1.0] and kitti.voxel_size == [0.2, 0.2, 0.125]
    assert kitti.windows == [[13, 13, 32], [13, 13, 16], [13, 13, 8], [13, 13, 4]]
    assert kitti.group_sizes == [4096, 2048, 1024, 512] and kitti.dim == 64 and kitti.layers_per_block == 2
    small = LIONConfig.small(operator="gla")
    assert LIONConfig.from_dict(small.to_dict()) == small
    with pytest.raises(ValueError, match="unknown operator 'lstm'"):
        LIONConfig.tiny(operator="lstm")
    with pytest.raises(ValueError, match="unknown LIONConfig fields"):
        LIONConfig.from_dict({**small.to_dict(), "depth": 3})
    with pytest.raises(ValueError, match="one group size per window"):
        LIONConfig.tiny(group_sizes=[64])
    with pytest.raises(ValueError, match=r"class_priors needs \[dx, dy, dz, z\] for \['Van'\]"):
        LIONConfig.tiny(classes=["Car", "Van"])
    with pytest.raises(ValueError, match="cannot be halved"):
        LIONConfig.tiny(voxel_size=[0.4, 0.4, 0.8])


def _batch(scenes, config):
    return to_batch(scenes, config.classes)


@pytest.mark.parametrize("operator", ["mamba2", "gla", "retnet", "hgrn", "deltanet", "attention"])
def test_operator_is_a_one_word_change(operator, tiny_scenes):
    config = LIONConfig.tiny(operator=operator, classes=["Car"])
    torch.manual_seed(0)
    model = LIONDetector(config)
    points, boxes, classes = _batch(tiny_scenes, config)
    loss, parts = model.loss(model(points, 2), boxes, classes)
    loss.backward()
    assert torch.isfinite(loss) and parts["box"] > 0
    assert all(p.grad is not None for p in model.backbone.parameters() if p.requires_grad)


def test_detector_is_invariant_to_point_order(tiny_scenes):
    config = LIONConfig.tiny(classes=["Car"])
    torch.manual_seed(0)
    model = LIONDetector(config).eval()
    points, _, _ = _batch(tiny_scenes, config)
    perm = torch.randperm(len(points), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = model(points, 2), model(points[perm], 2)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-4), key


def test_detector_rejects_bad_points(tiny_scenes):
    model = LIONDetector(LIONConfig.tiny())
    with pytest.raises(ValueError, match=r"float \(N, 5\)"):
        model(torch.zeros(10, 4), 1)
    with pytest.raises(ValueError, match="batch column"):
        model(torch.zeros(10, 5) + torch.tensor([3.0, 1, 1, 1, 0]), 2)
    nan = torch.zeros(3, 5)
    nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN coordinates"):
        model(nan, 1)
    empty = model(torch.zeros(0, 5), 2)  # scans with no point in range still give (empty) maps
    assert empty["heatmap"].shape == (2, 3, 32, 32) and torch.isfinite(empty["box"]).all()


def test_save_load_round_trip(tmp_path, tiny_scenes):
    config = LIONConfig.tiny(operator="retnet", classes=["Car"])
    model = LIONDetector(config).eval()
    model.save(tmp_path / "m.pt")
    loaded = LIONDetector.load(tmp_path / "m.pt").eval()
    assert loaded.config == config
    points, _, _ = _batch(tiny_scenes, config)
    with torch.no_grad():
        assert torch.equal(model(points, 2)["box"], loaded(points, 2)["box"])
    torch.save({"state": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a seqcore checkpoint"):
        LIONDetector.load(tmp_path / "other.pt")


def test_detector_overfits_one_scene(tiny_scenes):
    """Trained on one scene, the detector finds its cars at the KITTI IoU of 0.7 (AP near 100)."""
    scene = {**tiny_scenes[0], "calib": None}
    config = LIONConfig.tiny(classes=["Car"], operator="retnet", generate_ratio=0.0)
    torch.manual_seed(0)
    model = LIONDetector(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    points, boxes, classes = _batch([scene], config)
    for _ in range(100):
        loss, _ = model.loss(model(points, 1), boxes, classes)
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    from pointcloud.evaluation import FrameBoxes, evaluate, image_boxes
    from pointcloud.synthetic import kitti_calibration
    gt_boxes = scene["gt_boxes"].astype(np.float64)
    n = len(gt_boxes)
    truth = FrameBoxes(gt_boxes, np.array(["Car"] * n), image_boxes(gt_boxes, kitti_calibration()),
                       occluded=np.zeros(n, int), truncated=np.zeros(n))
    _, detections = evaluate_detector(model, [scene], [truth])
    # One scene has fewer than 41 cars, where the devkit's sampling (the default) caps even a perfect detector at
    # (N - 1) / 40; exact recall reads how many were found.
    evaluation = evaluate([truth], detections, classes=["Car"], metrics=["3d"], method="exact_recall")
    assert evaluation.ap[("Car", "3d", "easy")] > 90, (evaluation.table(), detections[0].boxes, gt_boxes)


@pytest.mark.slow
def test_paper_kitti_config_trains_a_step():
    """The paper's KITTI setting (4 blocks, 0.2 m voxels, groups up to 4096) on one full synthetic scene."""
    scene = SyntheticScenes(1, seed=0)[0]
    config = LIONConfig.kitti()
    torch.manual_seed(0)
    model = LIONDetector(config)
    points, boxes, classes = to_batch([scene], config.classes)
    preds = model(points, 1)
    assert preds["heatmap"].shape == (1, 3, 200, 176) and preds["box"].shape == (1, 9, 200, 176)
    loss, _ = model.loss(preds, boxes, classes)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
