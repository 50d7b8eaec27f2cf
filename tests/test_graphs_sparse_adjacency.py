"""A sparse adjacency ``adj_t`` is accepted wherever ``edge_index`` is, as torch-geometric's convs accept it."""
from __future__ import annotations

import pytest
import torch

from graphs import GSMConv, GSMPlusPlus
from graphs.validation import as_edge_index


def _graph():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 16, generator=gen)
    # (source, target), sorted by (target, source): the order a coalesced adj_t gives back
    edge_index = torch.tensor([[1, 2, 0, 3, 1, 4, 5, 2], [0, 0, 1, 2, 3, 3, 4, 6]])
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(edge_index.shape[1]), (7, 7))
    return x, edge_index, adj_t


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("layout", ["coo", "csr", "csc"])
def test_sparse_adj_t_equals_its_edge_index(layout: str) -> None:
    x, edge_index, adj_t = _graph()
    adj = {"coo": adj_t, "csr": adj_t.to_sparse_csr(), "csc": adj_t.to_sparse_csc()}[layout]
    assert torch.equal(as_edge_index(adj, 7), edge_index)
    conv = GSMConv(16).eval()
    torch.testing.assert_close(conv(x, adj), conv(x, edge_index), rtol=0, atol=0)
    model = GSMPlusPlus(in_channels=16, hidden_channels=16, out_channels=3, task="node").eval()
    torch.testing.assert_close(model(x, adj), model(x, edge_index), rtol=0, atol=0)


def test_weighted_or_misshapen_adjacency_is_refused() -> None:
    x, edge_index, adj_t = _graph()
    weighted = torch.sparse_coo_tensor(edge_index.flip(0), torch.full((edge_index.shape[1],), 0.5), (7, 7))
    with pytest.raises(ValueError, match="weights other than 1"):
        GSMConv(16)(x, weighted)
    with pytest.raises(ValueError, match=r"must have shape \(N, N\) = \(7, 7\), got \(7, 8\)"):
        GSMConv(16)(x, torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(8), (7, 8)))
