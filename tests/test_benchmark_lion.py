"""The LION backbone benchmark runs in --quick mode and reports every operator at every group size."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lion.py"
_spec = importlib.util.spec_from_file_location("benchmark_lion", SCRIPT)
lion_bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = lion_bench
_spec.loader.exec_module(lion_bench)


def test_quick_benchmark_table(capsys):
    threads = torch.get_num_threads()
    try:
        rows = lion_bench.main(["--quick", "--operators", "retnet", "attention"])
    finally:
        torch.set_num_threads(threads)
    assert [(r.operator, r.group) for r in rows] == [("retnet", 64), ("retnet", 256), ("attention", 64),
                                                      ("attention", 256)]
    for r in rows:
        assert r.voxels > 1000 and math.isfinite(r.us_per_voxel) and r.us_per_voxel > 0 and r.peak_mb >= 0
    out = capsys.readouterr().out
    assert "| operator | group |" in out and out.count("\n| ") == 5  # header and four rows
    assert "| attention | 256 |" in out and "1.00x |" in out
