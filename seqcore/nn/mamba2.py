"""Mamba-2's state-space duality layer on the chunked linear-attention operator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.validation import check_bool, check_int
from .base import RecurrentMixer
from .deltanet import init_mamba_decay
from .linear_attn import head_dims
from .registry import register_mixer


@register_mixer("mamba2")
class Mamba2(RecurrentMixer):
    """Mamba-2 (Dao & Gu 2024) in its SSD form on :func:`seqcore.ops.gla`.

    Per head h with ``dt_t = softplus(w_dt . x_t + dt_bias)`` and ``A = -exp(A_log)``:
    ``S_t = exp(A dt_t) S_{t-1} + B_t (dt_t x_t)^T``, ``y_t = S_t^T C_t + D x_t``: a linear attention with
    ``q = C``, ``k = B`` (one group shared by all heads), ``v = dt x``, per-head log decay ``A dt`` and scale 1.
    ``x``, ``B``, ``C`` pass a short causal convolution. ``allow_neg_eigval=True`` uses the transition
    ``2 exp(A dt) - 1`` in ``[-1, 1]`` (Grazzi et al. 2025) through :func:`seqcore.ops.gla_signed`.
    Shapes: ``(B, T, C) -> (B, T, C)``, inner width ``expand * C`` split into H heads.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        *,
        expand: float = 2.0,
        state_size: int = 16,
        allow_neg_eigval: bool = False,
        use_short_conv: bool = True,
        **kwargs,
    ) -> None:
        inner = head_dims(dim, num_heads, expand, "inner", "expand")
        state_size = check_int("state_size", state_size, 1)
        convs = {"x": inner, "B": state_size, "C": state_size} if check_bool("use_short_conv", use_short_conv) else {}
        super().__init__(dim, num_heads, inner, convs, **kwargs)
        self.inner, self.state_size = inner, state_size
        self.allow_neg_eigval = check_bool("allow_neg_eigval", allow_neg_eigval)
        self.in_proj = nn.Linear(dim, inner + 2 * state_size + num_heads, bias=False)
        self.A_log = nn.Parameter(torch.empty(num_heads))
        self.dt_bias = nn.Parameter(torch.empty(num_heads))
        self.D = nn.Parameter(torch.ones(num_heads))
        self.reset_parameters()

    _state_layout = ("value_dim", "state_size")

    def reset_parameters(self) -> None:
        """Re-draw the decay parameters and reset ``D``; submodules reset themselves."""
        init_mamba_decay(self.A_log, self.dt_bias)
        with torch.no_grad():
            self.D.fill_(1.0)

    def project(self, x: Tensor) -> dict[str, Tensor]:
        xs, b, c, dt = self.in_proj(x).split([self.inner, self.state_size, self.state_size, self.num_heads], dim=-1)
        return {"x": xs, "B": b, "C": c, "dt": dt}

    def recur(self, inputs, initial_state, cu_seqlens, reverse):
        x = inputs["x"].unflatten(-1, (self.num_heads, -1))
        dt = F.softplus(inputs["dt"].float() + self.dt_bias.float())
        log_decay = -self.A_log.float().exp() * dt
        heads = (-1, -1, self.num_heads, -1)
        q, k = inputs["C"][:, :, None].expand(*heads), inputs["B"][:, :, None].expand(*heads)
        v = x * dt[..., None].to(x.dtype)
        common = dict(scale=1.0, initial_state=initial_state, output_final_state=True, reverse=reverse,
                      cu_seqlens=cu_seqlens, backend=self.backend)
        if self.allow_neg_eigval:
            o, state = self.ops.gla_signed(q, k, v, (2 * log_decay.exp() - 1).to(x.dtype), **common)
        else:
            o, state = self.ops.gla(q, k, v, log_decay.to(x.dtype), **common)
        o = o + self.D.to(x.dtype)[:, None] * x
        return o.flatten(-2), state
