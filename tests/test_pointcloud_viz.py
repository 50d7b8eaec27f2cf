"""BEV plotting: writes a PNG, draws one patch per box, copes with empty input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")

from pointcloud.viz import plot_bev, save_bev


def _scene(n_points: int = 2000, n_boxes: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    pts = torch.rand(n_points, 4, generator=gen) * torch.tensor([70.4, 80.0, 4.0, 1.0]) + torch.tensor(
        [0.0, -40.0, -3.0, 0.0])
    xy = torch.rand(n_boxes, 2, generator=gen) * torch.tensor([60.0, 60.0]) + torch.tensor([5.0, -30.0])
    boxes = torch.cat([xy, torch.full((n_boxes, 1), -1.0), torch.tensor([[3.9, 1.6, 1.56]]).repeat(n_boxes, 1),
                       torch.rand(n_boxes, 1, generator=gen) * 2 * math.pi], dim=1)
    return pts, boxes


def _patches(ax, gid: str) -> int:
    return sum(1 for p in ax.patches if p.get_gid() == gid)


def test_save_bev_writes_png(tmp_path):
    pts, gt = _scene()
    pred = gt + 0.3
    path = save_bev(tmp_path / "bev.png", pts, gt, pred, torch.tensor([0.9, 0.5, 0.3, 0.1]),
                    labels=["Car"] * 4, title="scene")
    data = (tmp_path / "bev.png").read_bytes()
    assert path.endswith("bev.png")
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_patch_per_box():
    pts, gt = _scene(n_boxes=5)
    pred = gt[:3].numpy()  # numpy input works too
    ax = plot_bev(pts, gt, pred, np.array([0.8, 0.6, 0.4]))
    assert _patches(ax, "gt") == 5
    assert _patches(ax, "pred") == 3
    assert len(ax.patches) == 8
    # Axes follow the documented orientation: x forward to the right over the range.
    assert ax.get_xlim() == pytest.approx((0.0, 70.4))
    assert ax.get_ylim() == pytest.approx((-40.0, 40.0))


def test_score_threshold_hides_low_scores():
    pts, gt = _scene(n_boxes=4)
    ax = plot_bev(pts, pred_boxes=gt, pred_scores=[0.9, 0.2, 0.6, 0.1], score_threshold=0.5)
    assert _patches(ax, "pred") == 2 and _patches(ax, "gt") == 0


def test_empty_points_and_boxes(tmp_path):
    save_bev(tmp_path / "empty.png", torch.zeros(0, 4), torch.zeros(0, 7), color_by="intensity")
    assert (tmp_path / "empty.png").stat().st_size > 0
    ax = plot_bev(np.zeros((0, 3)))
    assert len(ax.patches) == 0


def test_heading_tick_points_to_front():
    # A box at heading +90 deg faces +y: its tick must end at the front-edge midpoint (x, y + dx/2).
    box = torch.tensor([[20.0, 0.0, -1.0, 4.0, 2.0, 1.5, math.pi / 2]])
    ax = plot_bev(torch.zeros(0, 4), box)
    xs, ys = ax.lines[-1].get_data()
    assert xs[-1] == pytest.approx(20.0, abs=1e-6) and ys[-1] == pytest.approx(2.0, abs=1e-6)


def test_bad_shapes_raise():
    pts, gt = _scene()
    with pytest.raises(ValueError):
        plot_bev(pts, gt[:, :6])
    with pytest.raises(ValueError):
        plot_bev(pts, pred_boxes=gt, pred_scores=[0.5])
