"""Tokenizers: functions that turn a batch of graphs into a :class:`~graphs.tokenize.plan.TokenPlan`.

Node orderings (one sequence per non-empty graph, one token per node, each node reads its own token):

- ``hac_dfs``: the nodes in depth-first order of the HAC tree; siblings adjacent, sorted by their key.
- ``node_id``: the nodes in index order.
- ``degree``: the nodes by ascending degree, ties in a seeded random order (Graph-Mamba's ordering).

Other tokenizations:

- ``hac_bfs``: one sequence per graph of cluster tokens (each the mean of its member nodes), level by level from
  the top of the HAC tree down to level 1, clusters in depth-first order inside a level; a node reads the mean
  of its ancestor clusters' outputs.
- ``random_walk``: one sequence per node, a seeded uniform random walk from it, the start node last.
- ``khop``: one sequence per node of ``k + 1`` tokens: the mean of the nodes at exactly hop distance
  ``k, k - 1, ..., 0`` (an empty hop is a zero token); the node reads its hop-0 token.

Degree, walks and hop distances read the edge list as undirected, without self-loops and duplicates. Sequences
are packed graph by graph (``seq_graph`` sorted, never padded); a graph without nodes gets no sequence. Random
choices draw from ``(seed, index of the node inside its graph)``, so a graph gets the same plan alone or in a
batch.

On equivariance: ``hac_dfs`` orders siblings by a key computed from features (the projection of the cluster's
mean feature on a fixed seeded direction, see :mod:`graphs.tokenize.clustering`), not by node ids. If the HAC tree of
the relabelled graph is the relabelled tree (true when no two candidate links tie in score, which distinct
generic features give) and the keys of any two siblings differ, relabelling the nodes permutes the sequence
consistently. Ties fall back to ids, and the structural affinity draws its random features by node index, so a
graph clustered structurally (no or constant features) is equivariant only in distribution.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from graphs.tokenize.clustering import (
    HACTree,
    _hash,
    _inverse,
    _num_nodes,
    _stable_argsort,
    _uniform,
    _unique_edges,
    _without_loops,
    hac,
)
from graphs.tokenize.plan import TokenPlan
from graphs.validation import check_graph
from seqcore.ops.validation import check_int

_STREAM_DEGREE, _STREAM_WALK = 11, 12


def hac_dfs_plan(tree: HACTree, batch: Tensor, num_nodes: int) -> TokenPlan:
    """One sequence per non-empty graph: its ``N_g`` nodes in depth-first order of ``tree``.

    Args:
        tree: the HAC tree of the batch (:func:`graphs.tokenize.clustering.hac`).
        batch: ``(N,)`` sorted graph id of every node.
        num_nodes: ``N``.

    Returns:
        A plan with ``L = N`` tokens (token ``t`` is node ``pool_node[t]``) and ``R = N`` read-outs.
    """
    _check_tree(tree, batch, num_nodes)
    order = _inverse(tree.dfs_ranks()[0])
    return _node_order_plan(order, batch, num_nodes)


def hac_bfs_plan(tree: HACTree, batch: Tensor, num_nodes: int) -> TokenPlan:
    """One sequence per non-empty graph of cluster tokens, top level first, depth-first order inside a level.

    Each distinct cluster is one token, at the lowest level where it appears (a cluster with a single child is
    that child's node set again, above a finished component or an isolated node; the child's token stands for
    both). A token is the mean of its member nodes; a node reads the mean of the outputs of the tokens of all its
    ancestor clusters.

    Args:
        tree: the HAC tree of the batch.
        batch: ``(N,)`` sorted graph id of every node.
        num_nodes: ``N``.

    Returns:
        A plan with one token per distinct cluster; ``P = R`` membership / read-out pairs (one per node and
        token containing it).
    """
    _check_tree(tree, batch, num_nodes)
    device = batch.device
    ranks = tree.dfs_ranks()
    clusters, levels, graphs = [], [], []
    for level in range(tree.num_levels, 0, -1):
        order = _inverse(ranks[level])
        if level > 1:
            # A cluster with one child has that child's node set; the child's token stands for both.
            children = torch.bincount(tree.parent(level - 1), minlength=tree.num_clusters(level))
            order = order[children[order] >= 2]
        clusters.append(order)
        levels.append(torch.full_like(order, level))
        graphs.append(tree.cluster_graph[level - 1][order])
    sort = _stable_argsort(torch.cat(graphs))
    clusters, levels, graph = torch.cat(clusters)[sort], torch.cat(levels)[sort], torch.cat(graphs)[sort]

    token_node, token_id = [], []
    nodes = torch.arange(num_nodes, device=device)
    for level in range(1, tree.num_levels + 1):
        token_of = torch.full((tree.num_clusters(level),), -1, dtype=torch.int64, device=device)
        at = (levels == level).nonzero().squeeze(1)
        token_of[clusters[at]] = at
        token = token_of[tree.assignment[level - 1]]
        has = token >= 0
        token_id.append(token[has])
        token_node.append(nodes[has])
    return _read_members_plan(torch.cat(token_id), torch.cat(token_node), graph, num_nodes)


def node_id_plan(batch: Tensor, num_nodes: int) -> TokenPlan:
    """One sequence per non-empty graph: its nodes in index order (``L = R = N``)."""
    batch = _check_batch(batch, num_nodes)
    return _node_order_plan(torch.arange(num_nodes, device=batch.device), batch, num_nodes)


def degree_plan(edge_index: Tensor, batch: Tensor, num_nodes: int, seed: int = 0) -> TokenPlan:
    """One sequence per non-empty graph: its nodes by ascending degree (number of distinct neighbours other than
    the node itself), equal degrees in a seeded random order (``L = R = N``)."""
    edge_index, batch = check_graph(edge_index, num_nodes, batch)
    seed = check_int("seed", seed, None)
    src, dst = _simple_edges(edge_index, num_nodes)
    degree = torch.bincount(torch.cat([src, dst]), minlength=num_nodes)
    key = degree * 2**32 + _hash(_local_index(batch), seed, _STREAM_DEGREE)
    order = _stable_argsort(key)
    order = order[_stable_argsort(batch[order])]
    return _node_order_plan(order, batch, num_nodes)


def random_walk_plan(
    edge_index: Tensor, batch: Tensor, num_nodes: int, walk_length: int = 8, seed: int = 0
) -> TokenPlan:
    """One sequence per node: a uniform random walk of ``walk_length`` steps from it, reversed so the start node is
    the last of its ``walk_length + 1`` tokens (a walk stays in place at an isolated node).

    Returns:
        A plan with ``S = N`` sequences, ``L = N * (walk_length + 1)`` one-node tokens and ``R = N`` read-outs
        (each start token to its node).
    """
    edge_index, batch = check_graph(edge_index, num_nodes, batch)
    walk_length, seed = check_int("walk_length", walk_length, 0), check_int("seed", seed, None)
    device = batch.device
    rowptr, col = _csr(*_simple_edges(edge_index, num_nodes), num_nodes)
    degree = rowptr[1:] - rowptr[:-1]
    local = _local_index(batch)
    here = torch.arange(num_nodes, device=device)
    steps = [here]
    for step in range(walk_length):
        d = degree[here]
        pick = (_uniform(local, seed, _STREAM_WALK, step) * d).long().clamp_(max=(d - 1).clamp(min=0))
        moves = d > 0
        here = here.clone()
        here[moves] = col[rowptr[here[moves]] + pick[moves]]
        steps.append(here)
    width = walk_length + 1
    walks = torch.stack(steps[::-1], dim=1)
    return TokenPlan(
        pool_token=torch.arange(num_nodes * width, device=device),
        pool_node=walks.reshape(-1),
        cu_seqlens=torch.arange(num_nodes + 1, device=device) * width,
        seq_graph=batch.clone(),
        read_token=torch.arange(num_nodes, device=device) * width + walk_length,
        read_node=torch.arange(num_nodes, device=device),
        num_nodes=num_nodes,
    )


def khop_plan(edge_index: Tensor, batch: Tensor, num_nodes: int, k: int = 3) -> TokenPlan:
    """One sequence per node ``v`` of ``k + 1`` tokens: token ``i`` of the sequence is the mean of the nodes at
    hop distance exactly ``k - i`` from ``v`` (no such node: a zero token); ``v`` reads its hop-0 token (the
    last).

    Returns:
        A plan with ``S = N`` sequences, ``L = N * (k + 1)`` tokens, ``P`` = the number of (node, node within
        ``k`` hops) pairs and ``R = N`` read-outs.
    """
    edge_index, batch = check_graph(edge_index, num_nodes, batch)
    k = check_int("k", k, 0)
    device = batch.device
    n = num_nodes
    rowptr, col = _csr(*_simple_edges(edge_index, n), n)
    width = k + 1
    source = node = torch.arange(n, device=device)
    visited = source * n + node
    pool_token, pool_node = [source * width + k], [node]
    for hop in range(1, k + 1):
        count = rowptr[node + 1] - rowptr[node]
        start = torch.repeat_interleave(rowptr[node] - (torch.cumsum(count, 0) - count), count)
        reached = col[start + torch.arange(int(count.sum()), device=device)]
        key = torch.unique(torch.repeat_interleave(source, count) * n + reached)
        key = key[~torch.isin(key, visited)]
        source, node = key // n, key % n
        visited = torch.cat([visited, key])
        pool_token.append(source * width + (k - hop))
        pool_node.append(node)
    return TokenPlan(
        pool_token=torch.cat(pool_token),
        pool_node=torch.cat(pool_node),
        cu_seqlens=torch.arange(n + 1, device=device) * width,
        seq_graph=batch.clone(),
        read_token=torch.arange(n, device=device) * width + k,
        read_node=torch.arange(n, device=device),
        num_nodes=n,
    )


def _hac_dfs(x, edge_index, batch, num_nodes, seed, affinity="cosine", max_levels=None) -> TokenPlan:
    tree = hac(x, edge_index, batch, num_nodes=num_nodes, affinity=affinity, max_levels=max_levels, seed=seed)
    return hac_dfs_plan(tree, batch, num_nodes)


def _hac_bfs(x, edge_index, batch, num_nodes, seed, affinity="cosine", max_levels=None) -> TokenPlan:
    tree = hac(x, edge_index, batch, num_nodes=num_nodes, affinity=affinity, max_levels=max_levels, seed=seed)
    return hac_bfs_plan(tree, batch, num_nodes)


def _node_id(x, edge_index, batch, num_nodes, seed) -> TokenPlan:
    return node_id_plan(batch, num_nodes)


def _degree(x, edge_index, batch, num_nodes, seed) -> TokenPlan:
    return degree_plan(edge_index, batch, num_nodes, seed=seed)


def _random_walk(x, edge_index, batch, num_nodes, seed, walk_length=8) -> TokenPlan:
    return random_walk_plan(edge_index, batch, num_nodes, walk_length=walk_length, seed=seed)


def _khop(x, edge_index, batch, num_nodes, seed, k=3) -> TokenPlan:
    return khop_plan(edge_index, batch, num_nodes, k=k)


TOKENIZERS: dict[str, Callable[..., TokenPlan]] = {
    "hac_dfs": _hac_dfs,
    "hac_bfs": _hac_bfs,
    "node_id": _node_id,
    "degree": _degree,
    "random_walk": _random_walk,
    "khop": _khop,
}
"""Tokenizer name -> ``f(x, edge_index, batch, num_nodes, seed, **options) -> TokenPlan`` (see
:func:`build_plan`)."""

HAC_TOKENIZERS: dict[str, Callable[[HACTree, Tensor, int], TokenPlan]] = {
    "hac_dfs": hac_dfs_plan,
    "hac_bfs": hac_bfs_plan,
}
"""The tokenizers that read a HAC tree -> ``f(tree, batch, num_nodes) -> TokenPlan``: one tree (and
:func:`~graphs.tokenize.hierarchical_pe`) can serve several of them."""


def build_plan(
    name: str,
    x: Tensor | None,
    edge_index: Tensor,
    batch: Tensor | None = None,
    *,
    num_nodes: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> TokenPlan:
    """Tokenize a batch of graphs with the tokenizer ``name`` (a key of :data:`TOKENIZERS`).

    Args:
        name: ``"hac_dfs"``, ``"hac_bfs"``, ``"node_id"``, ``"degree"``, ``"random_walk"`` or ``"khop"``.
        x: ``(N, F)`` node features (used by the HAC tokenizers; may be ``None``).
        edge_index: ``(2, E)`` int64 edges.
        batch: ``(N,)`` sorted graph id of every node; ``None`` for one graph.
        num_nodes: ``N``; defaults to ``x.shape[0]``, else ``batch.numel()``, else ``edge_index.max() + 1``.
        seed: seeds HAC's tie-breaks, the degree tie-breaks and the random walks.
        **kwargs: tokenizer options: ``affinity`` and ``max_levels`` (HAC, see :func:`graphs.tokenize.clustering.hac`),
            ``walk_length`` (random walk), ``k`` (k-hop).

    Returns:
        The :class:`TokenPlan`.
    """
    if name not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {sorted(TOKENIZERS)}")
    n = _num_nodes(x, edge_index, batch, num_nodes)
    edge_index, batch = check_graph(edge_index, n, batch, x=x)
    if x is not None and (x.dim() != 2 or x.shape[0] != n):
        raise ValueError(f"x must have shape ({n}, F), got {tuple(x.shape)}")
    return TOKENIZERS[name](x, edge_index, batch, n, check_int("seed", seed, None), **kwargs)


def _node_order_plan(order: Tensor, batch: Tensor, num_nodes: int) -> TokenPlan:
    """The plan of a node ordering ``order`` (``(N,)``, graph-major): token ``t`` is node ``order[t]``."""
    return _read_members_plan(torch.arange(num_nodes, device=batch.device), order, batch[order], num_nodes)


def _read_members_plan(token: Tensor, node: Tensor, token_graph: Tensor, num_nodes: int) -> TokenPlan:
    """A plan whose tokens are read back by exactly their members: the pairs ``(token, node)`` serve both as
    membership and as read-out; ``token_graph`` ``(L,)`` is the sorted graph of each token."""
    return TokenPlan(
        pool_token=token,
        pool_node=node,
        cu_seqlens=_cu_seqlens(token_graph),
        seq_graph=torch.unique_consecutive(token_graph),
        read_token=token,
        read_node=node,
        num_nodes=num_nodes,
    )


def _cu_seqlens(token_graph: Tensor) -> Tensor:
    """``(S + 1,)`` offsets of the runs of a sorted ``(L,)`` graph-of-token vector (one run per non-empty
    graph)."""
    lengths = torch.unique_consecutive(token_graph, return_counts=True)[1]
    return torch.cat([lengths.new_zeros(1), torch.cumsum(lengths, 0)])


def _simple_edges(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Each undirected edge once as ``(low, high)``, without self-loops."""
    low, high = _unique_edges(_without_loops(edge_index), num_nodes, dense=False)
    return low, high


