"""Rotated-box overlap for 3-D detection, in pure PyTorch (CPU and GPU).

Boxes follow the OpenPCDet convention: ``(M, 7)`` rows ``(x, y, z, dx, dy, dz, heading)`` in the LiDAR frame,
``z`` at the box centre, ``heading`` the counter-clockwise rotation about +z measured from +x.

The bird's-eye-view (BEV) intersection of two rotated rectangles is computed by Sutherland-Hodgman clipping:
box ``a``'s rectangle is expressed in box ``b``'s local frame, where ``b`` is the axis-aligned rectangle
``[-dx/2, dx/2] x [-dy/2, dy/2]``, and is clipped against its four half-planes.  Every clip of a convex polygon by a
half-plane adds at most one vertex, so the polygon buffers grow 4 -> 5 -> 6 -> 7 -> 8 and everything is a fixed-size
tensor with a per-pair vertex count; the area comes from the shoelace formula.  All pairs are processed at once
(in chunks, to bound memory), with no Python loop over boxes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pointcloud.boxes import check_box_layout, validate_boxes

__all__ = [
    "bev_corners",
    "rotated_bev_intersection",
    "rotated_bev_intersection_aligned",
    "bev_iou",
    "bev_iou_aligned",
    "iou_3d",
    "iou_3d_aligned",
]

# Pairs processed per chunk: the clipping keeps ~a few dozen (P, <=16) temporaries alive, so 32k pairs stay in the
# tens of MiB whatever the matrix size.
_CHUNK_PAIRS = 32768


def _check_pair(a: Tensor, b: Tensor) -> None:
    check_box_layout(a, "a")
    check_box_layout(b, "b")
    # Before the values: reading values of a tensor on another device would fail with an unrelated error.
    if a.dtype != b.dtype or a.device != b.device:
        raise ValueError(f"a and b must share dtype and device, got {a.dtype}/{a.device} and {b.dtype}/{b.device}")
    validate_boxes(a, name="a")
    validate_boxes(b, name="b")


def bev_corners(boxes: Tensor) -> Tensor:
    """BEV corners of rotated boxes.

    Args:
        boxes: ``(M, 7)`` boxes ``(x, y, z, dx, dy, dz, heading)``.

    Returns:
        ``(M, 4, 2)`` corner ``(x, y)`` coordinates in counter-clockwise order, starting at the local ``(+dx/2, +dy/2)``
        corner.
    """
    validate_boxes(boxes)
    # CCW order in the local frame; a rotation keeps the orientation, so the shoelace area stays positive.
    sx = boxes.new_tensor([1.0, -1.0, -1.0, 1.0])
    sy = boxes.new_tensor([1.0, 1.0, -1.0, -1.0])
    lx = 0.5 * boxes[:, 3:4] * sx
    ly = 0.5 * boxes[:, 4:5] * sy
    c, s = torch.cos(boxes[:, 6:7]), torch.sin(boxes[:, 6:7])
    x = boxes[:, 0:1] + c * lx - s * ly
    y = boxes[:, 1:2] + s * lx + c * ly
    return torch.stack([x, y], dim=-1)


def _clip(u: Tensor, w: Tensor, n: Tensor, sign: float, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Clip polygons by the half-plane ``sign * u <= h`` (one Sutherland-Hodgman step).

    ``u``/``w`` are ``(P, N)`` vertex coordinates (``u`` the clipped axis), ``n`` the ``(P,)`` valid-vertex counts
    (valid vertices sit in slots ``0..n-1``) and ``h`` the ``(P, 1)`` half-extent.  Returns ``(P, N + 1)`` buffers and
    the new counts: clipping a convex polygon by a half-plane adds at most one vertex.
    """
    P, N = u.shape
    idx = torch.arange(N, device=u.device)
    valid = idx < n[:, None]
    # The successor of the last valid vertex wraps to slot 0.
    nxt = torch.where(idx + 1 < n[:, None], idx + 1, torch.zeros_like(idx))
    u_n = torch.gather(u, 1, nxt)
    w_n = torch.gather(w, 1, nxt)
    s = h - sign * u  # signed distance inside the half-plane (>= 0 inside)
    s_n = h - sign * u_n
    keep = valid & (s >= 0)
    # Only strict sign changes create a new vertex, so a vertex lying on the clip line is emitted once, not twice.
    cross = valid & (((s > 0) & (s_n < 0)) | ((s < 0) & (s_n > 0)))
    denom = torch.where(cross, s - s_n, torch.ones_like(s))
    t = s / denom
    # On the clip line the clipped coordinate is exactly sign*h; setting it directly avoids rounding drift there.
    u_x = (sign * h).expand(P, N)
    w_x = w + t * (w_n - w)

    emit = torch.stack([keep, cross], dim=2).reshape(P, 2 * N)
    cu = torch.stack([u, u_x], dim=2).reshape(P, 2 * N)
    cw = torch.stack([w, w_x], dim=2).reshape(P, 2 * N)
    n_out = N + 1
    pos = torch.cumsum(emit.to(torch.int64), dim=1) - 1
    # Non-emitted candidates (and any overflow caused by rounding on near-degenerate input) go to a dump slot.
    tgt = torch.where(emit & (pos < n_out), pos, torch.full_like(pos, n_out))
    out_u = u.new_zeros(P, n_out + 1).scatter_(1, tgt, cu)[:, :n_out]
    out_w = w.new_zeros(P, n_out + 1).scatter_(1, tgt, cw)[:, :n_out]
    cnt = emit.sum(dim=1).clamp(max=n_out)
    return out_u, out_w, cnt


