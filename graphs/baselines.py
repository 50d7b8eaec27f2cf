"""Message-passing and GPS baselines with the same call convention and heads as :class:`~graphs.GSMPlusPlus`."""
from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GCNConv, GINConv, GPSConv

from seqcore.nn.validation import check_fraction
from seqcore.ops.validation import check_int

from .heads import TaskHead
from .validation import check_features, check_graph

BASELINES = ("gcn", "gin", "gps")


def _gin_mlp(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels))


class GNNBaseline(nn.Module):
    """GCN, GIN or GPS (GIN local layers + full multi-head softmax attention per graph, torch-geometric's
    :class:`~torch_geometric.nn.conv.GPSConv`): ``x: (N, F)`` -> logits like :class:`~graphs.GSMPlusPlus`.

    GPS pads every graph of the batch to the largest one for its attention (``to_dense_batch``), so its memory
    grows with the square of the largest graph's node count.

    Inputs are checked as :class:`~graphs.GSMPlusPlus` checks them (NaN or inf in ``x`` raise ``ValueError``). A
    batch without nodes skips the message-passing layers (there is nothing to pass) and goes to the head.
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
        in_channels = check_int("in_channels", in_channels, 0)
        hidden_channels = check_int("hidden_channels", hidden_channels, 1)
        num_layers = check_int("num_layers", num_layers, 1)
        dropout = check_fraction("dropout", dropout)
        if kind == "gps" and hidden_channels % check_int("heads", heads, 1):
            raise ValueError(f"hidden_channels ({hidden_channels}) must be divisible by heads ({heads}) for GPS")
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
        check_features("x", x, f"(N, F={self.in_channels})", self.in_channels, self.embed.weight)
        if edge_attr is not None:
            raise ValueError("the baselines take no edge features")
        edge_index, batch = check_graph(edge_index, x.shape[0], batch, x=x)
        h = self.embed(x)
        # GPS's dense batching cannot take an empty batch, and no layer would change one.
        for conv in self.convs if x.shape[0] else ():
            if self.kind == "gps":
                h = conv(h, edge_index, batch)
            else:
                h = self.drop(self.act(conv(h, edge_index))) + h
        return self.head(h, batch, edge_label_index, num_graphs)
