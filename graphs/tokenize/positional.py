"""Hierarchical positional encoding: where a node sits in its graph's HAC tree.

GSM++ encodes each node's path of ancestor clusters; the paper does not publish its formula, so this module
defines one. Slot ``l`` (``0 <= l < max_levels``) describes the node's level-``l`` cluster ``c`` (level 0: the
node itself) inside its parent ``p``, the level-``l + 1`` cluster containing it. With

- ``n``: the number of children of ``p``; ``r``: the rank of ``c`` among them in depth-first order
  (:meth:`HACTree.dfs_ranks`, so ``0 <= r < n``) and ``theta = pi * r / n``;
- ``s``: the number of nodes in ``c``;
- ``d``: the hop distance from ``c`` to ``p``'s first child (``r = 0``) along the affinity links between the
  children of ``p`` (the edges of the level-``l`` coarsened graph that built ``p``; they form a spanning tree of
  the children), capped at ``DISTANCE_CAP``,

slot ``l`` holds ``dim_per_level = 2 m + 2`` numbers::

    sin(2^j theta)   for j = 0 .. m - 1
    cos(2^j theta)   for j = 0 .. m - 1
    log(s)
    min(d, DISTANCE_CAP) / DISTANCE_CAP

A slot is all zeros when it carries no information: above the top of the tree (``l >= num_levels``), or when
``c`` is ``p``'s only child (``p`` is ``c`` again: above a finished component, or an isolated node). A graph
therefore gets the same encoding alone or in a batch. The slots of levels ``>= max_levels`` (the coarsest) are
dropped. ``cos(theta) = 1`` in the first child keeps a present slot distinguishable from an absent one.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from graphs.tokenize.clustering import HACTree
from graphs.validation import check_graph
from seqcore.ops.validation import check_int

DISTANCE_CAP = 8


def hierarchical_pe(
    tree: HACTree, batch: Tensor, num_nodes: int, dim_per_level: int = 4, max_levels: int = 8
) -> Tensor:
    """The hierarchical positional encoding of every node (formula in the module docstring).

    Args:
        tree: the HAC tree of the batch (:func:`graphs.tokenize.clustering.hac`).
        batch: ``(N,)`` sorted graph id of every node.
        num_nodes: ``N``.
        dim_per_level: numbers per level, even and ``>= 4``.
        max_levels: levels encoded; fixes the width ``F`` for a model whatever the depth of the trees.

    Returns:
        ``(N, max_levels * dim_per_level)`` float32; columns ``l * dim_per_level .. (l + 1) * dim_per_level - 1``
        are slot ``l``.
    """
    if not isinstance(tree, HACTree):
        raise TypeError(f"tree must be a HACTree (graphs.tokenize.hac), got {type(tree).__name__}")
    if not isinstance(batch, Tensor):
        raise TypeError(f"batch must be a torch.Tensor, got {type(batch).__name__}")
    check_graph(torch.zeros(2, 0, dtype=torch.int64, device=batch.device), num_nodes, batch)
    dim_per_level, max_levels = check_int("dim_per_level", dim_per_level, None), check_int("max_levels", max_levels, 1)
    if tree.num_nodes != num_nodes:
        raise ValueError(f"the HAC tree covers {tree.num_nodes} nodes, expected num_nodes={num_nodes}")
    if dim_per_level < 4 or dim_per_level % 2:
        raise ValueError(f"dim_per_level must be even and >= 4, got {dim_per_level}")
    out = torch.zeros(num_nodes, max_levels, dim_per_level, device=batch.device)
    ranks = tree.dfs_ranks()
    frequencies = 2.0 ** torch.arange((dim_per_level - 2) // 2, device=batch.device)
    for level in range(min(max_levels, tree.num_levels)):
        parent = tree.parent(level)
        size = tree.num_clusters(level)
        upper = tree.num_clusters(level + 1)
        siblings = torch.bincount(parent, minlength=upper)[parent]
        first = torch.full((upper,), size, dtype=torch.int64, device=batch.device)
        first = first.scatter_reduce_(0, parent, ranks[level], "amin")
        rank = ranks[level] - first[parent]
        theta = math.pi * rank / siblings
        nodes = torch.bincount(tree.members(level), minlength=size)
        distance = _distance_to_first(tree.links[level], rank == 0)
        feature = torch.cat(
            [
                torch.sin(theta[:, None] * frequencies),
                torch.cos(theta[:, None] * frequencies),
                torch.log(nodes.float())[:, None],
                (distance.float() / DISTANCE_CAP)[:, None],
            ],
            dim=1,
        )
        feature[siblings < 2] = 0
        out[:, level] = feature[tree.members(level)]
    return out.reshape(num_nodes, max_levels * dim_per_level)


def _distance_to_first(link: Tensor, first: Tensor) -> Tensor:
    """``(C,)`` hop distance along the undirected ``link`` edges (``c -- link[c]``) to the nearest ``first``
    cluster, capped at ``DISTANCE_CAP``."""
    distance = torch.where(first, 0, DISTANCE_CAP)
    linked = (link >= 0).nonzero().squeeze(1)
    a, b = torch.cat([linked, link[linked]]), torch.cat([link[linked], linked])
    for _ in range(DISTANCE_CAP):
        step = distance.scatter_reduce(0, a, distance[b] + 1, "amin").clamp_(max=DISTANCE_CAP)
        if torch.equal(step, distance):
            break
        distance = step
    return distance
