"""Several scan orders over a grid for mixers with multiplicative decays (the baselines LightNet avoids).

A decaying recurrence weighs a token by how far back along the scan it lies, so one row-major scan over an
image sees the row above a pixel as ``W`` steps away and the pixel below not at all. Vision models built on
such mixers therefore scan several orders. :class:`GridScan` runs a bidirectional mixer (forward and reverse)
along every axis-major order of the grid (row-major and column-major on images: 4 scans) and averages them.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from seqcore.ops.validation import check_float, check_int

from .position import _check_grid


def axis_major_order(grid_shape: Sequence[int], axis: int) -> Tensor:
    """Permutation of row-major token indices that makes ``axis`` the fastest-varying one: ``(T,)``.

    ``axis`` counts from 0 (negative values from the end, as in torch).
    """
    shape = _check_grid(grid_shape)
    if not -len(shape) <= check_int("axis", axis, None) < len(shape):
        raise ValueError(f"axis must be an int in [-{len(shape)}, {len(shape)}) for grid_shape {shape}, got {axis!r}")
    index = torch.arange(torch.Size(shape).numel()).reshape(shape)
    return index.movedim(axis, -1).reshape(-1)


class GridScan(nn.Module):
    """Wrap a bidirectional mixer ``(B, T, C) -> (B, T, C)`` to scan every axis-major order of the grid.

    ``forward(x, cu_seqlens=None, cache=None, grid_shape=...)``: the mean over axes of the mixer applied to the
    tokens reordered so that axis is fastest, mapped back to row-major order. Weights are shared by the orders.
    """

    def __init__(self, mixer: nn.Module) -> None:
        super().__init__()
        if not getattr(mixer, "bidirectional", False):
            raise ValueError("GridScan needs a bidirectional mixer (each order is scanned forward and reverse)")
        self.mixer = mixer

    def forward(
        self, x: Tensor, cu_seqlens: Tensor | None = None, cache: object | None = None,
        grid_shape: Sequence[int] | None = None,
    ) -> Tensor:
        if cache is not None or cu_seqlens is not None:
            raise ValueError("GridScan mixes whole grids: no decoding cache and no packed cu_seqlens")
        check_float("x", x, 3, "(B, T, C)")
        if grid_shape is None or torch.Size(_check_grid(grid_shape)).numel() != x.shape[1]:
            raise ValueError(f"grid_shape must describe the {x.shape[1]} tokens, got {grid_shape}")
        out = torch.zeros_like(x)
        for axis in range(len(grid_shape)):
            order = axis_major_order(grid_shape, axis).to(x.device)
            out[:, order] += self.mixer(x[:, order])
        return out / len(grid_shape)
