"""DeltaNet and Gated DeltaNet: the delta rule with L2-normalized queries and keys."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.validation import check_bool
from .linear_attn import QKVMixer
from .registry import register_mixer


@register_mixer("deltanet")
class DeltaNet(QKVMixer):
    """DeltaNet (Schlag et al. 2021; Yang et al. 2024) on :func:`seqcore.ops.delta_rule`.

    ``S_t = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T``, ``o_t = scale * S_t^T q_t`` with q and k
    L2-normalized per head and ``beta_t = sigmoid(w_beta . x_t)`` per head. ``allow_neg_eigval=True`` uses
    ``beta_t = 2 sigmoid(.)``: the transition's eigenvalue along ``k_t`` is ``1 - beta_t`` in ``[-1, 1]``
    (Grazzi et al. 2025), which lets the state flip and track parity. Shapes: ``(B, T, C) -> (B, T, C)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        *,
        expand_k: float = 1.0,
        expand_v: float = 1.0,
        allow_neg_eigval: bool = False,
        use_short_conv: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(dim, num_heads, expand_k=expand_k, expand_v=expand_v, use_short_conv=use_short_conv, **kwargs)
        self.allow_neg_eigval = check_bool("allow_neg_eigval", allow_neg_eigval)
        self.beta_proj = nn.Linear(dim, num_heads, bias=True)

    def project(self, x: Tensor) -> dict[str, Tensor]:
        inputs = super().project(x)
        beta = torch.sigmoid(self.beta_proj(x))
        inputs["beta"] = 2 * beta if self.allow_neg_eigval else beta
        return inputs

    def log_decay(self, inputs: dict[str, Tensor]) -> Tensor | None:
        return None

    def recur(self, inputs, initial_state, cu_seqlens, reverse):
        q, k = F.normalize(inputs["q"], dim=-1), F.normalize(inputs["k"], dim=-1)
        o, state = self.ops.delta_rule(
            q, k, inputs["v"], inputs["beta"].to(q.dtype), self.log_decay(inputs), initial_state=initial_state,
            output_final_state=True, reverse=reverse, cu_seqlens=cu_seqlens, backend=self.backend,
        )
        return o.flatten(-2), state


@register_mixer("gated_deltanet")
class GatedDeltaNet(DeltaNet):
    """Gated DeltaNet (Yang et al. 2025): DeltaNet with a Mamba-2-style per-head decay.

    ``S_t = exp(g_t) (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T`` with
    ``g_t = -exp(A_log) * softplus(w_dt . x_t + dt_bias)`` per head. Other options as :class:`DeltaNet`.
    """

    def __init__(self, dim: int, num_heads: int = 4, **kwargs) -> None:
        super().__init__(dim, num_heads, **kwargs)
        self.dt_proj = nn.Linear(dim, num_heads, bias=False)
        self.A_log = nn.Parameter(torch.empty(num_heads))
        self.dt_bias = nn.Parameter(torch.empty(num_heads))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the decay parameters; submodules reset themselves."""
        init_mamba_decay(self.A_log, self.dt_bias)

    def project(self, x: Tensor) -> dict[str, Tensor]:
        inputs = super().project(x)
        inputs["dt"] = self.dt_proj(x)
        return inputs

    def log_decay(self, inputs: dict[str, Tensor]) -> Tensor:
        return (-self.A_log.float().exp() * F.softplus(inputs["dt"].float() + self.dt_bias.float())).to(inputs["q"].dtype)


def init_mamba_decay(a_log: nn.Parameter, dt_bias: nn.Parameter, dt_min: float = 1e-3, dt_max: float = 0.1) -> None:
    """Mamba-2's initialization: ``A`` uniform in ``[1, 16]``, ``softplus(dt_bias)`` log-uniform in ``[dt_min, dt_max]``."""
    with torch.no_grad():
        a_log.copy_(torch.empty_like(a_log).uniform_(1, 16).log())
        dt = torch.exp(torch.empty_like(dt_bias).uniform_(math.log(dt_min), math.log(dt_max)))
        dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
