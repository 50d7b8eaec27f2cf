"""HGRN: an elementwise gated linear recurrence on the scan operator."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.validation import check_bool
from .base import RecurrentMixer
from .linear_attn import head_dims
from .registry import register_mixer
from .validation import check_fraction


@register_mixer("hgrn")
class HGRN(RecurrentMixer):
    """HGRN (Qin et al. 2023) on :func:`seqcore.ops.scan`.

    ``h_t = f_t * h_{t-1} + (1 - f_t) * silu(W_i x_t)`` elementwise, with the forget gate
    ``f_t = lb + (1 - lb) sigmoid(W_f x_t)`` above a fixed lower bound ``lb`` (HGRN learns one per layer,
    rising with depth; pass it per layer here). ``allow_neg_eigval=True`` uses the coefficient ``2 f_t - 1`` in
    ``[-1, 1]`` (Grazzi et al. 2025). The per-head output norm groups the ``expand * C`` channels into H heads.
    Shapes: ``(B, T, C) -> (B, T, C)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        *,
        expand: float = 1.0,
        lower_bound: float = 0.0,
        allow_neg_eigval: bool = False,
        use_short_conv: bool = False,
        **kwargs,
    ) -> None:
        hidden = head_dims(dim, num_heads, expand, "hidden", "expand")
        lower_bound = check_fraction("lower_bound", lower_bound)
        convs = {"i": hidden} if check_bool("use_short_conv", use_short_conv) else {}
        super().__init__(dim, num_heads, hidden, convs, **kwargs)
        self.lower_bound, self.allow_neg_eigval = lower_bound, check_bool("allow_neg_eigval", allow_neg_eigval)
        self.i_proj = nn.Linear(dim, hidden, bias=False)
        self.f_proj = nn.Linear(dim, hidden, bias=True)

    def project(self, x: Tensor) -> dict[str, Tensor]:
        return {"i": self.i_proj(x), "f": self.f_proj(x)}

    def recur(self, inputs, initial_state, cu_seqlens, reverse):
        f = self.lower_bound + (1 - self.lower_bound) * torch.sigmoid(inputs["f"])
        x = (1 - f) * F.silu(inputs["i"])
        a = 2 * f - 1 if self.allow_neg_eigval else f
        return self.ops.scan(
            x, a, initial_state=initial_state, output_final_state=True, reverse=reverse,
            cu_seqlens=cu_seqlens, backend=self.backend,
        )
