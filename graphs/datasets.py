"""Real graph data without network access: Zachary's karate club, and data sets a user already has on disk.

Nothing here downloads, and nothing read from disk can run code. :func:`load_local_dataset` checks the files
before handing over to torch_geometric (whose data set classes fetch missing raw files from the internet) and
builds them through subclasses whose ``download`` refuses instead, whose processed cache is only ever read with
``torch.load(weights_only=True)`` (see :class:`_SafeCache`), and whose Planetoid raw pickles may only hold numpy
arrays, scipy sparse matrices and plain containers.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from torch_geometric.data import Data, Dataset
from torch_geometric.data.data import BaseData
from torch_geometric.data.dataset import _repr, files_exist
from torch_geometric.datasets import Planetoid, TUDataset

from seqcore.ops.validation import check_bool, check_int

__all__ = ["karate_club", "load_local_dataset"]

_PLANETOID_PARTS = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def karate_club(num_train_per_class: int = 2, seed: int = 0) -> Data:
    """Zachary's karate club (34 members, 78 friendships) as a semi-supervised node classification graph.

    ``x`` is the ``(34, 34)`` identity (one-hot node identity: the graph has no node attributes, so a model must
    learn from the structure, as in Kipf & Welling's karate club demo); ``y`` is ``(34,)`` int64, the club each
    member joined (0: Mr. Hi, 1: Officer); ``edge_index`` is int64 ``(2, 156)``, both directions, sorted.
    ``train_mask`` holds ``num_train_per_class`` random members of each club; the other members are shuffled and
    split in half, ``val_mask`` taking the smaller half and ``test_mask`` the rest. The three boolean ``(34,)``
    masks are disjoint and cover every node.

    Needs networkx (not a torch_geometric requirement), imported here so the rest of the module works without it.

    Raises:
        ValueError: ``num_train_per_class`` below 1 or leaving a club with no unlabelled member, or a negative
            ``seed``.
        TypeError: either argument is not an int.
    """
    import networkx as nx

    num_train_per_class, seed = check_int("num_train_per_class", num_train_per_class, None), check_int("seed", seed, 0)
    graph = nx.karate_club_graph()
    n = graph.number_of_nodes()
    y = torch.tensor([0 if graph.nodes[v]["club"] == "Mr. Hi" else 1 for v in range(n)], dtype=torch.long)
    smallest = int(torch.bincount(y).min())
    if not 1 <= num_train_per_class < smallest:
        raise ValueError(f"num_train_per_class must lie in 1..{smallest - 1}, got {num_train_per_class}")
    edges = np.array(graph.edges(), dtype=np.int64)
    edges = np.unique(np.concatenate([edges, edges[:, ::-1]]), axis=0)

    rng = np.random.default_rng(seed)
    labels = y.numpy()
    train = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:num_train_per_class] for c in np.unique(labels)]
    )
    rest = rng.permutation(np.setdiff1d(np.arange(n), train))
    parts = {"train_mask": train, "val_mask": rest[: rest.size // 2], "test_mask": rest[rest.size // 2 :]}
    masks = {}
    for key, index in parts.items():
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.from_numpy(index)] = True
        masks[key] = mask
    return Data(
        x=torch.eye(n), edge_index=torch.from_numpy(np.ascontiguousarray(edges.T)), y=y, num_nodes=n, **masks
    )


def _missing_message(raw_dir: str, raw_files: list[str], processed_dir: str, processed_files: list[str]) -> str:
    return (
        f"no local copy found: expected the raw files {raw_files} in {raw_dir} (or the processed files "
        f"{processed_files} in {processed_dir}); load_local_dataset never downloads, put the files there first"
    )


class _NoDownload:
    """Mixin for torch_geometric data sets: ``download`` (called whenever raw files are missing) never fetches.

    With processed files present there is nothing to fetch and loading proceeds from them.
    """

    def download(self) -> None:
        if not files_exist(self.processed_paths):
            raise FileNotFoundError(
                _missing_message(self.raw_dir, self.raw_file_names, self.processed_dir, self.processed_file_names)
            )


# Errors torch_geometric's readers raise on malformed raw files (bad text, short or inconsistent tables).
_RAW_ERRORS = (ValueError, IndexError, KeyError, RuntimeError, EOFError, UnicodeDecodeError, pickle.UnpicklingError)


class _SafeCache:
    """Mixin for torch_geometric in-memory data sets: the processed cache is never unpickled unsafely.

    torch_geometric's ``Dataset._process`` reads ``processed/pre_transform.pt`` and ``pre_filter.pt`` with
    ``torch.load(weights_only=False)``, and its ``io.fs.torch_load``, which the data set constructors use for
    ``processed/data.pt``, retries with ``weights_only=False`` when the safe load meets a global it does not
    allow: a crafted file in ``processed/`` would run its code on load. ``_process`` runs inside
    ``Dataset.__init__`` before the subclass reads ``data.pt``, so this override reads every cached file with
    ``weights_only=True`` first (memory-mapped where the format allows: the tensors are not read) and checks that ``data.pt`` is
    the tuple torch_geometric writes. A cache that passes is used as it is, and the constructor's own load of
    ``data.pt`` then succeeds at its first, safe attempt. A cache that fails (crafted, cut short by a crash,
    written by something else) is rebuilt from the raw files with a warning, or refused with a ``ValueError``
    naming the file when the raw files are absent. Either way torch_geometric's unsafe loads are never reached:
    with ``force_reload`` set, ``Dataset._process`` rebuilds without reading the cache.
    """

    # Lengths of the cache tuple that the subclass's constructor accepts.
    _cache_lengths: tuple[int, ...] = ()

    def _process(self) -> None:
        if not self.force_reload and files_exist(self.processed_paths):
            problem = self._cache_problem()
            if problem is None:
                return
            path, reason = problem
            if not files_exist(self.raw_paths):
                raise ValueError(
                    f"the cached {path} cannot be loaded safely ({reason}) and the raw files {self.raw_file_names} "
                    f"are not in {self.raw_dir} to rebuild it from; delete {self.processed_dir} and put the raw "
                    "files there"
                )
            warnings.warn(
                f"the cached {path} cannot be loaded safely ({reason}); rebuilding it from the raw files in "
                f"{self.raw_dir}",
                stacklevel=2,
            )
        requested, self.force_reload = self.force_reload, True
        try:
            super()._process()
        except _RAW_ERRORS as error:
            raise ValueError(f"cannot build the data set from the raw files in {self.raw_dir}: {error}") from error
        finally:
            self.force_reload = requested

    def _cache_problem(self) -> tuple[str, str] | None:
        """``(path, reason)`` for the first cached file that cannot be read safely, else ``None`` (after warning,
        as torch_geometric does, when the cache was built with another ``pre_transform`` or ``pre_filter``)."""
        for path in self.processed_paths:
            loaded, failure = _safe_torch_load(path)
            if failure is not None:
                return path, failure
            if not (isinstance(loaded, tuple) and len(loaded) in self._cache_lengths
                    and isinstance(loaded[0], (Mapping, BaseData))):
                return path, "it is not a data set cache written by torch_geometric"
        differ = []
        for name, current in (("pre_transform", self.pre_transform), ("pre_filter", self.pre_filter)):
            path = osp.join(self.processed_dir, f"{name}.pt")
            if osp.exists(path):
                recorded, failure = _safe_torch_load(path)
                if failure is None and not isinstance(recorded, str):
                    failure = "it does not hold the text torch_geometric writes there"
                if failure is not None:
                    return path, failure
                if recorded != _repr(current):
                    differ.append(name)
        for name in differ:
            warnings.warn(
                f"the cache in {self.processed_dir} was built with another {name}; pass force_reload=True to "
                "rebuild it with this one",
                stacklevel=3,
            )
        return None


def _safe_torch_load(path: str) -> tuple[Any, str | None]:
    """``(torch.load(path, weights_only=True), None)``, or ``(None, why that failed)``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path)), None
    except Exception as error:  # noqa: BLE001 -- every failure means the same here: unusable; the reason goes in the message
        detail = str(error).splitlines()[0] if str(error) else "no details"
        return None, f"{type(error).__name__}: {detail}"


