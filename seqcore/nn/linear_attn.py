"""Linear attention: ``S_t = S_{t-1} + phi(k_t) v_t^T``, ``o_t = scale * S_t^T phi(q_t)`` (no decay)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.validation import check_bool, check_int
from .base import RecurrentMixer
from .registry import register_mixer
from .validation import check_positive_float

FEATURE_MAPS = {
    "identity": lambda x: x,
    "elu+1": lambda x: F.elu(x) + 1,
    "relu": F.relu,
    "silu": F.silu,
}


def head_dims(dim: int, num_heads: int, expand: float, what: str, option: str) -> int:
    """Total channels ``int(dim * expand)``, checked to split evenly over the heads (``option``: the argument
    that holds ``expand``)."""
    dim, num_heads = check_int("dim", dim, 1), check_int("num_heads", num_heads, 1)
    channels = int(dim * check_positive_float(option, expand))
    if channels <= 0 or channels % num_heads:
        raise ValueError(f"{what} channels int(dim * expand) = {channels} must be a positive multiple of num_heads={num_heads}")
    return channels


class QKVMixer(RecurrentMixer):
    """A mixer with q, k, v projections split into heads, each optionally behind a short convolution."""

    def __init__(self, dim: int, num_heads: int, *, expand_k: float, expand_v: float, use_short_conv: bool, **kwargs) -> None:
        key_dim = head_dims(dim, num_heads, expand_k, "key", "expand_k")
        value_dim = head_dims(dim, num_heads, expand_v, "value", "expand_v")
        convs = {"q": key_dim, "k": key_dim, "v": value_dim} if check_bool("use_short_conv", use_short_conv) else {}
        super().__init__(dim, num_heads, value_dim, convs, **kwargs)
        self.key_dim = key_dim
        self.q_proj = nn.Linear(dim, key_dim, bias=False)
        self.k_proj = nn.Linear(dim, key_dim, bias=False)
        self.v_proj = nn.Linear(dim, value_dim, bias=False)

    _state_layout = ("key_dim", "value_dim")

    def project(self, x: Tensor) -> dict[str, Tensor]:
        heads = lambda z: z.unflatten(-1, (self.num_heads, -1))  # noqa: E731
        return {"q": heads(self.q_proj(x)), "k": heads(self.k_proj(x)), "v": heads(self.v_proj(x))}


@register_mixer("linear_attn")
class LinearAttention(QKVMixer):
    """Linear attention without decay (Katharopoulos et al. 2020), on :func:`seqcore.ops.gla` with ``g=None``.

    ``S_t = S_{t-1} + phi(k_t) v_t^T``, ``o_t = scale * S_t^T phi(q_t)``, ``phi`` one of :data:`FEATURE_MAPS`
    (``identity``, ``elu+1``, ``relu``, ``silu``); the per-head output norm replaces the softmax denominator.
    Shapes: ``(B, T, C) -> (B, T, C)``, heads of ``C * expand_k / H`` keys and ``C * expand_v / H`` values.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        *,
        feature_map: str = "elu+1",
        expand_k: float = 1.0,
        expand_v: float = 1.0,
        use_short_conv: bool = True,
        **kwargs,
    ) -> None:
        if not isinstance(feature_map, str) or feature_map not in FEATURE_MAPS:
            raise ValueError(f"feature_map must be one of {sorted(FEATURE_MAPS)}, got {feature_map!r}")
        super().__init__(dim, num_heads, expand_k=expand_k, expand_v=expand_v, use_short_conv=use_short_conv, **kwargs)
        self.feature_map = feature_map

    def recur(self, inputs, initial_state, cu_seqlens, reverse):
        phi = FEATURE_MAPS[self.feature_map]
        o, state = self.ops.gla(
            phi(inputs["q"]), phi(inputs["k"]), inputs["v"], None, initial_state=initial_state,
            output_final_state=True, reverse=reverse, cu_seqlens=cu_seqlens, backend=self.backend,
        )
        return o.flatten(-2), state
