"""Bad inputs to every public entry point of ``graphs``: one row per case, each a named error or a documented result.

Columns: entry point, input, then either ``(exception type, regex of the message)`` or ``Documented(check, what)``.
The classes covered: wrong shapes and ranks, dtypes, devices ('meta' stands in for another device), NaN and inf,
empty graphs, out-of-range values, malformed files and non-bool flags.
"""
from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from bad_inputs import Documented, assert_unique, expect
from crafted import WritesMarker
from graph_files import write_tu
from graphs import GNNBaseline, GSMConv, GSMPlusPlus, LocalEncoder, PlanMixer, TaskHead, TokenizationMixture
from graphs.datasets import karate_club, load_local_dataset
from graphs.tasks import make_task, split
from graphs.tokenize import (
    TokenPlan,
    build_plan,
    degree_plan,
    hac,
    hac_dfs_plan,
    hierarchical_pe,
    khop_plan,
    node_id_plan,
    random_walk_plan,
)

NAN, INF = float("nan"), float("inf")
LONG = torch.int64


def feats(n: int = 5, f: int = 6, fill: float | None = None, **kwargs: Any) -> torch.Tensor:
    x = torch.randn(n, f, generator=torch.Generator().manual_seed(0), **kwargs)
    return x if fill is None else x.fill_(fill)


def one_bad(value: float, n: int = 5, f: int = 6) -> torch.Tensor:
    x = feats(n, f)
    x[0, 0] = value
    return x


def edges(*pairs: tuple[int, int]) -> torch.Tensor:
    return torch.tensor(pairs, dtype=LONG).t().reshape(2, -1)


PATH = edges((0, 1), (1, 2), (2, 3), (3, 4))  # one 5-node path
TWO = edges((0, 1), (1, 2), (3, 4))  # graphs {0, 1, 2} and {3, 4}
BATCH = torch.tensor([0, 0, 0, 1, 1])
NONE = torch.zeros(2, 0, dtype=LONG)
ONE = torch.zeros(5, dtype=LONG)


@functools.cache
def gsm(**kwargs: Any) -> GSMPlusPlus:
    torch.manual_seed(0)
    options = dict(layers=("gla",), num_heads=2) | kwargs
    return GSMPlusPlus(6, 8, 3, **options).eval()


def make_gsm(**kwargs: Any) -> GSMPlusPlus:
    options = dict(layers=("gla",), num_heads=2) | kwargs
    return GSMPlusPlus(6, 8, 3, **options)


@functools.cache
def conv(tokenization: str = "khop", **kwargs: Any) -> GSMConv:
    torch.manual_seed(0)
    return GSMConv(8, "gla", tokenization, num_heads=2, **kwargs).eval()


@functools.cache
def baseline(kind: str, **kwargs: Any) -> GNNBaseline:
    torch.manual_seed(0)
    return GNNBaseline(6, 8, 3, kind, heads=2, **kwargs).eval()


@functools.cache
def head(level: str = "graph") -> TaskHead:
    torch.manual_seed(0)
    return TaskHead(8, 3, level).eval()


def plan(**overrides: Any) -> TokenPlan:
    parts = dict(pool_token=torch.tensor([0]), pool_node=torch.tensor([0]), cu_seqlens=torch.tensor([0, 1]),
                 seq_graph=torch.tensor([0]), read_token=torch.tensor([0]), read_node=torch.tensor([0]), num_nodes=1)
    return TokenPlan(**(parts | overrides))


def tu_cache(root: Path, damage: str, keep_raw: bool) -> Path:
    """A TU data set loaded once, then its ``processed/data.pt`` damaged (and the raw files removed unless kept)."""
    write_tu(root, "TOY", [(3, [(0, 1), (1, 2)], 0, [0, 1, 0]), (2, [(0, 1)], 1, [1, 1])])
    load_local_dataset(str(root), "TOY")
    cache = root / "TOY" / "processed" / "data.pt"
    if damage == "crafted":
        torch.save(WritesMarker(root / "marker"), cache)
    else:
        cache.write_bytes(cache.read_bytes()[:100])
    if not keep_raw:
        for f in (root / "TOY" / "raw").iterdir():
            f.unlink()
    return root


def rebuilt(root: Path) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = load_local_dataset(str(root), "TOY")
    assert any("rebuilding it from the raw files" in str(w.message) for w in caught)
    assert not (root / "marker").exists()
    return dataset


def refused(root: Path) -> None:
    try:
        load_local_dataset(str(root), "TOY")
    finally:
        assert not (root / "marker").exists()


EMPTY_GRAPH_LOGITS = Documented(
    lambda out: out.shape == (2, 3) and torch.equal(out, gsm(task="graph").head.mlp(torch.zeros(2, 8))),
    "graphs without nodes: the head's MLP at the zero pooled vector",
)

