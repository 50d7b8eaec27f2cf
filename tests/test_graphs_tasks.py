"""Synthetic graph tasks (graphs.tasks) and offline data loading (graphs.datasets), checked against networkx."""
from __future__ import annotations

import os
import warnings
from collections import Counter

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from crafted import WritesMarker
from graph_files import write_tu
from graphs.datasets import karate_club, load_local_dataset
from graphs.tasks import CSL_NODES, CSL_SKIPS, PATTERN_SIZE, TASKS, make_task, split

NUM_GRAPHS = 30
SMALL = {"pattern": (20, 30)}  # the other tasks keep their (already small) defaults


def _make(name: str, num_graphs: int = NUM_GRAPHS, seed: int = 0) -> list[Data]:
    data, spec = make_task(name, num_graphs, seed=seed, num_nodes=SMALL.get(name))
    assert spec == TASKS[name]
    return data


@pytest.fixture(scope="module")
def datasets() -> dict[str, list[Data]]:
    return {name: _make(name) for name in TASKS}


def _nx(data: Data) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(range(data.num_nodes))
    graph.add_edges_from(data.edge_index.t().tolist())
    return graph


def _queries(data: Data) -> list[int]:
    return torch.nonzero(data.x[:, 0]).view(-1).tolist()


@pytest.mark.parametrize("name", sorted(TASKS))
def test_structure_shapes_and_dtypes(datasets, name):
    spec = TASKS[name]
    for d in datasets[name]:
        n = d.num_nodes
        assert d.x.dtype == torch.float32 and d.x.shape == (n, spec.in_channels)
        assert d.edge_index.dtype == torch.int64 and d.edge_index.dim() == 2 and d.edge_index.size(0) == 2
        assert d.y.dtype == torch.int64 and d.y.shape == ((1,) if spec.level == "graph" else (n,))
        assert 0 <= int(d.y.min()) and int(d.y.max()) < spec.num_classes
        pairs = d.edge_index.t().tolist()
        assert all(u != v for u, v in pairs), "self-loop"
        assert len(set(map(tuple, pairs))) == len(pairs), "duplicate edge"
        assert set(map(tuple, pairs)) == {(v, u) for u, v in pairs}, "not undirected"
        assert pairs == sorted(pairs)
        assert int(d.edge_index.max()) < n


@pytest.mark.parametrize("name", sorted(TASKS))
def test_deterministic_under_seed_and_varies_with_it(datasets, name):
    again = _make(name)
    other = _make(name, seed=1)
    for a, b in zip(datasets[name], again):
        assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index) and torch.equal(a.y, b.y)
    assert any(
        a.edge_index.shape != b.edge_index.shape or not torch.equal(a.edge_index, b.edge_index)
        for a, b in zip(datasets[name], other)
    )


@pytest.mark.parametrize("name", sorted(set(TASKS) - {"pattern"}))
def test_labels_balanced(datasets, name):
    spec = TASKS[name]
    counts = torch.bincount(torch.cat([d.y for d in datasets[name]]), minlength=spec.num_classes)
    assert int(counts.max() - counts.min()) <= 1, counts.tolist()


def test_graph_level_balance_with_a_remainder():
    counts = Counter(int(d.y) for d in make_task("triangle_counting", 13, seed=4)[0])
    assert sorted(counts.values()) == [2, 2, 3, 3, 3]


def test_pattern_labels_and_features():
    data = _make("pattern")
    for d in data:
        assert int(d.y.sum()) == PATTERN_SIZE
        assert torch.equal(d.x.sum(1), torch.ones(d.num_nodes))  # one-hot signal
    # Patterns come from a fixed pool, so different seeds plant the same signals.
    signatures = {tuple(d.x[d.y == 1].argmax(1).sort().values.tolist()) for d in data + _make("pattern", seed=7)}
    assert len(signatures) <= 20


def test_connectivity_against_networkx(datasets):
    cases = Counter()
    for d in datasets["connectivity"]:
        graph = _nx(d)
        u, v = _queries(d)
        assert torch.equal(d.x[:, 1], torch.ones(d.num_nodes))
        assert int(d.y) == int(nx.has_path(graph, u, v))
        components = nx.number_connected_components(graph)
        assert components in (1, 2)
        cases[(components, int(d.y))] += 1
    # 50% disconnected queries, 25% same side without a bridge, 25% joined by one bridge.
    assert cases[(2, 0)] == NUM_GRAPHS // 2 and cases[(2, 1)] + cases[(1, 1)] == NUM_GRAPHS // 2
    assert abs(cases[(2, 1)] - cases[(1, 1)]) <= 1


def test_color_counting_against_features(datasets):
    for d in datasets["color_counting"]:
        assert int(d.y) == int((d.x.argmax(1) == 0).sum())
        assert nx.is_connected(_nx(d))


