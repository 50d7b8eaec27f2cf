"""Mixer registry: every domain swaps the sequence operator by name."""
from __future__ import annotations

import inspect
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


def mixer_options(cls: type) -> set[str] | None:
    """The keyword options ``cls(dim, num_heads=..., **options)`` accepts, following ``**kwargs`` through the
    ``__init__`` of its bases; ``None`` when a ``**kwargs`` reaches ``nn.Module`` (the class may read any)."""
    options: set[str] = set()
    for klass in cls.__mro__:
        if klass in (nn.Module, object):
            return None
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        # Positional parameters without a default are what a subclass passes to its base, not user options.
        options |= {p.name for p in params if p.kind is p.KEYWORD_ONLY
                    or (p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return options - {"num_heads"}
    return None


def build_mixer(name: str, dim: int, num_heads: int = 4, **kwargs) -> nn.Module:
    """Build the mixer registered as ``name`` for model width ``dim``; an option it does not take is a
    TypeError listing those it does."""
    if not isinstance(name, str):
        raise TypeError(f"the mixer name must be a str (one of {', '.join(sorted(MIXERS))}), got {type(name).__name__}")
    if name not in MIXERS:
        raise ValueError(f"unknown mixer {name!r}; known mixers: {', '.join(sorted(MIXERS))}")
    options = mixer_options(MIXERS[name])
    unknown = sorted(set(kwargs) - options) if options is not None else []
    if options is not None and unknown:
        raise TypeError(f"mixer {name!r} ({MIXERS[name].__name__}) takes no option {', '.join(map(repr, unknown))}; "
                        f"its options: {', '.join(sorted(options))}")
    return MIXERS[name](dim, num_heads=num_heads, **kwargs)
