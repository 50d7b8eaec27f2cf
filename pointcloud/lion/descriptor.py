"""LION's 3-D spatial feature descriptor: local 3x3x3 structure the serialized mixers cannot see."""
from __future__ import annotations

from collections.abc import Sequence

import spconv.pytorch as spconv
from torch import Tensor, nn


class SpatialDescriptor(nn.Module):
    """Submanifold 3x3x3 sparse convolution (spconv), LayerNorm, GELU: ``(V, C) -> (V, C)`` on the same voxels.

    A window serialization puts voxels that are neighbours across the sequence axis far apart; this
    convolution mixes each voxel with its 26 neighbours before the voxels are merged.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = spconv.SubMConv3d(dim, dim, 3, padding=1, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.act = nn.GELU()

    def forward(self, coords: Tensor, features: Tensor, shape: Sequence[int], batch_size: int) -> Tensor:
        """``coords: (V, 4)`` ``(batch, z, y, x)`` on a grid ``shape = (nz, ny, nx)``; ``features: (V, C)``."""
        if coords.shape[0] == 0:
            return features
        x = spconv.SparseConvTensor(features, coords.int(), list(shape), batch_size)
        return self.act(self.norm(self.conv(x).features))

