"""``GSMPlusPlus``: the GSM++ model (HAC tokenization, hierarchical positions, hybrid global encoder)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from seqcore.ops.validation import check_bool, check_int

from .conv import GSMConv
from .heads import TaskHead
from .tokenize import HAC_TOKENIZERS, TOKENIZERS, TokenPlan, build_plan, hac, hierarchical_pe
from .validation import check_features, check_graph

HYBRID = ("mamba2", "mamba2", "attention")
PE_DIM_PER_LEVEL = 4


class GSMPlusPlus(nn.Module):
    """GSM++ for node-, edge- and graph-level tasks.

    ``x: (N, F)`` -> linear embedding (+ the hierarchical positional encoding of the HAC tree) -> one
    :class:`~graphs.conv.GSMConv` per entry of ``layers`` -> :class:`~graphs.heads.TaskHead`.

    The graph is tokenized once per forward from the input features and structure, and every layer reuses those
    token plans. While training, each forward draws a fresh tie-break order (from torch's RNG, so
    ``torch.manual_seed`` makes runs repeatable); in evaluation the logits are averaged over ``tie_orders`` fixed
    orders (seeds ``0 .. tie_orders - 1``), which makes the output independent of the node numbering whenever the
    tokenizers' remaining ties are broken by those orders alone.

    Args:
        in_channels: F.
        hidden_channels: width C of every layer.
        out_channels: K logits per node, edge or graph.
        layers: a mixer name per layer; the default is the GSM++ hybrid, two bidirectional Mamba-2 layers then one
            softmax attention layer. ``("mamba2",) * 3`` is the recurrent encoder, ``("attention",) * 3`` the
            Transformer one.
        tokenization: a tokenizer name (``graphs.tokenize.TOKENIZERS``) or several for a mixture of tokenization.
        task: ``"node"``, ``"edge"`` or ``"graph"``.
        local: local encoder of every layer (``"gatedgcn"``, ``"gine"`` or ``None``).
        positional: add the hierarchical positional encoding (needs a HAC tree; built even when the tokenizer
            is not HAC).
        pe_levels: tree levels the positional encoding describes (deeper levels are cut, shallower padded).
        tie_orders: tie-break orders averaged in evaluation.
        hac_affinity: affinity of the HAC tree, shared by the HAC tokenizers and the positional encoding:
            ``"cosine"`` or ``"structural"`` on the input features (see :func:`graphs.tokenize.hac`), a callable,
            or ``"learned"``: cosine of the model's own node embeddings ``embed(x)``, so the tree follows what
            the embedding learns from the task (the tree itself passes no gradient).
        tokenizer_kwargs: options of the other tokenizers this model uses, for example ``{"khop": {"k": 2}}``.
        **layer_kwargs: passed to every :class:`~graphs.conv.GSMConv` (``num_heads``, ``dropout``, ``edge_dim``,
            ``top_k``, ``mixer_kwargs``, ...).

    Inputs: ``x`` floating point, finite (NaN or inf raise ``ValueError``), of the parameters' dtype and device;
    ``edge_index`` and ``batch`` as :func:`graphs.validation.check_graph` wants them. Graphs without nodes are
    accepted, alone or in a batch: a node- or edge-level model returns no rows for them, a graph-level one the
    head's MLP at the zero pooled vector (the sequence mixers are skipped when a batch has no tokens at all).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        *,
        layers: Sequence[str] = HYBRID,
        tokenization: str | Sequence[str] = "hac_dfs",
        task: str = "node",
        local: str | None = "gatedgcn",
        positional: bool = True,
        pe_levels: int = 8,
        tie_orders: int = 1,
        hac_affinity: Any = "cosine",
        pool: str = "mean",
        dropout: float = 0.0,
        tokenizer_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        **layer_kwargs: Any,
    ) -> None:
        super().__init__()
        if isinstance(layers, str) or len(layers) < 1:
            raise ValueError(f"layers must be a sequence naming at least one mixer, e.g. ('mamba2',), got {layers!r}")
        in_channels = check_int("in_channels", in_channels, 0)
        hidden_channels = check_int("hidden_channels", hidden_channels, 1)
        out_channels = check_int("out_channels", out_channels, 1)
        tie_orders = check_int("tie_orders", tie_orders, 1)
        pe_levels = check_int("pe_levels", pe_levels, 1)
        positional = check_bool("positional", positional)
        if not callable(hac_affinity) and hac_affinity not in ("cosine", "structural", "learned"):
            raise ValueError(f"hac_affinity must be 'cosine', 'structural', 'learned' or a callable, got {hac_affinity!r}")
        self.in_channels, self.task, self.tie_orders = in_channels, task, tie_orders
        self.positional, self.pe_levels, self.hac_affinity = positional, pe_levels, hac_affinity
        self.tokenizer_kwargs = {name: dict(kw) for name, kw in (tokenizer_kwargs or {}).items()}
        shared = sorted(set(self.tokenizer_kwargs) & set(HAC_TOKENIZERS))
        if shared:
            raise ValueError(f"HAC tokenizers share one tree: set hac_affinity instead of tokenizer_kwargs for {shared}")
        unknown = sorted(set(self.tokenizer_kwargs) - set(TOKENIZERS))
        if unknown:
            raise ValueError(f"tokenizer_kwargs names unknown tokenizers {unknown}; choose from {sorted(TOKENIZERS)}")
        self.embed = nn.Linear(in_channels, hidden_channels)
        self.pe_proj = nn.Linear(pe_levels * PE_DIM_PER_LEVEL, hidden_channels) if positional else None
        self.convs = nn.ModuleList(
            GSMConv(hidden_channels, mixer, tokenization, local=local, dropout=dropout, **layer_kwargs) for mixer in layers
        )
        self.head = TaskHead(hidden_channels, out_channels, task, pool, dropout)
        unused = sorted(set(self.tokenizer_kwargs) - set(self.tokenizations))
        if unused:
            raise ValueError(f"tokenizer_kwargs sets options of {unused}, which no layer uses (they use {self.tokenizations})")

    @property
    def tokenizations(self) -> tuple[str, ...]:
        """Every tokenization some layer reads."""
        return tuple(dict.fromkeys(name for conv in self.convs for name in conv.tokenizations))

    def reset_parameters(self) -> None:
        self.embed.reset_parameters()
        if self.pe_proj is not None:
            self.pe_proj.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        for module in self.head.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def tokenize(
        self, x: Tensor, edge_index: Tensor, batch: Tensor, seed: int
    ) -> tuple[dict[str, TokenPlan], Tensor | None]:
        """The token plans of every tokenization and the positional encoding ``(N, P)`` (or ``None``)."""
        names = self.tokenizations
        tree = None
        if self.positional or any(name in HAC_TOKENIZERS for name in names):
            if self.hac_affinity == "learned":
                tree = hac(self.embed(x), edge_index, batch, num_nodes=x.shape[0], affinity="cosine", seed=seed)
            else:
                tree = hac(x, edge_index, batch, num_nodes=x.shape[0], affinity=self.hac_affinity, seed=seed)
        plans = {}
        for name in names:
            if name in HAC_TOKENIZERS:
                plans[name] = HAC_TOKENIZERS[name](tree, batch, x.shape[0])
            else:
                options = self.tokenizer_kwargs.get(name, {})
                plans[name] = build_plan(name, x, edge_index, batch, num_nodes=x.shape[0], seed=seed, **options)
        pe = None
        if self.positional:
            pe = hierarchical_pe(tree, batch, x.shape[0], dim_per_level=PE_DIM_PER_LEVEL, max_levels=self.pe_levels)
        return plans, pe

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
        """Logits ``(N, K)``, ``(E', K)`` or ``(G, K)`` for ``x: (N, F)``, ``edge_index: (2, E)`` and the
        ``batch`` vector ``(N,)`` of a torch-geometric ``Batch`` (``None``: one graph)."""
        check_features("x", x, f"(N, F={self.in_channels})", self.in_channels, self.embed.weight)
        edge_index, batch = check_graph(edge_index, x.shape[0], batch, x=x)
        if self.training:
            seeds = [int(torch.randint(0, 2**31 - 1, ()))]
        else:
            seeds = list(range(self.tie_orders))
        logits = [self._forward_once(x, edge_index, batch, edge_attr, edge_label_index, num_graphs, s) for s in seeds]
        return logits[0] if len(logits) == 1 else torch.stack(logits).mean(0)

    def _forward_once(self, x, edge_index, batch, edge_attr, edge_label_index, num_graphs, seed: int) -> Tensor:
        with torch.no_grad():
            plans, pe = self.tokenize(x.detach(), edge_index, batch, seed)
        h = self.embed(x)
        if pe is not None:
            h = h + self.pe_proj(pe.to(h.dtype))
        for conv in self.convs:
            h = conv(h, edge_index, batch, edge_attr, plans=plans)
        return self.head(h, batch, edge_label_index, num_graphs)

