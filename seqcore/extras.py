"""The distribution's optional parts: which extra each domain package needs, and the error that names it.

The core (``seqcore``) needs only torch, numpy and, on Linux x86-64, triton. Each domain package needs its extra,
``pip install 'seqcore-toolkit[vision]'`` and so on, and checks for it when imported: a missing module raises
:class:`MissingExtraError` naming the missing distributions and the install command, before any import deep in
the package fails on a bare module name.

The distribution is called ``seqcore-toolkit`` because ``seqcore`` on the package index is an unrelated project
(docs/install.md); the import names stay ``seqcore``, ``vision``, ``pointcloud``, ``timeseries`` and ``graphs``.
"""
from __future__ import annotations

import importlib.util

__all__ = ["DIST", "EXTRAS", "MissingExtraError", "install_command", "missing_modules", "require_extra"]

DIST = "seqcore-toolkit"

# (import name, distribution) per extra. The distributions must be those of [project.optional-dependencies] in
# pyproject.toml (tests/test_install_extras.py compares them). Presence is checked by import name, so a CUDA build
# of spconv (spconv-cu120, ...) satisfies the pointcloud extra as well as the CPU build it lists.
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "vision": (("timm", "timm"), ("torchvision", "torchvision"), ("sklearn", "scikit-learn"), ("PIL", "pillow")),
    "graphs": (("torch_geometric", "torch-geometric"), ("networkx", "networkx"), ("tqdm", "tqdm")),
    "timeseries": (
        ("sklearn", "scikit-learn"), ("scipy", "scipy"), ("threadpoolctl", "threadpoolctl"), ("pandas", "pandas"),
        ("statsmodels", "statsmodels"), ("transformers", "transformers"), ("safetensors", "safetensors"),
        ("numba", "numba"), ("tqdm", "tqdm"),
    ),
    "pointcloud": (("spconv", "spconv"),),
    "examples": (("matplotlib", "matplotlib"), ("tqdm", "tqdm")),
}


class MissingExtraError(ModuleNotFoundError):
    """An extra of the distribution is not installed; the message names the missing modules and the command.

    A :class:`ModuleNotFoundError`, so code that falls back on ``except ImportError`` keeps working; ``name`` is the
    first missing import name and ``extra`` the extra to install.
    """

    def __init__(self, message: str, *, name: str, extra: str) -> None:
        super().__init__(message, name=name)
        self.extra = extra


def _check_extra(extra: object) -> str:
    if not isinstance(extra, str):
        raise TypeError(f"extra must be a str, one of {sorted(EXTRAS)}; got {type(extra).__name__}")
    if extra not in EXTRAS:
        raise ValueError(f"extra must be one of {sorted(EXTRAS)}; got {extra!r}")
    return extra


def install_command(extra: str) -> str:
    """The pip command that installs ``extra``, e.g. ``pip install 'seqcore-toolkit[vision]'``."""
    return f"pip install '{DIST}[{_check_extra(extra)}]'"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        # A finder that refuses the name, or a module set to None in sys.modules: not importable either way.
        return False


def missing_modules(extra: str) -> list[tuple[str, str]]:
    """The ``(import name, distribution)`` pairs of ``extra`` that cannot be imported; nothing is imported."""
    return [(module, dist) for module, dist in EXTRAS[_check_extra(extra)] if not _importable(module)]


def require_extra(extra: str, package: str | None = None) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` can be imported.

    Args:
        extra: a key of :data:`EXTRAS`.
        package: the name the message starts with (the importing package); ``extra`` when None.

    Raises:
        MissingExtraError: e.g. ``vision needs pillow and timm, which are not installed: pip install
            'seqcore-toolkit[vision]'``.
    """
    if package is not None and not isinstance(package, str):
        raise TypeError(f"package must be a str or None, got {type(package).__name__}")
    missing = missing_modules(extra)
    if not missing:
        return
    dists = [dist for _, dist in missing]
    listed = dists[0] if len(dists) == 1 else ", ".join(dists[:-1]) + " and " + dists[-1]
    verb = "is" if len(dists) == 1 else "are"
    raise MissingExtraError(
        f"{package or extra} needs {listed}, which {verb} not installed: {install_command(extra)}",
        name=missing[0][0], extra=extra)
