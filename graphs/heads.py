"""Read-outs shared by GSM++ and the baselines: node, edge and graph predictions from node states."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

TASK_LEVELS = ("node", "edge", "graph")
POOLS = {"mean": global_mean_pool, "add": global_add_pool, "max": global_max_pool}


class TaskHead(nn.Module):
    """``h: (N, C)`` -> logits for nodes ``(N, K)``, edges ``(E', K)`` or graphs ``(G, K)``.

    Node level: an MLP on each node. Edge level: an MLP on ``[h_u * h_v, h_u + h_v]`` for each pair of
    ``edge_label_index: (2, E')`` (symmetric in ``u, v``). Graph level: ``pool`` over each graph's nodes, then an
    MLP; ``num_graphs`` counts trailing empty graphs that ``batch`` alone cannot show.
    """

    def __init__(self, channels: int, out_channels: int, level: str = "node", pool: str = "mean", dropout: float = 0.0) -> None:
        super().__init__()
        if level not in TASK_LEVELS:
            raise ValueError(f"task level must be one of {TASK_LEVELS}, got {level!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {sorted(POOLS)}, got {pool!r}")
        self.level, self.pool = level, pool
        width = 2 * channels if level == "edge" else channels
        self.mlp = nn.Sequential(nn.Linear(width, channels), nn.GELU(), nn.Dropout(dropout), nn.Linear(channels, out_channels))

    def forward(
        self, h: Tensor, batch: Tensor, edge_label_index: Tensor | None = None, num_graphs: int | None = None
    ) -> Tensor:
        if self.level == "node":
            return self.mlp(h)
        if self.level == "edge":
            if edge_label_index is None or edge_label_index.dim() != 2 or edge_label_index.shape[0] != 2:
                raise ValueError("an edge-level model needs edge_label_index of shape (2, E')")
            u, v = h[edge_label_index[0]], h[edge_label_index[1]]
            return self.mlp(torch.cat([u * v, u + v], dim=-1))
        size = num_graphs if num_graphs is not None else (int(batch.max()) + 1 if batch.numel() else 0)
        return self.mlp(POOLS[self.pool](h, batch, size=size))

