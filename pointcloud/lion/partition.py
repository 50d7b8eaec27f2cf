"""LION's window partition and grouping: sparse voxels become packed sequences for a linear-RNN mixer.

Each voxel ``(b, z, y, x)`` falls in a window of ``window = (wx, wy, wz)`` voxels; with ``shift`` the windows
move by half their size along x and y (every second layer, so information crosses window borders). A voxel's
position in its sample's sequence is the lexicographic order of

- X order: ``(window z, window y, window x, z, y, x inside the window)``: x varies fastest, so neighbours along x
  are neighbours in the sequence;
- Y order: the same with x and y swapped: ``(window z, window x, window y, z, x, y inside)``.

Each sample's sorted sequence is then cut into contiguous groups of ``group_size`` voxels (the last one shorter);
groups never mix samples. The groups are the sequences a mixer sees, packed with ``cu_seqlens``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from seqcore.ops.validation import check_bool, check_int

ORDERS = ("x", "y")


@dataclass(frozen=True)
class Partition:
    """One serialization of a batch of ``V`` voxels.

    Attributes:
        order: ``(V,)`` voxel indices in sequence order (sample by sample); ``features[order]`` is the packed input.
        cu_seqlens: ``(G + 1,)`` int64 offsets of the groups in that sequence.
        inverse: ``(V,)`` position of each voxel in ``order`` (``packed[inverse]`` restores the voxel order).
    """

    order: Tensor
    cu_seqlens: Tensor
    inverse: Tensor

    @property
    def num_groups(self) -> int:
        return self.cu_seqlens.numel() - 1


def partition(
    coords: Tensor,
    window: Sequence[int],
    group_size: int,
    *,
    axis: str = "x",
    shift: bool = False,
) -> Partition:
    """Serialize voxels ``coords: (V, 4)`` int64 ``(batch, z, y, x)`` (sorted by batch or not) into groups.

    Args:
        coords: voxel coordinates; batch indices must be non-negative.
        window: ``(wx, wy, wz)`` window size in voxels.
        group_size: voxels per group (the last group of each sample may be shorter).
        axis: ``"x"`` or ``"y"``: the axis that varies fastest along the sequence.
        shift: shift the windows by half their size along x and y.
    """
    if coords.dim() != 2 or coords.shape[1] != 4 or coords.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"coords must be an integer (V, 4) tensor (batch, z, y, x), got {tuple(coords.shape)} {coords.dtype}"
        )
    if axis not in ORDERS:
        raise ValueError(f"axis must be one of {ORDERS}, got {axis!r}")
    if len(window) != 3 or min(window) < 1:
        raise ValueError(f"window must be three positive sizes (wx, wy, wz), got {tuple(window)}")
    group_size = check_int("group_size", group_size, 1)
    shift = check_bool("shift", shift)
    coords = coords.long()
    if coords.numel() and int(coords.min()) < 0:
        raise ValueError("coords must be non-negative (batch and voxel indices)")
    wx, wy, wz = window
    b, z, y, x = coords.unbind(1)
    if shift:
        x, y = x + wx // 2, y + wy // 2
    win = (z // wz, y // wy, x // wx)
    inner = (z % wz, y % wy, x % wx)
    if axis == "x":
        keys = [b, win[0], win[1], win[2], inner[0], inner[1], inner[2]]
    else:
        keys = [b, win[0], win[2], win[1], inner[0], inner[2], inner[1]]
    order = torch.arange(coords.shape[0], device=coords.device)
    # Stable sorts from the least significant key give the lexicographic order without overflowing one int64 key.
    for key in reversed(keys):
        order = order[torch.sort(key[order], stable=True).indices]
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel(), device=order.device)
    return Partition(order, group_offsets(b[order], group_size), inverse)


def group_offsets(sample: Tensor, group_size: int) -> Tensor:
    """``(G + 1,)`` offsets cutting a sample-sorted sequence ``sample: (V,)`` into groups of ``group_size``,
    restarting at every sample so no group mixes two."""
    if sample.numel() == 0:
        return torch.zeros(1, dtype=torch.long, device=sample.device)
    counts = torch.unique_consecutive(sample, return_counts=True)[1]
    starts = torch.cumsum(counts, 0) - counts
    groups = (counts + group_size - 1) // group_size
    first_group = torch.repeat_interleave(torch.cumsum(groups, 0) - groups, groups)
    index = torch.arange(int(groups.sum()), device=sample.device) - first_group  # group number inside its sample
    begin = torch.repeat_interleave(starts, groups) + index * group_size
    return torch.cat([begin, sample.new_tensor([sample.numel()], dtype=torch.long)]).long()
