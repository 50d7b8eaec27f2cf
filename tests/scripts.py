"""Scripts from benchmarks/ and examples/ (not packages) imported as modules by the tests."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: str | Path, name: str) -> ModuleType:
    """Import the script at ``path`` (absolute, or relative to the repository root) as module ``name``, a name
    that cannot clash with an installed module. It is registered in ``sys.modules`` before it runs: dataclasses
    and pickling look their module up there."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
