"""Short causal depthwise convolution, as flash-linear-attention and Mamba put before q/k/v."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import validation as V
from ..ops.validation import check_int


def positions_in_sequence(cu_seqlens: Tensor, total: int) -> Tensor:
    """Index of each packed token inside its own sequence, ``(T,)``."""
    pos = torch.arange(total, device=cu_seqlens.device)
    seq = torch.searchsorted(cu_seqlens[1:].long(), pos, right=True)
    return pos - cu_seqlens.long()[seq]


class ShortConvolution(nn.Module):
    """``y_t = act(sum_j w_j * x_{t-j})`` over ``j < kernel_size``, per channel, never looking ahead.

    Packed sequences (``cu_seqlens``) never see each other's inputs. With ``cache`` (the previous
    ``kernel_size - 1`` inputs, ``(B, kernel_size - 1, C)``) a call continues where the last one ended, so
    feeding tokens one by one equals one call on the whole sequence.
    """

    def __init__(self, channels: int, kernel_size: int = 4, activation: str | None = "silu") -> None:
        super().__init__()
        if activation not in ("silu", None):
            raise ValueError(f"activation must be 'silu' or None, got {activation!r}")
        self.channels, self.activation = check_int("channels", channels, 1), activation
        self.kernel_size = check_int("kernel_size", kernel_size, 1)
        self.weight = nn.Parameter(torch.empty(channels, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        nn.init.zeros_(self.bias)

    def forward(
        self, x: Tensor, cu_seqlens: Tensor | None = None, cache: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``x: (B, T, C)`` -> ``(y, new_cache)`` with ``y: (B, T, C)`` and ``new_cache: (B, kernel_size - 1, C)``."""
        V.check_float("x", x, 3, f"(B, T, C={self.channels})")
        b, t, c = x.shape
        past = self.kernel_size - 1
        if c != self.channels:
            raise ValueError(f"x must have shape (B, T, C={self.channels}), got {tuple(x.shape)}")
        V.check_cu_seqlens(cu_seqlens, b, t)
        if cache is not None:
            V.check_float("cache", cache, 3, f"(B, kernel_size - 1, C) = {(b, past, c)}")
            V.check_shape("cache", cache, (b, past, c), "(B, kernel_size - 1, C)")
        if cache is None:
            cache = x.new_zeros(b, past, c)
        extended = torch.cat([cache.to(x.dtype), x], dim=1)
        y = x * self.weight[:, 0].to(x.dtype)
        pos = None if cu_seqlens is None else positions_in_sequence(cu_seqlens, t)[None, :, None]
        for j in range(1, self.kernel_size):
            shifted = extended[:, past - j : past - j + t]
            if pos is not None:  # the first j tokens of each packed sequence have no j-th predecessor
                shifted = shifted * (pos >= j)
            y = y + shifted * self.weight[:, j].to(x.dtype)
        y = y + self.bias.to(x.dtype)
        if self.activation == "silu":
            y = F.silu(y)
        return y, extended[:, extended.shape[1] - past :].detach() if past else extended[:, :0]

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}, activation={self.activation}"
