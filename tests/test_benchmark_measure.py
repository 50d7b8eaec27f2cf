"""benchmarks/measure.py is the benchmarks' one timer: no other benchmark reads a clock, measure.py imports no
other benchmark, and its timer reports the median of the timed calls after the untimed ones, on the clock asked."""
from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

import pytest
import torch

from scripts import ROOT

from benchmarks import measure

BENCHMARKS = ROOT / "benchmarks"
CLOCK_MODULES = {"time", "timeit"}


def clock_reads(path: Path) -> list[str]:
    """Where ``path`` reads a clock itself: imports ``time`` or ``timeit``, or uses ``os.times`` or a CUDA event."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in CLOCK_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in CLOCK_MODULES:
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) == ("os", "times"):
                found.append(f"{where}: os.times")
        if isinstance(node, ast.Attribute) and node.attr == "Event" and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "cuda":
            found.append(f"{where}: cuda.Event")
    return found


def benchmark_imports(path: Path) -> list[str]:
    """The other benchmarks ``path`` imports: ``benchmarks.*``, a sibling script's name, or a relative import."""
    siblings = {p.stem for p in BENCHMARKS.glob("*.py")} - {path.stem}
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = ["." * node.level + (node.module or "")] if node.level else [node.module]
        else:
            continue
        found += [n for n in names if n.startswith(".") or n.split(".")[0] == "benchmarks" or n in siblings]
    return found


def test_the_scans_find_what_they_look_for(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os, torch\nimport time as t\nfrom timeit import timeit\nfrom time import perf_counter\n"
                     "os.times()\ntorch.cuda.Event(enable_timing=True)\nos.path.join('a')\n"
                     "import benchmarks.ops\nfrom benchmarks import vision\nimport graphs\nfrom . import x\n")
    assert len(clock_reads(probe)) == 5
    assert benchmark_imports(probe) == ["benchmarks.ops", "benchmarks", "graphs", "."]


def test_no_benchmark_reads_a_clock_but_measure() -> None:
    scripts = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "measure.py")
    assert len(scripts) > 15
    assert [hit for path in scripts for hit in clock_reads(path)] == []
    assert clock_reads(BENCHMARKS / "measure.py")  # the scan does see measure.py's own clocks


def test_measure_imports_no_other_benchmark() -> None:
    assert benchmark_imports(BENCHMARKS / "measure.py") == []


class FakeClock:
    """A ``time.perf_counter`` stand-in that moves only when a step advances it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_calls_reports_the_median_of_the_timed_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(measure.time, "perf_counter", clock)
    durations = iter([100.0, 3.0, 1.0, 2.0])  # the first call is the warm-up: not timed

    def step() -> None:
        clock.now += next(durations)

    timing = measure.time_calls(step, warmup=1, repeats=3)
    assert timing.seconds == (3.0, 1.0, 2.0)
    assert timing.median == 2.0  # neither the minimum (1.0) nor the mean with the warm-up
    assert len(timing.system_seconds) == 3 and all(s >= 0 for s in timing.system_seconds)


def test_time_calls_stops_at_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(measure.time, "perf_counter", clock)
    calls = []

    def step() -> None:
        calls.append(1)
        clock.now += 0.5

    assert measure.time_calls(step, warmup=0, repeats=10, budget_s=1.2).seconds == (0.5, 0.5, 0.5)  # 1.5 >= 1.2
    assert measure.time_calls(step, warmup=2, repeats=10, budget_s=0).seconds == (0.5,)  # at least one
    assert measure.time_calls(step, warmup=0, repeats=2, budget_s=100.0).seconds == (0.5, 0.5)
    assert len(calls) == 3 + 3 + 2


def test_cpu_clock_leaves_out_waiting() -> None:
    def nap() -> None:
        time.sleep(0.05)

    assert measure.time_calls(nap, warmup=0, repeats=2, clock="wall").median >= 0.05
    assert measure.time_calls(nap, warmup=0, repeats=2, clock="cpu").median < 0.02


def test_stopwatch_reads_the_time_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(measure.time, "perf_counter", clock)
    watch = measure.Stopwatch()
    clock.now += 1.5
    assert watch.seconds() == 1.5
    clock.now += 1.0
    assert watch.seconds() == 2.5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the resident-set peak needs /proc (Linux)")
def test_time_and_peak_counts_the_first_call_on_the_cpu() -> None:
    calls = []

    def step() -> None:
        calls.append(1)
        if len(calls) == 1:  # only the untimed first call allocates: its peak is the one reported
            torch.ones(16 << 20).sum()  # 64 MiB, touched

    timing, peak = measure.time_and_peak(step, torch.device("cpu"), repeats=2)
    assert len(calls) == 3 and len(timing.seconds) == 2
    assert peak >= 60 << 20


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"repeats": 0}, ValueError, "repeats must be >= 1"),
    ({"repeats": True}, TypeError, "repeats must be an int"),
    ({"repeats": 1, "warmup": -1}, ValueError, "warmup must be >= 0"),
    ({"repeats": 1, "warmup": 1.0}, TypeError, "warmup must be an int"),
    ({"repeats": 1, "clock": "gpu"}, ValueError, "clock must be one of"),
    ({"repeats": 1, "budget_s": -1.0}, ValueError, "budget_s must be >= 0"),
    ({"repeats": 1, "budget_s": "1"}, TypeError, "budget_s must be a number"),
    ({"repeats": 1, "device": 0}, TypeError, "device must be"),
])
def test_time_calls_rejects_bad_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        measure.time_calls(lambda: None, **kwargs)


def test_time_and_peak_wants_a_device() -> None:
    with pytest.raises(TypeError, match="device must be a torch.device"):
        measure.time_and_peak(lambda: None, "cpu", repeats=1)
