"""Read-outs shared by GSM++ and the baselines: node, edge and graph predictions from node states."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

from seqcore.nn.validation import check_fraction
from seqcore.ops.validation import check_float, check_int, check_same_device

TASK_LEVELS = ("node", "edge", "graph")
POOLS = {"mean": global_mean_pool, "add": global_add_pool, "max": global_max_pool}


class TaskHead(nn.Module):
    """``h: (N, C)`` -> logits for nodes ``(N, K)``, edges ``(E', K)`` or graphs ``(G, K)``.

    Node level: an MLP on each node. Edge level: an MLP on ``[h_u * h_v, h_u + h_v]`` for each pair of
    ``edge_label_index: (2, E')`` (symmetric in ``u, v``). Graph level: ``pool`` over each graph's nodes, then an
    MLP; ``num_graphs`` counts trailing empty graphs that ``batch`` alone cannot show. A graph without nodes pools
    to zeros (mean, add and max alike), so its logits are the MLP at the zero vector.
    """

    def __init__(self, channels: int, out_channels: int, level: str = "node", pool: str = "mean", dropout: float = 0.0) -> None:
        super().__init__()
        if level not in TASK_LEVELS:
            raise ValueError(f"task level must be one of {TASK_LEVELS}, got {level!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {sorted(POOLS)}, got {pool!r}")
        channels = check_int("channels", channels, 1)
        out_channels = check_int("out_channels", out_channels, 1)
        self.level, self.pool, self.channels = level, pool, channels
        width = 2 * channels if level == "edge" else channels
        self.mlp = nn.Sequential(
            nn.Linear(width, channels), nn.GELU(), nn.Dropout(check_fraction("dropout", dropout)),
            nn.Linear(channels, out_channels),
        )

    def forward(
        self, h: Tensor, batch: Tensor, edge_label_index: Tensor | None = None, num_graphs: int | None = None
    ) -> Tensor:
        check_float("h", h, 2, f"(N, C={self.channels})")
        if h.shape[1] != self.channels:
            raise ValueError(f"h must have shape (N, C={self.channels}), got {tuple(h.shape)}")
        if edge_label_index is not None and self.level != "edge":
            raise ValueError(f"edge_label_index is for edge-level models; this one predicts per {self.level}")
        if self.level == "node":
            return self.mlp(h)
        if self.level == "edge":
            _check_edge_label_index(edge_label_index, h)
            # index_select, not h[index]: indexing's backward adds repeated rows with unordered atomics when
            # multi-threaded, so the gradient would change with the thread count and between runs.
            u, v = h.index_select(0, edge_label_index[0]), h.index_select(0, edge_label_index[1])
            return self.mlp(torch.cat([u * v, u + v], dim=-1))
        if not isinstance(batch, Tensor) or batch.dtype != torch.int64 or tuple(batch.shape) != (h.shape[0],):
            raise ValueError(f"batch must be an int64 tensor of shape ({h.shape[0]},), one graph id per node")
        check_same_device(h=h, batch=batch)
        present = int(batch.max()) + 1 if batch.numel() else 0
        size = present if num_graphs is None else check_int("num_graphs", num_graphs, 0)
        if size < present:
            raise ValueError(f"num_graphs={size} but batch refers to graph {present - 1}")
        return self.mlp(POOLS[self.pool](h, batch, size=size))


def _check_edge_label_index(edge_label_index: Tensor | None, h: Tensor) -> None:
    if not isinstance(edge_label_index, Tensor) or edge_label_index.dim() != 2 or edge_label_index.shape[0] != 2:
        raise ValueError("an edge-level model needs edge_label_index of shape (2, E')")
    if edge_label_index.dtype != torch.int64:
        raise TypeError(f"edge_label_index must be int64 (torch.long), got {edge_label_index.dtype}")
    check_same_device(h=h, edge_label_index=edge_label_index)
    num_nodes = h.shape[0]
    if edge_label_index.numel():
        low, high = int(edge_label_index.min()), int(edge_label_index.max())
        if low < 0 or high >= num_nodes:
            raise ValueError(f"edge_label_index must hold node indices in [0, {num_nodes}), got [{low}, {high}]")
