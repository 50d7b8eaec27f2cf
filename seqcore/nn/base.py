"""The frame every recurrent token mixer shares.

A subclass owns its input projections and the recurrence (``project`` and ``recur``); this base adds the
optional short convolutions, the bidirectional merge, the per-head output norm, the output gate, the output
projection, dropout and the decoding cache.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch
from torch import Tensor, nn

from .. import ops
from ..distributed.sequence_parallel import SequenceParallelOps, previous_tail, raise_on_every_rank
from ..ops import validation as V
from .cache import MixerCache, cache_signature
from .conv import ShortConvolution
from .validation import check_fraction, check_positive_float
from ..ops.validation import check_int


class MixerLike(Protocol):
    """What the call contract reads from a token mixer: :class:`RecurrentMixer` and the attention mixers."""

    dim: int
    bidirectional: bool
    out_proj: nn.Linear

    @property
    def cache_signature(self) -> str: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


def check_mixer_call(mixer: MixerLike, x: Tensor, cu_seqlens: Tensor | None, cache: MixerCache | None) -> None:
    """The call contract every mixer shares: ``x: (B, T, C)`` floating point and finite; packed sequences
    (``cu_seqlens``) only with ``B == 1``; a cache only for causal mixers on a dense batch, and only one this kind
    of mixer wrote for this batch, dtype and device; with ``sequence_parallel_group`` set, no cache and no
    ``cu_seqlens``.

    Under sequence parallelism a failed check is raised on every rank of the group (the other ranks would
    otherwise wait in the mixer's first collective until the process group's timeout).
    """
    group = getattr(mixer, "sequence_parallel_group", None)
    if group is None:
        _check_call(mixer, x, cu_seqlens, cache)
        return
    try:
        if cache is not None or cu_seqlens is not None:
            raise ValueError("a sequence-parallel mixer takes its slice of one dense sequence per batch row: no "
                             "cache, no cu_seqlens")
        _check_call(mixer, x, cu_seqlens, cache)
    except (TypeError, ValueError) as err:
        raise_on_every_rank(err, group, next(mixer.parameters()).device)


def _check_call(mixer: MixerLike, x: Tensor, cu_seqlens: Tensor | None, cache: MixerCache | None) -> None:
    V.check_float("x", x, 3, f"(B, T, C={mixer.dim})")
    if x.shape[-1] != mixer.dim:
        raise ValueError(f"x must have shape (B, T, C={mixer.dim}), got {tuple(x.shape)}")
    weight = mixer.out_proj.weight
    if x.device != weight.device:
        raise ValueError(f"x is on {x.device} but the mixer's parameters are on {weight.device}")
    if x.dtype != weight.dtype and not (x.device.type != "meta" and torch.is_autocast_enabled(x.device.type)):
        raise TypeError(f"x is {x.dtype} but the mixer's parameters are {weight.dtype}: convert one of them "
                        f"(mixer.to(dtype)), or run under torch.autocast")
    # NaN or inf in x would reach the operators as a NaN gate (which they reject, naming the gate rather than
    # x) or silently fill the outputs: every mixer refuses it here instead.
    if (V._values_checkable() and x.device.type != "meta" and x.numel()
            and not bool(torch.isfinite(x).all())):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"x must be finite, got {bad} NaN or infinite values of {x.numel()}")
    V.check_cu_seqlens(cu_seqlens, x.shape[0], x.shape[1])
    if cache is None:
        return
    if not isinstance(cache, MixerCache):
        raise TypeError(f"cache must be a MixerCache (MixerCache() to start decoding), got {type(cache).__name__}")
    if mixer.bidirectional:
        raise ValueError("a bidirectional mixer sees the whole sequence and cannot decode step by step")
    if cu_seqlens is not None:
        raise ValueError("decoding with a cache takes a dense batch (B, T, C), not packed cu_seqlens")
    cache.check(mixer.cache_signature, x)


def empty_output(mixer: MixerLike, x: Tensor, cache: MixerCache | None) -> Tensor | tuple[Tensor, MixerCache]:
    """What every mixer returns for an empty ``x`` (``B == 0`` or ``T == 0``): an empty ``(B, T, C)`` output
    through the output projection (so it takes part in autograd), and the cache unchanged but for its record."""
    y = mixer.out_proj(x.new_zeros(*x.shape[:2], mixer.out_proj.in_features))
    if cache is None:
        return y
    return y, cache.advance(mixer.cache_signature, x, cache.state, cache.conv, cache.aux)


class RecurrentMixer(nn.Module):
    """Base of the token mixers: ``(B, T, C) -> (B, T, C)``.

    Args:
        dim: model width C.
        num_heads: heads H; the recurrence output has ``value_dim`` channels, ``value_dim // H`` per head.
        value_dim: channels of the recurrence output.
        conv_channels: channels of each op input that gets a short convolution (empty: none).
        bidirectional: run the recurrence forward and reversed (through the ops' ``reverse=True``) and merge
            the two outputs with a learned projection. Bidirectional mixers cannot decode step by step.
        conv_size: kernel size of the short convolutions.
        use_output_gate: multiply the output by ``silu(W_g x)`` before the output projection.
        use_output_norm: RMS-normalize each head's output.
        dropout: dropout on the output.
        backend: ``seqcore.ops`` backend.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        value_dim: int,
        conv_channels: dict[str, int],
        *,
        bidirectional: bool = False,
        conv_size: int = 4,
        use_output_gate: bool = True,
        use_output_norm: bool = True,
        dropout: float = 0.0,
        norm_eps: float = 1e-5,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        dim, num_heads = check_int("dim", dim, 1), check_int("num_heads", num_heads, 1)
        if value_dim % num_heads:
            raise ValueError(f"value channels ({value_dim}) must be divisible by num_heads ({num_heads})")
        if backend not in ops.BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(ops.BACKENDS)}, got {backend!r}")
        self.dim, self.num_heads, self.value_dim = dim, num_heads, value_dim
        self.bidirectional, self.backend = V.check_bool("bidirectional", bidirectional), backend
        self.conv_size = check_int("conv_size", conv_size, 1)
        self.convs = nn.ModuleDict({name: ShortConvolution(ch, conv_size) for name, ch in conv_channels.items()})
        self.merge = nn.Linear(2 * value_dim, value_dim, bias=False) if bidirectional else None
        norm_eps = check_positive_float("norm_eps", norm_eps)
        use_output_norm = V.check_bool("use_output_norm", use_output_norm)
        self.out_norm = nn.RMSNorm(value_dim // num_heads, eps=norm_eps) if use_output_norm else None
        use_output_gate = V.check_bool("use_output_gate", use_output_gate)
        self.gate_proj = nn.Linear(dim, value_dim, bias=False) if use_output_gate else None
        self.out_proj = nn.Linear(value_dim, dim, bias=False)
        self.dropout = nn.Dropout(check_fraction("dropout", dropout))
        # A torch.distributed process group over which the sequence is split (LASP-2), or None; see
        # seqcore.distributed.enable_sequence_parallel.
        self.sequence_parallel_group = None

    # Attributes besides dim, num_heads and the short convolutions that fix the decoding state's layout.
    _state_layout: tuple[str, ...] = ("value_dim",)

    @property
    def cache_signature(self) -> str:
        """This mixer's class and the configuration that fixes the layout of its decoding state: what a
        :class:`MixerCache` records as its writer, and must match to be continued."""
        convs = "{" + ", ".join(f"{name}: {conv.channels}" for name, conv in self.convs.items()) + "}"
        return cache_signature(self, "dim", "num_heads", *self._state_layout, convs=convs, conv_size=self.conv_size)

    @property
    def ops(self):
        """The op functions ``recur`` calls: :mod:`seqcore.ops`, or their sequence-parallel versions bound to
        ``sequence_parallel_group`` when it is set."""
        if self.sequence_parallel_group is None:
            return ops
        return SequenceParallelOps(self.sequence_parallel_group)

    def project(self, x: Tensor) -> dict[str, Tensor]:
        """Input projections: named op inputs, each ``(B, T, ...)``; those in ``conv_channels`` get convolved."""
        raise NotImplementedError

    def recur(
        self, inputs: dict[str, Tensor], initial_state: Tensor | None, cu_seqlens: Tensor | None, reverse: bool
    ) -> tuple[Tensor, Tensor]:
        """Run the recurrence: returns ``(o: (B, T, value_dim), final_state)``."""
        raise NotImplementedError

    def forward(
        self, x: Tensor, cu_seqlens: Tensor | None = None, cache: MixerCache | None = None
    ) -> Tensor | tuple[Tensor, MixerCache]:
        """Mix ``x: (B, T, C)``; with ``cache`` (a :class:`MixerCache`, empty to start) also return the updated one.

        ``cu_seqlens`` packs sequences along T (``B == 1``), as in :mod:`seqcore.ops`. An empty ``x`` (``B == 0``
        or ``T == 0``) gives an empty output (see :func:`empty_output`); a non-finite one is refused.
        """
        check_mixer_call(self, x, cu_seqlens, cache)
        group = self.sequence_parallel_group
        if group is None and x.numel() == 0:
            return empty_output(self, x, cache)
        inputs = self.project(x)
        values = {name: inputs[name].flatten(2) for name in self.convs}
        if group is not None and values:
            # The previous rank's last inputs, as if the sequence had not been cut: one exchange for all the
            # convolutions (they share one kernel size).
            tails = previous_tail(torch.cat(list(values.values()), dim=-1), self.conv_size - 1, group)
            pasts = dict(zip(values, tails.split([v.shape[-1] for v in values.values()], dim=-1)))
        else:
            pasts = {name: None if cache is None else cache.conv.get(name) for name in values}
        conv_states = {}
        for name, conv in self.convs.items():
            mixed, conv_states[name] = conv(values[name], cu_seqlens, pasts[name])
            inputs[name] = mixed.view_as(inputs[name])
        o, state = self.recur(inputs, None if cache is None else cache.state, cu_seqlens, reverse=False)
        if self.merge is not None:
            o_rev, _ = self.recur(inputs, None, cu_seqlens, reverse=True)
            o = self.merge(torch.cat([o, o_rev], dim=-1))
        if self.out_norm is not None:
            o = self.out_norm(o.unflatten(-1, (self.num_heads, -1))).flatten(-2)
        if self.gate_proj is not None:
            o = o * nn.functional.silu(self.gate_proj(x))
        y = self.dropout(self.out_proj(o))
        if cache is None:
            return y
        return y, cache.advance(self.cache_signature, x, state, conv_states)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, bidirectional={self.bidirectional}"
