"""Random sparse voxels the LION tests share."""
from __future__ import annotations

import torch


def random_voxels(seed: int, per_sample: tuple[int, ...], shape: tuple[int, int, int], shuffle: bool = False) -> torch.Tensor:
    """Unique random voxel coordinates ``(batch, z, y, x)`` on a grid of ``shape = (nz, ny, nx)``, ``per_sample[b]``
    of them in sample ``b``; in sample order, or shuffled across samples."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for b, n in enumerate(per_sample):
        cells = torch.randperm(shape[0] * shape[1] * shape[2], generator=gen)[:n]
        z, rest = cells // (shape[1] * shape[2]), cells % (shape[1] * shape[2])
        rows.append(torch.stack([torch.full_like(z, b), z, rest // shape[2], rest % shape[2]], 1))
    coords = torch.cat(rows)
    return coords[torch.randperm(len(coords), generator=gen)] if shuffle else coords
