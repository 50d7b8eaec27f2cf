"""``GSMConv``: one GSM++ layer with torch-geometric's call convention."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from seqcore.nn import MLP

from .local import LocalEncoder
from .mixture import PlanMixer, TokenizationMixture, check_plans
from .tokenize import TokenPlan, build_plan
from .validation import check_features, check_graph
from seqcore.ops.validation import check_int


class GSMConv(nn.Module):
    """A graph sequence model layer: local message passing plus a global sequence model over tokenized graphs.

    ``x_l = norm_1(x + dropout(local(x)))``, ``x_g = norm_2(x + dropout(global(x)))``, ``h = x_l + x_g``,
    ``out = norm_3(h + MLP(h))``: the GPS layer's layout, with the global attention replaced by a ``seqcore.nn``
    mixer over the token sequences of one tokenization (or a :class:`~graphs.mixture.TokenizationMixture` when
    ``tokenization`` names several).

    Args:
        channels: width C of ``x: (N, C)``.
        mixer: a registered mixer name (``"mamba2"``, ``"gla"``, ``"attention"``, ...; see ``seqcore.nn.MIXERS``).
        tokenization: a name from ``graphs.tokenize.TOKENIZERS`` or a sequence of names (mixture of tokenization).
        local: ``"gatedgcn"``, ``"gine"`` or ``None`` (no local encoder).
        num_heads: heads of the mixer.
        bidirectional: run the mixer over each sequence in both directions (graphs have no causal order).
        edge_dim: width of ``edge_attr`` for the local encoder, ``None`` for none.
        top_k: tokenizations kept per node by the mixture.
        dropout: on the local and global branch outputs and inside the MLP.
        mixer_kwargs: more options of the mixer (``backend``, ``expand_k``, ...).

    Call: ``conv(x, edge_index, batch=None, edge_attr=None, plans=None) -> (N, C)``. ``plans`` maps
    tokenization names to :class:`~graphs.tokenize.TokenPlan` built once per batch (the model does this for all
    layers); without it the layer tokenizes ``(x, edge_index, batch)`` itself with tie-break seed 0. ``x`` must be
    floating point, finite and on the layer's device; a graph batch without nodes gives ``(0, C)``.
    """

    def __init__(
        self,
        channels: int,
        mixer: str = "mamba2",
        tokenization: str | Sequence[str] = "hac_dfs",
        *,
        local: str | None = "gatedgcn",
        num_heads: int = 4,
        bidirectional: bool = True,
        edge_dim: int | None = None,
        top_k: int = 2,
        dropout: float = 0.0,
        mlp_ratio: float = 2.0,
        mixer_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        channels = check_int("channels", channels, 1)
        self.channels, self.mixer_name = channels, mixer
        options = {"bidirectional": bidirectional, "dropout": dropout, **(mixer_kwargs or {})}
        if isinstance(tokenization, str):
            self.global_encoder = PlanMixer(channels, tokenization, mixer, num_heads, **options)
        else:
            self.global_encoder = TokenizationMixture(channels, tokenization, mixer, num_heads, top_k, **options)
        self.local = None if local is None else LocalEncoder(channels, local, edge_dim)
        self.norm_local = nn.LayerNorm(channels) if local is not None else None
        self.norm_global = nn.LayerNorm(channels)
        self.mlp = MLP(channels, int(mlp_ratio * channels), dropout)
        self.norm_out = nn.LayerNorm(channels)
        self.dropout = nn.Dropout(dropout)

    @property
    def tokenizations(self) -> tuple[str, ...]:
        """The tokenizations this layer reads from ``plans``."""
        return self.global_encoder.tokenizations

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        batch: Tensor | None = None,
        edge_attr: Tensor | None = None,
        plans: Mapping[str, TokenPlan] | None = None,
    ) -> Tensor:
        check_features("x", x, f"(N, C={self.channels})", self.channels, self.norm_out.weight)
        edge_index, batch = check_graph(edge_index, x.shape[0], batch, x=x)
        if plans is None:
            plans = {name: build_plan(name, x, edge_index, batch, num_nodes=x.shape[0]) for name in self.tokenizations}
        check_plans(self.tokenizations, plans, x.shape[0])
        h = self.norm_global(x + self.dropout(self.global_encoder(x, plans)))
        if self.local is not None:
            h = h + self.norm_local(x + self.dropout(self.local(x, edge_index, edge_attr)))
        return self.norm_out(h + self.mlp(h))

    def __repr__(self) -> str:
        local = None if self.local is None else self.local.kind
        return (
            f"{self.__class__.__name__}({self.channels}, mixer={self.mixer_name!r}, "
            f"tokenization={self.tokenizations}, local={local!r})"
        )