def test_shortest_path_against_networkx(datasets):
    top = TASKS["shortest_path"].num_classes
    for d in datasets["shortest_path"]:
        graph = _nx(d)
        assert nx.is_connected(graph)
        u, v = _queries(d)
        assert int(d.y) == min(nx.shortest_path_length(graph, u, v), top) - 1


def test_cycle_check_against_networkx(datasets):
    for d in datasets["cycle_check"]:
        graph = _nx(d)
        assert nx.is_connected(graph)
        assert nx.is_tree(graph) == (int(d.y) == 0)
        assert len(nx.cycle_basis(graph)) == int(d.y)
        assert torch.equal(d.x, torch.ones(d.num_nodes, 1))


def test_triangle_counting_against_networkx(datasets):
    top = TASKS["triangle_counting"].num_classes - 1
    for d in datasets["triangle_counting"]:
        triangles = sum(nx.triangles(_nx(d)).values()) // 3
        assert int(d.y) == min(triangles, top)
        assert triangles <= top + 2


def test_node_degree_against_networkx(datasets):
    top = TASKS["node_degree"].num_classes - 1
    for d in datasets["node_degree"]:
        graph = _nx(d)
        expected = [min(graph.degree[v], top + 1) - 1 for v in range(d.num_nodes)]
        assert d.y.tolist() == expected


def _spectrum(graph: nx.Graph) -> tuple[float, ...]:
    # Circulant graphs of prime order are isomorphic exactly when cospectral (Elspas & Turner), and the CSL graphs
    # are circulants C_41(1, R), so the adjacency spectrum identifies R; the test also checks it separates them.
    eigenvalues = np.linalg.eigvalsh(nx.to_numpy_array(graph, nodelist=sorted(graph.nodes)))
    return tuple(np.round(eigenvalues, 6).tolist())


def test_csl_skip_length_recoverable(datasets):
    profiles = {}
    for r in CSL_SKIPS:
        canonical = nx.circulant_graph(CSL_NODES, [1, r])
        profiles[_spectrum(canonical)] = CSL_SKIPS.index(r)
    assert len(profiles) == len(CSL_SKIPS)
    for d in datasets["csl"]:
        graph = _nx(d)
        assert d.num_nodes == CSL_NODES and all(deg == 4 for _, deg in graph.degree)
        assert profiles[_spectrum(graph)] == int(d.y)
    # Relabelling: node 0's neighbours are not the canonical {1, 40, R, 41 - R}.
    skips = [CSL_SKIPS[int(d.y)] for d in datasets["csl"]]
    canonical = [{1, CSL_NODES - 1, r, CSL_NODES - r} for r in skips]
    assert any(set(_nx(d).neighbors(0)) != nbrs for d, nbrs in zip(datasets["csl"], canonical))


@pytest.mark.parametrize(
    ("name", "num_graphs", "num_nodes", "error", "match"),
    [
        ("no_such_task", 4, None, ValueError, "connectivity"),
        ("cycle_check", 0, None, ValueError, "num_graphs"),
        ("cycle_check", 2.5, None, TypeError, "num_graphs"),
        ("cycle_check", 4, (20, 10), ValueError, "lo"),
        ("connectivity", 4, (3, 10), ValueError, "at least 4"),
        ("triangle_counting", 4, (5, 10), ValueError, "at least 8"),
        ("pattern", 4, (10, 20), ValueError, "at least"),
        ("csl", 4, (41, 42), ValueError, "41"),
    ],
)
def test_bad_arguments_raise(name, num_graphs, num_nodes, error, match):
    with pytest.raises(error, match=match):
        make_task(name, num_graphs, num_nodes=num_nodes)


