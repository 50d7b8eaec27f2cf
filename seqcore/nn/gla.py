"""Gated linear attention with a data-dependent per-key gate."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .linear_attn import QKVMixer
from .registry import register_mixer
from .validation import check_positive_float
from ..ops.validation import check_int


@register_mixer("gla")
class GatedLinearAttention(QKVMixer):
    """GLA (Yang et al. 2024) on :func:`seqcore.ops.gla`.

    ``S_t = diag(alpha_t) S_{t-1} + k_t v_t^T``, ``o_t = scale * S_t^T q_t`` with the per-key gate
    ``log alpha_t = logsigmoid(W_2 W_1 x_t + b) / tau`` through a rank-``gate_low_rank`` projection and
    ``tau = gate_logit_normalizer`` (16 in the paper, which keeps decays close to 1 at initialization).
    Shapes: ``(B, T, C) -> (B, T, C)``; keys default to half the width, as in the paper.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        *,
        expand_k: float = 0.5,
        expand_v: float = 1.0,
        gate_low_rank: int = 16,
        gate_logit_normalizer: float = 16.0,
        use_short_conv: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(dim, num_heads, expand_k=expand_k, expand_v=expand_v, use_short_conv=use_short_conv, **kwargs)
        self.gate_logit_normalizer = check_positive_float("gate_logit_normalizer", gate_logit_normalizer)
        self.gate_proj_in = nn.Linear(dim, check_int("gate_low_rank", gate_low_rank, 1), bias=False)
        self.gate_proj_out = nn.Linear(gate_low_rank, self.key_dim, bias=True)

    def project(self, x: Tensor) -> dict[str, Tensor]:
        inputs = super().project(x)
        gate = self.gate_proj_out(self.gate_proj_in(x)).unflatten(-1, (self.num_heads, -1))
        inputs["g"] = F.logsigmoid(gate) / self.gate_logit_normalizer
        return inputs

    def recur(self, inputs, initial_state, cu_seqlens, reverse):
        o, state = self.ops.gla(
            inputs["q"], inputs["k"], inputs["v"], inputs["g"], initial_state=initial_state,
            output_final_state=True, reverse=reverse, cu_seqlens=cu_seqlens, backend=self.backend,
        )
        return o.flatten(-2), state
