"""No code in the tree can load a file in a way that runs code: every ``torch.load`` passes ``weights_only=True``,
no ``numpy.load`` allows pickles, and ``pickle`` only reads what this process's own forked children wrote."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("seqcore", "vision", "pointcloud", "timeseries", "graphs", "examples", "benchmarks", "tests")
# benchmarks/measure.py reads results back from the forked child it started (in_child), over a pipe.
PICKLE_FROM_OWN_CHILD = {"benchmarks/measure.py"}
# pickle round trips of estimators the test itself built (scikit-learn's contract).
PICKLE_TESTS = {"tests/test_timeseries_data.py", "tests/test_timeseries_arnet.py", "tests/test_dynamics_estimator.py",
                "tests/test_timeseries_autotimes.py"}
# The one deliberate unsafe load: it proves the crafted pickle of the safety tests really runs code.
LIVE_PAYLOAD_CHECK = {"tests/test_checkpoint_protocol.py"}


def sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def unsafe_loads(path: Path, relative: str) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        where = f"{relative}:{node.lineno}"
        if owner == "torch" and node.func.attr == "load" and relative not in LIVE_PAYLOAD_CHECK:
            flag = _keyword(node, "weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                found.append(f"{where}: torch.load without weights_only=True")
        if owner in ("np", "numpy") and node.func.attr == "load":
            flag = _keyword(node, "allow_pickle")
            if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                found.append(f"{where}: numpy.load allowing pickles")
        if owner == "pickle" and node.func.attr in ("load", "loads"):
            if relative not in PICKLE_FROM_OWN_CHILD | PICKLE_TESTS:
                found.append(f"{where}: pickle.{node.func.attr}")
    return found


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text("import torch, numpy as np, pickle\ntorch.load('a')\ntorch.load('a', weights_only=False)\n"
                   "np.load('a', allow_pickle=True)\npickle.loads(b'')\ntorch.load('a', weights_only=True)\n")
    assert len(unsafe_loads(bad, "seqcore/probe.py")) == 4


def test_no_unsafe_load_in_the_tree() -> None:
    files = sources()
    assert len(files) > 150
    assert [found for path in files for found in unsafe_loads(path, str(path.relative_to(ROOT)))] == []