def _csr(low: Tensor, high: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """``(rowptr (N + 1,), col)``: every node's neighbours, sorted, from each undirected edge once."""
    key = torch.sort(torch.cat([low * num_nodes + high, high * num_nodes + low])).values
    row, col = key // num_nodes, key % num_nodes
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.int64, device=low.device)
    rowptr[1:] = torch.cumsum(torch.bincount(row, minlength=num_nodes), 0)
    return rowptr, col


def _local_index(batch: Tensor) -> Tensor:
    """``(N,)`` index of every node inside its graph."""
    if batch.numel() == 0:
        return batch.clone()
    counts = torch.bincount(batch)
    start = torch.cumsum(counts, 0) - counts
    return torch.arange(batch.numel(), device=batch.device) - start[batch]


def _check_batch(batch: Tensor | None, num_nodes: int) -> Tensor:
    """The validated ``batch`` (``None``: one graph)."""
    device = batch.device if isinstance(batch, Tensor) else None
    return check_graph(torch.zeros(2, 0, dtype=torch.int64, device=device), num_nodes, batch)[1]


def _check_tree(tree: HACTree, batch: Tensor, num_nodes: int) -> None:
    if not isinstance(tree, HACTree):
        raise TypeError(f"tree must be a HACTree (graphs.tokenize.hac), got {type(tree).__name__}")
    _check_batch(batch, num_nodes)
    if tree.num_nodes != num_nodes:
        raise ValueError(f"the HAC tree covers {tree.num_nodes} nodes, expected num_nodes={num_nodes}")
