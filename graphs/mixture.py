"""Global encoders of a GSM layer: one sequence mixer over one tokenization, or a mixture of tokenizations."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from seqcore.nn import build_mixer
from seqcore.ops.validation import check_int

from .tokenize import TOKENIZERS, TokenPlan


def check_plans(names: Sequence[str], plans: Mapping[str, TokenPlan], num_nodes: int) -> None:
    """Raise if a plan a layer needs is missing, not a :class:`TokenPlan` or was built for another graph batch."""
    if not isinstance(plans, Mapping):
        raise TypeError(f"plans must map tokenization names to TokenPlans, got {type(plans).__name__}")
    for name in names:
        if name not in plans:
            raise ValueError(f"no token plan for tokenization {name!r}; got plans for {sorted(map(str, plans))}")
        if not isinstance(plans[name], TokenPlan):
            raise TypeError(f"plans[{name!r}] must be a TokenPlan, got {type(plans[name]).__name__}")
        if plans[name].num_nodes != num_nodes:
            raise ValueError(f"the {name!r} plan was built for {plans[name].num_nodes} nodes, x has {num_nodes}")


class PlanMixer(nn.Module):
    """A registered ``seqcore.nn`` mixer run over the packed token sequences of one tokenization.

    ``x: (N, C)`` -> tokens ``(1, L, C)`` (:meth:`TokenPlan.gather`) -> mixer with ``cu_seqlens`` -> node outputs
    ``(N, C)`` (:meth:`TokenPlan.scatter`). A plan without tokens (a batch without nodes) skips the mixer, whose
    ops need at least one step, and gives ``(N, C)`` zeros: what scattering no token outputs gives.
    """

    def __init__(self, channels: int, tokenization: str, mixer: str = "gla", num_heads: int = 4, **mixer_kwargs: Any) -> None:
        super().__init__()
        if tokenization not in TOKENIZERS:
            raise ValueError(f"unknown tokenizer {tokenization!r}; choose one of {sorted(TOKENIZERS)}")
        self.tokenization = tokenization
        self.mixer = build_mixer(mixer, channels, num_heads=num_heads, **mixer_kwargs)

    @property
    def tokenizations(self) -> tuple[str, ...]:
        return (self.tokenization,)

    def forward(self, x: Tensor, plans: Mapping[str, TokenPlan]) -> Tensor:
        plan = plans[self.tokenization]
        tokens = plan.gather(x)
        if plan.num_tokens == 0:
            return plan.scatter(tokens)
        return plan.scatter(self.mixer(tokens[None], cu_seqlens=plan.cu_seqlens)[0])


class TokenizationMixture(nn.Module):
    """Mixture of Tokenization: a router picks the ``top_k`` best tokenizations per node.

    Every tokenization has its own mixer and produces ``y_j: (N, C)`` for all nodes (sequences cover whole graphs,
    so nothing is saved by running a tokenization for fewer nodes). The router scores ``r = W x: (N, n)``; node
    ``i`` keeps its ``top_k`` tokenizations ``j_1, ..., j_k`` by score, weights them by a softmax over the kept
    scores ``w``, and outputs ``W_o [w_1 y_{j_1}(i), ..., w_k y_{j_k}(i)]`` (concatenated in rank order).

    Gradients: the choice of tokenizations is a hard top-k and passes no gradient; the router learns through the
    weights ``w`` that scale the chosen outputs (as in top-k mixture-of-experts gating), and each tokenization's
    mixer gets gradient only from the nodes that chose it.
    """

    def __init__(
        self,
        channels: int,
        tokenizations: Sequence[str],
        mixer: str = "gla",
        num_heads: int = 4,
        top_k: int = 2,
        **mixer_kwargs: Any,
    ) -> None:
        super().__init__()
        names = tuple(tokenizations)
        if len(set(names)) != len(names) or len(names) < 2:
            raise ValueError(f"a mixture needs at least two distinct tokenizations, got {names}")
        if not 1 <= check_int("top_k", top_k, None) <= len(names):
            raise ValueError(f"top_k must lie in [1, {len(names)}], got {top_k}")
        self.names, self.top_k = names, top_k
        self.experts = nn.ModuleList(PlanMixer(channels, n, mixer, num_heads, **mixer_kwargs) for n in names)
        self.router = nn.Linear(channels, len(names))
        self.out_proj = nn.Linear(top_k * channels, channels)

    @property
    def tokenizations(self) -> tuple[str, ...]:
        return self.names

    def route(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(choice, weight)``, both ``(N, top_k)``: the kept tokenizations by rank and their weights."""
        scores, choice = self.router(x).topk(self.top_k, dim=-1)
        return choice, scores.softmax(dim=-1)

    def forward(self, x: Tensor, plans: Mapping[str, TokenPlan]) -> Tensor:
        outputs = torch.stack([expert(x, plans) for expert in self.experts], dim=1)  # (N, n, C)
        choice, weight = self.route(x)
        chosen = outputs.gather(1, choice[..., None].expand(-1, -1, outputs.shape[-1]))  # (N, top_k, C)
        return self.out_proj((weight[..., None] * chosen).flatten(1))
