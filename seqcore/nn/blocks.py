"""Residual blocks, encoders and a small causal language model built from registered mixers."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import validation as V
from .cache import MixerCache
from .registry import build_mixer
from .validation import check_fraction, check_positive_float
from ..ops.validation import check_int


class MLP(nn.Module):
    """``Linear -> GELU -> dropout -> Linear``: ``(..., C) -> (..., C)``."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        dim, hidden = check_int("dim", dim, 1), check_int("hidden", hidden, 1)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.drop = nn.Dropout(check_fraction("dropout", dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.drop(F.gelu(self.fc1(x))))


class GLU(nn.Module):
    """SwiGLU: ``W_2 (silu(W_a x) * W_b x)``: ``(..., C) -> (..., C)``."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        dim, hidden = check_int("dim", dim, 1), check_int("hidden", hidden, 1)
        self.fc1, self.fc2 = nn.Linear(dim, 2 * hidden, bias=False), nn.Linear(hidden, dim, bias=False)
        self.drop = nn.Dropout(check_fraction("dropout", dropout))

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(self.drop(F.silu(a) * b))


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch of a sample with probability ``p`` while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = check_fraction("drop_path (the drop path probability)", p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SeqBlock(nn.Module):
    """Pre-norm residual block: ``x + drop_path(mixer(norm(x)))`` then ``x + drop_path(ffn(norm(x)))``.

    Args:
        dim: width C.
        mixer: registered mixer name (see :data:`seqcore.nn.MIXERS`).
        num_heads: heads of the mixer.
        ffn: ``"glu"`` (SwiGLU, hidden ``8/3 * ffn_ratio/4 * C``), ``"mlp"`` (GELU MLP, hidden ``ffn_ratio * C``) or
            ``None`` (mixer only).
        ffn_ratio: hidden width of the feed-forward layer relative to C.
        drop_path: stochastic depth probability of both residual branches.
        dropout: dropout inside the mixer output and the feed-forward layer.
        mixer_kwargs: passed to the mixer (``bidirectional``, ``allow_neg_eigval``, ``backend``, ...).
    Shapes: ``(B, T, C) -> (B, T, C)``; ``cu_seqlens``, ``cache`` and any further keyword inputs (LightNet's
    ``angles``) are passed to the mixer.
    """

    def __init__(
        self,
        dim: int,
        mixer: str = "gla",
        num_heads: int = 4,
        *,
        ffn: str | None = "glu",
        ffn_ratio: float = 4.0,
        drop_path: float = 0.0,
        dropout: float = 0.0,
        norm_eps: float = 1e-5,
        mixer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        dim = check_int("dim", dim, 1)
        norm_eps = check_positive_float("norm_eps", norm_eps)
        ffn_ratio = check_positive_float("ffn_ratio", ffn_ratio)
        if mixer_kwargs is not None and not isinstance(mixer_kwargs, Mapping):
            raise TypeError(f"mixer_kwargs must be a dict of mixer options or None, got {type(mixer_kwargs).__name__}")
        self.norm1 = nn.RMSNorm(dim, eps=norm_eps)
        self.mixer = build_mixer(mixer, dim, num_heads=num_heads, dropout=dropout, **(mixer_kwargs or {}))
        if ffn == "glu":
            # 2/3 of the MLP's hidden width keeps SwiGLU's parameter count equal to the MLP's.
            self.ffn: nn.Module | None = GLU(dim, max(1, int(2 * ffn_ratio * dim / 3)), dropout)
        elif ffn == "mlp":
            self.ffn = MLP(dim, max(1, int(ffn_ratio * dim)), dropout)
        elif ffn is None:
            self.ffn = None
        else:
            raise ValueError(f"ffn must be 'glu', 'mlp' or None, got {ffn!r}")
        self.norm2 = nn.RMSNorm(dim, eps=norm_eps) if self.ffn is not None else None
        self.drop_path = DropPath(drop_path)

    def forward(
        self, x: Tensor, cu_seqlens: Tensor | None = None, cache: MixerCache | None = None, **mixer_inputs: Tensor
    ) -> Tensor | tuple[Tensor, MixerCache]:
        dim = self.norm1.normalized_shape[0]
        V.check_float("x", x, 3, f"(B, T, C={dim})")
        if x.shape[-1] != dim:
            raise ValueError(f"x must have shape (B, T, C={dim}), got {tuple(x.shape)}")
        mixed = self.mixer(self.norm1(x), cu_seqlens=cu_seqlens, cache=cache, **mixer_inputs)
        if cache is not None:
            mixed, cache = mixed
        x = x + self.drop_path(mixed)
        if self.ffn is not None and self.norm2 is not None:  # norm2 exists exactly when ffn does
            x = x + self.drop_path(self.ffn(self.norm2(x)))
        return x if cache is None else (x, cache)


class SeqEncoder(nn.Module):
    """A stack of :class:`SeqBlock` with stochastic depth rising linearly to ``drop_path`` and a final norm.

    Shapes: ``(B, T, C) -> (B, T, C)``. With ``caches`` (one :class:`MixerCache` per block, see
    :meth:`init_caches`) it returns ``(y, caches)`` for step-by-step decoding.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        mixer: str = "gla",
        num_heads: int = 4,
        *,
        drop_path: float = 0.0,
        final_norm: bool = True,
        norm_eps: float = 1e-5,
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        depth = check_int("depth", depth, 1)
        check_fraction("drop_path", drop_path)
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList(
            SeqBlock(dim, mixer, num_heads, drop_path=rate, norm_eps=norm_eps, **block_kwargs) for rate in rates
        )
        self.norm = nn.RMSNorm(dim, eps=norm_eps) if V.check_bool("final_norm", final_norm) else nn.Identity()

    def init_caches(self) -> list[MixerCache]:
        return [MixerCache() for _ in self.blocks]

    def forward(
        self, x: Tensor, cu_seqlens: Tensor | None = None, caches: list[MixerCache] | None = None
    ) -> Tensor | tuple[Tensor, list[MixerCache]]:
        if caches is not None and not isinstance(caches, (list, tuple)):
            raise TypeError(f"caches must be a list of MixerCache (one per block, see init_caches()), got "
                            f"{type(caches).__name__}")
        if caches is not None and len(caches) != len(self.blocks):
            raise ValueError(f"expected {len(self.blocks)} caches (one per block), got {len(caches)}")
        new_caches = []
        for i, block in enumerate(self.blocks):
            if caches is None:
                x = block(x, cu_seqlens)
            else:
                x, cache = block(x, cu_seqlens, caches[i])
                new_caches.append(cache)
        x = self.norm(x)
        return x if caches is None else (x, new_caches)


