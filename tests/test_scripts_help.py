"""Every script in examples/ and benchmarks/ answers ``--help`` with its usage and exits 0, without starting work."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for folder in ("examples", "benchmarks") for p in (ROOT / folder).rglob("*.py")
                 if "__main__" in p.read_text())


def _help(path: Path) -> tuple[Path, subprocess.CompletedProcess]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return path, subprocess.run([sys.executable, str(path), "--help"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_every_script_takes_help() -> None:
    assert len(SCRIPTS) > 20
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_help, SCRIPTS))
    failures = [f"{p.relative_to(ROOT)}: exit {r.returncode}, {r.stderr[-300:]}" for p, r in results
                if r.returncode != 0 or "usage:" not in r.stdout]
    assert not failures, "\n".join(failures)


# The scripts that import other scripts by path (through benchmarks/scripts.py) find them from any directory.
LOADERS = ("examples/demo.py", "benchmarks/dsr.py", "benchmarks/vision_scans.py")


def test_scripts_that_load_scripts_work_from_another_directory(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for script in LOADERS:
        result = subprocess.run([sys.executable, str(ROOT / script), "--help"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 0 and "usage:" in result.stdout, f"{script}: {result.stderr[-300:]}"


def test_load_script_resolves_from_the_root_and_registers_the_module(tmp_path: Path, monkeypatch) -> None:
    from scripts import load_script

    monkeypatch.chdir(tmp_path)
    module = load_script("benchmarks/kernel_model.py", "help_test_kernel_model")
    assert sys.modules["help_test_kernel_model"] is module and callable(module.main)
    with pytest.raises(ValueError, match="path must name a script file"):
        load_script("benchmarks/no_such_script.py", "help_test_missing")
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        load_script("benchmarks/kernel_model.py", "")
