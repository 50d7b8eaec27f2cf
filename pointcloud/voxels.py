"""Dynamic voxelization of point clouds and a PointNet-style dynamic voxel feature encoder.

Conventions: coordinates are metric ``x, y, z`` in the first three point columns; voxel coordinates are
``(batch, z, y, x)`` (the order spconv expects). A point is inside the range when ``min <= p < max`` on every
axis: points exactly on a lower bound are kept, points exactly on an upper bound are out (half-open cells,
so every kept point falls in exactly one voxel and the grid has exactly ``(max - min) / size`` cells a side).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from seqcore.ops.validation import check_bool, check_same_device

__all__ = ["VoxelGrid", "Voxels", "voxelize", "DynamicVFE"]


@dataclass
class VoxelGrid:
    """A regular voxel grid over an axis-aligned box.

    Args:
        point_cloud_range: ``(6,)`` ``[x0, y0, z0, x1, y1, z1]`` in metres, ``x1 > x0`` etc.
        voxel_size: ``(3,)`` ``[vx, vy, vz]``, positive, each dividing its range length (within 1e-6 cells).
    """

    point_cloud_range: Sequence[float]
    voxel_size: Sequence[float]

    def __post_init__(self) -> None:
        pcr = [float(v) for v in self.point_cloud_range]
        vs = [float(v) for v in self.voxel_size]
        if len(pcr) != 6 or len(vs) != 3:
            raise ValueError(f"point_cloud_range needs 6 values and voxel_size 3, got {len(pcr)} and {len(vs)}")
        if not all(torch.isfinite(torch.tensor(pcr + vs))):
            raise ValueError("point_cloud_range and voxel_size must be finite")
        for a in range(3):
            if not pcr[a + 3] > pcr[a]:
                raise ValueError(f"point_cloud_range max must exceed min on axis {a}: {pcr}")
            if not vs[a] > 0:
                raise ValueError(f"voxel_size must be positive: {vs}")
            cells = (pcr[a + 3] - pcr[a]) / vs[a]
            if abs(cells - round(cells)) > 1e-6:
                raise ValueError(
                    f"range length {pcr[a + 3] - pcr[a]} on axis {a} is not a multiple of voxel size {vs[a]}")
        self.point_cloud_range = pcr
        self.voxel_size = vs

    @property
    def grid_shape(self) -> Tuple[int, int, int]:
        """Cells per axis as ``(nz, ny, nx)`` (spconv's ``spatial_shape`` order)."""
        pcr, vs = self.point_cloud_range, self.voxel_size
        nx, ny, nz = (int(round((pcr[a + 3] - pcr[a]) / vs[a])) for a in range(3))
        return nz, ny, nx

    def voxel_centers(self, coords: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """Metric centres ``(V, 3)`` as ``x, y, z`` of voxels with coordinates ``coords (V, 4) (b, z, y, x)``."""
        lo = torch.tensor(self.point_cloud_range[:3], dtype=dtype, device=coords.device)
        vs = torch.tensor(self.voxel_size, dtype=dtype, device=coords.device)
        return lo + (coords[:, [3, 2, 1]].to(dtype) + 0.5) * vs


@dataclass
class Voxels:
    """Result of :func:`voxelize`.

    Attributes:
        coords: ``(V, 4)`` int64 ``(batch, z, y, x)``, unique, sorted lexicographically.
        point_to_voxel: ``(N,)`` int64 row of ``coords`` for each point, ``-1`` for points outside the range.
        num_points: ``(V,)`` int64 points per voxel (always >= 1).
        mean: ``(V, 3 + C)`` mean of the point features of each voxel.
        dropped: number of points outside the range (the only points ever left out).
    """

    coords: Tensor
    point_to_voxel: Tensor
    num_points: Tensor
    mean: Tensor
    dropped: int

    @property
    def num_voxels(self) -> int:
        return int(self.coords.shape[0])


def voxelize(points: Tensor, batch: Optional[Tensor], grid: VoxelGrid) -> Voxels:
    """Dynamic voxelization: every in-range point goes to its voxel, with no per-voxel point cap.

    Args:
        points: ``(N, 3 + C)`` float, ``x, y, z`` then ``C`` extra features (e.g. intensity).
        batch: ``(N,)`` int64 sample index of each point (>= 0), or None for a single sample.
        grid: the voxel grid.

    Returns:
        :class:`Voxels`. Points with an infinite coordinate are outside every range: dropped (counted in
        ``dropped``), like any other out-of-range point. No points give no voxels.

    Raises:
        ValueError: malformed inputs, NaN coordinates, NaN / inf in a feature column (it would poison its voxel's
            mean), negative batch indices, batch on another device than points.
        TypeError: ``batch`` not an integer tensor, ``grid`` not a :class:`VoxelGrid`.
    """
    if not isinstance(points, Tensor) or points.dim() != 2 or points.shape[1] < 3 or not points.is_floating_point():
        shape = tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__
        raise ValueError(f"points must be a float (N, 3 + C) tensor, got {shape} {getattr(points, 'dtype', '')}")
    if not isinstance(grid, VoxelGrid):
        raise TypeError(f"grid must be a VoxelGrid, got {type(grid).__name__}")
    n, device = points.shape[0], points.device
    if batch is None:
        batch = torch.zeros(n, dtype=torch.int64, device=device)
    else:
        if not isinstance(batch, Tensor) or batch.is_floating_point() or batch.is_complex() \
                or batch.dtype == torch.bool:
            # A float batch would be truncated: 0.7 silently becoming sample 0.
            raise TypeError(f"batch must be an integer tensor of sample indices, got {getattr(batch, 'dtype', batch)}")
        if batch.shape != (n,):
            raise ValueError(f"batch must have shape ({n},), got {tuple(batch.shape)}")
        check_same_device(points=points, batch=batch)
        batch = batch.to(torch.int64)
        if n and int(batch.min()) < 0:
            raise ValueError("batch indices must be non-negative")
    xyz = points[:, :3]
    if torch.isnan(xyz).any():
        raise ValueError("points have NaN coordinates")
    bad = ~torch.isfinite(points[:, 3:])
    if bad.any():
        row, col = (int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"points column {col + 3} (a feature) holds NaN or inf at point {row}; it would poison the "
                         "mean of its voxel")

    nz, ny, nx = grid.grid_shape
    # float64 for the cell index so that large ranges / small voxels do not lose cells to float32 rounding.
    lo = torch.tensor(grid.point_cloud_range[:3], dtype=torch.float64, device=device)
    hi = torch.tensor(grid.point_cloud_range[3:], dtype=torch.float64, device=device)
    vs = torch.tensor(grid.voxel_size, dtype=torch.float64, device=device)
    p64 = xyz.to(torch.float64)
    inside = ((p64 >= lo) & (p64 < hi)).all(dim=1)  # half-open: lower bound in, upper bound out
    idx_in = inside.nonzero().squeeze(1)
    cell = torch.floor((p64[idx_in] - lo) / vs).to(torch.int64)
    # (p - lo) / vs can round up to n for p just below hi; the half-open test says the point is inside.
    cell = torch.minimum(cell, torch.tensor([nx - 1, ny - 1, nz - 1], device=device))
    b_in = batch[idx_in]
    # One int64 key per point; sorted order of keys is (batch, z, y, x) lexicographic order.
    key = ((b_in * nz + cell[:, 2]) * ny + cell[:, 1]) * nx + cell[:, 0]
    ukey, inverse, counts = torch.unique(key, sorted=True, return_inverse=True, return_counts=True)
    v = ukey.shape[0]

    x = ukey % nx
    rest = ukey // nx
    y = rest % ny
    rest = rest // ny
    z = rest % nz
    b = rest // nz
    coords = torch.stack([b, z, y, x], dim=1)

    point_to_voxel = torch.full((n,), -1, dtype=torch.int64, device=device)
    point_to_voxel[idx_in] = inverse
    feats = points[idx_in]
    total = torch.zeros((v, points.shape[1]), dtype=points.dtype, device=device).index_add_(0, inverse, feats)
    mean = total / counts.unsqueeze(1).to(points.dtype)
    return Voxels(coords=coords, point_to_voxel=point_to_voxel, num_points=counts, mean=mean,
                  dropped=int(n - idx_in.shape[0]))


def _scatter_max(feat: Tensor, index: Tensor, num: int) -> Tensor:
    """Per-group max ``(num, C)`` of ``feat (M, C)`` grouped by ``index (M,)``; groups without rows are 0."""
    out = feat.new_zeros((num, feat.shape[1]))
    return out.scatter_reduce(0, index.unsqueeze(1).expand_as(feat), feat, reduce="amax", include_self=False)


class DynamicVFE(nn.Module):
    """PointNet-style dynamic voxel feature encoder.

    Per point the input is ``[x, y, z, extra..., p - voxel mean (3), p - voxel centre (3)]`` (plus ``|xyz|``
    when ``with_distance``). Each layer is ``Linear -> norm -> ReLU``; between layers the point features are
    concatenated with their voxel's max of that layer (so the next layer sees local context), and the last
    layer's features are max-pooled per voxel.

    Args:
        in_channels: point columns ``3 + C``.
        channels: output width of each layer.
        with_distance: append the point's Euclidean distance from the origin.
        norm: ``"layer"`` (LayerNorm, independent of batch composition) or ``"batch"`` (BatchNorm1d).
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (64, 64), with_distance: bool = False,
                 norm: str = "layer") -> None:
        super().__init__()
        if in_channels < 3 or not channels:
            raise ValueError("in_channels must be >= 3 and channels non-empty")
        if norm not in ("layer", "batch"):
            raise ValueError(f"norm must be 'layer' or 'batch', got {norm!r}")
        self.in_channels = in_channels
        self.channels = tuple(int(c) for c in channels)
        self.with_distance = check_bool("with_distance", with_distance)
        width = in_channels + 6 + int(with_distance)
        layers = []
        for i, c in enumerate(self.channels):
            cin = width if i == 0 else 2 * self.channels[i - 1]
            # No bias: the norm that follows has its own shift.
            layers.append(nn.ModuleDict({
                "linear": nn.Linear(cin, c, bias=False),
                "norm": nn.LayerNorm(c) if norm == "layer" else nn.BatchNorm1d(c),
            }))
        self.layers = nn.ModuleList(layers)

    @property
    def out_channels(self) -> int:
        return self.channels[-1]

    def forward(self, points: Tensor, voxels: Voxels, grid: VoxelGrid) -> Tensor:
        """Encode voxels.

        Args:
            points: ``(N, in_channels)`` the points given to :func:`voxelize`.
            voxels: the result of ``voxelize(points, ..., grid)``.
            grid: the same grid.

        Returns:
            ``(V, channels[-1])`` voxel features, rows aligned with ``voxels.coords``.
        """
        if points.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} point columns, got {points.shape[1]}")
        keep = voxels.point_to_voxel >= 0
        idx = voxels.point_to_voxel[keep]
        pts = points[keep]
        xyz = pts[:, :3]
        centre = grid.voxel_centers(voxels.coords, dtype=pts.dtype)
        # Gathers with repeated indices go through index_select: plain indexing's backward adds the rows with
        # unordered atomics when multi-threaded, so gradients would change with the thread count and between runs.
        parts = [pts, xyz - voxels.mean[:, :3].index_select(0, idx).to(pts.dtype), xyz - centre.index_select(0, idx)]
        if self.with_distance:
            parts.append(xyz.norm(dim=1, keepdim=True))
        feat = torch.cat(parts, dim=1)
        v = voxels.num_voxels
        for i, layer in enumerate(self.layers):
            feat = torch.relu(layer["norm"](layer["linear"](feat)))
            pooled = _scatter_max(feat, idx, v)
            if i + 1 < len(self.layers):
                feat = torch.cat([feat, pooled.index_select(0, idx)], dim=1)
        return pooled
