"""Chunk tables of packed variable-length sequences, for the chunked Triton kernels.

A packed batch ``(1, sum(T_n), ...)`` with ``cu_seqlens`` is cut into chunks of ``C`` steps per sequence; the
last chunk of a sequence may be short. Chunk kernels launch one program per chunk and read which sequence and
which chunk of it they own from these tables, so no Python loop runs over sequences. The tables are built on
the device with one host synchronisation (the chunk count, which sizes the grid), before any kernel runs.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class ChunkTable(NamedTuple):
    """``indices: (NT, 2)`` int32 rows ``(sequence n, chunk i of n)``; ``offsets: (N + 1,)`` int64, the first chunk
    of each sequence in the global chunk order (sequence ``n`` owns chunks ``offsets[n]:offsets[n + 1]``);
    ``num_chunks``: ``NT``."""

    indices: Tensor
    offsets: Tensor
    num_chunks: int


def chunk_table(cu_seqlens: Tensor, chunk_size: int) -> ChunkTable:
    """The chunks of every sequence of ``cu_seqlens`` (``(N + 1,)``, every length >= 1) for chunks of ``chunk_size``."""
    cu = cu_seqlens.long()
    per_seq = (cu[1:] - cu[:-1] + chunk_size - 1) // chunk_size
    offsets = torch.cat([per_seq.new_zeros(1), per_seq.cumsum(0)])
    total = int(offsets[-1])
    seq = torch.repeat_interleave(torch.arange(per_seq.numel(), device=cu.device), per_seq, output_size=total)
    within = torch.arange(total, device=cu.device) - offsets[seq]
    return ChunkTable(torch.stack([seq, within], dim=1).to(torch.int32).contiguous(), offsets, total)
