"""graphs.tokenize: HAC trees, token plans and the hierarchical positional encoding on small graphs."""
from __future__ import annotations

import math

import pytest
import torch

from graphs.tokenize import (
    TOKENIZERS,
    build_plan,
    degree_plan,
    hac,
    hac_bfs_plan,
    hac_dfs_plan,
    hierarchical_pe,
    khop_plan,
    random_walk_plan,
)
from graphs.validation import check_graph


def path(n: int) -> torch.Tensor:
    a = torch.arange(n - 1)
    return torch.stack([torch.cat([a, a + 1]), torch.cat([a + 1, a])])


def grid(side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(edge_index both ways, (side**2, 2) float coordinates) of a side x side grid."""
    idx = torch.arange(side * side).view(side, side)
    right = torch.stack([idx[:, :-1].reshape(-1), idx[:, 1:].reshape(-1)])
    down = torch.stack([idx[:-1].reshape(-1), idx[1:].reshape(-1)])
    e = torch.cat([right, down], 1)
    coords = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1)
    return torch.cat([e, e.flip(0)], 1), coords.reshape(-1, 2).float()


def random_graph(n: int, m: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, n, (2, m), generator=generator)


def batched(graphs: list[tuple[torch.Tensor, torch.Tensor]]):
    """Concatenate (x, edge_index) graphs into (x, edge_index, batch)."""
    xs, es, bs, offset = [], [], [], 0
    for g, (x, e) in enumerate(graphs):
        xs.append(x)
        es.append(e + offset)
        bs.append(torch.full((x.shape[0],), g, dtype=torch.long))
        offset += x.shape[0]
    return torch.cat(xs), torch.cat(es, 1), torch.cat(bs)


def mixed_batch():
    gen = torch.Generator().manual_seed(1)
    e_grid, coords = grid(5)
    return [
        (torch.randn(30, 4, generator=gen), torch.cat([path(30), random_graph(30, 40, gen)], 1)),
        (torch.ones(12, 4), path(12)),  # constant features: structural fallback
        (coords.repeat(1, 2), e_grid),
        (torch.randn(1, 4, generator=gen), torch.zeros(2, 0, dtype=torch.long)),
    ]


# ----------------------------------------------------------------------------------------------- HAC tree


def test_levels_partition_nest_and_stay_in_graphs():
    x, e, batch = batched(mixed_batch())
    tree = hac(x, e, batch)
    previous = torch.arange(x.shape[0])
    for level in range(tree.num_levels):
        a = tree.assignment[level]
        count = int(a.max()) + 1
        assert torch.equal(torch.unique(a), torch.arange(count))  # contiguous ids, every cluster non-empty
        assert tree.cluster_graph[level].numel() == count
        assert torch.equal(tree.cluster_graph[level][a], batch)  # no cluster crosses graphs
        assert bool((tree.cluster_graph[level].diff() >= 0).all())
        # nesting: each cluster of the level below lies in exactly one cluster of this level
        pairs = torch.unique(previous * x.shape[0] + a)
        assert pairs.numel() == int(previous.max()) + 1
        previous = a
    # every graph ends as one cluster per connected component (all four graphs are connected)
    assert torch.equal(tree.cluster_graph[-1], torch.arange(4))


def test_levels_are_logarithmic_and_merge_every_round():
    gen = torch.Generator().manual_seed(0)
    for e, n in [(path(200), 200), (grid(12)[0], 144)]:
        tree = hac(torch.randn(n, 3, generator=gen), e)
        sizes = [int(a.max()) + 1 for a in tree.assignment]
        assert 2 <= tree.num_levels <= math.floor(math.log2(n))
        assert sizes[-1] == 1
        assert all(b <= a // 2 for a, b in zip([n] + sizes, sizes))  # Boruvka: at least halves


def test_components_end_as_top_clusters():
    e = torch.cat([path(10), path(7) + 10, path(5) + 17], 1)  # components 0-9, 10-16, 17-21, isolated 22, 23
    tree = hac(torch.randn(24, 3), e)
    top = tree.assignment[-1]
    assert int(top.max()) + 1 == 5
    for members in [range(10), range(10, 17), range(17, 22)]:
        assert torch.unique(top[list(members)]).numel() == 1
    assert len({int(top[0]), int(top[10]), int(top[17]), int(top[22]), int(top[23])}) == 5
    limited = hac(torch.randn(24, 3), e, max_levels=1)
    assert limited.num_levels == 1 and int(limited.assignment[0].max()) + 1 > 5


def test_structural_fallback_for_constant_or_missing_features():
    e, _ = grid(8)
    for x in [torch.ones(64, 3), None, torch.zeros(64, 0)]:
        tree = hac(x, e, num_nodes=64)
        assert bool(tree.structural.all())
        assert tree.num_levels > 1 and int(tree.assignment[0].max()) + 1 < 40
        assert int(tree.assignment[-1].max()) == 0
    assert not bool(hac(torch.randn(64, 3), e).structural.any())
    x, e, batch = batched(mixed_batch())
    assert hac(x, e, batch).structural.tolist() == [False, True, False, True]  # one node: constant
    assert hac(x, e, batch, affinity="structural").structural.tolist() == [True] * 4


def test_callable_affinity_matches_builtin_cosine_and_seed_is_deterministic():
    gen = torch.Generator().manual_seed(3)
    x, e = torch.randn(60, 5, generator=gen), random_graph(60, 150, gen)
    cosine = lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=1)  # noqa: E731
    t1, t2 = hac(x, e), hac(x, e, affinity=cosine)
    assert t1.num_levels == t2.num_levels
    assert all(torch.equal(a, b) for a, b in zip(t1.assignment, t2.assignment))
    # an affinity that prefers the least similar neighbour gives a different tree
    t3 = hac(x, e, affinity=lambda a, b: -cosine(a, b))
    assert not torch.equal(t1.assignment[0], t3.assignment[0])
    # structural trees depend on the seed only through the random draws: same seed, same tree
    ones = torch.ones(60, 2)
    s1, s2 = hac(ones, e, seed=5), hac(ones, e, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(s1.assignment, s2.assignment))


def test_link_components_match_the_general_algorithm_on_any_links():
    # random "nearest neighbour" maps, including the cycles of length >= 3 an asymmetric affinity could make
    from graphs.tokenize.clustering import _components, _link_components

    gen = torch.Generator().manual_seed(8)
    for _ in range(100):
        n = int(torch.randint(1, 40, (1,), generator=gen))
        nearest = torch.randint(-1, n, (n,), generator=gen)
        nearest = torch.where(nearest == torch.arange(n), -1, nearest)
        linked = (nearest >= 0).nonzero().squeeze(1)
        fast, general = _link_components(nearest), _components(linked, nearest[linked], n)
        assert torch.equal(fast[0], general[0]) and fast[1] == general[1]
    cycle = torch.tensor([1, 2, 3, 0, 5, 4, -1])  # a 4-cycle, a mutual pair, a lone node
    assert _link_components(cycle)[0].tolist() == [0, 0, 0, 0, 1, 1, 2]


def test_undirected_duplicates_and_self_loops_do_not_change_the_tree():
    gen = torch.Generator().manual_seed(4)
    x, e = torch.randn(40, 3, generator=gen), random_graph(40, 90, gen)
    reference = hac(x, e)
    noisy = torch.cat([e.flip(0), e, torch.arange(40).repeat(2, 1), e[:, :20]], 1)
    other = hac(x, noisy)
    assert all(torch.equal(a, b) for a, b in zip(reference.assignment, other.assignment))


def test_graphs_without_edges_or_nodes():
    tree = hac(torch.randn(5, 2), torch.tensor([[0, 3], [0, 3]]))  # self-loops only
    assert tree.num_levels == 1 and torch.equal(tree.assignment[0], torch.arange(5))
    empty = hac(torch.zeros(0, 2), torch.zeros(2, 0, dtype=torch.long))
    assert empty.num_levels == 1 and empty.assignment[0].numel() == 0
    for name in TOKENIZERS:
        plan = build_plan(name, torch.zeros(0, 2), torch.zeros(2, 0, dtype=torch.long))
        assert plan.cu_seqlens.tolist() == [0] and plan.num_tokens == 0
        assert plan.scatter(plan.gather(torch.zeros(0, 2))).shape == (0, 2)


# ---------------------------------------------------------------------------------------------- orderings


def test_dfs_order_keeps_grid_neighbours_close():
    gen = torch.Generator().manual_seed(5)
    side = 24
    e, coords = grid(side)
    n = side * side
    relabel = torch.randperm(n, generator=gen)  # node i becomes relabel[i]
    x = torch.empty_like(coords)
    x[relabel] = coords
    e = relabel[e]
    plan = build_plan("hac_dfs", x, e)
    position = torch.empty(n, dtype=torch.long)
    position[plan.pool_node] = torch.arange(n)
    gap = (position[e[0]] - position[e[1]]).abs().float().median()
    random_position = torch.randperm(n, generator=gen)
    random_gap = (random_position[e[0]] - random_position[e[1]]).abs().float().median()
    assert gap < random_gap / 10, (gap, random_gap)  # measured: about 1/40


def test_hac_dfs_is_equivariant_to_relabelling():
    gen = torch.Generator().manual_seed(6)
    n = 50
    x, e = torch.randn(n, 4, generator=gen), random_graph(n, 120, gen)
    relabel = torch.randperm(n, generator=gen)
    x2 = torch.empty_like(x)
    x2[relabel] = x
    for name in ["hac_dfs", "hac_bfs"]:
        p1, p2 = build_plan(name, x, e), build_plan(name, x2, relabel[e])
        assert torch.equal(p1.cu_seqlens, p2.cu_seqlens)
        assert torch.allclose(p1.gather(x), p2.gather(x2), atol=1e-6)
    assert torch.equal(relabel[build_plan("hac_dfs", x, e).pool_node], build_plan("hac_dfs", x2, relabel[e]).pool_node)


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_every_plan_is_well_formed(name):
    x, e, batch = batched(mixed_batch())
    batch = torch.where(batch >= 2, batch + 1, batch)  # graph 2 has no nodes
    n = x.shape[0]
    plan = build_plan(name, x, e, batch)
    cu = plan.cu_seqlens
    assert bool((cu.diff() > 0).all()) and int(cu[-1]) == plan.num_tokens
    assert 2 not in plan.seq_graph.tolist() and bool((plan.seq_graph.diff() >= 0).all())
    assert set(plan.read_node.tolist()) == set(range(n))
    assert int(plan.pool_token.max()) < plan.num_tokens and int(plan.read_token.max()) < plan.num_tokens
    # every token's members and readers belong to the graph of its sequence
    token_graph = plan.seq_graph.repeat_interleave(cu.diff())
    assert torch.equal(batch[plan.pool_node], token_graph[plan.pool_token])
    assert torch.equal(batch[plan.read_node], token_graph[plan.read_token])
    tokens = plan.gather(x)
    assert tokens.shape == (plan.num_tokens, 4) and plan.scatter(tokens).shape == (n, 4)
    if name in ("hac_dfs", "node_id", "degree"):
        assert plan.one_node_per_token and sorted(plan.pool_node.tolist()) == list(range(n))
        assert torch.equal(plan.scatter(tokens), x)


@pytest.mark.parametrize("name", sorted(TOKENIZERS))
def test_batch_equals_per_graph_plans(name):
    graphs = mixed_batch()
    x, e, batch = batched(graphs)
    whole = build_plan(name, x, e, batch, seed=3)
    token_offset = node_offset = 0
    pools, reads, cus, seq_graphs = [], [], [whole.cu_seqlens.new_zeros(1)], []
    for g, (xg, eg) in enumerate(graphs):
        p = build_plan(name, xg, eg, seed=3)
        pools.append(torch.stack([p.pool_token + token_offset, p.pool_node + node_offset]))
        reads.append(torch.stack([p.read_token + token_offset, p.read_node + node_offset]))
        cus.append(p.cu_seqlens[1:] + token_offset)
        seq_graphs.append(p.seq_graph + g)
        token_offset += p.num_tokens
        node_offset += xg.shape[0]

    def canonical(pairs):
        return torch.sort(pairs[0] * node_offset + pairs[1]).values

    assert torch.equal(whole.cu_seqlens, torch.cat(cus))
    assert torch.equal(whole.seq_graph, torch.cat(seq_graphs))
    assert torch.equal(canonical(torch.stack([whole.pool_token, whole.pool_node])), canonical(torch.cat(pools, 1)))
    assert torch.equal(canonical(torch.stack([whole.read_token, whole.read_node])), canonical(torch.cat(reads, 1)))


def test_hac_bfs_tokens_are_cluster_means_top_down():
    gen = torch.Generator().manual_seed(7)
    n = 16
    x, e = torch.randn(n, 3, generator=gen), path(n)
    tree = hac(x, e)
    plan = hac_bfs_plan(tree, torch.zeros(n, dtype=torch.long), n)
    tokens = plan.gather(x)
    clusters: set[frozenset[int]] = set()
    expected = []
    for level in range(tree.num_levels, 0, -1):
        a = tree.assignment[level - 1]
        level_sets = []
        for c in range(int(a.max()) + 1):
            members = frozenset((a == c).nonzero().squeeze(1).tolist())
            if members not in clusters:
                clusters.add(members)
                level_sets.append(members)
        expected.append(level_sets)
    # one token per distinct cluster, levels from the top down, each token the mean of its members
    assert plan.num_tokens == sum(len(s) for s in expected) and plan.cu_seqlens.tolist() == [0, plan.num_tokens]
    start = 0
    for level_sets in expected:
        got = {frozenset(plan.pool_node[plan.pool_token == t].tolist()) for t in range(start, start + len(level_sets))}
        assert got == set(level_sets)
        start += len(level_sets)
    for t in range(plan.num_tokens):
        members = plan.pool_node[plan.pool_token == t]
        assert torch.allclose(tokens[t], x[members].mean(0))
    # a node reads exactly the tokens that contain it
    for v in range(n):
        assert set(plan.read_token[plan.read_node == v].tolist()) == set(plan.pool_token[plan.pool_node == v].tolist())


def test_degree_plan_sorts_by_degree_with_random_ties():
    # a star (centre 0, leaves 1..5) with a tail 5-6-7 and a duplicate edge, a self-loop and one direction only
    e = torch.tensor([[0, 0, 0, 0, 0, 5, 6, 0, 3], [1, 2, 3, 4, 5, 6, 7, 1, 3]])
    plan = degree_plan(e, torch.zeros(8, dtype=torch.long), 8)
    degree = torch.tensor([5, 1, 1, 1, 1, 2, 2, 1])
    assert degree[plan.pool_node].tolist() == [1, 1, 1, 1, 1, 2, 2, 5]
    orders = {tuple(degree_plan(e, torch.zeros(8, dtype=torch.long), 8, seed=s).pool_node.tolist()) for s in range(8)}
    assert len(orders) > 1


def test_khop_tokens_are_hop_means():
    x = torch.arange(5, dtype=torch.float)[:, None] ** 2  # 0, 1, 4, 9, 16 on the path 0-1-2-3-4
    plan = khop_plan(path(5), torch.zeros(5, dtype=torch.long), 5, k=3)
    tokens = plan.gather(x).view(5, 4)
    assert tokens[0].tolist() == [9.0, 4.0, 1.0, 0.0]
    assert tokens[2].tolist() == [0.0, 8.0, 5.0, 4.0]
    assert tokens[4].tolist() == [1.0, 4.0, 9.0, 16.0]
    assert torch.equal(plan.scatter(plan.gather(x)), x)


def test_random_walk_follows_edges_and_ends_at_start():
    e = torch.cat([path(6), torch.tensor([[0], [5]])], 1)  # a 6-cycle given partly one way; node 6 isolated
    n, steps = 7, 10
    plan = random_walk_plan(e, torch.zeros(n, dtype=torch.long), n, walk_length=steps, seed=1)
    walks = plan.pool_node.view(n, steps + 1)
    assert torch.equal(walks[:, -1], torch.arange(n))
    assert torch.equal(plan.read_token, torch.arange(n) * (steps + 1) + steps)
    ring = walks[:6]
    step = (ring[:, 1:] - ring[:, :-1]) % 6
    assert bool(((step == 1) | (step == 5)).all())  # every step moves to a ring neighbour
    assert bool((walks[6] == 6).all())
    assert len({tuple(w) for w in ring.tolist()}) > 1 and bool((step == 1).any() and (step == 5).any())


# ---------------------------------------------------------------------------------------- positional encoding


def test_hierarchical_pe_values_and_batching():
    tree = hac(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), path(2))
    pe = hierarchical_pe(tree, torch.zeros(2, dtype=torch.long), 2, max_levels=3)
    assert pe.shape == (2, 12)
    rows = sorted(pe[:, :4].tolist())
    assert rows[0] == pytest.approx([0.0, 1.0, 0.0, 0.0])  # first child: theta = 0, distance 0
    assert rows[1] == pytest.approx([1.0, 0.0, 0.0, 1 / 8], abs=1e-6)  # second of two: theta = pi / 2, 1 hop
    assert bool((pe[:, 4:] == 0).all())  # above the top of the tree

    x, e, batch = batched(mixed_batch())
    whole = hierarchical_pe(hac(x, e, batch), batch, x.shape[0], dim_per_level=6)
    parts = [hierarchical_pe(hac(xg, eg), torch.zeros(xg.shape[0], dtype=torch.long), xg.shape[0], dim_per_level=6)
             for xg, eg in mixed_batch()]
    assert whole.shape == (x.shape[0], 48)
    assert torch.equal(whole, torch.cat(parts))
    # the level-1 cluster size column holds log of the cluster's node count
    tree = hac(x, e, batch)
    sizes = torch.bincount(tree.assignment[0])[tree.assignment[0]].float()
    active = whole[:, 6 + 3] != 0
    assert torch.allclose(whole[active, 6 + 4], torch.log(sizes[active]))


# ---------------------------------------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_clear_errors():
    e = torch.tensor([[0, 1], [1, 2]])
    with pytest.raises(TypeError, match="int64.*float32"):
        check_graph(e.float(), 3)
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        check_graph(torch.zeros(3, 4, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="node 2 .*num_nodes=2"):
        check_graph(e, 2)
    with pytest.raises(ValueError, match="negative"):
        check_graph(-e, 3)
    with pytest.raises(ValueError, match="sorted.*Batch"):
        check_graph(e, 3, torch.tensor([1, 0, 0]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        check_graph(e, 3, torch.tensor([0, 0]))
    with pytest.raises(TypeError, match="batch must be int64"):
        check_graph(e, 3, torch.tensor([0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="joins graph 0 to graph 1"):
        check_graph(e, 3, torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="unknown tokenizer 'bogus'.*hac_dfs"):
        build_plan("bogus", None, e)
    with pytest.raises(ValueError, match="affinity"):
        hac(None, e, affinity="euclid")
    with pytest.raises(ValueError, match="x is required"):
        hac(None, e, affinity=lambda a, b: a.sum(1))
    with pytest.raises(TypeError, match="int64"):
        build_plan("khop", None, e.int())
    with pytest.raises(ValueError, match=r"return a \(2,\) tensor"):
        hac(torch.randn(3, 2), e, affinity=lambda a, b: a)
    with pytest.raises(ValueError, match="NaN or infinite"):
        hac(torch.tensor([[0.0], [float("nan")], [1.0]]), e)
    with pytest.raises(ValueError, match="max_levels"):
        hac(None, e, max_levels=0)
    with pytest.raises(ValueError, match=r"x must have shape \(3, F\)"):
        build_plan("hac_dfs", torch.randn(4, 2), e, num_nodes=3)
    with pytest.raises(ValueError, match="dim_per_level"):
        hierarchical_pe(hac(None, e), torch.zeros(3, dtype=torch.long), 3, dim_per_level=5)
    with pytest.raises(ValueError, match="covers 3 nodes"):
        hac_dfs_plan(hac(None, e), torch.zeros(4, dtype=torch.long), 4)
    _, batch = check_graph(torch.zeros(2, 0, dtype=torch.long), 3)
    assert torch.equal(batch, torch.zeros(3, dtype=torch.long))
