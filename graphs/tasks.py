"""Synthetic graph classification tasks: GraphQA-style reasoning tasks, PATTERN-like node tasks and CSL.

The algorithmic tasks follow the local/global split of Sanford et al. (2024), "Understanding transformer
reasoning capabilities via graph algorithms", used by GSM++ (Behrouz & Hashemi, 2024): local tasks (node degree,
cycle check, triangle counting) and global tasks (connectivity, colour counting, shortest path). Every task is a
classification task; counts are binned into classes.

Conventions shared by every task:

* ``x`` is float32 ``(N, in_channels)``; ``edge_index`` is int64 ``(2, E)`` holding both directions of every
  undirected edge, sorted by (row, col), without duplicates or self-loops; ``y`` is int64 ``(1,)`` for graph-level
  tasks and ``(N,)`` for node-level tasks.
* Nodes are relabelled by a random permutation, so node indices carry no information about the construction.
* Class targets are drawn first, then a graph is built for its target (balanced by construction): over a data
  set of ``num_graphs`` graphs every class of a graph-level task occurs ``floor`` or ``ceil`` of
  ``num_graphs / num_classes`` times. Node-level balance is described per task.
* Generation uses only a ``numpy.random.Generator`` seeded with ``seed``: the same arguments give the same data.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch_geometric.data import Data

from seqcore.ops.validation import check_int

__all__ = ["TASKS", "TaskSpec", "make_task", "split"]

Adjacency = list[set[int]]
Builder = Callable[[int, int, int, np.random.Generator], list[Data]]

NUM_COLORS = 3
COLOR_CLASSES = 5  # label = number of colour-0 nodes, 0..4
MAX_DISTANCE = 5  # shortest-path classes: distances 1, 2, 3, 4 and >= 5
TRIANGLE_CLASSES = 5  # triangle bins 0, 1, 2, 3 and >= 4
DEGREE_CLASSES = 5  # degree classes 1, 2, 3, 4 and >= 5
CSL_NODES = 41
CSL_SKIPS = (2, 3, 4, 5, 6, 9, 11, 12, 13, 16)

PATTERN_SIZE = 10
PATTERN_POOL = 20
PATTERN_SIGNALS = 3
PATTERN_COMMUNITIES = 3
PATTERN_P_IN = 0.3
PATTERN_P_OUT = 0.15
PATTERN_P_PATTERN = 0.5
PATTERN_Q_PATTERN = 0.15
# The pattern pool is part of the task's definition, not of a sample: data sets drawn with different seeds
# (a train set and a test set, say) must plant the same patterns.
_PATTERN_POOL_SEED = 2020

_MAX_ATTEMPTS = 1000


@dataclass(frozen=True)
class TaskSpec:
    """What a task's data look like.

    Attributes:
        name: the registry key.
        level: ``"graph"`` (one label per graph, ``y`` of shape ``(1,)``) or ``"node"`` (``y`` of shape ``(N,)``).
        num_classes: labels lie in ``0 .. num_classes - 1``.
        in_channels: width of ``x``.
        description: the construction, classes and defaults in words.
    """

    name: str
    level: Literal["graph", "node"]
    num_classes: int
    in_channels: int
    description: str


@dataclass(frozen=True)
class _TaskDef:
    spec: TaskSpec
    default_nodes: tuple[int, int]
    min_nodes: int
    build: Builder


# ----------------------------------------------------------------------------------------------------------------
# Shared graph construction


def _balanced_labels(count: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``(count,)`` labels with every class ``floor`` or ``ceil(count / num_classes)`` times, in random order."""
    # Which classes receive the remainder is random, so low class indices are not favoured.
    return rng.permutation(rng.permutation(num_classes)[np.arange(count) % num_classes])


