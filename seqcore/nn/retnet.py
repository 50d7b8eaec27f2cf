"""RetNet's multi-scale retention: fixed per-head decays ``gamma_h = 1 - 2^(-5 - h)``."""
from __future__ import annotations

import torch

from .linear_attn import QKVMixer
from .registry import register_mixer


@register_mixer("retnet")
class RetNet(QKVMixer):
    """Multi-scale retention (Sun et al. 2023) on :func:`seqcore.ops.gla` with a per-head constant decay.

    ``S_t = gamma_h S_{t-1} + k_t v_t^T``, ``o_t = scale * S_t^T q_t`` with the paper's ``gamma_h = 1 - 2^(-5 - h)``
    for head ``h = 0 .. H-1``: no data dependence.
    Rotary/xPos position encoding is left to the caller. Shapes: ``(B, T, C) -> (B, T, C)``.
    """

    log_decay: torch.Tensor  # a buffer

    def __init__(
        self, dim: int, num_heads: int = 4, *, expand_k: float = 1.0, expand_v: float = 1.0, use_short_conv: bool = False, **kwargs
    ) -> None:
        super().__init__(dim, num_heads, expand_k=expand_k, expand_v=expand_v, use_short_conv=use_short_conv, **kwargs)
        exponents = -5.0 - torch.arange(num_heads, dtype=torch.float64)
        self.register_buffer("log_decay", torch.log1p(-torch.pow(2.0, exponents)).float(), persistent=False)

    def recur(self, inputs, initial_state, cu_seqlens, reverse):
        q = inputs["q"]
        g = self.log_decay.to(q.dtype).expand(*q.shape[:3])
        o, state = self.ops.gla(
            q, inputs["k"], inputs["v"], g, initial_state=initial_state, output_final_state=True,
            reverse=reverse, cu_seqlens=cu_seqlens, backend=self.backend,
        )
        return o.flatten(-2), state
