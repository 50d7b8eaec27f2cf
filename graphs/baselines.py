"""Message-passing and GPS baselines with the same call convention and heads as :class:`~graphs.GSMPlusPlus`."""
from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GCNConv, GINConv, GPSConv

from .heads import TaskHead
from .validation import check_graph

BASELINES = ("gcn", "gin", "gps")


def _gin_mlp(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels))


class GNNBaseline(nn.Module):
    """GCN, GIN or GPS (GIN local layers + full multi-head softmax attention per graph, torch-geometric's
    :class:`~torch_geometric.nn.conv.GPSConv`): ``x: (N, F)`` -> logits like :class:`~graphs.GSMPlusPlus`.

    GPS pads every graph of the batch to the largest one for its attention (``to_dense_batch``), so its memory
    grows with the square of the largest graph's node count.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        kind: str = "gcn",
        *,
        num_layers: int = 3,
        task: str = "node",
        heads: int = 4,
        pool: str = "mean",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.kind, self.in_channels = kind, in_channels
        self.embed = nn.Linear(in_channels, hidden_channels)
        if kind == "gcn":
            convs = [GCNConv(hidden_channels, hidden_channels) for _ in range(num_layers)]
        elif kind == "gin":
            convs = [GINConv(_gin_mlp(hidden_channels), train_eps=True) for _ in range(num_layers)]
        else:
            convs = [
                GPSConv(hidden_channels, GINConv(_gin_mlp(hidden_channels)), heads=heads, dropout=dropout)
                for _ in range(num_layers)
            ]
        self.convs = nn.ModuleList(convs)
        self.act, self.drop = nn.ReLU(), nn.Dropout(dropout)
        self.head = TaskHead(hidden_channels, out_channels, task, pool, dropout)

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None = None,
        edge_attr: Tensor | None = None,
        *,
        edge_label_index: Tensor | None = None,
        num_graphs: int | None = None,
    ) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (N, F={self.in_channels}), got {tuple(x.shape)}")
        if edge_attr is not None:
            raise ValueError("the baselines take no edge features")
        edge_index, batch = check_graph(edge_index, x.shape[0], batch)
        h = self.embed(x)
        for conv in self.convs:
            if self.kind == "gps":
                h = conv(h, edge_index, batch)
            else:
                h = self.drop(self.act(conv(h, edge_index))) + h
        return self.head(h, batch, edge_label_index, num_graphs)
