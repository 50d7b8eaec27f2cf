"""The LION backbone benchmark runs in --quick mode and reports every operator at every group size."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lion.py"
lion_bench = load_script(SCRIPT, "benchmark_lion")


def test_quick_benchmark_table(capsys):
    threads = torch.get_num_threads()
    try:
        rows = lion_bench.main(["--quick", "--operators", "retnet", "attention"])
    finally:
        torch.set_num_threads(threads)
    assert [(r.operator, r.group) for r in rows] == [("retnet", 64), ("retnet", 256), ("attention", 64),
                                                      ("attention", 256)]
    features_mb = 32 * 4 / 2**20  # per voxel: --quick runs dim 32, float32
    for r in rows:
        assert r.voxels > 1000 and math.isfinite(r.us_per_voxel) and r.us_per_voxel > 0
        # forward + backward holds at least the features' gradient and one saved activation of their size
        assert r.peak_mb > 2 * r.voxels * features_mb, r
    out = capsys.readouterr().out
    assert "| operator | group |" in out and out.count("\n| ") == 5  # header and four rows
    assert "| attention | 256 |" in out and "1.00x |" in out
