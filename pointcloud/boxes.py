"""3-D box utilities in OpenPCDet conventions (torch, any floating dtype, any device).

LiDAR boxes: ``(M, 7) = (x, y, z, dx, dy, dz, heading)``; (x, y, z) is the box centre, dx the length
along the heading, dy the width, dz the height, heading the yaw about +z (counter-clockwise from +x).

KITTI camera boxes: ``(M, 7) = (x, y, z, l, h, w, ry)`` in the rectified camera frame; (x, y, z) is the
*bottom* centre (camera y points down) and ry is the yaw about the camera y axis. The two yaw
conventions are related by ``heading = -(pi/2 + ry)``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from pointcloud.calibration import Calibration
from seqcore.ops.validation import check_same_device

__all__ = [
    "check_box_layout",
    "validate_boxes",
    "limit_period",
    "boxes_lidar_to_camera",
    "boxes_camera_to_lidar",
    "box_corners",
    "points_in_boxes",
]


def check_box_layout(boxes: torch.Tensor, name: str = "boxes") -> None:
    """Check that ``boxes`` is a floating-point ``(M, 7)`` torch tensor, without reading its values (which a
    caller may first want to know are on the right device).

    Raises:
        TypeError: not a torch tensor, or not floating point.
        ValueError: not of shape ``(M, 7)``.
    """
    if not isinstance(boxes, torch.Tensor) or not boxes.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor (M, 7), got {type(boxes).__name__}"
                        + (f" of dtype {boxes.dtype}" if isinstance(boxes, torch.Tensor) else ""))
    if boxes.ndim != 2 or boxes.shape[1] != 7:
        raise ValueError(f"{name} must have shape (M, 7), got {tuple(boxes.shape)}")


def validate_boxes(boxes: torch.Tensor, size_cols: slice = slice(3, 6), name: str = "boxes") -> None:
    """Check a ``(M, 7)`` floating box tensor (:func:`check_box_layout`): finite values and strictly positive sizes.

    The one box check of the package: the conversions, :mod:`pointcloud.iou`, NMS, augmentation and evaluation
    all raise these errors.

    Raises:
        TypeError: not a floating torch tensor.
        ValueError: wrong shape, a NaN/inf value, or a non-positive size (names the first bad box).
    """
    check_box_layout(boxes, name)
    finite = torch.isfinite(boxes).all(dim=1)
    if not bool(finite.all()):
        idx = int(torch.nonzero(~finite)[0, 0])
        raise ValueError(f"{name}[{idx}] contains NaN or inf: {boxes[idx].tolist()}")
    positive = (boxes[:, size_cols] > 0).all(dim=1)
    if not bool(positive.all()):
        idx = int(torch.nonzero(~positive)[0, 0])
        raise ValueError(f"{name}[{idx}] has a non-positive size {boxes[idx, size_cols].tolist()}; "
                         "box sizes must be > 0")


def limit_period(angle, offset: float = 0.5, period: float = 2 * math.pi):
    """Wrap ``angle`` (tensor, array or float, any shape) into ``[-offset * period, (1 - offset) * period)``.

    ``offset=0.5`` gives ``[-pi, pi)`` for the default period.
    """
    if isinstance(angle, torch.Tensor):
        return angle - torch.floor(angle / period + offset) * period
    return angle - np.floor(np.asarray(angle) / period + offset) * period


def _check_calib(calib: Calibration) -> None:
    if not isinstance(calib, Calibration):
        raise TypeError(f"calib must be a Calibration, got {type(calib).__name__}")


def _transform(xyz: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    """Apply a (4, 4) homogeneous float64 matrix to (M, 3) points in the points' dtype/device."""
    m = torch.as_tensor(matrix, dtype=xyz.dtype, device=xyz.device)
    return xyz @ m[:3, :3].T + m[:3, 3]


def boxes_lidar_to_camera(boxes: torch.Tensor, calib: Calibration) -> torch.Tensor:
    """LiDAR boxes (M, 7) ``(x, y, z, dx, dy, dz, heading)`` -> KITTI camera boxes (M, 7) ``(x, y, z, l, h, w, ry)``.

    The camera location is the bottom centre in the rectified frame; ``ry = -heading - pi/2``
    (not wrapped, so the conversion is an exact inverse of :func:`boxes_camera_to_lidar`).
    """
    validate_boxes(boxes)
    _check_calib(calib)
    dx, dy, dz, heading = boxes[:, 3], boxes[:, 4], boxes[:, 5], boxes[:, 6]
    # KITTI locations are bottom centres: drop from the centre by half the height along LiDAR z.
    bottom = torch.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - dz / 2], dim=1)
    loc = _transform(bottom, calib.lidar_to_rect_matrix)
    ry = -heading - math.pi / 2
    return torch.cat([loc, torch.stack([dx, dz, dy, ry], dim=1)], dim=1)


