"""The extras are complete and documented, and each one installs and works alone.

Fast: ``seqcore.extras.EXTRAS`` lists the distributions of pyproject.toml; every third-party import of a domain
package comes from the core, its extra or a named optional feature; docs/install.md's table of scripts gives
every script the extras its imports need. Slow: each domain's extra alone in a fresh venv.
"""
from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python 3.11's tomllib")

from seqcore.extras import DIST, EXTRAS  # noqa: E402 -- tomllib first: the module is skipped without it

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DOMAINS = ("vision", "graphs", "timeseries", "pointcloud")
PACKAGES = ("seqcore", *DOMAINS)
CORE = {"torch", "numpy", "triton"}
# Imports of a package outside its extra: features that import them when used and name what to install.
OPTIONAL = {
    ("pointcloud", "matplotlib"): "examples",  # pointcloud.viz
    ("timeseries", "matplotlib"): "examples",  # ARNetForecaster.plot_coefficients
    ("timeseries", "sktime"): "dev",  # timeseries.sktime, the adapter
}
# What a script needs beyond its imports: package features that import an optional module.
FEATURES = {"pointcloud.viz": "matplotlib", "plot_bev": "matplotlib", "save_bev": "matplotlib",
            "plot_coefficients": "matplotlib", "timeseries.sktime": "sktime"}
BENCHMARK_ONLY = {"fla"}  # flash-linear-attention: compared against when it imports, never a dependency


