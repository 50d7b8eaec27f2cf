"""LION's window partition: every voxel once per order, groups within samples, shifts, packed equals per group."""
from __future__ import annotations

import pytest
import torch

from pointcloud.lion import group_offsets, partition
from voxel_cases import random_voxels
from seqcore.nn import build_mixer


def voxels(seed: int, per_sample: tuple[int, ...] = (300, 57, 0, 129), shape=(8, 40, 50)) -> torch.Tensor:
    return random_voxels(seed, per_sample, shape, shuffle=True)


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("shift", [False, True])
def test_every_voxel_once_and_groups_stay_in_samples(axis: str, shift: bool):
    coords = voxels(0)
    part = partition(coords, (7, 6, 4), group_size=32, axis=axis, shift=shift)
    assert torch.equal(torch.sort(part.order).values, torch.arange(len(coords)))
    assert torch.equal(part.order[part.inverse], torch.arange(len(coords)))
    cu = part.cu_seqlens
    assert int(cu[0]) == 0 and int(cu[-1]) == len(coords) and bool((cu[1:] > cu[:-1]).all())
    assert int((cu[1:] - cu[:-1]).max()) <= 32
    sample = coords[part.order, 0]
    for start, end in zip(cu[:-1].tolist(), cu[1:].tolist()):
        assert sample[start:end].unique().numel() == 1
    # Samples appear in order, each cut into ceil(n / 32) groups.
    assert torch.equal(sample, torch.sort(sample).values)
    assert part.num_groups == sum(-(-n // 32) for n in (300, 57, 0, 129))


def test_order_is_window_major_with_the_chosen_axis_fastest():
    # One sample, one window row along x: two windows of 4 x 2 voxels.
    ys, xs = torch.meshgrid(torch.arange(2), torch.arange(8), indexing="ij")
    coords = torch.stack([torch.zeros(16, dtype=torch.long), torch.zeros(16, dtype=torch.long), ys.flatten(), xs.flatten()], 1)
    coords = coords[torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    x_order = coords[partition(coords, (4, 2, 1), 100, axis="x").order][:, 2:]
    expected_x = [(y, x) for wx in range(2) for y in range(2) for x in range(4 * wx, 4 * wx + 4)]
    assert [tuple(r) for r in x_order.tolist()] == expected_x
    y_order = coords[partition(coords, (4, 2, 1), 100, axis="y").order][:, 2:]
    expected_y = [(y, x) for wx in range(2) for x in range(4 * wx, 4 * wx + 4) for y in range(2)]
    assert [tuple(r) for r in y_order.tolist()] == expected_y


def test_shifted_windows_differ():
    coords = voxels(1, (400,))
    plain = partition(coords, (7, 6, 8), 64)
    shifted = partition(coords, (7, 6, 8), 64, shift=True)
    assert not torch.equal(plain.order, shifted.order)


def test_packed_groups_equal_each_group_alone():
    coords = voxels(2, (90, 41))
    part = partition(coords, (5, 5, 8), group_size=16, axis="y", shift=True)
    torch.manual_seed(0)
    mixer = build_mixer("mamba2", 16, num_heads=2, bidirectional=True).eval()
    features = torch.randn(len(coords), 16)
    packed = mixer(features[part.order][None], cu_seqlens=part.cu_seqlens)[0]
    cu = part.cu_seqlens.tolist()
    alone = torch.cat([mixer(features[part.order][None, s:e])[0] for s, e in zip(cu[:-1], cu[1:])])
    assert torch.allclose(packed, alone, atol=1e-5)
    # Back in voxel order, then permuting the input voxels permutes the output the same way.
    out = packed[part.inverse]
    perm = torch.randperm(len(coords), generator=torch.Generator().manual_seed(3))
    part2 = partition(coords[perm], (5, 5, 8), group_size=16, axis="y", shift=True)
    out2 = mixer(features[perm][part2.order][None], cu_seqlens=part2.cu_seqlens)[0][part2.inverse]
    assert torch.allclose(out2, out[perm], atol=1e-5)


def test_group_offsets_and_bad_input():
    assert group_offsets(torch.tensor([0, 0, 0, 1, 1, 3]), 2).tolist() == [0, 2, 3, 5, 6]
    assert group_offsets(torch.zeros(0, dtype=torch.long), 4).tolist() == [0]
    empty = partition(torch.zeros(0, 4, dtype=torch.long), (4, 4, 4), 8)
    assert empty.num_groups == 0 and empty.order.numel() == 0
    with pytest.raises(ValueError, match=r"integer \(V, 4\)"):
        partition(torch.zeros(3, 3, dtype=torch.long), (4, 4, 4), 8)
    with pytest.raises(ValueError, match="axis must be one of"):
        partition(voxels(0), (4, 4, 4), 8, axis="z")
    with pytest.raises(ValueError, match="three positive sizes"):
        partition(voxels(0), (4, 0, 4), 8)
    with pytest.raises(ValueError, match="group_size"):
        partition(voxels(0), (4, 4, 4), 0)
    with pytest.raises(ValueError, match="non-negative"):
        partition(torch.tensor([[0, 0, -1, 2]]), (4, 4, 4), 8)
