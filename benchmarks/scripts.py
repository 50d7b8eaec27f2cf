"""Import a script of examples/ or benchmarks/ (plain folders, not packages) as a module, by its path.

    from benchmarks.scripts import load_script

    train = load_script("examples/vision/train.py", "vision_train_example")

The caller puts the repository root on ``sys.path`` first, as every script here does before its own imports.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: str | Path, name: str) -> ModuleType:
    """Import the script at ``path`` (absolute, or relative to the repository root, whatever the working
    directory) as module ``name``, a name that cannot clash with an installed module. It is registered in
    ``sys.modules`` before it runs: dataclasses and pickling look their module up there."""
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a str or Path, got {type(path).__name__}")
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    script = ROOT / path
    if not script.is_file():
        raise ValueError(f"path must name a script file, got {path} ({script} does not exist)")
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
