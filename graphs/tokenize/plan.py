"""Token plans: how a batch of graphs becomes packed token sequences and how token outputs return to nodes.

A plan is built once per batch from the graph structure (and, for HAC, the input features) and reused by every
layer: each layer gathers its current node features into tokens, runs a sequence model over the packed
sequences and scatters the token outputs back to the nodes.

Every token is the mean of a set of member nodes (one node for node orderings and random walks, a cluster for
HAC-BFS, a hop neighbourhood for k-hop tokens); every read-out pair sends one token's output to one node, and a
node receives the mean of its read-outs.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from seqcore.ops.validation import check_int


@dataclass(frozen=True)
class TokenPlan:
    """Packed token sequences over a batch of graphs with ``N`` nodes.

    Attributes:
        pool_token, pool_node: ``(P,)`` membership pairs: token ``pool_token[i]`` contains node ``pool_node[i]``.
        cu_seqlens: ``(S + 1,)`` int64 offsets; tokens ``cu_seqlens[s]:cu_seqlens[s + 1]`` form sequence ``s``
            in sequence order. Every sequence is non-empty (the ops' ``cu_seqlens`` contract).
        seq_graph: ``(S,)`` graph of each sequence.
        read_token, read_node: ``(R,)`` read-out pairs: token ``read_token[i]``'s output goes to ``read_node[i]``.
        num_nodes: ``N``.
        position: optional ``(L, F)`` per-token position features (for example the token's index in its sequence).
    """

    pool_token: Tensor
    pool_node: Tensor
    cu_seqlens: Tensor
    seq_graph: Tensor
    read_token: Tensor
    read_node: Tensor
    num_nodes: int
    position: Tensor | None = None

    def __post_init__(self) -> None:
        # A plan is built once per batch, so checking every index here costs little and keeps gather and
        # scatter from failing with a bare IndexError (or not at all, for unsorted offsets).
        for name in ("pool_token", "pool_node", "cu_seqlens", "seq_graph", "read_token", "read_node"):
            value = getattr(self, name)
            if not isinstance(value, Tensor) or value.dtype != torch.int64 or value.dim() != 1:
                raise TypeError(f"{name} must be a 1-D int64 tensor, got {_describe(value)}")
        if self.cu_seqlens.numel() < 1 or int(self.cu_seqlens[0]) != 0:
            raise ValueError("cu_seqlens must be 1-D and start at 0")
        if bool((self.cu_seqlens[1:] <= self.cu_seqlens[:-1]).any()):
            raise ValueError("cu_seqlens must be strictly increasing (every sequence non-empty)")
        if self.seq_graph.numel() != self.num_sequences:
            raise ValueError(f"seq_graph must have one graph per sequence ({self.num_sequences}), got {self.seq_graph.numel()}")
        if self.pool_token.shape != self.pool_node.shape or self.read_token.shape != self.read_node.shape:
            raise ValueError("pool_token/pool_node and read_token/read_node must be pairs of equal length")
        object.__setattr__(self, "num_nodes", check_int("num_nodes", self.num_nodes, 0))  # frozen: a numpy int as int
        for name, size in (("pool_token", self.num_tokens), ("read_token", self.num_tokens),
                           ("pool_node", self.num_nodes), ("read_node", self.num_nodes)):
            value = getattr(self, name)
            if value.numel() and (int(value.min()) < 0 or int(value.max()) >= size):
                raise ValueError(f"{name} must lie in [0, {size}), got [{int(value.min())}, {int(value.max())}]")

    @property
    def num_tokens(self) -> int:
        """``L``: tokens over all sequences."""
        return int(self.cu_seqlens[-1])

    @property
    def num_sequences(self) -> int:
        """``S``."""
        return self.cu_seqlens.numel() - 1

    @property
    def one_node_per_token(self) -> bool:
        """True when token ``t`` is exactly node ``pool_node[t]`` (gather is an index select)."""
        return self.pool_token.numel() == self.num_tokens and bool(
            torch.equal(self.pool_token, torch.arange(self.num_tokens, device=self.pool_token.device))
        )

    def gather(self, x: Tensor) -> Tensor:
        """Token features ``(L, C)`` from node features ``x: (N, C)`` (mean over each token's members)."""
        if x.dim() != 2:
            raise ValueError(f"x must have shape (N={self.num_nodes}, C), got {tuple(x.shape)}")
        if x.shape[0] != self.num_nodes:
            raise ValueError(f"the plan was built for {self.num_nodes} nodes, got features for {x.shape[0]}")
        if self.one_node_per_token:
            return x.index_select(0, self.pool_node)
        return _mean_into(x.index_select(0, self.pool_node), self.pool_token, self.num_tokens)

    def scatter(self, y: Tensor) -> Tensor:
        """Node outputs ``(N, C)`` from token outputs ``y: (L, C)``: the mean of each node's read-outs (zero for
        a node with none)."""
        if y.dim() != 2:
            raise ValueError(f"y must have shape (L={self.num_tokens}, C), got {tuple(y.shape)}")
        if y.shape[0] != self.num_tokens:
            raise ValueError(f"the plan has {self.num_tokens} tokens, got outputs for {y.shape[0]}")
        return _mean_into(y.index_select(0, self.read_token), self.read_node, self.num_nodes)

    def to(self, device: torch.device | str) -> "TokenPlan":
        """The plan with every tensor moved to ``device``."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return replace(self, **{k: v.to(device) for k, v in moved.items() if isinstance(v, Tensor)})


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"{value.dtype} of shape {tuple(value.shape)}"
    return type(value).__name__


def _mean_into(values: Tensor, index: Tensor, size: int) -> Tensor:
    """``out[i] = mean(values[index == i])``, zero where no value lands."""
    total = values.new_zeros(size, values.shape[1]).index_add_(0, index, values)
    count = torch.bincount(index, minlength=size).clamp_(min=1).to(values.dtype)
    return total / count[:, None]
