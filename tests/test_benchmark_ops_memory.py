"""benchmarks/ops_memory.py at a tiny size: every row measured, and the allocation peak it reads is real."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ops_memory.py"


def test_allocation_peak_counts_the_largest_live_set() -> None:
    from benchmarks.measure import torch_allocation_peak

    def step() -> None:
        a = torch.empty(1 << 20, dtype=torch.uint8)
        b = torch.empty(1 << 21, dtype=torch.uint8)
        del a, b
        torch.empty(1 << 20, dtype=torch.uint8)

    assert torch_allocation_peak(step) == 3 << 20


@pytest.mark.triton
def test_rows(capsys: pytest.CaptureFixture[str]) -> None:
    rows = load_script(SCRIPT, "benchmark_ops_memory").main(["--lengths", "70", "--heads", "1", "--dim", "16"])
    assert [r["operator"] for r in rows] == ["gla, per-head gate", "gla, per-key gate", "delta_rule, gated"]
    for row in rows:
        assert row["chunk"] > 0 and row["triton_chunk"] > 0
    assert "| triton_chunk / chunk |" in capsys.readouterr().out