def _normalized(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(path: Path) -> set[str]:
    """Dotted names of everything ``path`` imports (absolute imports only), wherever in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _third_party(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names} - set(sys.stdlib_module_names) - {"__future__"} - set(PACKAGES)


def test_the_module_table_lists_pyprojects_extras() -> None:
    assert PYPROJECT["project"]["name"] == DIST
    declared = PYPROJECT["project"]["optional-dependencies"]
    for extra, pairs in EXTRAS.items():
        assert sorted(_normalized(r) for r in declared[extra]) == sorted(_normalized(d) for _, d in pairs), extra
    assert declared["all"] == [f"{DIST}[{','.join(e for e in declared if e not in ('all', 'dev'))}]"]
    assert set(declared) - {"all", "dev"} == set(EXTRAS)
    assert {_normalized(r) for r in PYPROJECT["project"]["dependencies"]} == CORE


@pytest.mark.parametrize("package", PACKAGES)
def test_every_third_party_import_is_in_the_extra(package: str) -> None:
    provided = {module for module, _ in EXTRAS.get(package, ())} | CORE
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in _third_party(_imports(path)) - provided:
            assert (package, module) in OPTIONAL, f"{path.relative_to(ROOT)} imports {module}, not in [{package}]"


def _script_needs(path: Path, seen: set[Path]) -> set[str]:
    """Top-level modules (domains and third-party) that running ``path`` imports, through the benchmarks/ and
    sibling modules it imports and the scripts it loads by a literal repository path (examples/demo.py)."""
    if path in seen:
        return set()
    seen.add(path)
    names = _imports(path)
    needs = {FEATURES[n] for n in FEATURES if any(n == x or x.endswith("." + n) for x in names)}
    tree = ast.parse(path.read_text())
    needs |= {FEATURES[node.attr] for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in FEATURES}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".py"):
            if (ROOT / node.value).is_file():
                needs |= _script_needs(ROOT / node.value, seen)
    for name in names:
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in ("__future__", "seqcore"):
            continue
        if top == "benchmarks":
            if (ROOT / (name.replace(".", "/") + ".py")).is_file():
                needs |= _script_needs(ROOT / (name.replace(".", "/") + ".py"), seen)
        elif top not in DOMAINS and (path.parent / f"{top}.py").is_file():
            needs |= _script_needs(path.parent / f"{top}.py", seen)
        else:
            needs.add(top)
    return needs


def _documented_scripts() -> dict[str, set[str]]:
    rows = re.findall(r"^\| `((?:examples|benchmarks)/[^`]+\.py)` \| ([^|]+) \|$",
                      (ROOT / "docs" / "install.md").read_text(), flags=re.MULTILINE)
    return {script: set(re.findall(r"`([a-z]+)`", extras)) for script, extras in rows}


def test_docs_name_the_extras_of_every_script() -> None:
    documented = _documented_scripts()
    scripts = sorted(p.relative_to(ROOT).as_posix() for pattern in ("examples/*.py", "examples/*/*.py",
                                                                    "benchmarks/*.py") for p in ROOT.glob(pattern))
    assert sorted(documented) == scripts
    declared = PYPROJECT["project"]["optional-dependencies"]
    for script, extras in documented.items():
        assert extras <= set(declared), script
        if "all" in extras:
            extras = extras | set(EXTRAS)
        provided = CORE | BENCHMARK_ONLY | set(extras & set(DOMAINS)) | {
            module for extra in extras & set(EXTRAS) for module, _ in EXTRAS[extra]}
        missing = _script_needs(ROOT / script, set()) - provided
        assert not missing, f"{script} needs {sorted(missing)}, not in its extras {sorted(extras)} (docs/install.md)"


# One small run per domain in the fresh venv; each must exercise what the extra brings.
SMOKE = {
    "vision": """
        import torch, vision
        model = vision.LightNet(num_classes=3, patch_size=4, embed_dim=24, depth=2, num_heads=3).eval()
        assert model(torch.randn(1, 3, 16, 16)).shape == (1, 3)
    """,
    "timeseries": """
        import numpy as np, timeseries
        model = timeseries.ARNetForecaster(n_lags=4, n_forecasts=2).fit(np.sin(np.arange(200) / 5.0))
        assert model.predict(3).shape[0] == 3
    """,
    "graphs": """
        import torch, graphs
        edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
        model = graphs.GSMPlusPlus(5, 16, 3, task="graph").eval()
        assert model(torch.randn(4, 5), edge_index, torch.zeros(4, dtype=torch.long), num_graphs=1).shape == (1, 3)
    """,
    "pointcloud": """
        import torch, pointcloud, spconv.pytorch as spconv
        grid = pointcloud.VoxelGrid([0.0, -2.0, -1.0, 4.0, 2.0, 1.0], [0.5, 0.25, 0.5])  # (nz, ny, nx) = (4, 16, 8)
        points = torch.rand(64, 4) * torch.tensor([4.0, 4.0, 2.0, 1.0]) - torch.tensor([0.0, 2.0, 1.0, 0.0])
        vox = pointcloud.voxelize(points, None, grid)
        # spconv's CPU backward asks for a CUDA stream unless pointcloud's patch is in place.
        features = vox.mean.requires_grad_()
        x = spconv.SparseConvTensor(features, vox.coords.int(), [4, 16, 8], 1)
        spconv.SubMConv3d(4, 8, 3, padding=1, bias=False)(x).features.sum().backward()
        assert features.grad.shape == features.shape
    """,
}

OTHERS = """
    import importlib
    from seqcore.extras import MissingExtraError, install_command
    for other in {others!r}:
        try:
            importlib.import_module(other)
        except MissingExtraError as err:
            assert install_command(other) in str(err), str(err)
        else:
            raise AssertionError(f"{{other}} imported with only the {extra} extra")
"""


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


@pytest.fixture
def scratch(tmp_path: Path):
    """A folder for the venv and the copy of the project, removed afterwards (a venv with torch is ~4 GB)."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("extra", DOMAINS)
def test_each_extra_alone_in_a_fresh_venv(extra: str, scratch: Path) -> None:
    # A copy, not the checkout: pip builds in the source folder (build/, *.egg-info), and the checkout is shared.
    source = scratch / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = scratch / "venv"
    python = str(venv / "bin" / "python")
    start = time.perf_counter()
    _run([sys.executable, "-m", "venv", str(venv)], scratch)
    # The same pins, and so the same local builds, as the Makefile.
    _run([python, "-m", "pip", "install", "--quiet", "torch==2.14.1", "torchvision==0.29.1"], scratch)
    torch_done = time.perf_counter()
    _run([python, "-m", "pip", "install", "--quiet", f"{source}[{extra}]"], scratch)
    installed = time.perf_counter()
    others = [d for d in DOMAINS if d != extra]
    code = textwrap.dedent(SMOKE[extra]) + textwrap.dedent(OTHERS.format(others=others, extra=extra))
    # -I and a cwd outside the checkout: the installed copy is imported, never the checkout's packages.
    _run([python, "-I", "-c", code], scratch)
    print(f"[{extra}] torch {torch_done - start:.0f} s, extra {installed - torch_done:.0f} s, "
          f"run {time.perf_counter() - installed:.0f} s")
