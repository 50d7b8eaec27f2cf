"""Sparse-voxel bookkeeping of LION's blocks: merging (downsampling), expanding back, and voxel generation."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

# The four diagonal bird's-eye-view neighbours (dy, dx) a foreground voxel spawns.
DIAGONALS = ((-1, -1), (-1, 1), (1, -1), (1, 1))


def check_voxels(coords: Tensor, features: Tensor, dim: int | None = None) -> None:
    """The voxel-set contract of LION's modules: ``coords (V, 4)`` integer ``(batch, z, y, x)``, ``features (V, C)``
    (with ``C == dim`` when given)."""
    if coords.dim() != 2 or coords.shape[1] != 4 or coords.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"coords must be an integer (V, 4) tensor (batch, z, y, x), got {tuple(coords.shape)}")
    if features.dim() != 2 or features.shape[0] != coords.shape[0] or dim not in (None, features.shape[1]):
        expected = f"(V={coords.shape[0]}, C={dim})" if dim is not None else f"(V, C) with V = {coords.shape[0]}"
        raise ValueError(f"features must be {expected}, got {tuple(features.shape)}")


def check_inside(coords: Tensor, shape: Sequence[int]) -> None:
    """Voxels ``(batch, z, y, x)`` must lie on the grid ``shape = (nz, ny, nx)``: one outside would share its
    linear key with another voxel and be merged with it."""
    if coords.shape[0] == 0:
        return
    high = torch.tensor([int(s) for s in shape], device=coords.device)
    if int(coords.min()) < 0 or bool((coords[:, 1:] >= high).any()):
        raise ValueError(f"coords must lie on the grid (nz, ny, nx) = {tuple(shape)} with non-negative batch "
                         f"indices, got values from {coords.min(0).values.tolist()} to {coords.max(0).values.tolist()}")


def _linear(coords: Tensor, shape: Sequence[int]) -> Tensor:
    """One int64 key per ``(batch, z, y, x)`` on a grid of ``shape = (nz, ny, nx)``."""
    nz, ny, nx = shape
    b, z, y, x = coords.long().unbind(1)
    return ((b * nz + z) * ny + y) * nx + x


@dataclass(frozen=True)
class Merge:
    """The result of :func:`merge_voxels`.

    Attributes:
        coords: ``(V', 4)`` unique coarse voxels ``(batch, z, y, x)``, sorted.
        features: ``(V', C)`` pooled features.
        index: ``(V,)`` the coarse voxel of every fine voxel (what :func:`expand_voxels` copies back along).
        shape: the coarse grid ``(nz, ny, nx)``.
    """

    coords: Tensor
    features: Tensor
    index: Tensor
    shape: tuple[int, int, int]


def merge_voxels(
    coords: Tensor, features: Tensor, shape: Sequence[int], stride: Sequence[int] = (2, 2, 2), pool: str = "mean"
) -> Merge:
    """Downsample sparse voxels: coordinates divided by ``stride = (sx, sy, sz)``, duplicates pooled.

    Args:
        coords: ``(V, 4)`` ``(batch, z, y, x)`` on a grid of ``shape = (nz, ny, nx)``.
        features: ``(V, C)``; not checked for NaN (a NaN reaches its coarse voxel only; the detector rejects
            non-finite points at its input).
        pool: ``"mean"`` or ``"max"`` over the fine voxels of each coarse one.

    Raises:
        ValueError: malformed coords / features, a voxel outside ``shape``, an unknown pool, a stride < 1.
    """
    check_voxels(coords, features)
    check_inside(coords, shape)
    if pool not in ("mean", "max"):
        raise ValueError(f"pool must be 'mean' or 'max', got {pool!r}")
    sx, sy, sz = stride
    if min(sx, sy, sz) < 1:
        raise ValueError(f"stride must be positive, got {tuple(stride)}")
    coarse_shape = (-(-shape[0] // sz), -(-shape[1] // sy), -(-shape[2] // sx))
    div = torch.tensor([1, sz, sy, sx], device=coords.device)
    coarse = coords.long() // div
    keys, index = torch.unique(_linear(coarse, coarse_shape), return_inverse=True)
    out_coords = coarse.new_zeros(keys.numel(), 4).index_copy_(0, index, coarse)
    if pool == "mean":
        total = features.new_zeros(keys.numel(), features.shape[1]).index_add_(0, index, features)
        count = torch.bincount(index, minlength=keys.numel()).clamp_(min=1).to(features.dtype)
        pooled = total / count[:, None]
    else:
        pooled = features.new_full((keys.numel(), features.shape[1]), -torch.inf)
        pooled = pooled.scatter_reduce(0, index[:, None].expand_as(features), features, "amax")
    return Merge(out_coords, pooled, index, coarse_shape)


def expand_voxels(coarse_features: Tensor, merge: Merge, skip: Tensor) -> Tensor:
    """Copy coarse features ``(V', C)`` back to the fine voxels of ``merge`` and add the skip ``(V, C)``."""
    if skip.shape[0] != merge.index.numel() or coarse_features.shape[0] != merge.coords.shape[0]:
        raise ValueError("coarse features and skip must match the merge they expand")
    return coarse_features.index_select(0, merge.index) + skip


def generate_voxels(
    coords: Tensor, features: Tensor, shape: Sequence[int], ratio: float = 0.2
) -> tuple[Tensor, Tensor]:
    """LION's voxel generation: per sample, the ``ratio`` of voxels with the largest mean ``|feature|`` spawn
    zero-feature voxels at their four diagonal BEV neighbours (same z), kept when inside the grid and not
    already occupied; later layers fill their features in.

    Returns:
        ``(coords', features')``: the input voxels first, then the new ones (unique, sorted), ``(V + N, ...)``.
    """
    check_voxels(coords, features)
    check_inside(coords, shape)
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"ratio must lie in [0, 1], got {ratio}")
    coords = coords.long()
    if ratio == 0.0 or coords.shape[0] == 0:
        return coords, features
    magnitude = features.detach().abs().mean(dim=1)
    batch = coords[:, 0]
    # Rank within each sample: sort by (sample, -magnitude) and count positions from each sample's start.
    order = torch.argsort(magnitude, descending=True, stable=True)
    order = order[torch.sort(batch[order], stable=True).indices]
    counts = torch.bincount(batch, minlength=int(batch.max()) + 1)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel(), device=coords.device) - start[batch[order]]
    keep = rank < torch.ceil(counts[batch[order]].float() * ratio).long()
    seeds = coords[order[keep]]
    offsets = torch.tensor([[0, 0, dy, dx] for dy, dx in DIAGONALS], device=coords.device)
    spawned = (seeds[:, None, :] + offsets[None]).reshape(-1, 4)
    nz, ny, nx = shape
    inside = (spawned[:, 2] >= 0) & (spawned[:, 2] < ny) & (spawned[:, 3] >= 0) & (spawned[:, 3] < nx)
    spawned = spawned[inside]
    keys = torch.unique(_linear(spawned, shape))
    keys = keys[~torch.isin(keys, _linear(coords, shape))]
    x = keys % nx
    y = (keys // nx) % ny
    z = (keys // (nx * ny)) % nz
    b = keys // (nx * ny * nz)
    new = torch.stack([b, z, y, x], dim=1)
    return torch.cat([coords, new]), torch.cat([features, features.new_zeros(new.shape[0], features.shape[1])])
