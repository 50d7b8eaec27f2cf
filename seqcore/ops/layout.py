"""Index maps between the caller's sequence layout and the layouts the backends compute on.

Callers pass either a dense batch ``(B, T, ...)`` or packed sequences ``(1, T, ...)`` with ``cu_seqlens``.
The step-loop and chunked backends compute on a *padded* layout ``(N, L, ...)``: one row per sequence,
left-aligned in processing order (time-flipped when ``reverse``), padded with identity steps up to a length
``L`` that is a multiple of the chunk size. The Triton kernels compute on the *packed* layout
``(1, sum(T_n), ...)`` with ``cu_seqlens``. Both maps are gathers, so they are differentiable and
deterministic, and no Python loop runs over sequences.
"""
from __future__ import annotations

import torch
from torch import Tensor


class SequenceLayout:
    """Describes ``N`` sequences stored as ``(B, T, ...)`` (or ``(1, T, ...)`` with ``cu_seqlens``)."""

    def __init__(self, batch: int, length: int, cu_seqlens: Tensor | None, reverse: bool) -> None:
        self.batch, self.length, self.reverse = batch, length, reverse
        self.varlen = cu_seqlens is not None
        if cu_seqlens is None:
            self.num_seqs = batch
            self.max_len = length
            self._cu = None
        else:
            # contiguous: the Triton kernels read the offsets with unit stride
            self._cu = cu_seqlens.long().contiguous()
            self.num_seqs = self._cu.numel() - 1
            self.max_len = int((self._cu[1:] - self._cu[:-1]).max())

    def cu_seqlens(self, device: torch.device) -> Tensor:
        """Offsets ``(N + 1,)`` of each sequence in the packed layout."""
        if self._cu is not None:
            return self._cu.to(device)
        return torch.arange(self.batch + 1, device=device, dtype=torch.long) * self.length

    def padded_length(self, multiple: int) -> int:
        return -(-self.max_len // multiple) * multiple

    def _padded_index(self, padded_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Flat source position of every padded slot ``(N, L)`` and a mask of the real ones."""
        cu = self.cu_seqlens(device)
        start, end = cu[:-1, None], cu[1:, None]
        j = torch.arange(padded_len, device=device)[None, :]
        src = end - 1 - j if self.reverse else start + j
        valid = j < end - start
        return torch.where(valid, src, torch.full_like(src, self.batch * self.length)), valid

    def _is_identity(self, padded_len: int) -> bool:
        return not self.varlen and padded_len == self.length

    def to_padded(self, x: Tensor, multiple: int, fill: float = 0.0) -> Tensor:
        """``(B, T, *rest) -> (N, L, *rest)``; padding slots hold ``fill`` (chosen so they are identity steps)."""
        padded_len = self.padded_length(multiple)
        if self._is_identity(padded_len):
            return x.flip(1) if self.reverse else x
        rest = x.shape[2:]
        flat = x.reshape(self.batch * self.length, *rest)
        flat = torch.cat([flat, flat.new_full((1, *rest), fill)])
        idx, _ = self._padded_index(padded_len, x.device)
        return flat.index_select(0, idx.flatten()).view(self.num_seqs, padded_len, *rest)

    def from_padded(self, y: Tensor) -> Tensor:
        """Inverse of :meth:`to_padded` on the real slots: ``(N, L, *rest) -> (B, T, *rest)``."""
        padded_len = y.shape[1]
        if self._is_identity(padded_len):
            return y.flip(1) if self.reverse else y
        idx, valid = self._padded_index(padded_len, y.device)
        slot = torch.arange(idx.numel(), device=y.device).view_as(idx)
        inverse = torch.empty(self.batch * self.length, dtype=torch.long, device=y.device)
        inverse[idx[valid]] = slot[valid]
        rest = y.shape[2:]
        out = y.reshape(idx.numel(), *rest).index_select(0, inverse)
        return out.view(self.batch, self.length, *rest)

    def _packed_flip_index(self, device: torch.device) -> Tensor:
        cu = self.cu_seqlens(device)
        pos = torch.arange(self.batch * self.length, device=device)
        seq = torch.searchsorted(cu[1:], pos, right=True)
        return cu[seq] + cu[seq + 1] - 1 - pos

    def to_packed(self, x: Tensor) -> Tensor:
        """``(B, T, *rest) -> (1, B*T, *rest)``, contiguous, each sequence flipped when ``reverse``."""
        flat = x.reshape(1, self.batch * self.length, *x.shape[2:])
        if self.reverse:
            flat = flat.index_select(1, self._packed_flip_index(x.device))
        return flat.contiguous()

    def from_packed(self, y: Tensor) -> Tensor:
        """Inverse of :meth:`to_packed` (the per-sequence flip is its own inverse)."""
        if self.reverse:
            y = y.index_select(1, self._packed_flip_index(y.device))
        return y.reshape(self.batch, self.length, *y.shape[2:])
