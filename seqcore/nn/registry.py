"""Mixer registry: every domain swaps the sequence operator by name."""
from __future__ import annotations

from typing import Callable, TypeVar

from torch import nn

MIXERS: dict[str, type[nn.Module]] = {}

M = TypeVar("M", bound=type[nn.Module])


def register_mixer(name: str) -> Callable[[M], M]:
    """Class decorator adding a mixer to :data:`MIXERS` (third-party mixers use it too).

    A mixer maps ``(B, T, C) -> (B, T, C)`` and is built as ``cls(dim, num_heads=..., **kwargs)``.
    """

    def add(cls: M) -> M:
        if name in MIXERS and MIXERS[name] is not cls:
            raise ValueError(f"a mixer named {name!r} is already registered ({MIXERS[name].__qualname__})")
        MIXERS[name] = cls
        return cls

    return add


def build_mixer(name: str, dim: int, num_heads: int = 4, **kwargs) -> nn.Module:
    """Build the mixer registered as ``name`` for model width ``dim``."""
    if name not in MIXERS:
        raise ValueError(f"unknown mixer {name!r}; known mixers: {', '.join(sorted(MIXERS))}")
    return MIXERS[name](dim, num_heads=num_heads, **kwargs)
