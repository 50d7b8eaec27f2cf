"""Decoding state of one mixer."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class MixerCache:
    """What a mixer carries between calls when decoding step by step.

    Attributes:
        state: the recurrence state after the tokens seen so far, ``(B, H, K, V)`` (or ``(B, D)`` for scans);
            ``None`` before the first call.
        conv: for each short convolution, its last ``kernel_size - 1`` inputs ``(B, kernel_size - 1, C)``.
        seen: number of tokens processed.
        aux: other running quantities a mixer needs, by name (LightNet's running log-normalizer ``"lse"``).
    """

    state: Tensor | None = None
    conv: dict[str, Tensor] = field(default_factory=dict)
    seen: int = 0
    aux: dict[str, Tensor] = field(default_factory=dict)
