"""Hierarchical Affinity Clustering (HAC) of a batch of graphs, in PyTorch.

Affinity clustering (Bateni et al., "Affinity Clustering: Hierarchical Clustering at Scale", NeurIPS 2017) is
Boruvka's minimum-spanning-forest algorithm read as a hierarchy: in every round each cluster links to its most
similar neighbouring cluster, each connected group of links becomes one cluster of the next level, and the rounds
repeat on the coarsened graph. Every cluster that still has a neighbour merges with at least one other, so the
number of such clusters at least halves per round: after at most ``floor(log2 N)`` rounds no edge joins two
clusters and every connected component is one top cluster (or ``max_levels`` stopped it earlier).

Edges are read as undirected; self-loops are ignored; duplicate edges change nothing. Clusters never cross
graphs of a batch (edges never do, see :func:`graphs.validation.check_graph`).

Affinity (the similarity of two adjacent clusters):

- ``"cosine"``: cosine similarity of the clusters' mean features (average linkage through the means).
  A graph whose nodes all carry the same feature row (or every graph, when ``x`` is ``None`` or has no columns)
  uses the structural features below instead: a constant feature gives every pair the same score, which would
  leave the whole tree to the tie-break. The rule is per graph, so batching does not change a graph's tree
  (a one-node graph counts as constant; having no edges, it is unaffected).
- ``"structural"``: cosine of the clusters' mean *structural features*: ``STRUCT_DIM`` pseudo-random values in
  ``[-1, 1]`` per node, propagated ``STRUCT_HOPS`` times by ``D^-1/2 (A + I) D^-1/2`` (``A`` the undirected
  adjacency without self-loops or duplicate edges). Node ``u``'s vector is then a random sketch of its
  ``STRUCT_HOPS``-hop neighbourhood weights, and the cosine of two sketches estimates how much the
  neighbourhoods overlap. The random values are seeded by ``(seed, index of the node inside its graph)``, so a
  graph gets the same tree alone or in a batch; they depend on the node numbering, so structural trees are
  equivariant to relabelling only in distribution.
- a callable ``f(x_src, x_dst) -> scores``: ``(E', F)`` mean input features of the two clusters of each
  cluster-graph edge to ``(E',)`` scores, higher meaning more similar; called once per level on all edges, and
  an edge's score serves both its endpoints. It should be symmetric: coarse graphs can hold parallel copies of
  an edge in either orientation. A NaN score counts as the lowest (that link is chosen last). No fallback:
  ``x`` is required.

Ties (equal scores) are broken by a pseudo-random priority of the candidate cluster: a seeded bijection of the
cluster's index inside its graph, drawn anew at every level, so no two candidates of one graph tie; the result
is deterministic for a given ``seed``.

Sibling keys (the order of children in :meth:`HACTree.dfs_ranks`): the projection of a node's feature, or a
cluster's mean feature, on a fixed seeded random direction (the features the affinity used: ``x``, or the
structural features of fallback graphs). They depend on features only, not on node ids.

Cost: one sort of the edges, then per level a few passes over the remaining cluster-graph edges (gathering the
two endpoint features of each) and over the clusters; coarse graphs drop their parallel edges once a
``C x C`` table is cheap. Random graphs keep most edges until the last levels and are the slow case
(``benchmarks/graphs.py``).

The clustering is combinatorial and not differentiable: it runs under ``torch.no_grad`` and its outputs are
integer indices (and ordering keys) with no gradient.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import torch
from torch import Tensor

from graphs.validation import check_graph
from seqcore.ops.validation import check_int

Affinity = Union[str, Callable[[Tensor, Tensor], Tensor]]

STRUCT_DIM = 16
STRUCT_HOPS = 3

_M32 = 0xFFFFFFFF
_MIX = 0x45D9F3B
_MIX_INVERSE = pow(_MIX, -1, 2**32)
_INT64_MIN = -(2**63)
# 2**20 edges per block keeps the (block, F) gathers of the score computation at a few tens of MB.
_EDGE_BLOCK = 1 << 20
# Streams keep the pseudo-random draws of different purposes independent for one seed.
_STREAM_STRUCT, _STREAM_PRIORITY, _STREAM_KEY = 1, 2, 3


@dataclass
class HACTree:
    """A cluster hierarchy over the ``N`` nodes of a batch of graphs.

    Level 0 is the nodes themselves; levels ``1 .. num_levels`` are stored.

    Attributes:
        assignment: ``num_levels`` tensors ``(N,)`` int64: ``assignment[l][v]`` is the cluster of node ``v`` at
            level ``l + 1``. Cluster ids are contiguous ``0 .. C_l - 1`` and ordered by graph. Levels nest: nodes
            sharing a cluster at one level share one at every higher level.
        cluster_graph: ``num_levels`` tensors ``(C_l,)`` int64: the graph of every cluster (sorted).
        num_levels: ``L >= 1`` (a graph without edges gets one level of singletons).
        links: ``num_levels`` tensors ``(C_l,)`` int64 for levels ``l = 0 .. num_levels - 1`` (level 0: nodes):
            the neighbouring cluster each level-``l`` cluster linked to in the round that built level ``l + 1``
            (``-1``: none). The links of one parent's children connect them (with the built-in affinities they
            form a spanning tree of them: the affinity tree's edges).
        node_key: ``(N,)`` float: the DFS sibling key of every node (see :meth:`dfs_ranks`).
        cluster_key: ``num_levels`` tensors ``(C_l,)`` float: the DFS sibling key of every cluster.
        structural: ``(G,)`` bool: which graphs were clustered with the structural affinity.
    """

    assignment: list[Tensor]
    cluster_graph: list[Tensor]
    num_levels: int
    links: list[Tensor]
    node_key: Tensor
    cluster_key: list[Tensor]
    structural: Tensor

    @property
    def num_nodes(self) -> int:
        """``N``."""
        return self.node_key.numel()

    def num_clusters(self, level: int) -> int:
        """``C_level`` (level 0: ``N``)."""
        return self.num_nodes if level == 0 else self.cluster_graph[level - 1].numel()

    def members(self, level: int) -> Tensor:
        """``(N,)`` the level-``level`` cluster of every node (level 0: the node itself)."""
        if level == 0:
            return torch.arange(self.num_nodes, device=self.node_key.device)
        return self.assignment[level - 1]

    def parent(self, level: int) -> Tensor:
        """``(C_level,)`` the level-``level + 1`` cluster containing each level-``level`` cluster, for
        ``0 <= level < num_levels``."""
        out = torch.empty(self.num_clusters(level), dtype=torch.int64, device=self.node_key.device)
        return out.scatter_(0, self.members(level), self.assignment[level])

    def dfs_ranks(self) -> list[Tensor]:
        """Position of every cluster in the depth-first order of its level, for levels ``0 .. num_levels``.

        Returns ``num_levels + 1`` tensors ``(C_l,)`` int64 (index 0: nodes). At each level the clusters are
        sorted by graph, then by their ancestors' positions, then by their own key (``node_key`` /
        ``cluster_key``), then by id; children of one parent are therefore contiguous, and the level-0 ranks are
        the depth-first order of the nodes.
        """
        top = self.num_levels
        order = _stable_argsort(self.cluster_key[top - 1])
        order = order[_stable_argsort(self.cluster_graph[top - 1][order])]
        ranks = [_inverse(order)]
        for level in range(top - 1, -1, -1):
            key = self.node_key if level == 0 else self.cluster_key[level - 1]
            order = _stable_argsort(key)
            order = order[_stable_argsort(ranks[0][self.parent(level)][order])]
            ranks.insert(0, _inverse(order))
        return ranks


def hac(
    x: Tensor | None,
    edge_index: Tensor,
    batch: Tensor | None = None,
    *,
    num_nodes: int | None = None,
    affinity: Affinity = "cosine",
    max_levels: int | None = None,
    seed: int = 0,
) -> HACTree:
    """Cluster every graph of a batch hierarchically by affinity clustering (see the module docstring).

    Args:
        x: ``(N, F)`` node features, or ``None`` (structural affinity).
        edge_index: ``(2, E)`` int64 edges, read as undirected.
        batch: ``(N,)`` sorted graph id of every node; ``None`` for one graph.
        num_nodes: ``N``; defaults to ``x.shape[0]``, else ``batch.numel()``, else ``edge_index.max() + 1``.
        affinity: ``"cosine"`` (with the structural fallback), ``"structural"`` or a callable.
        max_levels: stop after this many levels (``None``: until no edge joins two clusters).
        seed: seeds the tie-break priorities, the structural features and the sibling keys.

    Returns:
        The :class:`HACTree`; ``num_levels <= max(1, floor(log2 N))`` when ``max_levels`` is ``None``.
    """
    n = _num_nodes(x, edge_index, batch, num_nodes)
    edge_index, batch = check_graph(edge_index, n, batch, x=x)
    if x is not None and (x.dim() != 2 or x.shape[0] != n):
        raise ValueError(f"x must have shape ({n}, F), got {tuple(x.shape)}")
    if x is not None and x.is_floating_point() and not bool(torch.isfinite(x).all()):
        raise ValueError("x has NaN or infinite values")
    if max_levels is not None:
        max_levels = check_int("max_levels", max_levels, 1)
    seed = check_int("seed", seed, None)
    if not callable(affinity) and affinity not in ("cosine", "structural"):
        raise ValueError(f"affinity must be 'cosine', 'structural' or a callable, got {affinity!r}")
    if callable(affinity) and x is None:
        raise ValueError("a callable affinity scores node features: x is required")
    with torch.no_grad():
        return _hac(x, edge_index, batch, n, affinity, max_levels, seed)


def _hac(x, edge_index, batch, n, affinity, max_levels, seed) -> HACTree:
    """:func:`hac` on validated inputs: one Boruvka round per level."""
    device = edge_index.device
    num_graphs = int(batch[-1]) + 1 if n else 0
    node_ptr = _ptr(batch, num_graphs)
    local_node = torch.arange(n, device=device) - node_ptr[batch]
    # One copy of every undirected edge: halves the work on torch-geometric's two-way edge lists, and sorted
    # endpoints make the feature gathers below cache-friendly.
    edges = _unique_edges(_without_loops(edge_index), n, dense=False)
    structural = _structural_graphs(x, batch, node_ptr, num_graphs, affinity)
    # The sibling-key direction of each feature part depends on the part's kind, not on which parts this batch
    # happens to need, so a graph's keys do not change with the graphs batched with it.
    parts: list[Tensor] = []
    directions: list[Tensor] = []
    if callable(affinity):
        parts.append(x.float())
        directions.append(_direction(x.shape[1], seed, 0, device))
    else:
        if not bool(structural.all()):
            parts.append(torch.where(structural[batch, None], 0.0, x.float()))
            directions.append(_direction(x.shape[1], seed, 0, device))
        if bool(structural.any()):
            z = _structural_features(edges, local_node, n, seed)
            parts.append(torch.where(structural[batch, None], z, 0.0))
            directions.append(_direction(STRUCT_DIM, seed, 1, device))

    sums = parts  # per-cluster feature sums (the cosine of sums is the cosine of means); level 0: the nodes
    counts = torch.ones(n, device=device)
    node_key = _key(sums, counts, directions, n, device)
    members = torch.arange(n, device=device)
    graph = batch
    assignment, cluster_graph, cluster_key, links = [], [], [], []
    while not assignment or (edges.shape[1] and (max_levels is None or len(assignment) < max_levels)):
        size = graph.numel()
        src, dst = edges[0], edges[1]
        if src.numel():
            start = _ptr(graph, num_graphs)[graph]
            salt = _salt(seed, _STREAM_PRIORITY, len(assignment))
            priority = _mix32((torch.arange(size, device=device) - start) ^ salt)
            if callable(affinity):
                means = sums[0] / counts[:, None]
                score = affinity(means.index_select(0, src), means.index_select(0, dst))
                if not isinstance(score, Tensor) or score.shape != src.shape:
                    raise ValueError(f"the affinity callable must return a ({src.numel()},) tensor of scores, "
                                     f"got {getattr(score, 'shape', type(score).__name__)}")
                score = torch.nan_to_num(score.float(), nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf) + 0.0
            else:
                score = _cosine_scores(sums, src, dst)
            nearest = _nearest(score, priority, src, dst, start, salt)
            comp, size = _link_components(nearest)
        else:
            nearest = torch.full((size,), -1, dtype=torch.int64, device=device)
            comp = torch.arange(size, device=device)
        links.append(nearest)
        members = comp.index_select(0, members)
        graph = graph.new_empty(size).scatter_(0, comp, graph)
        sums = [p.new_zeros(size, p.shape[1]).index_add_(0, comp, p) for p in sums]
        counts = counts.new_zeros(size).index_add_(0, comp, counts)
        edges = _without_loops(comp.index_select(0, edges.reshape(-1)).view(2, -1))
        # Coarse graphs of dense or random inputs keep most edges as parallel copies; once a C x C mark table
        # costs no more than a few passes over the edges, removing the copies is almost free.
        if size * size <= 4 * edges.shape[1]:
            edges = _unique_edges(edges, size, dense=True)
        assignment.append(members)
        cluster_graph.append(graph)
        cluster_key.append(_key(sums, counts, directions, size, device))
    return HACTree(assignment, cluster_graph, len(assignment), links, node_key, cluster_key, structural)


def _num_nodes(x: Tensor | None, edge_index: Tensor, batch: Tensor | None, num_nodes: int | None) -> int:
    if x is not None and not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (N, F) or None, got {type(x).__name__}")
    if num_nodes is not None:
        return check_int("num_nodes", num_nodes, 0)
    if x is not None:
        return x.shape[0]
    if batch is not None:
        return batch.numel()
    if isinstance(edge_index, Tensor) and edge_index.numel():
        return int(edge_index.max()) + 1
    return 0


def _structural_graphs(x, batch, node_ptr, num_graphs, affinity) -> Tensor:
    """``(G,)`` bool: graphs clustered on structural features (the fallback rule of the module docstring)."""
    device = batch.device
    if callable(affinity):
        return torch.zeros(num_graphs, dtype=torch.bool, device=device)
    if affinity == "structural" or x is None or x.shape[1] == 0:
        return torch.ones(num_graphs, dtype=torch.bool, device=device)
    varies = (x != x[node_ptr[batch]]).any(1)
    counts = torch.zeros(num_graphs, dtype=torch.int64, device=device).index_add_(0, batch, varies.long())
    return counts == 0


def _structural_features(edges: Tensor, local_node: Tensor, n: int, seed: int) -> Tensor:
    """``(N, STRUCT_DIM)`` neighbourhood sketches: seeded random vectors propagated by the normalised adjacency."""
    cols = torch.arange(STRUCT_DIM, device=local_node.device)
    z = _uniform(local_node[:, None] * STRUCT_DIM + cols, seed, _STREAM_STRUCT) * 2 - 1
    a, b = edges.reshape(-1), edges.flip(0).reshape(-1)
    scale = (torch.bincount(b, minlength=n) + 1).float().rsqrt()[:, None]
    for _ in range(STRUCT_HOPS):
        y = z * scale
        z = y.index_add(0, b, y.index_select(0, a)) * scale
    return z


def _cosine_scores(sums: list[Tensor], src: Tensor, dst: Tensor) -> Tensor:
    """``(E',)`` cosine of the cluster means of each edge's endpoints, summed over the feature parts (a cluster
    has non-zero features in one part only, so the sum is that part's cosine)."""
    score = torch.zeros(src.numel(), device=src.device)
    for p in sums:
        unit = torch.nn.functional.normalize(p, dim=1)
        for start in range(0, src.numel(), _EDGE_BLOCK):
            block = slice(start, start + _EDGE_BLOCK)
            score[block] += torch.einsum("ef,ef->e", unit.index_select(0, src[block]), unit.index_select(0, dst[block]))
    return score


def _nearest(score: Tensor, priority: Tensor, src: Tensor, dst: Tensor, start: Tensor, salt: int) -> Tensor:
    """``(C,)`` the most similar neighbour of every cluster (``-1``: none), ties to the higher priority.

    One int64 key per (edge, direction) holds the score's order in its high half and the candidate's priority
    in its low half, so one scatter-max per direction finds the best candidate, and since the priority is a
    bijection of the candidate's index inside its graph (``start`` is the first cluster of each cluster's
    graph), the maximum key also names the candidate: no second pass over the edges.
    """
    ordered = _orderable(score) * 2**32
    best = torch.full_like(start, _INT64_MIN)
    best.scatter_reduce_(0, src, ordered + priority.index_select(0, dst), "amax")
    best.scatter_reduce_(0, dst, ordered + priority.index_select(0, src), "amax")
    candidate = start + (_unmix32(best & _M32) ^ salt)
    return torch.where(best > _INT64_MIN, candidate, -1)


def _without_loops(edges: Tensor) -> Tensor:
    """The ``(2, E)`` edges whose endpoints differ."""
    return edges.index_select(1, (edges[0] != edges[1]).nonzero().squeeze(1))


def _unique_edges(edges: Tensor, size: int, dense: bool) -> Tensor:
    """``(2, E')`` each undirected edge once as ``(low, high)``, sorted; ``dense`` marks a ``size**2`` table
    instead of sorting."""
    key = torch.minimum(edges[0], edges[1]) * size + torch.maximum(edges[0], edges[1])
    if dense:
        mark = torch.zeros(size * size, dtype=torch.bool, device=key.device)
        key = mark.index_fill_(0, key, True).nonzero().squeeze(1)
    else:
        key = torch.unique(key)
    return torch.stack([key // size, key % size])


def _orderable(score: Tensor) -> Tensor:
    """int64 values in ``[-2**31, 2**31)`` ordered like the float32 non-NaN ``score``: the float's bits, with
    the magnitude bits of negative numbers flipped."""
    bits = score.view(torch.int32)
    return (bits ^ ((bits >> 31) & 0x7FFFFFFF)).long()


def _link_components(nearest: Tensor) -> tuple[Tensor, int]:
    """Connected components of the link graph ``c -- nearest[c]``: ``(comp, count)`` with ``comp`` numbering the
    components ``0 .. count - 1`` in the order of their smallest cluster.

    With a symmetric score and distinct priorities, following the links only ever cycles between two mutual
    nearest neighbours (along a longer cycle the (score, priority) of the chosen link would have to increase
    all the way round). Rooting each mutual pair at its smaller member makes the links a forest, which pointer
    jumping flattens in ``log2(depth)`` steps. A callable affinity need not be symmetric: if the result is not
    a set of stars whose links stay inside them, the general algorithm takes over.
    """
    size = nearest.numel()
    index = torch.arange(size, device=nearest.device)
    parent = torch.where(nearest >= 0, nearest, index)
    mutual = parent.index_select(0, parent) == index
    parent = torch.where(mutual & (index < parent), index, parent)
    for _ in range(max(size, 2).bit_length() + 1):
        jumped = parent.index_select(0, parent)
        if torch.equal(jumped, parent):
            break
        parent = jumped
    # Jumping can also settle on a cycle whose length is a power of two, each member its own root: accept the
    # roots only if every link joins two nodes of one root.
    linked = (nearest >= 0).nonzero().squeeze(1)
    target = nearest.index_select(0, linked)
    if not torch.equal(parent.index_select(0, parent), parent) or not torch.equal(
        parent.index_select(0, linked), parent.index_select(0, target)
    ):
        return _components(linked, target, size)
    smallest = torch.full_like(index, size).scatter_reduce_(0, parent, index, "amin")
    first = smallest.index_select(0, parent) == index
    rank = torch.cumsum(first, 0) - 1
    return rank.index_select(0, smallest.index_select(0, parent)), int(first.sum())


def _components(u: Tensor, v: Tensor, size: int) -> tuple[Tensor, int]:
    """Connected components of the graph on ``size`` vertices with edges ``(u, v)``: ``(comp, count)`` with
    ``comp`` numbering the components ``0 .. count - 1`` in the order of their smallest vertex.

    Hooks every root to the smallest root it touches, then pointer-jumps to the fixpoint; hooking only to
    smaller labels cannot create cycles, and each round removes every root that has a smaller neighbour root.
    """
    label = torch.arange(size, device=u.device)
    while True:
        lu, lv = label[u], label[v]
        if torch.equal(lu, lv):
            break
        low = torch.minimum(lu, lv)
        label = label.scatter_reduce(0, lu, low, "amin").scatter_reduce_(0, lv, low, "amin")
        while True:
            jumped = label[label]
            if torch.equal(jumped, label):
                break
            label = jumped
    root = label == torch.arange(size, device=u.device)
    rank = torch.cumsum(root, 0) - 1
    return rank[label], int(root.sum())


def _key(sums: list[Tensor], counts: Tensor, directions: list[Tensor], size: int, device) -> Tensor:
    """``(C,)`` the sibling key: the projection of each cluster's mean feature on a fixed seeded direction."""
    key = torch.zeros(size, device=device)
    for p, r in zip(sums, directions):
        key += (p @ r) / counts
    return key


def _direction(dim: int, seed: int, kind: int, device) -> Tensor:
    """``(dim,)`` the fixed seeded direction (uniform in ``[-1, 1]^dim``) the sibling keys project on."""
    return _uniform(torch.arange(dim, device=device), seed, _STREAM_KEY, kind) * 2 - 1


def _ptr(graph: Tensor, num_graphs: int) -> Tensor:
    """``(G,)`` index of the first element of every graph in a sorted ``graph`` vector."""
    counts = torch.bincount(graph, minlength=num_graphs)
    return torch.cumsum(counts, 0) - counts


def _mix32(h: Tensor) -> Tensor:
    """A bijective 32-bit integer mixing function (xorshift-multiply, multiplier 0x45d9f3b); products stay below
    2**59."""
    h = ((h >> 16) ^ h) * _MIX & _M32
    h = ((h >> 16) ^ h) * _MIX & _M32
    return (h >> 16) ^ h


def _unmix32(h: Tensor) -> Tensor:
    """The inverse of :func:`_mix32` (a 16-bit xorshift is its own inverse on 32 bits)."""
    h = _mul32((h >> 16) ^ h, _MIX_INVERSE)
    h = _mul32((h >> 16) ^ h, _MIX_INVERSE)
    return (h >> 16) ^ h


def _mul32(h: Tensor, factor: int) -> Tensor:
    """``h * factor mod 2**32`` for ``h, factor < 2**32``, in two 16-bit halves of ``factor`` so no int64
    product overflows."""
    high, low = factor >> 16, factor & 0xFFFF
    return (h * low + ((h * high) & 0xFFFF) * 65536) & _M32


def _salt(*salt: int) -> int:
    """A 32-bit constant mixed from integers."""
    return int(_hash(torch.zeros(1, dtype=torch.int64), *salt))


def _hash(values: Tensor, *salt: int) -> Tensor:
    """int64 pseudo-random values in ``[0, 2**32)``, a function of ``values`` and the salt only (so the draw for
    a node or cluster depends on its index inside its graph, not on the batch around it)."""
    h = torch.full_like(values, 0x2545F491)
    for s in salt:
        h = _mix32(h ^ (int(s) & _M32))
    return _mix32(h ^ (values & _M32))


def _uniform(values: Tensor, *salt: int) -> Tensor:
    """float32 pseudo-random values in ``[0, 1)`` (see :func:`_hash`)."""
    return (_hash(values, *salt).double() / 2**32).float()


def _stable_argsort(values: Tensor) -> Tensor:
    return torch.sort(values, stable=True).indices


def _inverse(order: Tensor) -> Tensor:
    return torch.empty_like(order).scatter_(0, order, torch.arange(order.numel(), device=order.device))
