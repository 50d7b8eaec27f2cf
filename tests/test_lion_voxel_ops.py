"""LION voxel bookkeeping: merging pools exactly, expanding restores, generation stays in range and unique."""
from __future__ import annotations

import pytest
import torch

from pointcloud.lion import expand_voxels, generate_voxels, merge_voxels
from voxel_cases import random_voxels

SHAPE = (8, 20, 24)  # (nz, ny, nx)


def sparse(seed: int, per_sample=(60, 0, 35), channels: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    coords = random_voxels(seed, per_sample, SHAPE)
    return coords, torch.randn(len(coords), channels, generator=torch.Generator().manual_seed(seed + 1000))


@pytest.mark.parametrize("pool", ["mean", "max"])
def test_merge_pools_each_coarse_voxel_and_expand_restores(pool: str):
    coords, feats = sparse(0)
    merged = merge_voxels(coords, feats, SHAPE, stride=(2, 2, 2), pool=pool)
    assert merged.shape == (4, 10, 12)
    assert merged.coords.unique(dim=0).shape[0] == merged.coords.shape[0]
    coarse = coords // torch.tensor([1, 2, 2, 2])
    assert torch.equal(merged.coords[merged.index], coarse)
    for v in range(merged.coords.shape[0]):
        members = feats[merged.index == v]
        expected = members.mean(0) if pool == "mean" else members.amax(0)
        assert torch.allclose(merged.features[v], expected, atol=1e-6)
    skip = torch.randn_like(feats)
    out = expand_voxels(merged.features, merged, skip)
    assert torch.allclose(out, merged.features[merged.index] + skip)
    # z halved only (the merge between LION blocks).
    assert merge_voxels(coords, feats, SHAPE, stride=(1, 1, 2)).shape == (4, 20, 24)


def test_generation_spawns_unique_in_range_diagonal_neighbours():
    coords, feats = sparse(1)
    feats[0] *= 100  # the strongest voxel of sample 0 must spawn
    new_coords, new_feats = generate_voxels(coords, feats, SHAPE, ratio=0.2)
    added = new_coords[len(coords):]
    assert torch.equal(new_coords[: len(coords)], coords) and torch.equal(new_feats[: len(coords)], feats)
    assert (new_feats[len(coords):] == 0).all()
    assert new_coords.unique(dim=0).shape[0] == new_coords.shape[0]  # unique, none on an occupied voxel
    assert (added[:, 2] >= 0).all() and (added[:, 2] < SHAPE[1]).all()
    assert (added[:, 3] >= 0).all() and (added[:, 3] < SHAPE[2]).all()
    # Every new voxel is a diagonal BEV neighbour, at the same z, of a seed voxel in its own sample.
    for b, z, y, x in added.tolist():
        near = coords[(coords[:, 0] == b) & (coords[:, 1] == z)]
        assert (((near[:, 2] - y).abs() == 1) & ((near[:, 3] - x).abs() == 1)).any()
    b, z, y, x = coords[0].tolist()
    spawned = {tuple(r) for r in added.tolist()}
    for dy, dx in ((-1, -1), (-1, 1), (1, -1), (1, 1)):
        cell = (b, z, y + dy, x + dx)
        if 0 <= y + dy < SHAPE[1] and 0 <= x + dx < SHAPE[2] and cell not in {tuple(r) for r in coords.tolist()}:
            assert cell in spawned
    # At most 4 per seed, ceil(20%) seeds per sample.
    assert len(added) <= 4 * (12 + 7)
    assert generate_voxels(coords, feats, SHAPE, ratio=0.0)[0].shape == coords.shape


def test_bad_input():
    coords, feats = sparse(2)
    with pytest.raises(ValueError, match="ratio"):
        generate_voxels(coords, feats, SHAPE, ratio=1.5)
    with pytest.raises(ValueError, match="pool"):
        merge_voxels(coords, feats, SHAPE, pool="sum")
    with pytest.raises(ValueError, match=r"features must be \(V, C\)"):
        merge_voxels(coords, feats[:3], SHAPE)
    empty = torch.zeros(0, 4, dtype=torch.long)
    assert generate_voxels(empty, torch.zeros(0, 5), SHAPE)[0].shape == (0, 4)
