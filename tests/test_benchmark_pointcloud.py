"""The point-cloud operator benchmark runs in --quick mode and reports sane times."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pointcloud_ops.py"
pointcloud_ops = load_script(SCRIPT, "benchmark_pointcloud_ops")


def test_quick_benchmark_rows(capsys):
    threads = torch.get_num_threads()
    try:
        rows = pointcloud_ops.main(["--quick"])
    finally:
        torch.set_num_threads(threads)  # the benchmark sets it; do not leak into other tests
    assert [r.op for r in rows] == ["voxelize", "iou_3d", "iou_3d", "nms_rotated"]
    for r in rows:
        assert math.isfinite(r.ms) and r.ms > 0
        assert r.met is None  # targets only apply at full size
    out = capsys.readouterr().out
    assert "| op | case |" in out and out.count("\n|") >= 5


def test_scene_is_in_range_and_kitti_sized():
    pts = pointcloud_ops.make_scene(120_000)
    assert pts.shape == (120_000, 4) and pts.dtype == torch.float32
    lo = torch.tensor(pointcloud_ops.POINT_CLOUD_RANGE[:3])
    hi = torch.tensor(pointcloud_ops.POINT_CLOUD_RANGE[3:])
    assert bool(((pts[:, :3] >= lo) & (pts[:, :3] < hi)).all())