def _random_tree(n: int, rng: np.random.Generator) -> Adjacency:
    """A uniformly random labelled tree on ``n`` nodes (decoded from a random Prüfer sequence)."""
    adj: Adjacency = [set() for _ in range(n)]
    if n < 2:
        return adj
    sequence = rng.integers(0, n, size=n - 2)
    remaining = np.ones(n, dtype=np.int64)
    np.add.at(remaining, sequence, 1)
    leaves = [v for v in range(n) if remaining[v] == 1]
    heapq.heapify(leaves)
    for v in sequence.tolist():
        leaf = heapq.heappop(leaves)
        _connect(adj, leaf, v)
        remaining[v] -= 1
        if remaining[v] == 1:
            heapq.heappush(leaves, v)
    _connect(adj, heapq.heappop(leaves), heapq.heappop(leaves))
    return adj


def _connect(adj: Adjacency, u: int, v: int) -> None:
    adj[u].add(v)
    adj[v].add(u)


def _add_random_edges(
    adj: Adjacency, count: int, rng: np.random.Generator, nodes: Sequence[int] | None = None
) -> None:
    """Add ``count`` distinct new edges between uniformly drawn pairs of ``nodes`` (default: all nodes).

    Fewer are added when the node set runs out of non-adjacent pairs.
    """
    pool = np.arange(len(adj)) if nodes is None else np.asarray(nodes)
    members = set(pool.tolist())
    present = sum(len(adj[v] & members) for v in members) // 2
    count = min(count, pool.size * (pool.size - 1) // 2 - present)
    while count > 0:
        u, v = (int(w) for w in rng.choice(pool, size=2, replace=False))
        if v not in adj[u]:
            _connect(adj, u, v)
            count -= 1


def _connected_graph(n: int, extra: int, rng: np.random.Generator) -> Adjacency:
    """A random tree on ``n`` nodes plus ``extra`` random edges (connected by construction)."""
    adj = _random_tree(n, rng)
    _add_random_edges(adj, extra, rng)
    return adj


def _bfs_distances(adj: Adjacency, source: int) -> np.ndarray:
    """``(N,)`` hop distances from ``source``; -1 for unreachable nodes."""
    dist = np.full(len(adj), -1, dtype=np.int64)
    dist[source] = 0
    frontier = [source]
    while frontier:
        nxt = []
        for u in frontier:
            for v in adj[u]:
                if dist[v] < 0:
                    dist[v] = dist[u] + 1
                    nxt.append(v)
        frontier = nxt
    return dist


def _to_data(adj: Adjacency, x: np.ndarray, y: np.ndarray | int, rng: np.random.Generator) -> Data:
    """Relabel the nodes by a random permutation and pack a :class:`Data`.

    ``x`` is ``(N, F)``; ``y`` is an int (graph label) or an ``(N,)`` array (node labels).
    """
    n = len(adj)
    perm = rng.permutation(n)  # node i becomes perm[i]
    pairs = [(u, v) for u in range(n) for v in adj[u]]
    edges = perm[np.asarray(pairs, dtype=np.int64).reshape(-1, 2)]
    # np.unique sorts the pairs lexicographically, the layout torch_geometric's coalesce produces.
    edges = np.unique(edges, axis=0)
    new_x = np.empty_like(x)
    new_x[perm] = x
    if isinstance(y, np.ndarray):
        new_y = np.empty_like(y)
        new_y[perm] = y
        y_tensor = torch.from_numpy(new_y.astype(np.int64))
    else:
        y_tensor = torch.tensor([y], dtype=torch.long)
    return Data(
        x=torch.from_numpy(new_x.astype(np.float32)),
        edge_index=torch.from_numpy(np.ascontiguousarray(edges.T)),
        y=y_tensor,
        num_nodes=n,
    )


def _query_features(n: int, queries: Sequence[int]) -> np.ndarray:
    """``(n, 2)`` features ``[is_query, 1]``."""
    x = np.zeros((n, 2), dtype=np.float32)
    x[:, 1] = 1.0
    x[list(queries), 0] = 1.0
    return x


def _constant_features(n: int) -> np.ndarray:
    return np.ones((n, 1), dtype=np.float32)


def _sizes(count: int, lo: int, hi: int, rng: np.random.Generator) -> list[int]:
    return rng.integers(lo, hi + 1, size=count).tolist()


# ----------------------------------------------------------------------------------------------------------------
# Tasks


def _connectivity(num_graphs: int, lo: int, hi: int, rng: np.random.Generator) -> list[Data]:
    labels = _balanced_labels(num_graphs, 2, rng)
    # Negatives never have a bridge; positives are split evenly between "no bridge, queries on one side" and
    # "bridge, queries on opposite sides" (50% / 25% / 25% overall), so having two sides does not decide the label.
    bridged = np.zeros(num_graphs, dtype=bool)
    positives = np.flatnonzero(labels == 1)
    bridged[positives] = _balanced_labels(positives.size, 2, rng) == 1
    out = []
    for label, bridge, n in zip(labels.tolist(), bridged.tolist(), _sizes(num_graphs, lo, hi, rng)):
        n1 = int(rng.integers(2, n - 1))
        sides = [list(range(n1)), list(range(n1, n))]
        adj: Adjacency = [set() for _ in range(n)]
        for side in sides:
            tree = _random_tree(len(side), rng)
            for u, nbrs in enumerate(tree):
                for v in nbrs:
                    adj[side[u]].add(side[v])
            _add_random_edges(adj, int(rng.integers(0, len(side) // 3 + 1)), rng, nodes=side)
        if bridge:
            _connect(adj, int(rng.choice(sides[0])), int(rng.choice(sides[1])))
        else:
            # The edge a bridge would have added goes inside a side, so the edge count carries no signal.
            _add_random_edges(adj, 1, rng, nodes=sides[int(rng.integers(0, 2))])
        if label == 1 and not bridge:
            queries = rng.choice(sides[int(rng.integers(0, 2))], size=2, replace=False).tolist()
        else:
            queries = [int(rng.choice(sides[0])), int(rng.choice(sides[1]))]
        out.append(_to_data(adj, _query_features(n, queries), label, rng))
    return out


def _color_counting(num_graphs: int, lo: int, hi: int, rng: np.random.Generator) -> list[Data]:
    labels = _balanced_labels(num_graphs, COLOR_CLASSES, rng)
    out = []
    for label, n in zip(labels.tolist(), _sizes(num_graphs, lo, hi, rng)):
        adj = _connected_graph(n, int(rng.integers(0, n // 2 + 1)), rng)
        colors = rng.integers(1, NUM_COLORS, size=n)
        colors[rng.choice(n, size=label, replace=False)] = 0
        x = np.eye(NUM_COLORS, dtype=np.float32)[colors]
        out.append(_to_data(adj, x, label, rng))
    return out


def _shortest_path(num_graphs: int, lo: int, hi: int, rng: np.random.Generator) -> list[Data]:
    labels = _balanced_labels(num_graphs, MAX_DISTANCE, rng)
    out = []
    for label, n in zip(labels.tolist(), _sizes(num_graphs, lo, hi, rng)):
        for _ in range(_MAX_ATTEMPTS):
            adj = _connected_graph(n, int(rng.integers(0, n // 4 + 1)), rng)
            dist = np.stack([_bfs_distances(adj, s) for s in range(n)])
            classes = np.minimum(dist, MAX_DISTANCE) - 1
            # Keep only graphs that hold a pair of every class, whatever the target: otherwise the graph's
            # diameter would give the label away.
            if np.unique(classes[np.triu_indices(n, 1)]).size == MAX_DISTANCE:
                break
        else:
            raise RuntimeError(f"shortest_path: no graph on {n} nodes with every distance class; raise num_nodes")
        us, vs = np.nonzero(np.triu(classes == label, 1))
        pick = int(rng.integers(0, us.size))
        out.append(_to_data(adj, _query_features(n, [int(us[pick]), int(vs[pick])]), label, rng))
    return out


def _cycle_check(num_graphs: int, lo: int, hi: int, rng: np.random.Generator) -> list[Data]:
    labels = _balanced_labels(num_graphs, 2, rng)
    out = []
    for label, n in zip(labels.tolist(), _sizes(num_graphs, lo, hi, rng)):
        adj = _random_tree(n, rng)
        _add_random_edges(adj, label, rng)
        out.append(_to_data(adj, _constant_features(n), label, rng))
    return out


def _try_triangle_edge(adj: Adjacency, most: int, rng: np.random.Generator) -> tuple[int, int] | None:
    """A non-edge closing between 1 and ``most`` triangles, drawn as two neighbours of a random node."""
    hubs = [w for w in range(len(adj)) if len(adj[w]) >= 2]
    for _ in range(200):
        w = hubs[int(rng.integers(0, len(hubs)))]
        u, v = (int(a) for a in rng.choice(sorted(adj[w]), size=2, replace=False))
        if v not in adj[u] and len(adj[u] & adj[v]) <= most:
            return u, v
    return None


def _try_free_edge(adj: Adjacency, rng: np.random.Generator) -> tuple[int, int] | None:
    """A non-edge whose endpoints have no common neighbour (closes no triangle)."""
    for _ in range(200):
        u, v = (int(a) for a in rng.choice(len(adj), size=2, replace=False))
        if v not in adj[u] and not adj[u] & adj[v]:
            return u, v
    return None


def _triangle_graph(n: int, target: int, rng: np.random.Generator) -> Adjacency | None:
    """A tree plus extra edges holding exactly ``target`` triangles, or None when the draw got stuck.

    The number of extra edges is drawn independently of ``target`` so the edge count does not reveal the class:
    triangle-closing edges come first until the count is reached, the rest close none.
    """
    adj = _random_tree(n, rng)
    # At least as many edges as the largest target, so no target forces a larger draw (which would leak).
    extra = int(rng.integers(TRIANGLE_CLASSES + 1, TRIANGLE_CLASSES + 2 + n // 4))
    triangles = 0
    for _ in range(extra):
        edge = (
            _try_triangle_edge(adj, target - triangles, rng) if triangles < target else _try_free_edge(adj, rng)
        )
        if edge is None:
            return None
        triangles += len(adj[edge[0]] & adj[edge[1]])
        _connect(adj, *edge)
    return adj if triangles == target else None


def _triangle_counting(num_graphs: int, lo: int, hi: int, rng: np.random.Generator) -> list[Data]:
    labels = _balanced_labels(num_graphs, TRIANGLE_CLASSES, rng)
    top = TRIANGLE_CLASSES - 1
    out = []
    for label, n in zip(labels.tolist(), _sizes(num_graphs, lo, hi, rng)):
        target = label + int(rng.integers(0, 3)) if label == top else label
        for _ in range(_MAX_ATTEMPTS):
            adj = _triangle_graph(n, target, rng)
            if adj is not None:
                break
        else:
            raise RuntimeError(f"triangle_counting: could not place {target} triangles on {n} nodes")
        out.append(_to_data(adj, _constant_features(n), label, rng))
    return out


def _havel_hakimi(degrees: np.ndarray, rng: np.random.Generator) -> Adjacency | None:
    """A simple graph with the given degree sequence, or None when the sequence is not graphical."""
    n = degrees.size
    adj: Adjacency = [set() for _ in range(n)]
    left = degrees.copy()
    while True:
        # Random tie-breaking varies the realisation; the largest-first rule keeps the construction exact.
        order = np.lexsort((rng.random(n), -left))
        v = int(order[0])
        d = int(left[v])
        if d == 0:
            return adj
        targets = order[1 : d + 1]
        if targets.size < d or left[targets].min() == 0:
            return None
        for t in targets.tolist():
            _connect(adj, v, t)
        left[targets] -= 1
        left[v] = 0


def _shuffle_edges(adj: Adjacency, rng: np.random.Generator) -> None:
    """Degree-preserving double-edge swaps, so the realisation is not Havel-Hakimi's rigid layout."""
    edges = [(u, v) for u in range(len(adj)) for v in adj[u] if u < v]
    for _ in range(4 * len(edges)):
        i, j = (int(k) for k in rng.choice(len(edges), size=2, replace=False))
        a, b = edges[i]
        c, d = edges[j] if rng.random() < 0.5 else edges[j][::-1]
        if len({a, b, c, d}) < 4 or d in adj[a] or b in adj[c]:
            continue
        for u, v in ((a, b), (c, d)):
            adj[u].discard(v)
            adj[v].discard(u)
        _connect(adj, a, d)
        _connect(adj, c, b)
        edges[i], edges[j] = (a, d), (c, b)


def _node_degree(num_graphs: int, lo: int, hi: int, rng: np.random.Generator) -> list[Data]:
    top = DEGREE_CLASSES - 1
    filled = np.zeros(DEGREE_CLASSES, dtype=np.int64)
    out = []
    for n in _sizes(num_graphs, lo, hi, rng):
        # Each graph holds floor(n / K) nodes of every class; its n mod K extra nodes go to the classes with the
        # fewest nodes so far, which keeps the data set's class counts within one of each other.
        extra = n % DEGREE_CLASSES
        neediest = np.lexsort((rng.random(DEGREE_CLASSES), filled))[:extra]
        counts = np.full(DEGREE_CLASSES, n // DEGREE_CLASSES)
        counts[neediest] += 1
        filled += counts
        labels = rng.permutation(np.repeat(np.arange(DEGREE_CLASSES), counts))
        for _ in range(_MAX_ATTEMPTS):
            degrees = labels + 1
            is_top = labels == top
            degrees[is_top] += rng.integers(0, 2, size=int(is_top.sum()))
            if degrees.sum() % 2:
                # Moving one top-class node between degrees K and K + 1 fixes the parity without changing a label.
                v = int(rng.choice(np.flatnonzero(is_top)))
                degrees[v] += 1 if degrees[v] == DEGREE_CLASSES else -1
            adj = _havel_hakimi(degrees, rng)
            if adj is not None:
                break
        else:
            raise RuntimeError(f"node_degree: no graphical degree sequence found on {n} nodes")
        _shuffle_edges(adj, rng)
        out.append(_to_data(adj, _constant_features(n), labels, rng))
    return out


def _pattern_pool() -> list[tuple[Adjacency, np.ndarray]]:
    """The fixed patterns: (internal adjacency, ``(PATTERN_SIZE,)`` categorical signal) each."""
    rng = np.random.default_rng(_PATTERN_POOL_SEED)
    pool = []
    for _ in range(PATTERN_POOL):
        adj: Adjacency = [set() for _ in range(PATTERN_SIZE)]
        us, vs = np.nonzero(np.triu(rng.random((PATTERN_SIZE, PATTERN_SIZE)) < PATTERN_P_PATTERN, 1))
        for u, v in zip(us.tolist(), vs.tolist()):
            _connect(adj, u, v)
        pool.append((adj, rng.integers(0, PATTERN_SIGNALS, size=PATTERN_SIZE)))
    return pool


def _pattern(num_graphs: int, lo: int, hi: int, rng: np.random.Generator) -> list[Data]:
    pool = _pattern_pool()
    out = []
    for n in _sizes(num_graphs, lo, hi, rng):
        background = n - PATTERN_SIZE
        # Community sizes: a random composition of the background with every community non-empty.
        cuts = np.sort(rng.choice(np.arange(1, background), size=PATTERN_COMMUNITIES - 1, replace=False))
        community = np.repeat(np.arange(PATTERN_COMMUNITIES), np.diff(np.concatenate([[0], cuts, [background]])))
        # Nodes 0..background-1 form the stochastic block model, the rest the planted pattern (label 1).
        block = np.concatenate([community, np.full(PATTERN_SIZE, -1)])
        prob = np.where(block[:, None] == block[None, :], PATTERN_P_IN, PATTERN_P_OUT)
        is_pattern = block < 0
        prob[is_pattern[:, None] | is_pattern[None, :]] = PATTERN_Q_PATTERN
        us, vs = np.nonzero(np.triu(rng.random((n, n)) < prob, 1))
        # Pattern-internal pairs come from the pattern itself, not from the random draw.
        keep = ~(is_pattern[us] & is_pattern[vs])
        adj: Adjacency = [set() for _ in range(n)]
        for u, v in zip(us[keep].tolist(), vs[keep].tolist()):
            _connect(adj, u, v)
        pattern_adj, signal = pool[int(rng.integers(0, PATTERN_POOL))]
        for u, nbrs in enumerate(pattern_adj):
            for v in nbrs:
                adj[background + u].add(background + v)
        signals = np.concatenate([rng.integers(0, PATTERN_SIGNALS, size=background), signal])
        x = np.eye(PATTERN_SIGNALS, dtype=np.float32)[signals]
        out.append(_to_data(adj, x, is_pattern.astype(np.int64), rng))
    return out


def _csl(num_graphs: int, lo: int, hi: int, rng: np.random.Generator) -> list[Data]:
    labels = _balanced_labels(num_graphs, len(CSL_SKIPS), rng)
    out = []
    for label in labels.tolist():
        adj: Adjacency = [set() for _ in range(CSL_NODES)]
        for i in range(CSL_NODES):
            _connect(adj, i, (i + 1) % CSL_NODES)
            _connect(adj, i, (i + CSL_SKIPS[label]) % CSL_NODES)
        out.append(_to_data(adj, _constant_features(CSL_NODES), label, rng))
    return out


_DEFS: dict[str, _TaskDef] = {
    d.spec.name: d
    for d in [
        _TaskDef(
            TaskSpec(
                "connectivity",
                "graph",
                2,
                2,
                "Are the two query nodes (x = [is_query, 1]) connected? Two sides, each a uniform random tree plus "
                "up to size/3 random edges; cases: no bridge, queries on different sides (0, 50%); no bridge, same "
                "side (1, 25%); one bridge edge, different sides (1, 25%). Graphs without a bridge get one more "
                "edge inside a side instead, so the edge count is label-free. Default 12-30 nodes, at least 4.",
            ),
            (12, 30),
            4,
            _connectivity,
        ),
        _TaskDef(
            TaskSpec(
                "color_counting",
                "graph",
                COLOR_CLASSES,
                NUM_COLORS,
                f"Number of nodes of colour 0 (0..{COLOR_CLASSES - 1}, uniform); x is the one-hot colour among "
                f"{NUM_COLORS}, the other nodes take colours 1..{NUM_COLORS - 1} uniformly. Connected graphs: "
                f"random tree plus up to n/2 random edges. Default 12-30 nodes, at least {COLOR_CLASSES}.",
            ),
            (12, 30),
            COLOR_CLASSES,
            _color_counting,
        ),
        _TaskDef(
            TaskSpec(
                "shortest_path",
                "graph",
                MAX_DISTANCE,
                2,
                f"Hop distance between the two query nodes (x = [is_query, 1]); class d - 1 for d = 1.."
                f"{MAX_DISTANCE - 1}, class {MAX_DISTANCE - 1} for d >= {MAX_DISTANCE}. Connected graphs: random "
                "tree plus up to n/4 random edges, kept only when they hold a pair of every class; the query pair "
                f"is drawn uniformly among the pairs of the target class. Default 12-30 nodes, at least "
                f"{MAX_DISTANCE + 1}.",
            ),
            (12, 30),
            MAX_DISTANCE + 1,
            _shortest_path,
        ),
        _TaskDef(
            TaskSpec(
                "cycle_check",
                "graph",
                2,
                1,
                "Does the graph have a cycle? A uniform random tree (0) or the tree plus one random edge (1); "
                "constant x. As in GraphQA, edges - nodes + 1 equals the label. Default 12-30 nodes, at least 3.",
            ),
            (12, 30),
            3,
            _cycle_check,
        ),
        _TaskDef(
            TaskSpec(
                "triangle_counting",
                "graph",
                TRIANGLE_CLASSES,
                1,
                f"Number of triangles, binned 0, 1, .., {TRIANGLE_CLASSES - 2}, >= {TRIANGLE_CLASSES - 1} (the "
                f"top bin holds {TRIANGLE_CLASSES - 1}-{TRIANGLE_CLASSES + 1} triangles); constant x. A random "
                f"tree plus {TRIANGLE_CLASSES + 1} + U{{0..n/4}} edges, a count independent of the class: "
                "triangle-closing edges until the target, then edges closing none. Default 12-30 nodes, at least 8.",
            ),
            (12, 30),
            8,
            _triangle_counting,
        ),
        _TaskDef(
            TaskSpec(
                "node_degree",
                "node",
                DEGREE_CLASSES,
                1,
                f"Each node's degree: class d - 1 for d = 1..{DEGREE_CLASSES - 1}, class {DEGREE_CLASSES - 1} for "
                f"d >= {DEGREE_CLASSES} (top-class nodes have degree {DEGREE_CLASSES} or {DEGREE_CLASSES + 1}); "
                "constant x. Degrees are prescribed (Havel-Hakimi, then degree-preserving edge swaps), so class "
                "counts over the data set differ by at most one. Graphs need not be connected. Default 12-30 "
                "nodes, at least 8.",
            ),
            (12, 30),
            8,
            _node_degree,
        ),
        _TaskDef(
            TaskSpec(
                "pattern",
                "node",
                2,
                PATTERN_SIGNALS,
                f"PATTERN-like (Dwivedi et al.): is the node in the planted pattern? Background: stochastic block "
                f"model with {PATTERN_COMMUNITIES} communities of random sizes, p_in={PATTERN_P_IN}, "
                f"p_out={PATTERN_P_OUT}; pattern: one of {PATTERN_POOL} fixed random graphs on {PATTERN_SIZE} "
                f"nodes (p={PATTERN_P_PATTERN}) with a fixed signal, linked to the background with "
                f"q={PATTERN_Q_PATTERN}; x = one-hot signal in {PATTERN_SIGNALS} values, uniform on the background. "
                f"Labels are imbalanced as in PATTERN ({PATTERN_SIZE} positives per graph, 12-25% at the default "
                f"40-80 nodes): report class-weighted accuracy. At least {PATTERN_SIZE + PATTERN_COMMUNITIES + 1} "
                "nodes.",
            ),
            (40, 80),
            PATTERN_SIZE + PATTERN_COMMUNITIES + 1,
            _pattern,
        ),
        _TaskDef(
            TaskSpec(
                "csl",
                "graph",
                len(CSL_SKIPS),
                1,
                f"Circular Skip Link graphs: a {CSL_NODES}-cycle plus the chords i -> i + R (mod {CSL_NODES}); class "
                f"= index of R in {CSL_SKIPS}; nodes randomly relabelled, constant x. Always {CSL_NODES} nodes.",
            ),
            (CSL_NODES, CSL_NODES),
            CSL_NODES,
            _csl,
        ),
    ]
}

TASKS: dict[str, TaskSpec] = {name: d.spec for name, d in _DEFS.items()}
"""Every task's :class:`TaskSpec`, by name."""


def make_task(
    name: str, num_graphs: int, *, seed: int = 0, num_nodes: tuple[int, int] | None = None
) -> tuple[list[Data], TaskSpec]:
    """Generate a synthetic data set.

    Args:
        name: a key of :data:`TASKS`.
        num_graphs: number of graphs, at least 1.
        seed: seeds the only random generator used; equal arguments give equal data.
        num_nodes: inclusive ``(lo, hi)`` range of graph sizes, drawn uniformly per graph; ``None`` for the
            task's default (see its description). ``csl`` only accepts 41 nodes.

    Returns:
        ``num_graphs`` :class:`Data` objects (``x``: float32 ``(N, in_channels)``, ``edge_index``: int64
        ``(2, E)`` undirected, ``y``: int64 ``(1,)`` or ``(N,)``) and the task's :class:`TaskSpec`.

    Raises:
        ValueError: unknown task, ``num_graphs < 1``, ``lo > hi``, ``lo`` below the task's minimum or a
            negative ``seed``.
        TypeError: ``num_graphs``, ``seed`` or the ``num_nodes`` bounds are not ints, or ``num_nodes`` is not a
            pair.
    """
    if name not in _DEFS:
        raise ValueError(f"unknown task {name!r}; available: {', '.join(sorted(_DEFS))}")
    task = _DEFS[name]
    num_graphs, seed = check_int("num_graphs", num_graphs, 1), check_int("seed", seed, 0)
    if num_nodes is not None and (isinstance(num_nodes, (str, bytes)) or not isinstance(num_nodes, Sequence)
                                  or len(num_nodes) != 2):
        raise TypeError(f"num_nodes must be a (lo, hi) pair of ints or None, got {num_nodes!r}")
    lo, hi = task.default_nodes if num_nodes is None else num_nodes
    lo, hi = check_int("num_nodes[0]", lo, None), check_int("num_nodes[1]", hi, None)
    if lo > hi:
        raise ValueError(f"num_nodes=({lo}, {hi}): lo must not exceed hi")
    if lo < task.min_nodes:
        raise ValueError(f"{name} needs at least {task.min_nodes} nodes per graph, got lo={lo}")
    if name == "csl" and (lo, hi) != (CSL_NODES, CSL_NODES):
        raise ValueError(f"csl graphs have exactly {CSL_NODES} nodes, got num_nodes=({lo}, {hi})")
    rng = np.random.default_rng(seed)
    return task.build(num_graphs, int(lo), int(hi), rng), task.spec


def split(
    data_list: Sequence[Data], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[list[Data], list[Data], list[Data]]:
    """Split graphs into train / validation / test lists.

    Graph-level data (``y`` of one element) are stratified: each class is split by ``fractions`` on its own
    (boundaries rounded per class). Node-level data are split as a whole. Each returned list is shuffled.

    Raises:
        ValueError: empty ``data_list``, ``fractions`` not three finite non-negative numbers summing to 1, or a
            negative ``seed``.
    """
    if len(data_list) == 0:
        raise ValueError("data_list is empty")
    seed = check_int("seed", seed, 0)
    if len(fractions) != 3 or not all(0 <= f < float("inf") for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three finite non-negative numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    if all(d.y.numel() == 1 for d in data_list):
        keys = np.array([int(d.y) for d in data_list])
    else:
        keys = np.zeros(len(data_list), dtype=np.int64)
    bounds = np.cumsum((0.0, *fractions))
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for key in np.unique(keys).tolist():
        members = rng.permutation(np.flatnonzero(keys == key))
        cuts = np.round(bounds * members.size).astype(int)
        for part, start, stop in zip(parts, cuts[:-1], cuts[1:]):
            part.extend(members[start:stop].tolist())
    train, val, test = ([data_list[i] for i in rng.permutation(part).astype(int)] for part in parts)
    return train, val, test
