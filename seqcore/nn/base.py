"""The frame every recurrent token mixer shares.

A subclass owns its input projections and the recurrence (``project`` and ``recur``); this base adds the
optional short convolutions, the bidirectional merge, the per-head output norm, the output gate, the output
projection, dropout and the decoding cache.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import ops
from ..distributed.sequence_parallel import SequenceParallelOps, previous_tail
from .cache import MixerCache
from .conv import ShortConvolution


def check_mixer_call(
    x: Tensor, dim: int, bidirectional: bool, cu_seqlens: Tensor | None, cache: MixerCache | None
) -> None:
    """The call contract every mixer shares: ``x: (B, T, C)``; a cache only for causal mixers on a dense batch;
    packed sequences (``cu_seqlens``) only with ``B == 1``."""
    if x.dim() != 3 or x.shape[-1] != dim:
        raise ValueError(f"x must have shape (B, T, C={dim}), got {tuple(x.shape)}")
    if cache is not None and bidirectional:
        raise ValueError("a bidirectional mixer sees the whole sequence and cannot decode step by step")
    if cache is not None and cu_seqlens is not None:
        raise ValueError("decoding with a cache takes a dense batch (B, T, C), not packed cu_seqlens")
    if cu_seqlens is not None and x.shape[0] != 1:
        raise ValueError(f"with cu_seqlens, sequences are packed along T and the batch size must be 1, got B={x.shape[0]}")


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
        if dim <= 0 or num_heads <= 0:
            raise ValueError(f"dim and num_heads must be positive, got dim={dim}, num_heads={num_heads}")
        if value_dim % num_heads:
            raise ValueError(f"value channels ({value_dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads, self.value_dim = dim, num_heads, value_dim
        self.bidirectional, self.backend = bidirectional, backend
        self.conv_size = conv_size
        self.convs = nn.ModuleDict({name: ShortConvolution(ch, conv_size) for name, ch in conv_channels.items()})
        self.merge = nn.Linear(2 * value_dim, value_dim, bias=False) if bidirectional else None
        self.out_norm = nn.RMSNorm(value_dim // num_heads, eps=norm_eps) if use_output_norm else None
        self.gate_proj = nn.Linear(dim, value_dim, bias=False) if use_output_gate else None
        self.out_proj = nn.Linear(value_dim, dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        # A torch.distributed process group over which the sequence is split (LASP-2), or None; see
        # seqcore.distributed.enable_sequence_parallel.
        self.sequence_parallel_group = None

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

        ``cu_seqlens`` packs sequences along T (``B == 1``), as in :mod:`seqcore.ops`.
        """
        check_mixer_call(x, self.dim, self.bidirectional, cu_seqlens, cache)
        group = self.sequence_parallel_group
        if group is not None and (cache is not None or cu_seqlens is not None):
            raise ValueError("a sequence-parallel mixer takes its slice of one dense sequence per batch row: no "
                             "cache, no cu_seqlens")
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
        return y, MixerCache(state=state, conv=conv_states, seen=cache.seen + x.shape[1])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, bidirectional={self.bidirectional}"