MINIMUM_NODES = {
    "connectivity": 4, "color_counting": 5, "shortest_path": 6, "cycle_check": 3,
    "triangle_counting": 8, "node_degree": 8, "pattern": 14, "csl": 41,
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_minimum_sizes(name):
    lo = MINIMUM_NODES[name]
    data, _ = make_task(name, 10, num_nodes=(lo, lo))
    assert all(d.num_nodes == lo for d in data)
    if name != "csl":
        with pytest.raises(ValueError, match=f"at least {lo}"):
            make_task(name, 10, num_nodes=(lo - 1, lo))


def test_split_is_stratified_disjoint_and_seeded(datasets):
    data = datasets["csl"] * 2  # 6 graphs per class
    train, val, test = split(data, (0.5, 0.25, 0.25), seed=3)
    assert len(train) + len(val) + len(test) == len(data)
    assert {id(d) for d in train} | {id(d) for d in val} | {id(d) for d in test} == {id(d) for d in data}
    assert set(Counter(int(d.y) for d in train).values()) == {3}
    again = split(data, (0.5, 0.25, 0.25), seed=3)
    assert [id(d) for d in again[0]] == [id(d) for d in train]
    node_level = split(datasets["node_degree"], seed=0)
    assert [len(p) for p in node_level] == [24, 3, 3]
    with pytest.raises(ValueError):
        split(data, (0.5, 0.5, 0.5))
    with pytest.raises(ValueError):
        split([])


def test_karate_club_masks():
    data = karate_club(num_train_per_class=3, seed=1)
    assert data.num_nodes == 34 and data.x.shape == (34, 34) and data.edge_index.shape == (2, 156)
    assert torch.bincount(data.y).tolist() == [17, 17]
    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert masks.dtype == torch.bool and torch.equal(masks.sum(0), torch.ones(34, dtype=torch.long))
    assert torch.bincount(data.y[data.train_mask]).tolist() == [3, 3]
    assert int(data.val_mask.sum()) == 14 and int(data.test_mask.sum()) == 14
    assert not torch.equal(data.train_mask, karate_club(num_train_per_class=3, seed=2).train_mask)
    assert set(map(tuple, data.edge_index.t().tolist())) == {
        e for u, v in nx.karate_club_graph().edges() for e in ((u, v), (v, u))
    }
    with pytest.raises(ValueError):
        karate_club(num_train_per_class=17)


def test_load_local_tu_dataset(tmp_path, offline):
    graphs = [
        (3, [(0, 1), (1, 2)], -1, [0, 1, 0]),
        (4, [(0, 1), (1, 2), (2, 3), (3, 0)], 1, [2, 2, 1, 0]),
        (2, [(0, 1)], 1, [1, 1]),
    ]
    write_tu(tmp_path, "TOY", graphs)
    dataset = load_local_dataset(str(tmp_path), "TOY")
    assert len(dataset) == 3 and dataset.num_classes == 2
    for d, (n, edges, label, node_labels) in zip(dataset, graphs):
        assert d.num_nodes == n
        assert set(map(tuple, d.edge_index.t().tolist())) == {e for u, v in edges for e in ((u, v), (v, u))}
        assert int(d.y) == (0 if label == -1 else 1)
        assert d.x.argmax(1).tolist() == node_labels and d.x.shape == (n, 3)
    # A processed copy alone is enough, still without any download.
    for f in (tmp_path / "TOY" / "raw").iterdir():
        f.unlink()
    again = load_local_dataset(str(tmp_path), "TOY")
    assert torch.equal(again[1].edge_index, dataset[1].edge_index)


def test_load_local_dataset_missing_files(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match="MUTAG_A.txt") as info:
        load_local_dataset(str(tmp_path), "MUTAG")
    assert os.path.join(str(tmp_path), "MUTAG", "raw") in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"ind\.cora\.x"):
        load_local_dataset(str(tmp_path), "Cora", kind="Planetoid")
    # Layouts the pre-check does not model (the cleaned TU copies live in raw_cleaned/) still refuse to download.
    write_tu(tmp_path, "TOY", [(2, [(0, 1)], 0, [0, 1])])
    with pytest.raises(FileNotFoundError, match="raw_cleaned"):
        load_local_dataset(str(tmp_path), "TOY", cleaned=True)
    with pytest.raises(ValueError, match="kind"):
        load_local_dataset(str(tmp_path), "MUTAG", kind="OGB")


def write_planetoid(root, name: str, num_train: int = 10, num_test: int = 10, num_nodes: int = 520) -> None:
    """Planetoid raw files (pickled scipy/numpy parts, as the original data sets ship them).

    torch_geometric takes the 500 nodes after the training ones as the validation split, hence the 520 nodes.
    """
    import pickle
    from collections import defaultdict

    import scipy.sparse as sp

    raw = root / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    features = (rng.random((num_nodes, 5)) < 0.4).astype(np.float32)
    labels = np.eye(3, dtype=np.int64)[np.arange(num_nodes) % 3]
    known = num_nodes - num_test
    test_index = rng.permutation(np.arange(known, num_nodes))
    graph = defaultdict(list)
    for v in range(num_nodes):
        graph[v] += [(v + 1) % num_nodes, (v - 1) % num_nodes]
    parts = {
        "x": sp.csr_matrix(features[:num_train]), "y": labels[:num_train],
        "allx": sp.csr_matrix(features[:known]), "ally": labels[:known],
        "tx": sp.csr_matrix(features[test_index]), "ty": labels[test_index], "graph": graph,
    }
    prefix = raw / f"ind.{name.lower()}"
    for part, value in parts.items():
        with open(f"{prefix}.{part}", "wb") as f:
            pickle.dump(value, f)
    (raw / f"ind.{name.lower()}.test.index").write_text("\n".join(map(str, test_index)) + "\n")


