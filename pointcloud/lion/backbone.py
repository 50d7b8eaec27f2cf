"""LION's sparse backbone: U-shaped blocks of LION layers, z halved between blocks, voxel generation, BEV output."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from .descriptor import SpatialDescriptor
from .layer import LIONLayer
from .voxel_ops import Merge, check_voxels, expand_voxels, generate_voxels, merge_voxels


class MergeDown(nn.Module):
    """Spatial descriptor, voxel merging by ``stride = (sx, sy, sz)`` (mean pool), LayerNorm."""

    def __init__(self, dim: int, stride: Sequence[int]) -> None:
        super().__init__()
        self.stride = tuple(int(s) for s in stride)
        self.descriptor = SpatialDescriptor(dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, coords: Tensor, features: Tensor, shape: Sequence[int], batch_size: int):
        """Returns ``(merge, skip)``: the :class:`~pointcloud.lion.Merge` with normalized features, and the
        described fine features (what expanding adds back)."""
        described = self.descriptor(coords, features, shape, batch_size)
        merge = merge_voxels(coords, described, shape, self.stride)
        return Merge(merge.coords, self.norm(merge.features), merge.index, merge.shape), described


class LIONBlock(nn.Module):
    """``depth`` LION layers in a U: layer ``i`` runs after ``i`` merges by ``stride``; the way back expands each
    merge and adds its skip. Odd layers use shifted windows. ``(V, C) -> (V, C)`` on the same voxels.

    Args:
        window: ``(wx, wy, wz)`` in voxels at every level (so a coarser level's windows cover more space).
    """

    def __init__(self, dim: int, operator: str, window: Sequence[int], group_size: int, depth: int,
                 stride: Sequence[int], num_heads: int, mixer_kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.dim = dim
        self.layers = nn.ModuleList(
            LIONLayer(dim, operator, window, group_size, shift=i % 2 == 1, num_heads=num_heads,
                      mixer_kwargs=mixer_kwargs)
            for i in range(depth)
        )
        self.downs = nn.ModuleList(MergeDown(dim, stride) for _ in range(depth - 1))

    def forward(self, coords: Tensor, features: Tensor, shape: Sequence[int], batch_size: int) -> Tensor:
        way_back = []
        for i, layer in enumerate(self.layers):
            features = layer(coords, features)
            if i < len(self.downs):
                merge, skip = self.downs[i](coords, features, shape, batch_size)
                way_back.append((merge, skip))
                coords, features, shape = merge.coords, merge.features, merge.shape
        for merge, skip in reversed(way_back):
            features = expand_voxels(features, merge, skip)
        return features


@dataclass(frozen=True)
class SparseBEV:
    """The backbone's output: BEV voxels ``coords (V, 4)`` with ``z = 0``, ``features (V, C)`` on a grid of
    ``shape = (1, ny, nx)``."""

    coords: Tensor
    features: Tensor
    shape: tuple[int, int, int]


class LIONBackbone(nn.Module):
    """Sparse voxels ``(V, 4)`` / ``(V, C)`` on the voxel grid -> :class:`SparseBEV` at the same x-y resolution.

    Block ``i`` uses ``windows[i]`` and ``group_sizes[i]``; between blocks a descriptor + ``(1, 1, 2)`` merge halves
    z, then :func:`~pointcloud.lion.generate_voxels` adds the diagonal neighbours of the top ``generate_ratio``
    voxels. A last descriptor + merge collapses z into a BEV map.
    """

    def __init__(self, dim: int, operator: str, windows: Sequence[Sequence[int]], group_sizes: Sequence[int], *,
                 layers_per_block: int = 2, block_stride: Sequence[int] = (2, 2, 1), generate_ratio: float = 0.2,
                 num_heads: int = 4, mixer_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.generate_ratio = generate_ratio
        self.blocks = nn.ModuleList(
            LIONBlock(dim, operator, w, g, layers_per_block, block_stride, num_heads, mixer_kwargs or {})
            for w, g in zip(windows, group_sizes)
        )
        self.z_downs = nn.ModuleList(MergeDown(dim, (1, 1, 2)) for _ in range(len(self.blocks) - 1))
        self.to_bev = SpatialDescriptor(dim)
        self.bev_norm = nn.LayerNorm(dim)

    def forward(self, coords: Tensor, features: Tensor, shape: Sequence[int], batch_size: int) -> SparseBEV:
        check_voxels(coords, features, self.dim)
        coords, shape = coords.long(), tuple(shape)
        for i, block in enumerate(self.blocks):
            features = block(coords, features, shape, batch_size)
            if i < len(self.z_downs):
                merge, _ = self.z_downs[i](coords, features, shape, batch_size)
                coords, features, shape = merge.coords, merge.features, merge.shape
                if self.generate_ratio > 0:
                    coords, features = generate_voxels(coords, features, shape, self.generate_ratio)
        described = self.to_bev(coords, features, shape, batch_size)
        bev = merge_voxels(coords, described, shape, (1, 1, shape[0]))
        return SparseBEV(bev.coords, self.bev_norm(bev.features), bev.shape)
