"""Every script in examples/ and benchmarks/ answers ``--help`` with its usage and exits 0, without starting work."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