def _pair_intersection(a: Tensor, b: Tensor) -> Tensor:
    """BEV intersection areas of matched box pairs ``a[i]``, ``b[i]`` (both ``(P, 7)``), unchunked -> ``(P,)``."""
    P = a.shape[0]
    # Express a's corners in b's frame.  Using the centre offset and the heading difference (rather than absolute
    # world corners) keeps precision for boxes far from the origin, which matters most in float32.
    dxw = a[:, 0] - b[:, 0]
    dyw = a[:, 1] - b[:, 1]
    cb, sb = torch.cos(b[:, 6]), torch.sin(b[:, 6])
    cx = cb * dxw + sb * dyw
    cy = -sb * dxw + cb * dyw
    dth = a[:, 6] - b[:, 6]
    c, s = torch.cos(dth)[:, None], torch.sin(dth)[:, None]
    sx = a.new_tensor([1.0, -1.0, -1.0, 1.0])
    sy = a.new_tensor([1.0, 1.0, -1.0, -1.0])
    lx = 0.5 * a[:, 3:4] * sx
    ly = 0.5 * a[:, 4:5] * sy
    x = cx[:, None] + c * lx - s * ly
    y = cy[:, None] + s * lx + c * ly
    n = torch.full((P,), 4, dtype=torch.int64, device=a.device)
    hx = 0.5 * b[:, 3:4]
    hy = 0.5 * b[:, 4:5]
    x, y, n = _clip(x, y, n, 1.0, hx)
    x, y, n = _clip(x, y, n, -1.0, hx)
    y, x, n = _clip(y, x, n, 1.0, hy)
    y, x, n = _clip(y, x, n, -1.0, hy)
    # Shoelace over the valid vertices; with fewer than 3 vertices the terms cancel to 0.
    N = x.shape[1]
    idx = torch.arange(N, device=a.device)
    valid = idx < n[:, None]
    nxt = torch.where(idx + 1 < n[:, None], idx + 1, torch.zeros_like(idx))
    xn = torch.gather(x, 1, nxt)
    yn = torch.gather(y, 1, nxt)
    terms = torch.where(valid, x * yn - xn * y, torch.zeros_like(x))
    area = 0.5 * terms.sum(dim=1)
    # Rounding can leave a tiny negative area for touching boxes, or exceed the smaller box by an ulp.
    upper = torch.minimum(a[:, 3] * a[:, 4], b[:, 3] * b[:, 4])
    return torch.minimum(area.clamp(min=0), upper)


def _chunked_pair_intersection(a: Tensor, b: Tensor) -> Tensor:
    """Chunked :func:`_pair_intersection` so memory stays bounded for any number of pairs."""
    P = a.shape[0]
    if P <= _CHUNK_PAIRS:
        return _pair_intersection(a, b)
    step = _CHUNK_PAIRS
    return torch.cat([_pair_intersection(a[i : i + step], b[i : i + step]) for i in range(0, P, step)])


def _may_overlap(a: Tensor, b: Tensor) -> Tensor:
    """``(M, K)`` mask of pairs whose BEV circumcircles overlap; all other pairs have zero intersection."""
    ra = 0.5 * torch.hypot(a[:, 3], a[:, 4])
    rb = 0.5 * torch.hypot(b[:, 3], b[:, 4])
    d2 = (a[:, None, 0] - b[None, :, 0]) ** 2 + (a[:, None, 1] - b[None, :, 1]) ** 2
    r = ra[:, None] + rb[None, :]
    # The slack only admits extra candidates (they get an exact 0 from clipping); it never drops a real overlap.
    return d2 <= (r * (1 + 1e-6)) ** 2


