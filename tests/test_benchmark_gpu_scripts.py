"""The GPU scripts on the CPU: benchmarks/gpu_train_step.py (tiny models), benchmarks/kernel_model.py and the
flow of benchmarks/gpu_check.sh (with stand-ins for python3 and nvidia-smi). Quick; no speed is asserted."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
FAST_MODELS = ["LightNet-Tiny", "AutoTimes", "shallow PLRNN (GTF)", "diagonal linear RNN (GTF scan)"]


@pytest.fixture(scope="module")
def train_step():
    return load_script(ROOT / "benchmarks" / "gpu_train_step.py", "benchmark_gpu_train_step")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU peak memory needs /proc (Linux)")
def test_train_step_rows(train_step, capsys: pytest.CaptureFixture[str]) -> None:
    rows = train_step.main(["--device", "cpu", "--repeats", "1", "--models", *FAST_MODELS])
    assert [r.model for r in rows] == FAST_MODELS
    for r in rows:
        assert r.status == "ok" and r.step_ms > 0 and r.peak_mib is not None, r
    out = capsys.readouterr().out
    assert "backend auto = chunk" in out and "| model | status | step ms | peak MiB |" in out


def test_train_step_reports_skips_and_errors(train_step, monkeypatch) -> None:
    monkeypatch.setattr(train_step, "_spconv_unavailable", lambda device: "spconv has no working CUDA build here")
    assert train_step.measure("LION", train_step.torch.device("cpu"), True, 1).status == (
        "skipped: spconv has no working CUDA build here")

    def broken(device, tiny):
        raise RuntimeError("CUDA error: no kernel image\nsecond line")

    monkeypatch.setitem(train_step.MODELS, "AutoTimes", broken)
    row = train_step.measure("AutoTimes", train_step.torch.device("cpu"), True, 1)
    assert row.status == "error: RuntimeError: CUDA error: no kernel image" and row.step_ms is None


def test_kernel_model_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = load_script(ROOT / "benchmarks" / "kernel_model.py", "benchmark_kernel_model")
    # one compiled row as triton_aot.py --json writes it: occupancy of the per-head GLA output kernel
    row = {"ok": True, "arch": "sm_90", "kernel": "gla.triton_chunk_head:_fwd_o_kernel",
           "module": "seqcore.ops.gla.triton_chunk_head", "case": "B8 T4096 H16 K128 V128 bfloat16 headgate+nostate",
           "ctas_per_sm": 3, "regs": 168, "pipelined": True}
    aot = tmp_path / "aot.json"
    aot.write_text(json.dumps([row]))
    model.main(["--aot-json", str(aot), "--scaling-lengths", "4096"])
    out = capsys.readouterr().out
    assert "### B8 T4096 H16 K128 V128" in out and "### B1 T4096 H4 K64 V64" in out
    lines = [line for line in out.splitlines() if "| gla per-head gate, triton_chunk | forward | _fwd_o_kernel" in line]
    assert lines[0].split("|")[5:7] == [" 3 ", " 168 "]  # CTA/SM and registers from the AOT row
    assert "| 2* |" in out  # kernels without a row assume 2 CTAs/SM
    for family in model.FAMILIES:
        assert f"| {family} |" in out
    assert "Chunked kernels against T (H200" in out


def test_gpu_check_flow(tmp_path: Path) -> None:
    """Every stage runs, in order, with its arguments, and the summary records each exit status."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text('#!/bin/bash\necho "python3 $*"\n')
    (fake / "nvidia-smi").write_text('#!/bin/bash\necho "nvidia-smi $*"\n')
    for f in fake.iterdir():
        f.chmod(0o755)
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PATH=f"{fake}:{os.environ['PATH']}")
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], env=env, capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "-m pytest -v -p no:cacheprovider -m triton" in (out / "tests.log").read_text()
    assert "benchmarks/ops.py --device cuda" in (out / "ops.md").read_text()
    assert "benchmarks/gpu_train_step.py --device cuda" in (out / "train_step.md").read_text()
    summary = (out / "summary.txt").read_text()
    assert summary.count(": exit 0,") == 3 and "total:" in summary
