"""Greedy non-maximum suppression for rotated 3-D boxes, in pure PyTorch (CPU and GPU).

OpenPCDet's rotated NMS is a CUDA kernel; this version builds the overlap relation with :mod:`pointcloud.iou`
(vectorized over all pairs, only for pairs whose BEV circumcircles meet) and then runs the cheap greedy pass over
a boolean "suppresses" matrix on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from pointcloud.boxes import validate_boxes
from pointcloud.iou import (
    _chunked_pair_intersection,
    _may_overlap,
    _volume,
    _z_overlap,
)
from seqcore.ops.validation import check_bool, check_int, check_same_device

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


def _check_scores(boxes: Tensor, scores: Tensor) -> None:
    """``scores`` must be a real ``(M,)`` tensor on the boxes' device without NaN (greedy NMS ranks by score; a
    NaN sorts first and would suppress every box it overlaps). ``inf`` and ``-inf`` rank first and last."""
    if not isinstance(scores, Tensor) or scores.dtype == torch.bool or scores.is_complex():
        kind = scores.dtype if isinstance(scores, Tensor) else type(scores).__name__
        raise TypeError(f"scores must be a real-valued tensor, got {kind}")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must have shape ({boxes.shape[0]},), got {tuple(scores.shape)}")
    check_same_device(boxes=boxes, scores=scores)
    if scores.is_floating_point():
        nan = torch.nonzero(torch.isnan(scores))
        if nan.numel():
            raise ValueError(f"scores[{int(nan[0, 0])}] is NaN; a NaN score has no rank, so NMS cannot order it")


def _check_count(name: str, value: int | None) -> int | None:
    return None if value is None else check_int(name, value, 0)


def _check_threshold(iou_threshold: float) -> float:
    threshold = float(iou_threshold)
    if not 0.0 <= threshold <= 1.0:  # NaN fails too: it would compare False and suppress nothing
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    return threshold


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
        boxes: ``(M, 7)`` boxes ``(x, y, z, dx, dy, dz, heading)``: finite, sizes > 0.
        scores: ``(M,)`` real scores on the boxes' device, no NaN (``inf`` ranks first); ties keep the original
            order (stable sort).
        iou_threshold: suppression threshold on the IoU, in ``[0, 1]``.
        pre_max: keep only the top ``pre_max`` boxes by score before NMS (``None``: all; 0 keeps none).
        post_max: return at most ``post_max`` indices (``None``: all).
        use_3d: use the 3-D IoU instead of the BEV IoU.

    Returns:
        ``(L,)`` int64 indices into ``boxes`` of the kept boxes, sorted by descending score, on ``boxes.device``
        (empty for ``M = 0``).

    Raises:
        ValueError: bad shapes, NaN / inf or non-positive sizes in ``boxes``, a NaN score, boxes and scores on
            different devices, a threshold outside ``[0, 1]``, a negative ``pre_max`` / ``post_max``.
        TypeError: ``boxes`` not a floating-point tensor, boolean or complex scores, non-int ``pre_max`` /
            ``post_max``, non-bool ``use_3d``.
    """
    validate_boxes(boxes)
    _check_scores(boxes, scores)
    threshold = _check_threshold(iou_threshold)
    pre_max, post_max = _check_count("pre_max", pre_max), _check_count("post_max", post_max)
    use_3d = check_bool("use_3d", use_3d)
    return _nms(boxes, scores, threshold, pre_max, post_max, use_3d)


def _nms(boxes: Tensor, scores: Tensor, threshold: float, pre_max: int | None, post_max: int | None,
         use_3d: bool) -> Tensor:
    """:func:`nms_rotated` on checked inputs."""
    order = torch.sort(scores, descending=True, stable=True).indices
    if pre_max is not None:
        order = order[:pre_max]
    if order.numel() == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    ranked = boxes[order]
    ii, jj = _overlap_pairs(ranked, threshold, use_3d)
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

    Raises:
        The errors of :func:`nms_rotated`; TypeError for non-integer ``labels``, ValueError for their shape.
    """
    validate_boxes(boxes)
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.is_complex() \
            or labels.dtype == torch.bool:
        kind = labels.dtype if isinstance(labels, Tensor) else type(labels).__name__
        raise TypeError(f"labels must be an integer tensor, got {kind}")
    if labels.dim() != 1 or labels.shape[0] != boxes.shape[0]:
        raise ValueError(f"labels must have shape ({boxes.shape[0]},), got {tuple(labels.shape)}")
    check_same_device(boxes=boxes, labels=labels)
    _check_scores(boxes, scores)
    threshold = _check_threshold(iou_threshold)
    pre_max, post_max = _check_count("pre_max", pre_max), _check_count("post_max", post_max)
    use_3d = check_bool("use_3d", use_3d)
    kept = [torch.zeros(0, dtype=torch.int64, device=boxes.device)]
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c, as_tuple=True)[0]
        kept.append(idx[_nms(boxes[idx], scores[idx], threshold, pre_max, post_max, use_3d)])
    kept_t = torch.cat(kept)
    return kept_t[torch.sort(scores[kept_t], descending=True, stable=True).indices]
