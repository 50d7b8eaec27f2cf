"""benchmarks/graphs.py --quick: HAC rows and GSM++ / GPS training-step rows with sane times, memory and levels."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "graphs.py"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU peak memory needs /proc (Linux)")
def test_quick_run_reports_hac_and_both_models(capsys: pytest.CaptureFixture[str]) -> None:
    module = load_script(SCRIPT, "benchmark_graphs")

    out = module.main(["--quick"])

    hac = out["hac"]
    assert [r["nodes"] for r in hac] == [1_000, 10_000]
    for r in hac:
        assert r["edges"] == 10 * r["nodes"]
        assert r["levels"] >= 1 and r["top"] >= 1
        assert math.isfinite(r["seconds"]) and r["seconds"] > 0
        assert r["s_per_m_edges"] == pytest.approx(r["seconds"] / (r["edges"] / 1e6))

    train = out["train"]
    assert {(r["nodes"], r["model"]) for r in train} == {(n, m) for n in (1_000, 3_000) for m in ("GSM++", "GPS")}
    assert len(train) == 4
    for r in train:
        assert r["status"] == "ok", r  # 3,000 nodes fit every limit
        assert math.isfinite(r["step_s"]) and r["step_s"] > 0
        assert 0 <= r["kernel_s"] <= r["step_s"] * 1.5  # system time is part of the step (clock jitter aside)
        assert r["peak_mb"] > 0 and r["repeats"] == 1

    printed = capsys.readouterr().out
    assert "| nodes | edges | levels | top clusters | seconds | s per 1M edges |" in printed
    assert "| nodes | GSM++ ms/step | GPS ms/step | GPS/GSM++ time | GSM++ MB | GPS MB | GPS/GSM++ memory |" in printed
    assert "GSM++: " in printed and "time ~ N^" in printed


def test_train_graph_is_connected_symmetric_and_loop_free() -> None:
    module = load_script(SCRIPT, "benchmark_graphs")

    x, edge_index, y = module.random_graph(500, seed=1)
    assert x.shape == (500, 16) and y.shape == (500,) and edge_index.shape == (2, 10 * 500)
    assert bool((edge_index[0] != edge_index[1]).all())
    # union-find over the edges: one component
    parent = list(range(500))

    def find(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for a, b in edge_index.t().tolist():
        parent[find(a)] = find(b)
    assert len({find(v) for v in range(500)}) == 1
    pairs = edge_index.t().tolist()
    assert sorted(map(tuple, pairs)) == sorted((b, a) for a, b in pairs)  # every edge in both directions
