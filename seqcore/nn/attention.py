"""Softmax attention as a token mixer, for hybrids that interleave it with linear-recurrence layers."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed.sequence_parallel import gather_sequence
from ..ops.validation import check_bool, check_int
from .base import check_mixer_call, empty_output
from .cache import MixerCache, cache_signature
from .registry import register_mixer
from .validation import check_fraction


@register_mixer("attention")
class SoftmaxAttention(nn.Module):
    """Multi-head softmax attention: ``o = softmax(s Q K^T + mask) V`` per head, ``s = D ** -0.5``.

    Causal by default (the same contract as the recurrent mixers); ``bidirectional=True`` attends to the whole
    sequence. No positional encoding is added: the caller supplies positions when order matters (graph
    tokenizations do, through their positional encodings).

    Packed sequences (``cu_seqlens``, ``B == 1``) are regrouped as one padded row per sequence with a key mask,
    so no token attends across sequences. Attention is quadratic in the longest sequence, so that padding costs
    no more than the attention itself does. Step-by-step decoding keeps the past keys and values in
    ``MixerCache.state`` as ``(B, T_seen, 2, H, D)``.

    Shapes: ``(B, T, C) -> (B, T, C)``, ``H = num_heads`` heads of ``D = C / H`` channels.
    """

    def __init__(
        self, dim: int, num_heads: int = 4, *, bidirectional: bool = False, dropout: float = 0.0, qkv_bias: bool = False
    ) -> None:
        super().__init__()
        dim, num_heads = check_int("dim", dim, 1), check_int("num_heads", num_heads, 1)
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be a positive multiple of num_heads ({num_heads})")
        self.dim, self.num_heads, self.bidirectional = dim, num_heads, check_bool("bidirectional", bidirectional)
        self.qkv = nn.Linear(dim, 3 * dim, bias=check_bool("qkv_bias", qkv_bias))
        self.out_proj = nn.Linear(dim, dim, bias=False)
        self.dropout = nn.Dropout(check_fraction("dropout", dropout))
        # A process group over which the sequence is split (seqcore.distributed.enable_sequence_parallel): keys
        # and values of every rank are gathered, queries stay local.
        self.sequence_parallel_group = None

    @property
    def cache_signature(self) -> str:
        """Class and state layout: what a :class:`MixerCache` it writes records (see ``RecurrentMixer``)."""
        return cache_signature(self, "dim", "num_heads")

    def forward(
        self, x: Tensor, cu_seqlens: Tensor | None = None, cache: MixerCache | None = None
    ) -> Tensor | tuple[Tensor, MixerCache]:
        """Attend over ``x: (B, T, C)``; with ``cache`` also return the updated one."""
        check_mixer_call(self, x, cu_seqlens, cache)
        if self.sequence_parallel_group is None and x.numel() == 0:
            return empty_output(self, x, cache)
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, -1))  # (B, T, 3, H, D)
        if self.sequence_parallel_group is not None:
            kv, offset = gather_sequence(qkv[:, :, 1:], self.sequence_parallel_group)
            o = self._attend_dense(qkv[:, :, 0], kv[:, :, 0], kv[:, :, 1], offset=offset)
            return self.dropout(self.out_proj(o.flatten(-2)))
        if cache is not None:
            kv = qkv[:, :, 1:] if cache.state is None else torch.cat([cache.state, qkv[:, :, 1:]], dim=1)
            o = self._attend_dense(qkv[:, :, 0], kv[:, :, 0], kv[:, :, 1], offset=cache.seen)
            y = self.dropout(self.out_proj(o.flatten(-2)))
            return y, cache.advance(self.cache_signature, x, kv)
        if cu_seqlens is None:
            o = self._attend_dense(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], offset=0)
        else:
            o = self._attend_packed(qkv[0], cu_seqlens)[None]
        return self.dropout(self.out_proj(o.flatten(-2)))

    def _attend_dense(self, q: Tensor, k: Tensor, v: Tensor, offset: int) -> Tensor:
        """``q: (B, Tq, H, D)`` against ``k, v: (B, Tk, H, D)``; query ``i`` sits at position ``offset + i``."""
        mask = None
        if not self.bidirectional:
            qpos = torch.arange(q.shape[1], device=q.device)[:, None] + offset
            mask = torch.arange(k.shape[1], device=q.device)[None, :] <= qpos
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
        return o.transpose(1, 2)

    def _attend_packed(self, qkv: Tensor, cu_seqlens: Tensor) -> Tensor:
        """``qkv: (T, 3, H, D)`` holding sequences ``cu_seqlens`` -> ``(T, H, D)``."""
        cu = cu_seqlens.to(device=qkv.device, dtype=torch.long)  # checked by check_mixer_call
        lengths = cu[1:] - cu[:-1]
        num_seqs, max_len = lengths.numel(), int(lengths.max())
        seq = torch.repeat_interleave(torch.arange(num_seqs, device=qkv.device), lengths)
        pos = torch.arange(qkv.shape[0], device=qkv.device) - cu[:-1].repeat_interleave(lengths)
        padded = qkv.new_zeros(num_seqs, max_len, *qkv.shape[1:]).index_put((seq, pos), qkv)
        keys = torch.arange(max_len, device=qkv.device)
        mask = (keys[None, :] < lengths[:, None])[:, None, None, :]  # (S, 1, 1, L): padding keys are never read
        if not self.bidirectional:
            mask = mask & (keys[None, :] <= keys[:, None])
        q, k, v = (padded[:, :, i].transpose(1, 2) for i in range(3))
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)
        return o[seq, pos]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, bidirectional={self.bidirectional}"