class _LocalTUDataset(_NoDownload, _SafeCache, TUDataset):
    _cache_lengths = (3, 4)


class _LocalPlanetoid(_NoDownload, _SafeCache, Planetoid):
    _cache_lengths = (2, 3)

    def process(self) -> None:
        # torch_geometric unpickles these files with plain pickle; check each first with an allow-list.
        for path in self.raw_paths:
            if not path.endswith(".test.index"):
                with open(path, "rb") as f:
                    try:
                        _PlanetoidUnpickler(f, path).load()
                    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as error:
                        raise ValueError(f"{path} is not a readable Planetoid pickle: {error}") from error
        super().process()


class _PlanetoidUnpickler(pickle.Unpickler):
    """Unpickles only what Planetoid's raw files hold (numpy arrays, scipy sparse matrices, dicts and lists,
    written by Python 2 or 3); any other global raises ``ValueError`` naming the file before it is looked up."""

    _ALLOWED = frozenset(
        [("numpy", "ndarray"), ("numpy", "dtype")]
        + [(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")]
        + [(m, n) for m in ("copyreg", "copy_reg") for n in ("_reconstructor",)]
        + [(m, n) for m in ("builtins", "__builtin__") for n in ("object", "list", "dict", "set", "tuple", "int")]
        + [("collections", "defaultdict"), ("collections", "OrderedDict")]
        + [(f"scipy.sparse{sub}", f"{fmt}_{kind}") for fmt in ("csr", "csc", "coo", "lil")
           for sub in ("", f".{fmt}", f"._{fmt}") for kind in ("matrix", "array")]
    )

    def __init__(self, file: BinaryIO, path: str) -> None:
        super().__init__(file, encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise ValueError(
                f"{self.path} refers to {module}.{name}, which a Planetoid file never holds; refusing to unpickle it"
            )
        return super().find_class(module, name)


def load_local_dataset(
    root: str | os.PathLike, name: str, kind: Literal["TUDataset", "Planetoid"] = "TUDataset", **kwargs: Any
) -> Dataset:
    """Load a TU or Planetoid data set from ``root`` without any network access.

    Expected layout (torch_geometric's): ``root/name/raw/`` holding ``name_A.txt`` and
    ``name_graph_indicator.txt`` (plus the optional ``name_graph_labels.txt``, ``name_node_labels.txt``, ...) for
    ``"TUDataset"``, or ``ind.<name lower>.{x,tx,allx,y,ty,ally,graph,test.index}`` for ``"Planetoid"``; or,
    instead, a ``root/name/processed/data.pt`` written by an earlier load.

    Args:
        root: the directory that holds ``name/``.
        name: the data set's name, e.g. ``"MUTAG"`` or ``"Cora"``.
        kind: which torch_geometric class reads it.
        **kwargs: passed on to :class:`~torch_geometric.datasets.TUDataset` or
            :class:`~torch_geometric.datasets.Planetoid` (``transform``, ``use_node_attr``, ``split``, ...).
            Options that move the files elsewhere (``cleaned=True``, ``split="geom-gcn"``) are not pre-checked,
            but still never download: the missing files then raise the same error from inside the constructor.

    Returns:
        The torch_geometric data set.

    The processed cache (``processed/data.pt``, ``pre_transform.pt``, ``pre_filter.pt``) is only read with
    ``torch.load(weights_only=True)``. One that cannot be read that way (a crafted pickle, a file cut short by a
    crash, something torch_geometric did not write) is rebuilt from the raw files, with a warning naming it; when
    the raw files are absent it is refused. Planetoid's raw files are pickles: they are checked first and may only
    hold numpy arrays, scipy sparse matrices, dicts and lists.

    Raises:
        ValueError: unknown ``kind``; a ``name`` that is empty or a path; a cache that cannot be loaded safely
            and no raw files to rebuild it from; malformed raw files (names the file or the raw folder).
        TypeError: ``root`` or ``name`` is not a string (or path), or a flag among ``kwargs`` (``force_reload``,
            ``use_node_attr``, ``use_edge_attr``, ``cleaned``, ``log``) is not a bool.
        FileNotFoundError: neither the raw nor the processed files are there (names the directories and files).
    """
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike), got {type(root).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    # The name becomes a folder below root: a separator or a dot-name would read from elsewhere.
    if name in ("", ".", "..") or "/" in name or osp.sep in name or (osp.altsep and osp.altsep in name):
        raise ValueError(f"name must be a data set's folder name under root (no path separators), got {name!r}")
    for flag in ("force_reload", "use_node_attr", "use_edge_attr", "cleaned", "log"):
        if flag in kwargs:
            kwargs[flag] = check_bool(flag, kwargs[flag])
    root = os.fspath(root)
    if kind == "TUDataset":
        cls: type[Dataset] = _LocalTUDataset
        raw_files = [f"{name}_{part}.txt" for part in ("A", "graph_indicator")]
    elif kind == "Planetoid":
        cls = _LocalPlanetoid
        raw_files = [f"ind.{name.lower()}.{part}" for part in _PLANETOID_PARTS]
    else:
        raise ValueError(f"kind must be 'TUDataset' or 'Planetoid', got {kind!r}")
    raw_dir = osp.join(osp.expanduser(root), name, "raw")
    processed_dir = osp.join(osp.expanduser(root), name, "processed")
    raw = [osp.join(raw_dir, f) for f in raw_files]
    if not (files_exist(raw) or files_exist([osp.join(processed_dir, "data.pt")])):
        raise FileNotFoundError(_missing_message(raw_dir, raw_files, processed_dir, ["data.pt"]))
    return cls(root, name, **kwargs)
