"""benchmarks/ops.py: the CPU tables, and the GPU suite's code path run on the CPU (Triton through the interpreter).

Quick runs at tiny sizes; nothing here asserts a speed.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from opcases import TRITON_DEVICE
from scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "ops.py"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU peak memory needs /proc (Linux)")


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT, "benchmark_ops")


@linux_only
def test_cpu_tables(bench) -> None:
    """In a fresh process: the benchmark forks a child per measurement, and a child forked from this one (whose
    OpenMP pool is already running) can deadlock in its first parallel kernel."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(SCRIPT), "--lengths", "64", "--repeats", "1", "--max-recurrent", "64"],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for family in bench.FAMILIES:
        assert f"### {family}" in result.stdout
    assert "| T | recurrent ms | chunk ms | sdpa ms | recurrent/chunk | sdpa/chunk |" in result.stdout
    assert "| 64 |" in result.stdout


@linux_only
@pytest.mark.triton
def test_gpu_suite_runs_on_the_cpu(bench, capsys: pytest.CaptureFixture[str]) -> None:
    """The --device cuda code path (inputs, steps, timer, tables) with triton_chunk under TRITON_INTERPRET=1
    (compiled, on a GPU machine)."""
    bench.main(["--suite", "gpu", "--device", TRITON_DEVICE, "--shapes", "1x1x16", "--lengths", "64", "--dtype", "float32", "--repeats", "1",
                "--families", "head", "--backends", "triton_chunk", "chunk", "fla", "sdpa"])
    out = capsys.readouterr().out
    assert "### gla (per-head gate), B=1 H=1 K=V=16" in out
    row = next(line for line in out.splitlines() if line.startswith("| 64 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    head = next(line for line in out.splitlines() if line.startswith("| T |"))
    names = [c.strip() for c in head.strip("|").split("|")]
    got = dict(zip(names, cells))
    for name in ("triton_chunk ms", "chunk ms", "sdpa ms"):
        assert float(got[name].replace(",", "")) > 0, name
    assert got["chunk/ours"].endswith("x") and got["sdpa/ours"].endswith("x")
    fla_present = bench.load_fla()[0] is not None
    assert (got["fla ms"] == "no fla") != fla_present


def _measure(bench, ms: float, mib: float):
    return bench.Measure(ms, mib)


def test_gpu_tables_ratios_and_targets(bench, capsys: pytest.CaptureFixture[str]) -> None:
    """Table and target logic on made-up measurements at the lengths the targets name."""
    shape = bench.Shape.parse("8x16x128")
    lengths = [4096, 16384, 32768]
    family = "gla (per-head gate)"
    results = {}
    for t in lengths:
        scale = t / 4096
        results[(shape, family, "triton_chunk", t)] = _measure(bench, 2.0 * scale, 100 * scale)
        results[(shape, family, "fla", t)] = _measure(bench, 3.0 * scale, 150 * scale)
        results[(shape, family, "chunk", t)] = _measure(bench, 20.0 * scale, 90 * scale)  # smaller than ours
        results[(shape, family, "triton_recurrent", t)] = "skip (~9.0 s)" if t > 4096 else _measure(bench, 50, 1)
        results[(shape, "sdpa", "sdpa", t)] = _measure(bench, 2.0 * scale**2, 10)
    run = bench.GpuRun([shape], lengths, [family], bench.GPU_BACKENDS, results, "fla 0.0")
    checks = {name.split(": ", 1)[1]: (ok, value) for name, ok, value in bench.print_gpu_tables(run)}
    out = capsys.readouterr().out
    assert "skip (~9.0 s)" in out and "| 16,384 | 8.00 | skip (~9.0 s) | 80.00 | 12.00 | 32.00 |" in out
    assert checks["fla/ours time >= 1.0 at T=4,096-32,768"] == (True, "min 1.50x")
    assert checks["ours/fla peak memory <= 1.0 at T=4,096-32,768"] == (True, "max 0.67x")
    assert checks["ours/chunk peak memory <= 1.0 at T=4,096-32,768"] == (False, "max 1.11x")
    assert checks["sdpa/ours time >= 5 at T=16,384"] == (False, "4.00x")


def test_gpu_targets_need_every_length(bench) -> None:
    shape = bench.Shape.parse("1x4x64")
    family = "gated delta rule"
    results = {(shape, family, b, 4096): bench.Measure(1.0, 1.0) for b in ("triton_chunk", "fla")}
    results[(shape, family, "fla", 8192)] = "OOM"
    run = bench.GpuRun([shape], [4096, 8192], [family], ["triton_chunk", "fla"], results, "fla 0.0")
    checks = bench._gpu_targets(run, shape, family)
    assert [(ok, value) for _, ok, value in checks] == [(False, "not measured at every T (1/2)")] * 2


def test_budget_skips_by_extrapolation(bench) -> None:
    budget = bench._Budget(time_limit_s=60, max_call_ms=100)
    budget.record(("s", "f", "chunk"), 1024, 30.0)
    budget.record(("s", "sdpa", "sdpa"), 1024, 30.0)
    assert budget.verdict(("s", "f", "chunk"), 2048, "chunk") is None  # 60 ms predicted
    assert budget.verdict(("s", "f", "chunk"), 4096, "chunk") == "skip (~0.1 s)"  # 120 ms
    assert budget.verdict(("s", "sdpa", "sdpa"), 2048, "sdpa") == "skip (~0.1 s)"  # quadratic: 120 ms
    assert bench._Budget(time_limit_s=-1, max_call_ms=100).verdict(("x",), 64, "chunk") == "budget"
