"""Decoding state of one mixer."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..ops.validation import check_int


@dataclass
class MixerCache:
    """What a mixer carries between calls when decoding step by step.

    Start from an empty ``MixerCache()`` and feed back the cache each call returns. A cache remembers which kind of
    mixer wrote it and for which inputs, so that it cannot be continued by another layer's mixer or with another
    batch (both would run without an error and decode garbage).

    Attributes:
        state: the recurrence state after the tokens seen so far, ``(B, H, K, V)`` (or ``(B, D)`` for scans);
            ``None`` before the first call.
        conv: for each short convolution, its last ``kernel_size - 1`` inputs ``(B, kernel_size - 1, C)``.
        seen: number of tokens processed.
        aux: other running quantities a mixer needs, by name (LightNet's running log-normalizer ``"lse"``).
        writer: the mixer that wrote it: its class and the configuration that fixes the layout of ``state``,
            ``conv`` and ``aux`` (``mixer.cache_signature``); ``None`` for an empty cache. Another instance of the
            same class and configuration may continue the cache (the same layer after a reload or a deep copy).
        batch_size, dtype, device: those of the inputs ``x`` it was written for.
    """

    state: Tensor | None = None
    conv: dict[str, Tensor] = field(default_factory=dict)
    seen: int = 0
    aux: dict[str, Tensor] = field(default_factory=dict)
    writer: str | None = None
    batch_size: int | None = None
    dtype: torch.dtype | None = None
    device: torch.device | None = None

    def check(self, signature: str, x: Tensor) -> None:
        """Raise ValueError unless a mixer whose ``cache_signature`` is ``signature`` may continue this cache on
        ``x: (B, T, C)`` (TypeError for a ``seen`` that is not an int)."""
        check_int("cache.seen", self.seen, 0)
        if self.writer is None:
            if self.state is not None or self.conv or self.aux or self.seen:
                raise ValueError("the cache holds decoding state but no record of the mixer that wrote it; start "
                                 "decoding from an empty MixerCache() and pass back the cache each call returns")
            return
        if self.writer != signature:
            raise ValueError(f"the cache was written by {self.writer}, not by this mixer ({signature}); give each "
                             f"mixer the cache it returned")
        if self.batch_size != x.shape[0]:
            raise ValueError(f"the cache was written for batch size {self.batch_size}, got x with B={x.shape[0]}; "
                             f"start a new MixerCache() for a new batch")
        if self.dtype != x.dtype:
            raise ValueError(f"the cache was written for {self.dtype} inputs, got x of {x.dtype}")
        if self.device != x.device:
            raise ValueError(f"the cache was written for inputs on {self.device}, got x on {x.device}")

    def advance(
        self, signature: str, x: Tensor, state: Tensor | None, conv: dict[str, Tensor] | None = None,
        aux: dict[str, Tensor] | None = None,
    ) -> MixerCache:
        """The cache after a mixer (``signature``) has processed ``x: (B, T, C)``, leaving ``state``, ``conv``
        and ``aux``."""
        return MixerCache(state=state, conv=dict(conv or {}), seen=self.seen + x.shape[1], aux=dict(aux or {}),
                          writer=signature, batch_size=x.shape[0], dtype=x.dtype, device=x.device)


def cache_signature(mixer: object, *names: str, **extra: object) -> str:
    """``"ClassName(a=..., b=...)"`` from the attributes ``names`` of ``mixer`` and ``extra``: what a cache
    records as its writer."""
    values = {name: getattr(mixer, name) for name in names} | extra
    return f"{type(mixer).__qualname__}({', '.join(f'{k}={v}' for k, v in values.items())})"