# (entry point, input, call(tmp_path), expected)
CASES: list[tuple[str, str, Callable[[Path], Any], Any]] = [
    # ------------------------------------------------------------------ GSMPlusPlus constructor
    ("GSMPlusPlus()", "in_channels=-1", lambda t: GSMPlusPlus(-1, 8, 3), (ValueError, r"in_channels must be >= 0")),
    ("GSMPlusPlus()", "hidden_channels=0", lambda t: GSMPlusPlus(6, 0, 3), (ValueError, r"hidden_channels must be >= 1")),
    ("GSMPlusPlus()", "out_channels=0", lambda t: GSMPlusPlus(6, 8, 0), (ValueError, r"out_channels must be >= 1")),
    ("GSMPlusPlus()", "out_channels=2.0", lambda t: GSMPlusPlus(6, 8, 2.0), (TypeError, r"out_channels must be an int")),
    ("GSMPlusPlus()", "layers=()", lambda t: make_gsm(layers=()), (ValueError, r"layers must be a sequence naming at least one")),
    ("GSMPlusPlus()", "layers a string", lambda t: make_gsm(layers="gla"), (ValueError, r"layers must be a sequence .*got 'gla'")),
    ("GSMPlusPlus()", "unknown mixer", lambda t: make_gsm(layers=("nope",)), (ValueError, r"unknown mixer 'nope'")),
    ("GSMPlusPlus()", "unknown tokenizer", lambda t: make_gsm(tokenization="nope"), (ValueError, r"unknown tokenizer 'nope'")),
    ("GSMPlusPlus()", "tokenization=()", lambda t: make_gsm(tokenization=()), (ValueError, r"at least two distinct tokenizations")),
    ("GSMPlusPlus()", "task='nope'", lambda t: make_gsm(task="nope"), (ValueError, r"task level must be one of")),
    ("GSMPlusPlus()", "local='nope'", lambda t: make_gsm(local="nope"), (ValueError, r"local encoder must be one of")),
    ("GSMPlusPlus()", "positional='no'", lambda t: make_gsm(positional="no"), (TypeError, r"positional must be a bool")),
    ("GSMPlusPlus()", "bidirectional='no'", lambda t: make_gsm(bidirectional="no"), (TypeError, r"bidirectional must be a bool")),
    ("GSMPlusPlus()", "pe_levels=0", lambda t: make_gsm(pe_levels=0), (ValueError, r"pe_levels must be >= 1")),
    ("GSMPlusPlus()", "tie_orders=0", lambda t: make_gsm(tie_orders=0), (ValueError, r"tie_orders must be >= 1")),
    ("GSMPlusPlus()", "tie_orders=1.5", lambda t: make_gsm(tie_orders=1.5), (TypeError, r"tie_orders must be an int")),
    ("GSMPlusPlus()", "hac_affinity='nope'", lambda t: make_gsm(hac_affinity="nope"), (ValueError, r"hac_affinity must be")),
    ("GSMPlusPlus()", "pool='nope'", lambda t: make_gsm(task="graph", pool="nope"), (ValueError, r"pool must be one of")),
    ("GSMPlusPlus()", "dropout=1.5", lambda t: make_gsm(dropout=1.5), (ValueError, r"dropout must lie in \[0, 1\)")),
    ("GSMPlusPlus()", "num_heads=0", lambda t: make_gsm(num_heads=0), (ValueError, r"num_heads must be >= 1")),
    ("GSMPlusPlus()", "top_k=0", lambda t: make_gsm(tokenization=("khop", "degree"), top_k=0), (ValueError, r"top_k must lie in \[1, 2\]")),
    ("GSMPlusPlus()", "options of an unknown tokenizer", lambda t: make_gsm(tokenizer_kwargs={"nope": {}}),
     (ValueError, r"tokenizer_kwargs names unknown tokenizers \['nope'\]")),
    ("GSMPlusPlus()", "options of an unused tokenizer", lambda t: make_gsm(tokenizer_kwargs={"khop": {"k": 2}}),
     (ValueError, r"tokenizer_kwargs sets options of \['khop'\], which no layer uses")),
    ("GSMPlusPlus()", "HAC options via tokenizer_kwargs", lambda t: make_gsm(tokenizer_kwargs={"hac_dfs": {}}),
     (ValueError, r"set hac_affinity instead")),
    ("GSMPlusPlus()", "unknown mixer option", lambda t: make_gsm(mixer_kwargs={"bogus": 1}), (TypeError, r"no option 'bogus'")),
    # ------------------------------------------------------------------ GSMPlusPlus forward
    ("GSMPlusPlus.forward", "x rank 1", lambda t: gsm()(torch.randn(5), PATH), (ValueError, r"x must have shape \(N, F=6\)")),
    ("GSMPlusPlus.forward", "x of 4 features for 6", lambda t: gsm()(feats(5, 4), PATH), (ValueError, r"x must have shape \(N, F=6\), got \(5, 4\)")),
    ("GSMPlusPlus.forward", "x int64", lambda t: gsm()(torch.ones(5, 6, dtype=LONG), PATH), (TypeError, r"x must be a floating-point tensor")),
    ("GSMPlusPlus.forward", "x float64", lambda t: gsm()(feats(dtype=torch.float64), PATH), (TypeError, r"x is torch.float64 but the model's")),
    ("GSMPlusPlus.forward", "x on meta", lambda t: gsm()(feats(device="meta"), PATH), (ValueError, r"all tensors must be on one device")),
    ("GSMPlusPlus.forward", "edge_index on meta", lambda t: gsm()(feats(), PATH.to("meta")), (ValueError, r"one device.*edge_index")),
    ("GSMPlusPlus.forward", "x all NaN", lambda t: gsm()(feats(fill=NAN), PATH), (ValueError, r"x has 30 NaN or infinite values")),
    ("GSMPlusPlus.forward", "one inf feature", lambda t: gsm()(one_bad(INF), PATH), (ValueError, r"x has 1 NaN or infinite")),
    ("GSMPlusPlus.forward", "NaN, no HAC anywhere", lambda t: gsm(tokenization="node_id", positional=False)(one_bad(NAN), PATH),
     (ValueError, r"x has 1 NaN")),
    ("GSMPlusPlus.forward", "edge_index float", lambda t: gsm()(feats(), PATH.float()), (TypeError, r"edge_index must be int64")),
    ("GSMPlusPlus.forward", "edge_index int32", lambda t: gsm()(feats(), PATH.int()), (TypeError, r"edge_index must be int64")),
    ("GSMPlusPlus.forward", "edge_index (3, E)", lambda t: gsm()(feats(), torch.zeros(3, 2, dtype=LONG)), (ValueError, r"edge_index must have shape \(2, E\)")),
    ("GSMPlusPlus.forward", "edge_index a list", lambda t: gsm()(feats(), [[0], [1]]), (TypeError, r"edge_index must be a torch.Tensor")),
    ("GSMPlusPlus.forward", "edge to node 9 of 5", lambda t: gsm()(feats(), edges((0, 9))), (ValueError, r"refers to node 9 but the graph has num_nodes=5")),
    ("GSMPlusPlus.forward", "negative node index", lambda t: gsm()(feats(), edges((0, -1))), (ValueError, r"negative node index \(-1\)")),
    ("GSMPlusPlus.forward", "batch unsorted", lambda t: gsm()(feats(), TWO, torch.tensor([1, 1, 1, 0, 0])), (ValueError, r"batch must be sorted")),
    ("GSMPlusPlus.forward", "edge joining two graphs", lambda t: gsm()(feats(), PATH, BATCH), (ValueError, r"joins graph 0 to graph 1")),
    ("GSMPlusPlus.forward", "batch of 3 for 5 nodes", lambda t: gsm()(feats(), TWO, torch.tensor([0, 0, 1])), (ValueError, r"batch must have shape \(5,\)")),
    ("GSMPlusPlus.forward", "batch float", lambda t: gsm()(feats(), TWO, BATCH.float()), (TypeError, r"batch must be int64")),
    ("GSMPlusPlus.forward", "batch negative", lambda t: gsm()(feats(), TWO, BATCH - 1), (ValueError, r"negative graph id")),
    ("GSMPlusPlus.forward", "batch on meta", lambda t: gsm()(feats(), TWO, BATCH.to("meta")), (ValueError, r"one device.*batch")),
    ("GSMPlusPlus.forward", "no edges", lambda t: gsm()(feats(), NONE),
     Documented(lambda out: out.shape == (5, 3) and bool(torch.isfinite(out).all()), "isolated nodes: finite logits")),
    ("GSMPlusPlus.forward", "self-loops and duplicates", lambda t: gsm()(feats(3), edges((0, 0), (0, 1), (0, 1), (2, 2))),
     Documented(lambda out: out.shape == (3, 3) and bool(torch.isfinite(out).all()), "accepted: HAC ignores loops")),
    ("GSMPlusPlus.forward", "0 nodes (node level)", lambda t: gsm()(feats(0), NONE), Documented(lambda out: out.shape == (0, 3), "(0, K)")),
    ("GSMPlusPlus.forward", "0 nodes, 2 empty graphs", lambda t: gsm(task="graph")(feats(0), NONE, num_graphs=2), EMPTY_GRAPH_LOGITS),
    ("GSMPlusPlus.forward", "0 nodes, hybrid layers", lambda t: gsm(layers=("mamba2", "attention"))(feats(0), NONE),
     Documented(lambda out: out.shape == (0, 3), "(0, K): the mixers are skipped")),
    ("GSMPlusPlus.forward", "a graph id with no nodes", lambda t: gsm(task="graph")(feats(), TWO, torch.tensor([0, 0, 0, 2, 2])),
     Documented(lambda out: out.shape == (3, 3) and torch.allclose(out[1], gsm(task="graph").head.mlp(torch.zeros(1, 8))[0]),
                "graph 1 has no nodes: the MLP at zero")),
    ("GSMPlusPlus.forward", "trailing empty graphs", lambda t: gsm(task="graph")(feats(), TWO, BATCH, num_graphs=4),
     Documented(lambda out: out.shape == (4, 3), "num_graphs counts them")),
    ("GSMPlusPlus.forward", "num_graphs below the batch's", lambda t: gsm(task="graph")(feats(), TWO, BATCH, num_graphs=1),
     (ValueError, r"num_graphs=1 but batch refers to graph 1")),
    ("GSMPlusPlus.forward", "num_graphs=-1", lambda t: gsm(task="graph")(feats(), TWO, BATCH, num_graphs=-1), (ValueError, r"num_graphs must be >= 0")),
    ("GSMPlusPlus.forward", "num_graphs=1.5", lambda t: gsm(task="graph")(feats(), TWO, BATCH, num_graphs=1.5), (TypeError, r"num_graphs must be an int")),
    ("GSMPlusPlus.forward", "edge level, no edge_label_index", lambda t: gsm(task="edge")(feats(), PATH),
     (ValueError, r"needs edge_label_index of shape \(2, E'\)")),
    ("GSMPlusPlus.forward", "edge_label_index to node 7", lambda t: gsm(task="edge")(feats(), PATH, edge_label_index=edges((0, 7))),
     (ValueError, r"edge_label_index must hold node indices in \[0, 5\), got \[0, 7\]")),
    ("GSMPlusPlus.forward", "edge_label_index negative", lambda t: gsm(task="edge")(feats(), PATH, edge_label_index=edges((0, -1))),
     (ValueError, r"edge_label_index must hold node indices")),
    ("GSMPlusPlus.forward", "edge_label_index float", lambda t: gsm(task="edge")(feats(), PATH, edge_label_index=edges((0, 1)).float()),
     (TypeError, r"edge_label_index must be int64")),
    ("GSMPlusPlus.forward", "edge_label_index (3, 1)", lambda t: gsm(task="edge")(feats(), PATH, edge_label_index=torch.zeros(3, 1, dtype=LONG)),
     (ValueError, r"needs edge_label_index of shape")),
    ("GSMPlusPlus.forward", "edge_label_index empty", lambda t: gsm(task="edge")(feats(), PATH, edge_label_index=NONE),
     Documented(lambda out: out.shape == (0, 3), "(0, K)")),
    ("GSMPlusPlus.forward", "edge_label_index at node level", lambda t: gsm()(feats(), PATH, edge_label_index=edges((0, 1))),
     (ValueError, r"edge_label_index is for edge-level models")),
    ("GSMPlusPlus.forward", "edge_attr without edge_dim", lambda t: gsm()(feats(), PATH, edge_attr=torch.randn(4, 3)),
     (ValueError, r"built with edge_dim=None")),
    ("GSMPlusPlus.forward", "edge_attr of 2 edges for 4", lambda t: gsm(edge_dim=3)(feats(), PATH, edge_attr=torch.randn(2, 3)),
     (ValueError, r"edge_attr must have shape \(E=4, 3\), got \(2, 3\)")),
    ("GSMPlusPlus.forward", "edge_attr 5 wide for 3", lambda t: gsm(edge_dim=3)(feats(), PATH, edge_attr=torch.randn(4, 5)),
     (ValueError, r"edge_attr must have shape \(E=4, 3\)")),
    ("GSMPlusPlus.forward", "edge_attr NaN", lambda t: gsm(edge_dim=3)(feats(), PATH, edge_attr=torch.full((4, 3), NAN)),
     (ValueError, r"edge_attr has 12 NaN")),
    ("GSMPlusPlus.forward", "edge_attr int64", lambda t: gsm(edge_dim=3)(feats(), PATH, edge_attr=torch.ones(4, 3, dtype=LONG)),
     (TypeError, r"edge_attr must be a floating-point")),
    # ------------------------------------------------------------------ GSMConv
    ("GSMConv()", "channels=0", lambda t: GSMConv(0), (ValueError, r"channels must be >= 1")),
    ("GSMConv()", "unknown mixer", lambda t: GSMConv(8, "nope", num_heads=2), (ValueError, r"unknown mixer 'nope'")),
    ("GSMConv()", "unknown tokenizer", lambda t: GSMConv(8, "gla", "nope", num_heads=2), (ValueError, r"unknown tokenizer 'nope'")),
    ("GSMConv()", "bidirectional='no'", lambda t: GSMConv(8, "gla", num_heads=2, bidirectional="no"), (TypeError, r"bidirectional must be a bool")),
    ("GSMConv()", "edge_dim=0", lambda t: GSMConv(8, "gla", num_heads=2, edge_dim=0), (ValueError, r"edge_dim must be >= 1")),
    ("GSMConv()", "dropout=-1", lambda t: GSMConv(8, "gla", num_heads=2, dropout=-1.0), (ValueError, r"dropout must lie in")),
    ("GSMConv()", "mlp_ratio=0", lambda t: GSMConv(8, "gla", num_heads=2, mlp_ratio=0.0), (ValueError, r"hidden must be >= 1")),
    ("GSMConv()", "3 heads for width 8", lambda t: GSMConv(8, "gla", num_heads=3), (ValueError, r"multiple of num_heads=3")),
    ("GSMConv.forward", "x of width 4 for 8", lambda t: conv()(feats(5, 4), PATH), (ValueError, r"x must have shape \(N, C=8\)")),
    ("GSMConv.forward", "x int64", lambda t: conv()(torch.ones(5, 8, dtype=LONG), PATH), (TypeError, r"x must be a floating-point")),
    ("GSMConv.forward", "x NaN", lambda t: conv()(feats(5, 8, fill=NAN), PATH), (ValueError, r"x has 40 NaN")),
    ("GSMConv.forward", "x NaN, HAC tokens", lambda t: conv("hac_dfs")(feats(5, 8, fill=NAN), PATH), (ValueError, r"x has 40 NaN")),
    ("GSMConv.forward", "x on meta", lambda t: conv()(feats(5, 8, device="meta"), PATH), (ValueError, r"one device")),
    ("GSMConv.forward", "edge to node 9", lambda t: conv()(feats(5, 8), edges((0, 9))), (ValueError, r"refers to node 9")),
    ("GSMConv.forward", "edge to node 9, with plans", lambda t: conv()(feats(5, 8), edges((0, 9)), plans={"khop": build_plan("khop", None, PATH)}),
     (ValueError, r"refers to node 9")),
    ("GSMConv.forward", "plans a list", lambda t: conv()(feats(5, 8), PATH, plans=[1]), (TypeError, r"plans must map tokenization names")),
    ("GSMConv.forward", "a plan that is not a TokenPlan", lambda t: conv()(feats(5, 8), PATH, plans={"khop": 3}),
     (TypeError, r"plans\['khop'\] must be a TokenPlan")),
    ("GSMConv.forward", "a plan for another tokenization", lambda t: conv()(feats(5, 8), PATH, plans={"degree": build_plan("degree", None, PATH)}),
     (ValueError, r"no token plan for tokenization 'khop'")),
    ("GSMConv.forward", "a plan for 4 nodes", lambda t: conv()(feats(5, 8), PATH, plans={"khop": build_plan("khop", None, NONE, num_nodes=4)}),
     (ValueError, r"built for 4 nodes, x has 5")),
    ("GSMConv.forward", "0 nodes", lambda t: conv()(feats(0, 8), NONE), Documented(lambda out: out.shape == (0, 8), "(0, C)")),
    # ------------------------------------------------------------------ mixtures
    ("TokenizationMixture()", "one tokenization twice", lambda t: TokenizationMixture(8, ["khop", "khop"]), (ValueError, r"two distinct")),
    ("TokenizationMixture()", "unknown tokenizer", lambda t: TokenizationMixture(8, ["khop", "nope"], num_heads=2), (ValueError, r"unknown tokenizer 'nope'")),
    ("TokenizationMixture()", "top_k=3 of 2", lambda t: TokenizationMixture(8, ["khop", "degree"], top_k=3), (ValueError, r"top_k must lie in \[1, 2\]")),
    ("TokenizationMixture()", "top_k=1.0", lambda t: TokenizationMixture(8, ["khop", "degree"], top_k=1.0), (TypeError, r"top_k must be an int")),
    ("PlanMixer()", "unknown tokenizer", lambda t: PlanMixer(8, "nope", num_heads=2), (ValueError, r"unknown tokenizer 'nope'")),
    # ------------------------------------------------------------------ tokenizers
    ("build_plan", "unknown tokenizer", lambda t: build_plan("nope", feats(), PATH), (ValueError, r"unknown tokenizer 'nope'")),
    ("build_plan", "x rank 1", lambda t: build_plan("khop", torch.randn(5), PATH), (ValueError, r"x must have shape \(5, F\)")),
    ("build_plan", "x a list", lambda t: build_plan("khop", [[1.0]], PATH), (TypeError, r"x must be a torch.Tensor")),
    ("build_plan", "num_nodes below an edge", lambda t: build_plan("khop", None, PATH, num_nodes=2), (ValueError, r"refers to node 4")),
    ("build_plan", "num_nodes=-1", lambda t: build_plan("khop", None, NONE, num_nodes=-1), (ValueError, r"num_nodes must be >= 0")),
    ("build_plan", "num_nodes=5.5", lambda t: build_plan("khop", None, PATH, num_nodes=5.5), (TypeError, r"num_nodes must be an int")),
    ("build_plan", "unknown option", lambda t: build_plan("khop", None, PATH, bogus=1), (TypeError, r"unexpected keyword argument 'bogus'")),
    ("build_plan", "seed=1.5", lambda t: build_plan("degree", None, PATH, seed=1.5), (TypeError, r"seed must be an int")),
    ("build_plan", "x on meta", lambda t: build_plan("hac_dfs", feats(device="meta"), PATH), (ValueError, r"one device")),
    ("build_plan", "0 nodes", lambda t: build_plan("hac_bfs", None, NONE),
     Documented(lambda p: p.num_tokens == 0 and p.num_sequences == 0, "an empty plan: no tokens, no sequences")),
    ("khop_plan", "k=-1", lambda t: khop_plan(PATH, ONE, 5, k=-1), (ValueError, r"k must be >= 0")),
    ("khop_plan", "k=1.5", lambda t: khop_plan(PATH, ONE, 5, k=1.5), (TypeError, r"k must be an int")),
    ("khop_plan", "k=True", lambda t: khop_plan(PATH, ONE, 5, k=True), (TypeError, r"k must be an int")),
    ("random_walk_plan", "walk_length=-1", lambda t: random_walk_plan(PATH, ONE, 5, walk_length=-1), (ValueError, r"walk_length must be >= 0")),
    ("random_walk_plan", "walk_length=2.5", lambda t: random_walk_plan(PATH, ONE, 5, walk_length=2.5), (TypeError, r"walk_length must be an int")),
    ("degree_plan", "seed='0'", lambda t: degree_plan(PATH, ONE, 5, seed="0"), (TypeError, r"seed must be an int")),
    ("node_id_plan", "batch None", lambda t: node_id_plan(None, 5), Documented(lambda p: p.num_tokens == 5, "one graph")),
    ("node_id_plan", "batch too short", lambda t: node_id_plan(torch.zeros(3, dtype=LONG), 5), (ValueError, r"batch must have shape \(5,\)")),
    ("hac", "x NaN", lambda t: hac(feats(fill=NAN), PATH), (ValueError, r"x has NaN or infinite values")),
    ("hac", "affinity='nope'", lambda t: hac(feats(), PATH, affinity="nope"), (ValueError, r"affinity must be 'cosine', 'structural' or a callable")),
    ("hac", "max_levels=0", lambda t: hac(feats(), PATH, max_levels=0), (ValueError, r"max_levels must be >= 1")),
    ("hac", "max_levels=1.5", lambda t: hac(feats(), PATH, max_levels=1.5), (TypeError, r"max_levels must be an int")),
    ("hac", "callable of the wrong shape", lambda t: hac(feats(), PATH, affinity=lambda a, b: torch.zeros(2)),
     (ValueError, r"must return a \(4,\) tensor of scores")),
    ("hac", "callable without x", lambda t: hac(None, PATH, affinity=lambda a, b: a.sum(1)), (ValueError, r"x is required")),
    ("hac", "callable returning NaN", lambda t: hac(feats(), PATH, affinity=lambda a, b: torch.full((a.shape[0],), NAN)),
     Documented(lambda tree: tree.num_levels >= 1, "NaN scores count as the lowest; the tree is still built")),
    ("hac", "x on meta", lambda t: hac(feats(device="meta"), PATH), (ValueError, r"one device")),
    ("hac", "0 nodes", lambda t: hac(None, NONE), Documented(lambda tree: tree.num_nodes == 0 and tree.num_levels == 1, "one empty level")),
    ("hac_dfs_plan", "not a tree", lambda t: hac_dfs_plan("tree", ONE, 5), (TypeError, r"tree must be a HACTree")),
    ("hac_dfs_plan", "tree of another graph", lambda t: hac_dfs_plan(hac(feats(), PATH), torch.zeros(4, dtype=LONG), 4),
     (ValueError, r"the HAC tree covers 5 nodes, expected num_nodes=4")),
    ("hierarchical_pe", "dim_per_level=3", lambda t: hierarchical_pe(hac(feats(), PATH), ONE, 5, dim_per_level=3), (ValueError, r"even and >= 4")),
    ("hierarchical_pe", "max_levels=0", lambda t: hierarchical_pe(hac(feats(), PATH), ONE, 5, max_levels=0), (ValueError, r"max_levels must be >= 1")),
    ("hierarchical_pe", "not a tree", lambda t: hierarchical_pe(None, ONE, 5), (TypeError, r"tree must be a HACTree")),
    ("hierarchical_pe", "0 nodes", lambda t: hierarchical_pe(hac(None, NONE), torch.zeros(0, dtype=LONG), 0),
     Documented(lambda pe: pe.shape == (0, 32), "(0, max_levels * dim_per_level)")),
    ("TokenPlan()", "cu_seqlens not from 0", lambda t: plan(cu_seqlens=torch.tensor([1, 2])), (ValueError, r"cu_seqlens must be 1-D and start at 0")),
    ("TokenPlan()", "cu_seqlens decreasing", lambda t: plan(cu_seqlens=torch.tensor([0, 1, 0]), seq_graph=torch.tensor([0, 0])),
     (ValueError, r"cu_seqlens must be strictly increasing")),
    ("TokenPlan()", "pool_node out of range", lambda t: plan(pool_node=torch.tensor([7])), (ValueError, r"pool_node must lie in \[0, 1\)")),
    ("TokenPlan()", "read_token out of range", lambda t: plan(read_token=torch.tensor([3])), (ValueError, r"read_token must lie in \[0, 1\)")),
    ("TokenPlan()", "int32 indices", lambda t: plan(pool_node=torch.tensor([0], dtype=torch.int32)), (TypeError, r"pool_node must be a 1-D int64")),
    ("TokenPlan()", "seq_graph of 2 for 1 sequence", lambda t: plan(seq_graph=torch.tensor([0, 0])), (ValueError, r"seq_graph must have one graph per")),
    ("TokenPlan.gather", "x rank 1", lambda t: build_plan("khop", None, PATH).gather(torch.randn(5)), (ValueError, r"x must have shape \(N=5, C\)")),
    ("TokenPlan.gather", "x for 4 nodes", lambda t: build_plan("khop", None, PATH).gather(feats(4)), (ValueError, r"built for 5 nodes")),
    ("TokenPlan.scatter", "y for 3 tokens", lambda t: build_plan("khop", None, PATH).scatter(feats(3)), (ValueError, r"the plan has 20 tokens")),
    # ------------------------------------------------------------------ baselines
    *[(f"GNNBaseline({kind!r}).forward", label, call, expected) for kind in ("gcn", "gin", "gps") for label, call, expected in [
        ("x NaN", lambda t, k=kind: baseline(k)(feats(fill=NAN), PATH), (ValueError, r"x has 30 NaN")),
        ("x int64", lambda t, k=kind: baseline(k)(torch.ones(5, 6, dtype=LONG), PATH), (TypeError, r"x must be a floating-point")),
        ("x on meta", lambda t, k=kind: baseline(k)(feats(device="meta"), PATH), (ValueError, r"one device")),
        ("0 nodes", lambda t, k=kind: baseline(k)(feats(0), NONE), Documented(lambda out: out.shape == (0, 3), "(0, K)")),
    ]],
    ("GNNBaseline()", "kind='nope'", lambda t: GNNBaseline(6, 8, 3, "nope"), (ValueError, r"baseline must be one of")),
    ("GNNBaseline()", "num_layers=0", lambda t: GNNBaseline(6, 8, 3, num_layers=0), (ValueError, r"num_layers must be >= 1")),
    ("GNNBaseline()", "gps, 3 heads for width 8", lambda t: GNNBaseline(6, 8, 3, "gps", heads=3), (ValueError, r"divisible by heads \(3\)")),
    ("GNNBaseline()", "dropout=2", lambda t: GNNBaseline(6, 8, 3, dropout=2.0), (ValueError, r"dropout must lie in")),
    ("GNNBaseline.forward", "edge_attr", lambda t: baseline("gcn")(feats(), PATH, edge_attr=torch.randn(4, 3)), (ValueError, r"take no edge features")),
    ("GNNBaseline.forward", "x of 4 features", lambda t: baseline("gcn")(feats(5, 4), PATH), (ValueError, r"x must have shape \(N, F=6\)")),
    ("GNNBaseline.forward", "0 nodes, graph level", lambda t: GNNBaseline(6, 8, 3, "gps", heads=2, task="graph")(feats(0), NONE, num_graphs=2),
     Documented(lambda out: out.shape == (2, 3), "empty graphs pool to zeros")),
    # ------------------------------------------------------------------ heads
    ("TaskHead()", "level='nope'", lambda t: TaskHead(8, 3, "nope"), (ValueError, r"task level must be one of")),
    ("TaskHead()", "pool='nope'", lambda t: TaskHead(8, 3, "graph", "nope"), (ValueError, r"pool must be one of")),
    ("TaskHead()", "out_channels=0", lambda t: TaskHead(8, 0), (ValueError, r"out_channels must be >= 1")),
    ("TaskHead()", "dropout=2", lambda t: TaskHead(8, 3, dropout=2.0), (ValueError, r"dropout must lie in")),
    ("TaskHead.forward", "h rank 1", lambda t: head()(torch.randn(5), BATCH), (ValueError, r"h must have shape \(N, C=8\)")),
    ("TaskHead.forward", "h int64", lambda t: head()(torch.ones(5, 8, dtype=LONG), BATCH), (TypeError, r"h must be a floating-point")),
    ("TaskHead.forward", "batch of 3 for 5 nodes", lambda t: head()(feats(5, 8), torch.zeros(3, dtype=LONG)), (ValueError, r"batch must be an int64 tensor of shape \(5,\)")),
    ("TaskHead.forward", "num_graphs too small", lambda t: head()(feats(5, 8), BATCH, num_graphs=1), (ValueError, r"num_graphs=1 but batch refers to graph 1")),
    ("TaskHead.forward", "max pool of an empty graph", lambda t: TaskHead(8, 3, "graph", "max")(feats(5, 8), BATCH, num_graphs=3),
     Documented(lambda out: bool(torch.isfinite(out).all()), "an empty graph max-pools to zeros, not -inf")),
    ("LocalEncoder()", "kind='nope'", lambda t: LocalEncoder(8, "nope"), (ValueError, r"local encoder must be one of")),
    ("LocalEncoder.forward", "edge_attr 5 wide for 3", lambda t: LocalEncoder(8, "gine", 3)(feats(5, 8), PATH, torch.randn(4, 5)),
     (ValueError, r"edge_attr must have shape \(E=4, 3\)")),
    # ------------------------------------------------------------------ tasks
    ("make_task", "unknown task", lambda t: make_task("nope", 3), (ValueError, r"unknown task 'nope'")),
    ("make_task", "num_graphs=0", lambda t: make_task("cycle_check", 0), (ValueError, r"num_graphs must be >= 1, got 0")),
    ("make_task", "num_nodes lo > hi", lambda t: make_task("cycle_check", 3, num_nodes=(5, 3)), (ValueError, r"lo must not exceed hi")),
    ("make_task", "num_nodes below the minimum", lambda t: make_task("cycle_check", 3, num_nodes=(1, 3)), (ValueError, r"at least 3 nodes")),
    ("make_task", "num_nodes an int", lambda t: make_task("cycle_check", 3, num_nodes=5), (TypeError, r"num_nodes must be a \(lo, hi\) pair")),
    ("make_task", "num_nodes float bound", lambda t: make_task("cycle_check", 3, num_nodes=(3.5, 6)), (TypeError, r"num_nodes\[0\] must be an int")),
    ("make_task", "seed=-1", lambda t: make_task("cycle_check", 3, seed=-1), (ValueError, r"seed must be >= 0")),
    ("make_task", "seed=1.5", lambda t: make_task("cycle_check", 3, seed=1.5), (TypeError, r"seed must be an int")),
    ("make_task", "csl of 41 to 42 nodes", lambda t: make_task("csl", 3, num_nodes=(41, 42)), (ValueError, r"csl graphs have exactly 41 nodes")),
    ("split", "empty list", lambda t: split([]), (ValueError, r"data_list is empty")),
    ("split", "two fractions", lambda t: split(make_task("cycle_check", 10)[0], (0.5, 0.5)), (ValueError, r"fractions must be three")),
    ("split", "NaN fraction", lambda t: split(make_task("cycle_check", 10)[0], (NAN, 0.5, 0.5)), (ValueError, r"fractions must be three finite")),
    ("split", "negative fraction", lambda t: split(make_task("cycle_check", 10)[0], (1.2, -0.2, 0.0)), (ValueError, r"non-negative")),
    ("split", "seed=-1", lambda t: split(make_task("cycle_check", 10)[0], seed=-1), (ValueError, r"seed must be >= 0")),
    # ------------------------------------------------------------------ datasets
    ("karate_club", "num_train_per_class=0", lambda t: karate_club(0), (ValueError, r"num_train_per_class must lie in 1..16")),
    ("karate_club", "num_train_per_class=17", lambda t: karate_club(17), (ValueError, r"num_train_per_class must lie in 1..16")),
    ("karate_club", "num_train_per_class=1.5", lambda t: karate_club(1.5), (TypeError, r"num_train_per_class must be an int")),
    ("karate_club", "num_train_per_class=True", lambda t: karate_club(True), (TypeError, r"num_train_per_class must be an int")),
    ("karate_club", "seed=-1", lambda t: karate_club(seed=-1), (ValueError, r"seed must be >= 0")),
    ("load_local_dataset", "root=None", lambda t: load_local_dataset(None, "MUTAG"), (TypeError, r"root must be a path")),
    ("load_local_dataset", "empty root", lambda t: load_local_dataset(str(t), "MUTAG"), (FileNotFoundError, r"MUTAG_A\.txt")),
    ("load_local_dataset", "root is a file", lambda t: (t / "f").write_text("x") and load_local_dataset(str(t / "f"), "MUTAG"),
     (FileNotFoundError, r"no local copy found")),
    ("load_local_dataset", "name=''", lambda t: load_local_dataset(str(t), ""), (ValueError, r"name must be a data set's folder name")),
    ("load_local_dataset", "name '../x'", lambda t: load_local_dataset(str(t), "../x"), (ValueError, r"no path separators")),
    ("load_local_dataset", "name=3", lambda t: load_local_dataset(str(t), 3), (TypeError, r"name must be a str")),
    ("load_local_dataset", "kind='OGB'", lambda t: load_local_dataset(str(t), "X", kind="OGB"), (ValueError, r"kind must be 'TUDataset' or 'Planetoid'")),
    ("load_local_dataset", "force_reload='no'", lambda t: load_local_dataset(str(t), "X", force_reload="no"), (TypeError, r"force_reload must be a bool")),
    ("load_local_dataset", "use_node_attr=1", lambda t: load_local_dataset(str(t), "X", use_node_attr=1), (TypeError, r"use_node_attr must be a bool")),
    ("load_local_dataset", "crafted data.pt, no raw files", lambda t: refused(tu_cache(t, "crafted", keep_raw=False)),
     (ValueError, r"data\.pt cannot be loaded safely")),
    ("load_local_dataset", "crafted data.pt, raw files kept", lambda t: rebuilt(tu_cache(t, "crafted", keep_raw=True)),
     Documented(lambda d: len(d) == 2, "rebuilt from the raw files, with a warning; the code never runs")),
    ("load_local_dataset", "truncated data.pt, no raw files", lambda t: refused(tu_cache(t, "truncated", keep_raw=False)),
     (ValueError, r"data\.pt cannot be loaded safely \(RuntimeError")),
    ("load_local_dataset", "truncated data.pt, raw files kept", lambda t: rebuilt(tu_cache(t, "truncated", keep_raw=True)),
     Documented(lambda d: len(d) == 2, "rebuilt from the raw files, with a warning")),
    ("load_local_dataset", "binary garbage in a raw file",
     lambda t: write_tu(t, "TOY", [(2, [(0, 1)], 0, [0, 1])]) or (t / "TOY" / "raw" / "TOY_A.txt").write_bytes(bytes(range(256)))
     and load_local_dataset(str(t), "TOY"), (ValueError, r"cannot build the data set from the raw files in .*TOY.raw")),
]


@pytest.mark.parametrize(
    "entry, description, call, expected", CASES, ids=[f"{e} | {d}" for e, d, _, _ in CASES]
)
def test_bad_input(tmp_path: Path, entry: str, description: str, call: Callable[[Path], Any], expected: Any) -> None:
    expect(lambda: call(tmp_path), expected)


def test_the_table_has_one_row_per_case() -> None:
    assert_unique([(entry, description) for entry, description, _, _ in CASES])
    assert all(isinstance(e, Documented) or (issubclass(e[0], Exception) and re.compile(e[1])) for *_, e in CASES)
