"""Code run in a fresh interpreter by the tests that must see a clean import state."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def json_from_child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter at the repository root; it prints one JSON object, returned here."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
