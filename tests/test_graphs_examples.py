"""The graph examples on tiny runs: the task benchmark, the karate club and a local TU data set on disk."""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from graph_files import write_tu
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def load(relative: str) -> ModuleType:
    path = ROOT / relative
    return load_script(path, f"graphs_example_{path.stem}")


def test_benchmark_tasks_writes_results_table_and_plot(tmp_path, capsys):
    script = load("examples/graphs/benchmark_tasks.py")
    argv = ["--tasks", "connectivity", "node_degree", "--models", "hac_dfs/hybrid", "khop/recurrent", "gin",
            "--graphs", "40", "--epochs", "2", "--out", str(tmp_path)]
    rows = script.main(argv)
    assert {(r["task"], r["model"]) for r in rows} == {
        (t, m) for t in ("connectivity", "node_degree") for m in ("hac_dfs/hybrid", "khop/recurrent", "gin")
    }
    assert all(0.0 <= r["test_acc"] <= 1.0 and r["train_s"] > 0 for r in rows)
    assert json.loads((tmp_path / "results.json").read_text()) == rows
    assert (tmp_path / "accuracy.png").stat().st_size > 0
    table = capsys.readouterr().out
    assert "| model | connectivity | node_degree |" in table and "| khop/recurrent |" in table
    merged = script.main(["--from-results", str(tmp_path / "results.json"), "--out", str(tmp_path / "merged")])
    assert merged == rows
    with pytest.raises(ValueError, match="unknown model"):
        script.build_model("hac_dfs/transformer", 2, 2, "graph", 8)


def test_karate_and_local_tu_dataset(tmp_path, capsys, offline):
    script = load("examples/graphs/karate.py")
    rows = script.main(["--models", "gsm++", "gcn", "--draws", "1", "--epochs", "3"])
    assert {r["model"] for r in rows} == {"gsm++", "gcn"} and all(0 <= r["test_acc"] <= 1 for r in rows)
    assert "## karate club" in capsys.readouterr().out
    graphs = [(4 + i % 3, [(0, 1), (1, 2), (2, 3)] + ([(3, 0)] if i % 2 else []), i % 2, [0] * (4 + i % 3))
              for i in range(20)]
    write_tu(tmp_path, "TOY", graphs)
    rows = script.main(["--root", str(tmp_path), "--dataset", "TOY", "--models", "gsm++", "--draws", "1",
                        "--epochs", "2"])
    assert len(rows) == 1 and "TOY (TUDataset)" in capsys.readouterr().out
