"""Every Triton kernel compiles for sm_80 and sm_90 without a GPU: ``../shared/tools/triton_aot.py``.

The tool (maintained beside the repository, in ``../shared/tools``) compiles each kernel with the launch
parameters the project computes and, with ``--check``, fails on a compile error, a spill, more than 255
registers, shared memory over either architecture's limit, or a ``*_kernel`` no public call launches. It must
run without ``TRITON_INTERPRET`` (which tests/conftest.py sets on the CPU), so it runs in a subprocess. Both
tests take minutes (the check 2-4): they are marked slow.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT.parent / "shared" / "tools" / "triton_aot.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TOOL.exists(), reason=f"{TOOL} is absent (../shared/tools travels beside the checkout "
                                                 "only on the development machines)"),
    pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed"),
]


def _run_tool(*args: str, timeout: int) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run([sys.executable, str(TOOL), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_kernels_compile_for_sm80_sm90_without_spills() -> None:
    result = _run_tool("--repo", str(ROOT), "--quick", "--check", timeout=900)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]


def test_tool_selftest() -> None:
    result = _run_tool("--selftest", timeout=600)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
