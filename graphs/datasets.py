"""Real graph data without network access: Zachary's karate club, and data sets a user already has on disk.

Nothing here downloads. :func:`load_local_dataset` checks the files before handing over to torch_geometric
(whose data set classes fetch missing raw files from the internet) and builds them through subclasses whose
``download`` refuses instead.
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Literal

import numpy as np
import torch
from torch_geometric.data import Data, Dataset
from torch_geometric.data.dataset import files_exist
from torch_geometric.datasets import Planetoid, TUDataset

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
        ValueError: ``num_train_per_class`` below 1 or leaving a club with no unlabelled member.
    """
    import networkx as nx

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


class _LocalTUDataset(_NoDownload, TUDataset):
    pass


class _LocalPlanetoid(_NoDownload, Planetoid):
    pass


def load_local_dataset(
    root: str, name: str, kind: Literal["TUDataset", "Planetoid"] = "TUDataset", **kwargs: Any
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

    Raises:
        ValueError: unknown ``kind``.
        FileNotFoundError: neither the raw nor the processed files are there (names the directories and files).
    """
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
