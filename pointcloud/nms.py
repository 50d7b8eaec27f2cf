"""Greedy non-maximum suppression for rotated 3-D boxes, in pure PyTorch (CPU and GPU).

OpenPCDet's rotated NMS is a CUDA kernel; this version builds the overlap relation with :mod:`pointcloud.iou`
(vectorized over all pairs, only for pairs whose BEV circumcircles meet) and then runs the cheap greedy pass over
a boolean "suppresses" matrix on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pointcloud.iou import (
    _check_boxes,
    _chunked_pair_intersection,
    _may_overlap,
    _volume,
    _z_overlap,
)

__all__ = ["nms_rotated", "multiclass_nms"]


def _overlap_pairs(boxes: Tensor, iou_threshold: float, use_3d: bool) -> tuple[Tensor, Tensor]:
    """Index pairs ``(i, j)`` with ``i < j`` whose IoU exceeds ``iou_threshold``.

    Only the upper triangle of candidate pairs (circumcircles meet, and z extents meet for 3-D) is clipped, so the
    work scales with the number of nearby pairs, not with ``N**2``; the dense part is just an ``(N, N)`` distance
    test, done in row blocks to keep its temporaries small.
    """
    n = boxes.shape[0]
    ii_all, jj_all = [], []
    rows = max(1, (1 << 22) // max(n, 1))  # ~4M candidate tests per block
    for r0 in range(0, n, rows):
        blk = boxes[r0 : r0 + rows]
        cand = _may_overlap(blk, boxes)
        if use_3d:
            cand &= _z_overlap(blk[:, None, :], boxes[None, :, :]) > 0
        # Strict upper triangle: greedy NMS only lets a higher-ranked box suppress a lower-ranked one.
        row = torch.arange(r0, r0 + blk.shape[0], device=boxes.device)
        cand &= torch.arange(n, device=boxes.device)[None, :] > row[:, None]
        ii, jj = torch.nonzero(cand, as_tuple=True)
        ii_all.append(ii + r0)
        jj_all.append(jj)
    ii = torch.cat(ii_all)
    jj = torch.cat(jj_all)
    if ii.numel() == 0:
        return ii, jj
    a, b = boxes[ii], boxes[jj]
    inter = _chunked_pair_intersection(a, b)
    if use_3d:
        inter = inter * _z_overlap(a, b)
        union = _volume(a) + _volume(b) - inter
    else:
        union = a[:, 3] * a[:, 4] + b[:, 3] * b[:, 4] - inter
    over = inter > iou_threshold * union  # same as iou > threshold, without a division
    return ii[over], jj[over]


def _greedy(n: int, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
    """Greedy pass over boxes ranked ``0..n-1`` given suppression edges ``ii[k] -> jj[k]`` (``ii < jj``)."""
    removed = np.zeros(n, dtype=bool)
    if ii.size == 0:
        return np.arange(n)
    # Group the edges by source so each kept box clears its neighbours with one fancy-index assignment.
    order = np.argsort(ii, kind="stable")
    ii, jj = ii[order], jj[order]
    starts = np.searchsorted(ii, np.arange(n + 1))
    for i in np.unique(ii):
        if not removed[i]:
            removed[jj[starts[i] : starts[i + 1]]] = True
    return np.nonzero(~removed)[0]


def nms_rotated(
    boxes: Tensor,
    scores: Tensor,
    iou_threshold: float,
    *,
    pre_max: int | None = None,
    post_max: int | None = None,
    use_3d: bool = False,
) -> Tensor:
    """Greedy rotated NMS.

    A box is dropped when its IoU with an already kept, higher-scored box is strictly greater than ``iou_threshold``.

    Args:
        boxes: ``(M, 7)`` boxes ``(x, y, z, dx, dy, dz, heading)``.
        scores: ``(M,)`` scores; ties keep the original order (stable sort).
        iou_threshold: suppression threshold on the IoU.
        pre_max: keep only the top ``pre_max`` boxes by score before NMS (``None``: all).
        post_max: return at most ``post_max`` indices (``None``: all).
        use_3d: use the 3-D IoU instead of the BEV IoU.

    Returns:
        ``(L,)`` int64 indices into ``boxes`` of the kept boxes, sorted by descending score, on ``boxes.device``.
    """
    _check_boxes(boxes, "boxes")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape ({boxes.shape[0]},), got {tuple(scores.shape)}")
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    if pre_max is not None:
        order = order[:pre_max]
    ranked = boxes[order]
    ii, jj = _overlap_pairs(ranked, float(iou_threshold), use_3d)
    keep = _greedy(ranked.shape[0], ii.cpu().numpy(), jj.cpu().numpy())
    if post_max is not None:
        keep = keep[:post_max]
    return order[torch.as_tensor(keep, dtype=torch.int64, device=boxes.device)]


def multiclass_nms(
    boxes: Tensor,
    scores: Tensor,
    labels: Tensor,
    iou_threshold: float,
    *,
    pre_max: int | None = None,
    post_max: int | None = None,
    use_3d: bool = False,
) -> Tensor:
    """Per-class rotated NMS: boxes of different labels never suppress each other.

    Args:
        boxes: ``(M, 7)`` boxes.
        scores: ``(M,)`` scores.
        labels: ``(M,)`` integer class labels.
        iou_threshold: suppression threshold on the IoU.
        pre_max: per class, keep only the top ``pre_max`` boxes before NMS.
        post_max: per class, keep at most ``post_max`` boxes after NMS.
        use_3d: use the 3-D IoU instead of the BEV IoU.

    Returns:
        ``(L,)`` int64 indices into ``boxes`` of the kept boxes of all classes, sorted by descending score.
    """
    _check_boxes(boxes, "boxes")
    if labels.dim() != 1 or labels.shape[0] != boxes.shape[0]:
        raise ValueError(f"labels must have shape ({boxes.shape[0]},), got {tuple(labels.shape)}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape ({boxes.shape[0]},), got {tuple(scores.shape)}")
    kept = [torch.zeros(0, dtype=torch.int64, device=boxes.device)]
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c, as_tuple=True)[0]
        k = nms_rotated(boxes[idx], scores[idx], iou_threshold, pre_max=pre_max, post_max=post_max, use_3d=use_3d)
        kept.append(idx[k])
    kept_t = torch.cat(kept)
    return kept_t[torch.sort(scores[kept_t], descending=True, stable=True).indices]