class SeqLM(nn.Module):
    """Causal language model: token embedding, :class:`SeqEncoder`, output head tied to the embedding.

    ``tokens: (B, T)`` int64 -> ``logits: (B, T, vocab_size)``; with ``caches`` also the updated caches.
    """

    def __init__(
        self, vocab_size: int, dim: int, depth: int, mixer: str = "gla", num_heads: int = 4, *, tie_weights: bool = True, **encoder_kwargs: Any
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size = check_int("vocab_size", vocab_size, 1)
        self.embed = nn.Embedding(vocab_size, check_int("dim", dim, 1))
        self.encoder = SeqEncoder(dim, depth, mixer, num_heads, **encoder_kwargs)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        if V.check_bool("tie_weights", tie_weights):
            self.head.weight = self.embed.weight

    def init_caches(self) -> list[MixerCache]:
        return self.encoder.init_caches()

    def forward(
        self, tokens: Tensor, cu_seqlens: Tensor | None = None, caches: list[MixerCache] | None = None
    ) -> Tensor | tuple[Tensor, list[MixerCache]]:
        if not isinstance(tokens, Tensor) or tokens.dim() != 2 or tokens.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"tokens must be an integer tensor (B, T), got "
                             f"{tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__} "
                             f"{getattr(tokens, 'dtype', '')}")
        # An out-of-range id fails inside the embedding with an unnamed IndexError on the CPU and a device-side
        # assert on CUDA.
        if V._values_checkable() and tokens.numel() and not bool(((tokens >= 0) & (tokens < self.vocab_size)).all()):
            raise ValueError(f"tokens must lie in [0, vocab_size={self.vocab_size}), got values in "
                             f"[{int(tokens.min())}, {int(tokens.max())}]")
        out = self.encoder(self.embed(tokens), cu_seqlens, caches)
        if caches is None:
            return self.head(out)
        hidden, caches = out
        return self.head(hidden), caches
