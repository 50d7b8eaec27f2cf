"""Local (message-passing) encoders of a GSM layer: gated GCN or GINE from torch-geometric."""
from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GINEConv, ResGatedGraphConv


from .validation import check_features
from seqcore.ops.validation import check_int

LOCAL_ENCODERS = ("gatedgcn", "gine")


class LocalEncoder(nn.Module):
    """One message-passing step ``(N, C) -> (N, C)``.

    Args:
        channels: width C.
        kind: ``"gatedgcn"`` (:class:`~torch_geometric.nn.conv.ResGatedGraphConv`, edge gates
            ``sigmoid(W_3 x_i + W_4 x_j (+ W_e e_ij))``) or ``"gine"`` (:class:`~torch_geometric.nn.conv.GINEConv`,
            ``MLP((1 + eps) x_i + sum_j relu(x_j + W_e e_ij))`` with a trainable ``eps``).
        edge_dim: width of ``edge_attr``; ``None`` when edges carry no features (GINE then adds nothing to
            ``x_j``, which is GIN).

    ``forward(x, edge_index, edge_attr=None)``: ``edge_attr`` is ``(E, edge_dim)`` floating point and finite.
    """

    def __init__(self, channels: int, kind: str = "gatedgcn", edge_dim: int | None = None) -> None:
        super().__init__()
        if kind not in LOCAL_ENCODERS:
            raise ValueError(f"local encoder must be one of {LOCAL_ENCODERS}, got {kind!r}")
        if edge_dim is not None:
            edge_dim = check_int("edge_dim", edge_dim, 1)
        self.kind, self.edge_dim = kind, edge_dim
        if kind == "gatedgcn":
            self.conv = ResGatedGraphConv(channels, channels, edge_dim=edge_dim)
        else:
            mlp = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, channels))
            self.conv = GINEConv(mlp, train_eps=True, edge_dim=edge_dim)

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        if (edge_attr is None) != (self.edge_dim is None):
            raise ValueError(
                f"this encoder was built with edge_dim={self.edge_dim}; pass edge_attr exactly when edge_dim is set"
            )
        if edge_attr is not None:
            check_features("edge_attr", edge_attr, f"(E={edge_index.shape[1]}, {self.edge_dim})", self.edge_dim, x)
            if edge_attr.shape[0] != edge_index.shape[1]:
                raise ValueError(
                    f"edge_attr must have shape (E={edge_index.shape[1]}, {self.edge_dim}), got {tuple(edge_attr.shape)}"
                )
        if self.kind == "gine" and edge_attr is None:
            edge_attr = x.new_zeros(edge_index.shape[1], x.shape[1])
        if edge_attr is None:
            return self.conv(x, edge_index)
        return self.conv(x, edge_index, edge_attr)