def _toy_dataset(root, kind: str):
    if kind == "TUDataset":
        write_tu(root, "TOY", [(3, [(0, 1), (1, 2)], 0, [0, 1, 0]), (2, [(0, 1)], 1, [1, 1])])
    else:
        write_planetoid(root, "TOY")
    return load_local_dataset(str(root), "TOY", kind=kind)


def _same_graphs(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x.edge_index, y.edge_index) and torch.equal(x.x, y.x) and torch.equal(x.y, y.y) for x, y in zip(a, b)
    )


def test_load_local_planetoid_dataset(tmp_path, offline):
    dataset = _toy_dataset(tmp_path, "Planetoid")
    data = dataset[0]
    assert data.num_nodes == 520 and data.x.shape == (520, 5) and dataset.num_classes == 3
    assert int(data.train_mask.sum()) == 10 and int(data.val_mask.sum()) == 500 and int(data.test_mask.sum()) == 10
    assert torch.equal(data.y, torch.arange(520) % 3)
    assert data.edge_index.shape == (2, 1040)


@pytest.mark.parametrize("kind", ["TUDataset", "Planetoid"])
@pytest.mark.parametrize("cached", ["data.pt", "pre_transform.pt", "pre_filter.pt"])
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "no_raw"])
def test_crafted_processed_file_never_runs(tmp_path, offline, kind, cached, raw):
    """A processed file that needs more than weights_only=True is never unpickled: with the raw files at hand
    the cache is rebuilt from them (with a warning naming the file), without them it is refused."""
    data_root = tmp_path / "data"
    built = _toy_dataset(data_root, kind)
    marker = tmp_path / "marker"
    torch.save(WritesMarker(marker), data_root / "TOY" / "processed" / cached)
    if not raw:
        for f in (data_root / "TOY" / "raw").iterdir():
            f.unlink()
        with pytest.raises(ValueError, match=rf"processed.{cached}.*cannot be loaded safely"):
            load_local_dataset(str(data_root), "TOY", kind=kind)
    else:
        with pytest.warns(UserWarning, match=rf"processed.{cached}.*rebuilding it from the raw files"):
            rebuilt = load_local_dataset(str(data_root), "TOY", kind=kind)
        assert _same_graphs(rebuilt, built)
        # The rebuilt cache is safe again: the next load reads it without a warning.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert _same_graphs(load_local_dataset(str(data_root), "TOY", kind=kind), built)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["TUDataset", "Planetoid"])
@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "not_a_dataset"])
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "no_raw"])
def test_interrupted_or_foreign_cache(tmp_path, offline, kind, damage, raw):
    """A cache cut short by a crash (or not written by torch_geometric at all) is rebuilt or refused."""
    built = _toy_dataset(tmp_path, kind)
    path = tmp_path / "TOY" / "processed" / "data.pt"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    else:
        torch.save({"weights": torch.ones(3)}, path)
    if not raw:
        for f in (tmp_path / "TOY" / "raw").iterdir():
            f.unlink()
        with pytest.raises(ValueError, match=r"processed.data\.pt.*cannot be loaded"):
            load_local_dataset(str(tmp_path), "TOY", kind=kind)
    else:
        with pytest.warns(UserWarning, match=r"processed.data\.pt.*rebuilding it from the raw files"):
            assert _same_graphs(load_local_dataset(str(tmp_path), "TOY", kind=kind), built)


@pytest.mark.parametrize("part", ["x", "graph", "ally"])
def test_crafted_planetoid_raw_pickle_never_runs(tmp_path, offline, part):
    """Planetoid's raw files are pickles: only numpy arrays, scipy sparse matrices and plain containers load."""
    write_planetoid(tmp_path, "TOY")
    marker = tmp_path / "marker"
    path = tmp_path / "TOY" / "raw" / f"ind.toy.{part}"
    import pickle

    path.write_bytes(pickle.dumps(WritesMarker(marker)))
    with pytest.raises(ValueError, match=rf"ind\.toy\.{part} refers to pathlib\.Path\.write_text"):
        load_local_dataset(str(tmp_path), "TOY", kind="Planetoid")
    assert not marker.exists()


def test_malformed_raw_files_name_the_folder(tmp_path, offline):
    write_tu(tmp_path, "TOY", [(3, [(0, 1), (1, 2)], 0, [0, 1, 0])])
    (tmp_path / "TOY" / "raw" / "TOY_A.txt").write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match=r"TOY.raw"):
        load_local_dataset(str(tmp_path), "TOY")
    write_planetoid(tmp_path / "p", "TOY")
    (tmp_path / "p" / "TOY" / "raw" / "ind.toy.x").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match=r"ind\.toy\.x"):
        load_local_dataset(str(tmp_path / "p"), "TOY", kind="Planetoid")
