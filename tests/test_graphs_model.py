"""GSM++ layers and models: shapes, packed equals per-graph, equivariance, mixture routing, training, bad input."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from graphs import GNNBaseline, GSMConv, GSMPlusPlus, TokenizationMixture
from graphs.tasks import make_task
from graphs.tokenize import build_plan
from graphs.training import fit_classifier

C = 16


def random_graph(n: int, extra: int, features: int, seed: int) -> Data:
    """A connected graph: a random tree plus ``extra`` random edges, both directions, distinct random features."""
    gen = torch.Generator().manual_seed(seed)
    parent = [int(torch.randint(0, i, (), generator=gen)) for i in range(1, n)]
    src = torch.tensor([*range(1, n), *torch.randint(0, n, (extra,), generator=gen).tolist()])
    dst = torch.tensor([*parent, *torch.randint(0, n, (extra,), generator=gen).tolist()])
    keep = src != dst
    edge_index = torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])])
    return Data(x=torch.randn(n, features, generator=gen), edge_index=edge_index, num_nodes=n)


def model(**kwargs) -> GSMPlusPlus:
    torch.manual_seed(0)
    options = {"layers": ("mamba2", "attention"), "tokenization": "hac_dfs", "task": "node"} | kwargs
    return GSMPlusPlus(6, C, 3, **options).eval()


@pytest.mark.parametrize("tokenization", ["hac_dfs", "hac_bfs", "degree", "khop", "random_walk", "node_id"])
@pytest.mark.parametrize("layers", [("mamba2",), ("attention",), ("gla", "attention")])
def test_packed_batch_equals_each_graph_alone(tokenization: str, layers: tuple[str, ...]):
    graphs = [random_graph(n, 4, 6, seed) for seed, n in enumerate([7, 1, 15, 4])]
    net = model(layers=layers, tokenization=tokenization)
    batch = Batch.from_data_list(graphs)
    together = net(batch.x, batch.edge_index, batch.batch)
    alone = torch.cat([net(g.x, g.edge_index) for g in graphs])
    assert together.shape == (batch.num_nodes, 3)
    assert torch.allclose(together, alone, atol=1e-5)


@pytest.mark.parametrize("task", ["graph", "edge"])
def test_graph_and_edge_level_heads(task: str):
    graphs = [random_graph(n, 3, 6, seed) for seed, n in enumerate([9, 5, 12])]
    batch = Batch.from_data_list(graphs)
    net = model(task=task)
    if task == "graph":
        out = net(batch.x, batch.edge_index, batch.batch, num_graphs=5)  # two trailing empty graphs
        assert out.shape == (5, 3)
        assert torch.allclose(out[:3], torch.cat([net(g.x, g.edge_index) for g in graphs]), atol=1e-5)
    else:
        pairs = torch.tensor([[0, 3, 10], [4, 3, 20]])
        out = net(batch.x, batch.edge_index, batch.batch, edge_label_index=pairs)
        assert out.shape == (3, 3)
        swapped = net(batch.x, batch.edge_index, batch.batch, edge_label_index=pairs.flip(0))
        assert torch.allclose(out, swapped, atol=1e-6)
        with pytest.raises(ValueError, match="edge_label_index"):
            net(batch.x, batch.edge_index, batch.batch)


@pytest.mark.parametrize("tokenization", ["hac_dfs", "hac_bfs", "khop"])
def test_node_outputs_are_permutation_equivariant(tokenization: str):
    g = random_graph(24, 20, 6, seed=3)
    net = model(tokenization=tokenization)
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(1))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(24)
    # Node i of the relabelled graph is node perm[i] of the original.
    out = net(g.x, g.edge_index)
    relabelled = net(g.x[perm], inverse[g.edge_index])
    assert torch.allclose(relabelled, out[perm], atol=1e-5)


def test_node_order_tokenization_is_not_equivariant():
    """The check above can fail: ordering by node id depends on the numbering."""
    g = random_graph(24, 20, 6, seed=3)
    net = model(tokenization="node_id", layers=("mamba2",))
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(1))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(24)
    assert not torch.allclose(net(g.x[perm], inverse[g.edge_index]), net(g.x, g.edge_index)[perm], atol=1e-4)


def test_eval_averages_tie_orders_and_training_draws_new_ones():
    g = random_graph(12, 6, 6, seed=0)
    single, averaged = model(), model(tie_orders=3)
    assert torch.allclose(single(g.x, g.edge_index), single(g.x, g.edge_index))
    seeds = []
    original = averaged._forward_once

    def spy(*args):
        seeds.append(args[-1])
        return original(*args)

    averaged._forward_once = spy
    averaged(g.x, g.edge_index)
    assert seeds == [0, 1, 2]
    averaged.train()
    averaged(g.x, g.edge_index)
    averaged(g.x, g.edge_index)
    assert len(seeds) == 5 and seeds[3] != seeds[4]


def test_gsmconv_call_convention_plans_and_reset():
    g = random_graph(10, 5, C, seed=0)
    torch.manual_seed(0)
    conv = GSMConv(C, "mamba2", "hac_dfs", local="gine")
    out = conv(g.x, g.edge_index)
    plans = {"hac_dfs": build_plan("hac_dfs", g.x, g.edge_index)}
    assert torch.allclose(out, conv(g.x, g.edge_index, plans=plans))
    assert repr(conv) == "GSMConv(16, mixer='mamba2', tokenization=('hac_dfs',), local='gine')"
    before = [p.detach().clone() for p in conv.parameters()]
    conv.reset_parameters()
    changed = [not torch.equal(a, b) for a, b in zip(before, conv.parameters())]
    assert sum(changed) > len(changed) // 2
    with pytest.raises(ValueError, match="no token plan for tokenization 'hac_dfs'"):
        conv(g.x, g.edge_index, plans={"khop": plans["hac_dfs"]})
    with pytest.raises(ValueError, match="built for 10 nodes"):
        conv(g.x[:9], g.edge_index[:, :0], plans=plans)
    with pytest.raises(ValueError, match=r"x must have shape \(N, C=16\)"):
        conv(g.x[:, :4], g.edge_index)
    edge_conv = GSMConv(C, "attention", "degree", edge_dim=3)
    assert edge_conv(g.x, g.edge_index, edge_attr=torch.randn(g.edge_index.shape[1], 3)).shape == (10, C)
    with pytest.raises(ValueError, match="edge_dim=3"):
        edge_conv(g.x, g.edge_index)


def test_mixture_routes_top_two_and_trains_the_router():
    g = random_graph(14, 8, C, seed=2)
    torch.manual_seed(0)
    conv = GSMConv(C, "mamba2", ("hac_dfs", "khop", "degree"), top_k=2)
    mixture = conv.global_encoder
    assert isinstance(mixture, TokenizationMixture) and conv.tokenizations == ("hac_dfs", "khop", "degree")
    choice, weight = mixture.route(g.x)
    assert choice.shape == (14, 2) and torch.allclose(weight.sum(-1), torch.ones(14))
    assert (choice[:, 0] != choice[:, 1]).all() and (weight[:, 0] >= weight[:, 1]).all()
    conv(g.x, g.edge_index).square().sum().backward()
    assert mixture.router.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least two distinct"):
        TokenizationMixture(C, ["khop", "khop"])
    with pytest.raises(ValueError, match="top_k must lie in"):
        TokenizationMixture(C, ["khop", "degree"], top_k=3)


def test_bad_and_degenerate_graphs():
    net = model()
    isolated = net(torch.randn(5, 6), torch.zeros(2, 0, dtype=torch.long))
    assert isolated.shape == (5, 3) and torch.isfinite(isolated).all()
    loops = torch.tensor([[0, 1, 1, 2, 2], [0, 2, 1, 1, 2]])
    assert torch.isfinite(net(torch.randn(3, 6), loops)).all()
    empty = Data(x=torch.zeros(0, 6), edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0)
    batch = Batch.from_data_list([random_graph(6, 2, 6, 0), empty, random_graph(4, 1, 6, 1)])
    assert net(batch.x, batch.edge_index, batch.batch).shape == (10, 3)
    graph_net = model(task="graph")
    pooled = graph_net(batch.x, batch.edge_index, batch.batch, num_graphs=batch.num_graphs)
    assert pooled.shape == (3, 3) and torch.isfinite(pooled).all()
    with pytest.raises(TypeError, match="float32"):
        net(torch.randn(3, 6), loops.float())
    with pytest.raises(ValueError, match="out of range|>= num_nodes|num_nodes"):
        net(torch.randn(3, 6), torch.tensor([[0, 5], [5, 0]]))
    with pytest.raises(ValueError, match=r"x must have shape \(N, F=6\)"):
        net(torch.randn(3, 4), loops)
    with pytest.raises(ValueError, match="hac_affinity"):
        model(tokenizer_kwargs={"hac_dfs": {"max_levels": 2}})


@pytest.mark.parametrize("kind", ["gcn", "gin", "gps"])
def test_baselines_share_the_call_convention(kind: str):
    graphs = [random_graph(n, 3, 6, seed) for seed, n in enumerate([8, 5])]
    batch = Batch.from_data_list(graphs)
    torch.manual_seed(0)
    net = GNNBaseline(6, C, 4, kind, task="graph").eval()
    out = net(batch.x, batch.edge_index, batch.batch)
    assert out.shape == (2, 4)
    assert torch.allclose(out, torch.cat([net(g.x, g.edge_index) for g in graphs]), atol=1e-5)


def test_gsm_learns_connectivity_without_nan():
    data, spec = make_task("connectivity", 96, seed=0)
    train, val = data[:64], data[64:]
    torch.manual_seed(0)
    net = GSMPlusPlus(spec.in_channels, C, spec.num_classes, task=spec.level)
    result = fit_classifier(net, train, val, val, epochs=6, lr=3e-3, batch_size=16, progress=False)
    losses = result.history["loss"]
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert 0.0 <= result.test_acc <= 1.0 and result.best_epoch < 6


def test_learned_affinity_clusters_the_embeddings():
    g = random_graph(20, 12, 6, seed=4)
    net = model(hac_affinity="learned")
    with torch.no_grad():
        plans, _ = net.tokenize(g.x, g.edge_index, torch.zeros(20, dtype=torch.long), seed=0)
        expected = build_plan("hac_dfs", net.embed(g.x), g.edge_index, seed=0)
        raw = build_plan("hac_dfs", g.x, g.edge_index, seed=0)
    assert torch.equal(plans["hac_dfs"].pool_node, expected.pool_node)
    assert not torch.equal(expected.pool_node, raw.pool_node)


@pytest.mark.parametrize("tokenization", ["hac_dfs", "hac_bfs", "degree", "khop", "random_walk", "node_id", ("hac_dfs", "khop")])
def test_zero_node_graphs(tokenization):
    """A batch without nodes gives empty node and edge outputs and, per (empty) graph, the head's MLP at the zero
    pooled vector; the global encoder's mixer is skipped (there is no token to mix), and gradients still flow."""
    x, edge_index = torch.zeros(0, 6, requires_grad=True), torch.zeros(2, 0, dtype=torch.long)
    for layers in [("mamba2", "attention"), ("gla",)]:
        node = model(layers=layers, tokenization=tokenization)
        out = node(x, edge_index)
        assert out.shape == (0, 3)
        out.sum().backward()
        graph = model(layers=layers, tokenization=tokenization, task="graph")
        pooled = graph(x, edge_index, num_graphs=2)
        assert torch.equal(pooled, graph.head.mlp(torch.zeros(2, C)))
        edge = model(layers=layers, tokenization=tokenization, task="edge")
        assert edge(x, edge_index, edge_label_index=torch.zeros(2, 0, dtype=torch.long)).shape == (0, 3)
    conv = GSMConv(C, "mamba2", tokenization)
    assert conv(torch.zeros(0, C), edge_index).shape == (0, C)


@pytest.mark.parametrize("tokenization", ["hac_dfs", "hac_bfs", "khop", ("hac_dfs", "degree")])
def test_an_empty_graph_in_a_batch_changes_nothing_else(tokenization):
    graphs = [random_graph(6, 2, 6, 0), random_graph(4, 1, 6, 1)]
    empty = Data(x=torch.zeros(0, 6), edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0)
    net = model(tokenization=tokenization, task="graph")
    plain = Batch.from_data_list(graphs)
    padded = Batch.from_data_list([graphs[0], empty, graphs[1], empty])
    want = net(plain.x, plain.edge_index, plain.batch, num_graphs=2)
    got = net(padded.x, padded.edge_index, padded.batch, num_graphs=4)
    torch.testing.assert_close(got[[0, 2]], want)
    torch.testing.assert_close(got[[1, 3]], net.head.mlp(torch.zeros(2, C)))
