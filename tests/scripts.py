"""Scripts from benchmarks/ and examples/ (not packages) imported as modules by the tests, through the one loader,
``benchmarks/scripts.py``, which examples/demo.py and the benchmarks use too."""
from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ is imported from the repository root, as the scripts themselves do.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.scripts import ROOT, load_script

__all__ = ["ROOT", "load_script"]