def _z_overlap(a: Tensor, b: Tensor) -> Tensor:
    """Broadcast z-extent overlap of ``a`` and ``b`` (any matching broadcast shapes of box rows)."""
    top = torch.minimum(a[..., 2] + 0.5 * a[..., 5], b[..., 2] + 0.5 * b[..., 5])
    bot = torch.maximum(a[..., 2] - 0.5 * a[..., 5], b[..., 2] - 0.5 * b[..., 5])
    return (top - bot).clamp(min=0)


def _matrix_intersection(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    """BEV intersections for the pairs where ``mask`` ``(M, K)`` is true; 0 elsewhere."""
    out = a.new_zeros(a.shape[0], b.shape[0])
    ii, jj = torch.nonzero(mask, as_tuple=True)
    if ii.numel():
        out[ii, jj] = _chunked_pair_intersection(a[ii], b[jj])
    return out


def rotated_bev_intersection(a: Tensor, b: Tensor) -> Tensor:
    """BEV intersection areas of every box in ``a`` with every box in ``b``.

    Args:
        a: ``(M, 7)`` boxes.
        b: ``(K, 7)`` boxes (same dtype and device as ``a``).

    Returns:
        ``(M, K)`` areas of the rotated-rectangle intersections.

    Raises:
        TypeError: boxes that are not floating-point tensors (:func:`pointcloud.boxes.validate_boxes`).
        ValueError: bad shapes, NaN/inf, non-positive sizes, ``a`` and ``b`` of different dtypes or devices.
    """
    _check_pair(a, b)
    return _matrix_intersection(a, b, _may_overlap(a, b))


def rotated_bev_intersection_aligned(a: Tensor, b: Tensor) -> Tensor:
    """BEV intersection areas of matched pairs ``a[i]``, ``b[i]``: ``(M, 7)``, ``(M, 7)`` -> ``(M,)``."""
    _check_pair(a, b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"aligned variants need equal lengths, got {a.shape[0]} and {b.shape[0]}")
    if a.shape[0] == 0:
        return a.new_zeros(0)
    return _chunked_pair_intersection(a, b)


def _area(boxes: Tensor) -> Tensor:
    return boxes[..., 3] * boxes[..., 4]


def _volume(boxes: Tensor) -> Tensor:
    return boxes[..., 3] * boxes[..., 4] * boxes[..., 5]


def bev_iou(a: Tensor, b: Tensor) -> Tensor:
    """BEV IoU matrix.

    Args:
        a: ``(M, 7)`` boxes.
        b: ``(K, 7)`` boxes.

    Returns:
        ``(M, K)`` intersection over union of the rotated BEV rectangles, in ``[0, 1]``.
    """
    inter = rotated_bev_intersection(a, b)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return (inter / union).clamp(0, 1)


def bev_iou_aligned(a: Tensor, b: Tensor) -> Tensor:
    """BEV IoU of matched pairs ``a[i]``, ``b[i]``: ``(M, 7)``, ``(M, 7)`` -> ``(M,)``."""
    inter = rotated_bev_intersection_aligned(a, b)
    union = _area(a) + _area(b) - inter
    return (inter / union).clamp(0, 1)


def iou_3d(a: Tensor, b: Tensor) -> Tensor:
    """3-D IoU matrix of heading-rotated boxes (rotation about z only).

    The intersection volume is the BEV intersection area times the overlap of the z extents.

    Args:
        a: ``(M, 7)`` boxes.
        b: ``(K, 7)`` boxes.

    Returns:
        ``(M, K)`` intersection volume over union volume, in ``[0, 1]``.
    """
    _check_pair(a, b)
    zo = _z_overlap(a[:, None, :], b[None, :, :])
    # Pairs without z overlap have zero volume whatever their BEV overlap, so skip their clipping.
    inter = _matrix_intersection(a, b, _may_overlap(a, b) & (zo > 0)) * zo
    union = _volume(a)[:, None] + _volume(b)[None, :] - inter
    return (inter / union).clamp(0, 1)


def iou_3d_aligned(a: Tensor, b: Tensor) -> Tensor:
    """3-D IoU of matched pairs ``a[i]``, ``b[i]``: ``(M, 7)``, ``(M, 7)`` -> ``(M,)``."""
    inter = rotated_bev_intersection_aligned(a, b) * _z_overlap(a, b)
    union = _volume(a) + _volume(b) - inter
    return (inter / union).clamp(0, 1)