def boxes_camera_to_lidar(boxes: torch.Tensor, calib: Calibration) -> torch.Tensor:
    """KITTI camera boxes (M, 7) ``(x, y, z, l, h, w, ry)`` -> LiDAR boxes (M, 7) ``(x, y, z, dx, dy, dz, heading)``.

    Exact inverse of :func:`boxes_lidar_to_camera`: ``heading = -(pi/2 + ry)`` (not wrapped) and the
    LiDAR z is raised from the bottom centre to the box centre by ``h / 2``.
    """
    validate_boxes(boxes)
    _check_calib(calib)
    l, h, w, ry = boxes[:, 3], boxes[:, 4], boxes[:, 5], boxes[:, 6]
    bottom = _transform(boxes[:, :3], calib.rect_to_lidar_matrix)
    centre = torch.stack([bottom[:, 0], bottom[:, 1], bottom[:, 2] + h / 2], dim=1)
    heading = -(math.pi / 2 + ry)
    return torch.cat([centre, torch.stack([l, w, h, heading], dim=1)], dim=1)


# Unit-cube corner template (OpenPCDet ordering): corners 0-3 are the bottom face, 4-7 the top face,
# each face counter-clockwise seen from above starting at (+x, +y).
_CORNER_TEMPLATE = (
    (1, 1, -1), (1, -1, -1), (-1, -1, -1), (-1, 1, -1),
    (1, 1, 1), (1, -1, 1), (-1, -1, 1), (-1, 1, 1),
)


def box_corners(boxes: torch.Tensor) -> torch.Tensor:
    """Corners of LiDAR boxes (M, 7) -> (M, 8, 3) in the boxes' dtype/device.

    Corners 0-3 are the bottom face (z - dz/2), 4-7 the top face, in the same order.
    """
    validate_boxes(boxes)
    template = torch.tensor(_CORNER_TEMPLATE, dtype=boxes.dtype, device=boxes.device) / 2
    local = template[None] * boxes[:, None, 3:6]  # (M, 8, 3)
    cos, sin = torch.cos(boxes[:, 6])[:, None], torch.sin(boxes[:, 6])[:, None]
    x = local[..., 0] * cos - local[..., 1] * sin
    y = local[..., 0] * sin + local[..., 1] * cos
    return torch.stack([x, y, local[..., 2]], dim=-1) + boxes[:, None, :3]


def points_in_boxes(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Which points lie inside which LiDAR boxes.

    Args:
        points: (N, 3+) LiDAR points; only the first three columns are used. N may be 0.
        boxes: (M, 7) LiDAR boxes.

    Returns:
        (M, N) bool mask. A point is inside when its offset rotated into the box frame satisfies
        ``|local_x| < dx/2``, ``|local_y| < dy/2`` (strict, as OpenPCDet's roiaware op) and
        ``|z - cz| <= dz/2`` (inclusive).

    Computed in the promoted dtype of points and boxes, so float32 points with float64 boxes are
    tested in float64. A point with a NaN coordinate lies in no box.

    Raises:
        ValueError: bad boxes (see :func:`validate_boxes`), points not ``(N, 3+)``, points and boxes on
            different devices.
    """
    validate_boxes(boxes)
    if not isinstance(points, torch.Tensor) or points.ndim != 2 or points.shape[1] < 3:
        shape = tuple(points.shape) if hasattr(points, "shape") else type(points).__name__
        raise ValueError(f"points must be a tensor of shape (N, 3+), got {shape}")
    check_same_device(points=points, boxes=boxes)
    dtype = torch.promote_types(points.dtype, boxes.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    pts = points[:, :3].to(dtype=dtype)
    b = boxes.to(dtype)
    d = pts[None, :, :] - b[:, None, :3]  # (M, N, 3)
    cos, sin = torch.cos(b[:, 6])[:, None], torch.sin(b[:, 6])[:, None]
    # Rotate the offset by -heading to express it in the box frame.
    local_x = d[..., 0] * cos + d[..., 1] * sin
    local_y = -d[..., 0] * sin + d[..., 1] * cos
    half = b[:, None, 3:6] / 2
    return (
        (local_x.abs() < half[..., 0])
        & (local_y.abs() < half[..., 1])
        & (d[..., 2].abs() <= half[..., 2])
    )
