"""The sequence-parallel benchmark runs in --quick mode: both rows, and communication that is pure state traffic."""
from __future__ import annotations

from pathlib import Path

from scripts import load_script
from seqcore.distributed import FINGERPRINT_BYTES

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "distributed.py"
bench = load_script(SCRIPT, "benchmark_distributed")


def test_quick_benchmark(capsys):
    rows = bench.main(["--quick"])
    assert [(r.length, r.ranks) for r in rows] == [(2048, 1), (2048, 2)]
    # The fingerprint exchange (48 int64s), the forward all-gather of one float32 (K x V state, K decays) pair per
    # head and the backward all-reduce of the 2 gathered pairs.
    pair = bench.H * bench.K * (bench.V + 1) * 4
    assert FINGERPRINT_BYTES == 384
    assert rows[1].comm_bytes == FINGERPRINT_BYTES + pair + 2 * pair
    assert all(r.seconds > 0 and r.peak_mb >= 0 for r in rows)
    assert "| 2,048 | 2 |" in capsys.readouterr().out
