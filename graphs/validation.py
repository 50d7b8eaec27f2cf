"""Input checks shared by the graph models and tokenizers: one place that turns malformed graphs into clear errors.

Conventions (torch-geometric's): ``edge_index`` is a ``(2, E)`` int64 tensor of (source, target) node indices,
``batch`` a ``(N,)`` int64 tensor giving each node's graph, sorted, as ``torch_geometric.data.Batch`` builds it.
A sparse adjacency is accepted wherever ``edge_index`` is, as torch-geometric's convs accept it: a ``torch.sparse``
tensor (COO, CSR or CSC) or a ``torch_sparse.SparseTensor`` of shape ``(N, N)`` read as ``adj_t`` (entry ``[i, j]``
is an edge from ``j`` to ``i``), converted by :func:`as_edge_index`. Accepted without error: zero nodes, graphs without edges, self-loops, duplicate edges and directed edge lists
(the tokenizers decide what these mean; HAC treats every edge list as undirected and ignores self-loops).
"""
from __future__ import annotations

import torch
from torch import Tensor

from seqcore.ops.validation import check_float, check_int, check_same_device


def check_features(name: str, x: Tensor, layout: str, width: int, like: Tensor | None = None) -> None:
    """``x: (N, width)`` floating point and finite; with ``like`` (a parameter of the model that reads ``x``), on
    its device and, outside autocast, of its dtype.

    Non-finite features are refused: the HAC tokenizers cannot cluster them, the sequence mixers refuse them,
    and in message passing one NaN spreads to every node it reaches.
    """
    check_float(name, x, 2, layout)
    if x.shape[1] != width:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(x.shape)}")
    if like is not None:
        check_same_device(**{name: x, "parameters": like})
        if x.dtype != like.dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(f"{name} is {x.dtype} but the model's parameters are {like.dtype}; cast one to the other")
    if not torch.compiler.is_compiling() and x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} has {int((~torch.isfinite(x)).sum())} NaN or infinite values")


_SPARSE_LAYOUTS = (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc)


def _is_sparse_adjacency(adj: object) -> bool:
    if isinstance(adj, Tensor):
        return adj.layout in _SPARSE_LAYOUTS
    return type(adj).__name__ == "SparseTensor" and hasattr(adj, "coo")


def as_edge_index(adj: object, num_nodes: int) -> Tensor:
    """``(2, E)`` int64 (source, target) indices of a sparse ``adj_t`` ``(N, N)``; other inputs are returned as they are.

    The models read the graph's structure only: a weighted adjacency (a stored value other than 1) is refused, since
    dropping its weights would be silent; pass edge features as ``edge_attr`` instead.
    """
    if not _is_sparse_adjacency(adj):
        return adj
    shape = tuple(adj.shape) if isinstance(adj, Tensor) else tuple(adj.sizes())
    if shape != (num_nodes, num_nodes):
        raise ValueError(f"a sparse adjacency must have shape (N, N) = {(num_nodes, num_nodes)}, got {shape}")
    if isinstance(adj, Tensor):
        # through COO for every layout: edges come out sorted by (target, source) whatever the input layout
        coo = adj.to_sparse_coo().coalesce()
        target_source, values = coo.indices(), coo.values()
    else:
        row, col, values = adj.coo()
        target_source = torch.stack([row, col])
    if values is not None and values.numel() and not bool((values == 1).all()):
        raise ValueError("the sparse adjacency holds weights other than 1; the model uses the graph's structure only "
                         "(pass edge features as edge_attr)")
    return target_source.flip(0).to(torch.int64).contiguous()


def check_graph(
    edge_index: Tensor, num_nodes: int, batch: Tensor | None = None, *, x: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Validate a (batched) graph and return ``(edge_index, batch)``.

    Args:
        edge_index: ``(2, E)`` int64 node indices in ``[0, num_nodes)``, or a sparse ``adj_t`` ``(N, N)``
            (:func:`as_edge_index`).
        num_nodes: ``N >= 0``.
        batch: optional ``(N,)`` int64 graph id of every node, non-negative and sorted; ``None`` means one graph.
        x: the node features, if any: ``edge_index`` and ``batch`` must be on its device.

    Returns:
        ``edge_index`` (built from a sparse adjacency, else unchanged) and ``batch`` (zeros of shape ``(N,)`` on ``edge_index``'s device when ``None``).

    Raises:
        TypeError: ``edge_index`` or ``batch`` is not a tensor or not int64, or ``num_nodes`` is not an int.
        ValueError: wrong shapes, indices out of range, an unsorted ``batch``, an edge joining two graphs, or
            ``edge_index`` and ``batch`` on different devices.
    """
    num_nodes = check_int("num_nodes", num_nodes, 0)
    edge_index = as_edge_index(edge_index, num_nodes)
    if not isinstance(edge_index, Tensor):
        raise TypeError(f"edge_index must be a torch.Tensor (or a sparse adjacency), got {type(edge_index).__name__}")
    if edge_index.dtype != torch.int64:
        raise TypeError(f"edge_index must be int64 (torch.long), got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    if batch is not None and not isinstance(batch, Tensor):
        raise TypeError(f"batch must be a torch.Tensor, got {type(batch).__name__}")
    check_same_device(x=x, edge_index=edge_index, batch=batch)
    if edge_index.numel():
        low, high = int(edge_index.min()), int(edge_index.max())
        if low < 0:
            raise ValueError(f"edge_index has a negative node index ({low})")
        if high >= num_nodes:
            raise ValueError(f"edge_index refers to node {high} but the graph has num_nodes={num_nodes}")
    if batch is None:
        return edge_index, torch.zeros(num_nodes, dtype=torch.int64, device=edge_index.device)
    if batch.dtype != torch.int64:
        raise TypeError(f"batch must be int64 (torch.long), got {batch.dtype}")
    if batch.dim() != 1 or batch.shape[0] != num_nodes:
        raise ValueError(f"batch must have shape ({num_nodes},) (one graph id per node), got {tuple(batch.shape)}")
    if num_nodes:
        if int(batch[0]) < 0:
            raise ValueError(f"batch has a negative graph id ({int(batch.min())})")
        if bool((batch[1:] < batch[:-1]).any()):
            raise ValueError(
                "batch must be sorted (nodes of each graph contiguous, graphs in order), as torch-geometric's "
                "Batch keeps it; reorder the nodes (and edge_index) or build the batch with Batch.from_data_list"
            )
    if edge_index.numel():
        crossing = batch[edge_index[0]] != batch[edge_index[1]]
        if bool(crossing.any()):
            i = int(crossing.nonzero()[0, 0])
            s, t = int(edge_index[0, i]), int(edge_index[1, i])
            raise ValueError(
                f"edge {i} ({s} -> {t}) joins graph {int(batch[s])} to graph {int(batch[t])}; "
                "edges must stay inside one graph of the batch"
            )
    return edge_index, batch
