"""The distributed examples under torchrun with 2 gloo processes on the CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def torchrun(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "examples" / "distributed" / script), *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )


def test_long_sequence_lm_matches_one_process_and_learns(tmp_path):
    run = torchrun("long_sequence_lm.py", "--length", "1024", "--steps", "15", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    gap = float(run.stdout.split("(gap ")[1].split(")")[0])  # the script also fails itself above 1e-4
    assert gap < 1e-5, run.stdout
    result = json.loads((tmp_path / "loss.json").read_text())
    assert result["world"] == 2 and len(result["loss"]) == 15
    assert result["loss"][-1] < result["loss"][0] - 0.3
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_ddp_digits_trains_on_two_ranks(tmp_path):
    run = torchrun("ddp_digits.py", "--epochs", "2", "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((tmp_path / "history.json").read_text())
    assert result["world"] == 2 and [h["epoch"] for h in result["history"]] == [1, 2]
    assert result["history"][-1]["test_accuracy"] > 0.3  # chance is 0.1
    assert (tmp_path / "curves.png").stat().st_size > 0
