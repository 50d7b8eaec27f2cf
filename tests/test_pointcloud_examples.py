"""The point-cloud tour on a few synthetic scenes: KITTI files written, read, evaluated and plotted."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_kitti_tour_quick(tmp_path, capsys):
    path = ROOT / "examples" / "pointcloud" / "kitti_tour.py"
    spec = importlib.util.spec_from_file_location("pointcloud_kitti_tour", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    rows = module.main(["--quick", "--out", str(tmp_path)])
    car = {(r["noise"], r["metric"], r["difficulty"]): r["ap"] for r in rows if r["class"] == "Car"}
    # 5 cm of jitter keeps every car above IoU 0.7; 50 cm loses most of them, more in 3-D than in BEV.
    assert car[(0.05, "bev", "moderate")] > 90
    assert car[(0.5, "3d", "moderate")] < car[(0.5, "bev", "moderate")] < 60
    assert (tmp_path / "bev.png").stat().st_size > 0
    assert (tmp_path / "results_noise_0.05" / "000000.txt").exists()
    assert "| Car | 3D | 0.7 |" in capsys.readouterr().out
