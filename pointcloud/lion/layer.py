"""The LION layer: a linear-RNN mixer over X-ordered, then Y-ordered, window groups of sparse voxels."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from seqcore.nn import build_mixer

from .partition import partition
from .voxel_ops import check_voxels


class GroupMixerBlock(nn.Module):
    """Pre-norm residual mixing along one serialization: ``x + mixer(norm(x))`` inside each group.

    Args:
        dim: channels C.
        operator: a ``seqcore.nn`` mixer name; it runs bidirectionally over groups packed with ``cu_seqlens``.
        axis: ``"x"`` or ``"y"``: the axis that varies fastest along the sequence.
    """

    def __init__(self, dim: int, operator: str, num_heads: int, axis: str, mixer_kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.axis = axis
        self.norm = nn.LayerNorm(dim)
        self.mixer = build_mixer(operator, dim, num_heads=num_heads, bidirectional=True, **mixer_kwargs)

    def forward(self, coords: Tensor, features: Tensor, window: Sequence[int], group_size: int,
                shift: bool) -> Tensor:
        if coords.shape[0] == 0:
            return features
        part = partition(coords, window, group_size, axis=self.axis, shift=shift)
        packed = self.norm(features.index_select(0, part.order))[None]
        mixed = self.mixer(packed, cu_seqlens=part.cu_seqlens)[0]
        return features + mixed.index_select(0, part.inverse)


class LIONLayer(nn.Module):
    """One X-order block then one Y-order block over ``(V, C)`` voxel features (shapes unchanged).

    Args:
        dim: channels C.
        operator: the ``seqcore.nn`` mixer by name (``"mamba2"``, ``"gla"``, ``"retnet"``, ...).
        window: ``(wx, wy, wz)`` in voxels of the grid this layer runs on.
        group_size: voxels per group.
        shift: shift the windows by half their size (every second layer), so groups cross window borders.
    """

    def __init__(self, dim: int, operator: str, window: Sequence[int], group_size: int, *, shift: bool = False,
                 num_heads: int = 4, mixer_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.window = tuple(int(w) for w in window)
        self.group_size = int(group_size)
        self.shift = shift
        self.blocks = nn.ModuleList(
            GroupMixerBlock(dim, operator, num_heads, axis, mixer_kwargs or {}) for axis in ("x", "y")
        )

    def forward(self, coords: Tensor, features: Tensor) -> Tensor:
        check_voxels(coords, features, self.dim)
        for block in self.blocks:
            features = block(coords, features, self.window, self.group_size, self.shift)
        return features

    def extra_repr(self) -> str:
        return f"window={self.window}, group_size={self.group_size}, shift={self.shift}"
