"""Seeded synthetic KITTI-like LiDAR scenes, produced by ray casting a spinning 64-beam sensor.

Conventions follow OpenPCDet:
  * points ``(N, 4)`` float32 ``(x, y, z, intensity)`` in the LiDAR frame (x forward, y left, z up),
    sensor at the origin, ground near ``z = -1.73`` (the sensor is ~1.73 m above the road);
  * boxes ``(M, 7)`` float32 ``(x, y, z, dx, dy, dz, heading)``, z at the box centre, heading the
    counter-clockwise rotation about +z measured from +x.

Why ray casting rather than sampling points on boxes: occlusion, self-occlusion (only faces that
look at the sensor get points) and the fall of density with range then come out of the geometry,
the way they do in real scans, so detectors trained on these scenes face the same structure.

Rendering model (``render_scene``):
  * rays: ``beams`` elevations evenly spaced in ``elevation_range`` (HDL-64-like -24.9..+2 deg)
    times azimuths every ``azimuth_step`` degrees within ``|azimuth| <= azimuth_fov`` (KITTI's
    front-camera crop; ``None`` for a full 360 deg sweep);
  * surfaces: a (nearly flat) ground plane ``z = g0 + a x + b y``, the labelled objects (oriented
    boxes, slab method in each box frame, vectorised over rays x boxes) and unlabelled clutter
    (walls, poles, porous vegetation). The nearest hit wins; rays with no hit within
    ``max_range`` are dropped;
  * range noise: Gaussian along the ray, sigma ``range_noise`` (2 cm; 8 cm on vegetation), clipped
    at 2.5 sigma;
  * objects are rendered as their label box inset by ``surface_inset`` (6 cm > 2.5 sigma) on every
    side, so range noise can never push an object's point outside its own label box: labels are
    exact (every object point lies in its box) and slightly loose, as KITTI's hand labels are;
  * intensity in [0, 1]: material reflectivity x (0.25 + 0.75 cos(incidence)) x a mild range
    fall-off, plus a little noise.

Labels: ``num_points_in_gt`` is a direct points-in-box count on the returned (range-cropped)
points. Objects that received no point (fully occluded, or outside the field of view / range)
are KEPT in ``gt_boxes``; they are flagged by ``num_points_in_gt == 0`` (and, in ``Scene``, by
``occlusion == 2`` with ``visible_fraction == 0``). Filter them with
``d["num_points_in_gt"] > 0`` if a consumer wants only observable objects.

Range: by default (``crop_to_range=True``) points are cropped to ``point_cloud_range``
(``x_min <= x < x_max`` etc., OpenPCDet's ``mask_points_by_range`` convention), so every returned
point is inside the range. With ``crop_to_range=False`` the points reach ``max_range`` (80 m).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch

from pointcloud.boxes import box_corners, boxes_lidar_to_camera, limit_period, points_in_boxes
from pointcloud.calibration import Calibration
from pointcloud.kitti_io import KittiObject, write_labels, write_points
from seqcore.atomic import atomic_write_text

__all__ = [
    "CLASS_MEAN_SIZES",
    "Clutter",
    "Rendered",
    "Scene",
    "SyntheticScenes",
    "boxes_bev_overlap",
    "kitti_calibration",
    "lidar_boxes_to_kitti_labels",
    "render_scene",
]

# Mean (dx, dy, dz) = (length, width, height) of KITTI's classes, in metres.
CLASS_MEAN_SIZES: dict[str, tuple[float, float, float]] = {
    "Car": (3.9, 1.6, 1.56),
    "Pedestrian": (0.8, 0.6, 1.73),
    "Cyclist": (1.76, 0.6, 1.73),
}
# Relative frequency used when drawing classes (KITTI is car-dominated).
_CLASS_WEIGHTS = {"Car": 0.6, "Pedestrian": 0.25, "Cyclist": 0.15}
# Reflectivity ranges (drawn once per surface) by material; LiDAR intensity scales with them.
_REFLECTIVITY = {
    "Car": (0.35, 0.7),
    "Pedestrian": (0.15, 0.4),
    "Cyclist": (0.25, 0.55),
    "ground": (0.08, 0.2),
    "wall": (0.25, 0.5),
    "pole": (0.5, 0.85),
    "vegetation": (0.1, 0.3),
}
_CLUTTER_KINDS = ("wall", "pole", "vegetation")
_GROUND_Z = -1.73

# KITTI image size (width x height) used to clip 2-D boxes.
IMAGE_SIZE = (1242, 375)


class Clutter(NamedTuple):
    """Unlabelled scene geometry.

    Attributes:
        boxes: (K, 7) float boxes in the LiDAR frame, same layout as ``gt_boxes``.
        kinds: (K,) str array, each one of ``"wall"``, ``"pole"``, ``"vegetation"``
            (vegetation is porous and noisier).
    """

    boxes: np.ndarray
    kinds: np.ndarray


@dataclass
class Rendered:
    """Output of ``render_scene``.

    Attributes:
        points: (N, 4) float32 ``(x, y, z, intensity)``.
        hit_index: (N,) int64, what each point hit: -1 ground, ``0..M-1`` object, ``M + k`` clutter k.
        visible_fraction: (M,) float64, rays hitting object m in the scene / rays that would hit it
            if it were alone (1 = unoccluded, 0 = fully hidden or out of view).
    """

    points: np.ndarray
    hit_index: np.ndarray
    visible_fraction: np.ndarray


@dataclass
class Scene:
    """One generated scene with everything used to make it.

    Attributes:
        points: (N, 4) float32 LiDAR points.
        gt_boxes: (M, 7) float32 object boxes.
        gt_names: (M,) str class names.
        num_points_in_gt: (M,) int64 points inside each box (0 flags an unobserved object).
        frame_id: ``"%06d"`` of the index.
        visible_fraction: (M,) float64, see ``Rendered``.
        occlusion: (M,) int64 KITTI occlusion level from ``visible_fraction``:
            0 (>= 0.8 visible), 1 (>= 0.4), 2 (less, including unobserved).
        clutter: the unlabelled geometry.
        ground: ``(g0, a, b)`` of the ground plane ``z = g0 + a x + b y``.
    """

    points: np.ndarray
    gt_boxes: np.ndarray
    gt_names: np.ndarray
    num_points_in_gt: np.ndarray
    frame_id: str
    visible_fraction: np.ndarray
    occlusion: np.ndarray
    clutter: Clutter
    ground: tuple[float, float, float] = field(default=(_GROUND_Z, 0.0, 0.0))

    def to_dict(self) -> dict:
        """The OpenPCDet-style sample dict (points, gt_boxes, gt_names, num_points_in_gt, frame_id)."""
        return {
            "points": self.points,
            "gt_boxes": self.gt_boxes,
            "gt_names": self.gt_names,
            "num_points_in_gt": self.num_points_in_gt,
            "frame_id": self.frame_id,
        }


# ----------------------------------------------------------------------------------------------
# Geometry helpers
# ----------------------------------------------------------------------------------------------


def boxes_bev_overlap(box_a: np.ndarray, box_b: np.ndarray, margin: float = 0.0) -> bool:
    """Whether two boxes overlap in bird's-eye view, each grown by ``margin`` on every side.

    Exact separating-axis test on the two rotated rectangles (z is ignored).

    Args:
        box_a, box_b: (7,) boxes.
        margin: metres added to each half-extent.
    """
    rects = []
    axes = []
    for b in (np.asarray(box_a, np.float64), np.asarray(box_b, np.float64)):
        c, s = math.cos(b[6]), math.sin(b[6])
        ux, uy = np.array([c, s]), np.array([-s, c])
        hx, hy = b[3] / 2 + margin, b[4] / 2 + margin
        ctr = b[:2]
        rects.append(np.array([ctr + sx * hx * ux + sy * hy * uy for sx in (-1, 1) for sy in (-1, 1)]))
        axes += [ux, uy]
    for ax in axes:
        pa, pb = rects[0] @ ax, rects[1] @ ax
        if pa.max() < pb.min() or pb.max() < pa.min():
            return False
    return True


def _ray_directions(
    beams: int, elevation_range: tuple[float, float], azimuth_step: float, azimuth_fov: Optional[float]
) -> np.ndarray:
    """(R, 3) unit ray directions of one sweep, beam-major."""
    elev = np.deg2rad(np.linspace(elevation_range[0], elevation_range[1], beams))
    if azimuth_fov is None:
        az = np.deg2rad(np.arange(-180.0, 180.0, azimuth_step))
    else:
        n = int(math.floor(azimuth_fov / azimuth_step))
        az = np.deg2rad(np.arange(-n, n + 1) * azimuth_step)
    e, a = np.meshgrid(elev, az, indexing="ij")
    d = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1)
    return d.reshape(-1, 3)


def _ray_box_intersect(dirs: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First hit of rays from the origin with oriented boxes (slab method in each box frame).

    Args:
        dirs: (R, 3) unit directions.
        boxes: (K, 7) boxes (the origin must lie outside every box).

    Returns:
        t: (R, K) hit distance, ``inf`` for a miss.
        cos_inc: (R, K) |cos| of the angle between the ray and the normal of the face hit.
    """
    R, K = dirs.shape[0], boxes.shape[0]
    if K == 0:
        return np.full((R, 0), np.inf), np.zeros((R, 0))
    c, s = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    ctr = boxes[:, :3]
    # Ray origin (sensor at 0) expressed in each box frame: -R^T centre.
    o = np.stack([-(c * ctr[:, 0] + s * ctr[:, 1]), -(-s * ctr[:, 0] + c * ctr[:, 1]), -ctr[:, 2]], axis=-1)
    dx = dirs[:, 0:1] * c + dirs[:, 1:2] * s
    dy = -dirs[:, 0:1] * s + dirs[:, 1:2] * c
    dz = np.broadcast_to(dirs[:, 2:3], (R, K))
    half = boxes[:, 3:6] / 2.0
    near = []
    far = None
    for k, d in enumerate((dx, dy, dz)):
        # Avoid 0-division: a direction component of exactly 0 becomes tiny, giving +-huge slab
        # bounds, which is the right limit (the ray never leaves/enters that slab).
        d = np.where(np.abs(d) < 1e-12, 1e-12, d)
        inv = 1.0 / d
        t1 = (-half[:, k] - o[:, k]) * inv
        t2 = (half[:, k] - o[:, k]) * inv
        near.append(np.minimum(t1, t2))
        f = np.maximum(t1, t2)
        far = f if far is None else np.minimum(far, f)
    near_all = np.stack(near, axis=0)  # (3, R, K)
    axis = np.argmax(near_all, axis=0)
    tnear = np.take_along_axis(near_all, axis[None], axis=0)[0]
    hit = (far >= tnear) & (tnear > 0)
    t = np.where(hit, tnear, np.inf)
    comps = np.stack([dx, dy, dz], axis=0)
    cos_inc = np.abs(np.take_along_axis(comps, axis[None], axis=0)[0])
    return t, cos_inc


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def render_scene(
    boxes: np.ndarray,
    names: Sequence[str],
    clutter: Optional[Clutter] = None,
    rng: Optional[np.random.Generator] = None,
    *,
    ground: tuple[float, float, float] = (_GROUND_Z, 0.0, 0.0),
    beams: int = 64,
    elevation_range: tuple[float, float] = (-24.9, 2.0),
    azimuth_step: float = 0.2,
    azimuth_fov: Optional[float] = 45.0,
    max_range: float = 80.0,
    range_noise: float = 0.02,
    surface_inset: float = 0.06,
) -> Rendered:
    """Ray-cast one LiDAR sweep of explicit geometry (the lower-level entry point of this module).

    Args:
        boxes: (M, 7) labelled object boxes (LiDAR frame). They should not contain the origin.
        names: (M,) class names, used for the material reflectivity (unknown names use Car's).
        clutter: unlabelled geometry, or ``None``.
        rng: random generator for noise and materials (default ``np.random.default_rng(0)``).
        ground: ``(g0, a, b)`` of the ground plane ``z = g0 + a x + b y``.
        beams, elevation_range: number of beams and their elevation span in degrees.
        azimuth_step, azimuth_fov: azimuth resolution and half field of view in degrees
            (``azimuth_fov=None``: full 360 deg).
        max_range: rays with no hit closer than this (metres) return nothing.
        range_noise: sigma (m) of the along-ray noise (clipped at 2.5 sigma; 4x on vegetation).
        surface_inset: objects are rendered inset by this much inside their label boxes, so that
            noise never moves an object point out of its box (must exceed 2.5 * range_noise).

    Returns:
        ``Rendered`` with (N, 4) points, (N,) hit indices and (M,) visible fractions.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    M = boxes.shape[0]
    if len(names) != M:
        raise ValueError(f"names has {len(names)} entries for {M} boxes")
    if surface_inset < 2.5 * range_noise:
        raise ValueError("surface_inset must be >= 2.5 * range_noise to keep object points inside their boxes")
    if clutter is None:
        clutter = Clutter(np.zeros((0, 7)), np.zeros((0,), dtype="<U10"))
    cboxes = np.asarray(clutter.boxes, dtype=np.float64).reshape(-1, 7)
    kinds = np.asarray(clutter.kinds)

    dirs = _ray_directions(beams, elevation_range, azimuth_step, azimuth_fov)
    R = dirs.shape[0]

    # Objects are rendered inset (see module doc); clamp so tiny boxes keep a positive size.
    render_obj = boxes.copy()
    render_obj[:, 3:6] = np.maximum(render_obj[:, 3:6] - 2 * surface_inset, 0.02)
    all_boxes = np.concatenate([render_obj, cboxes], axis=0)
    t_box, cos_box = _ray_box_intersect(dirs, all_boxes)

    # Vegetation is porous: each (ray, bush) pair passes through with probability 0.35.
    veg = np.nonzero(kinds == "vegetation")[0]
    if veg.size:
        through = rng.random((R, veg.size)) < 0.35
        cols = M + veg
        t_box[:, cols] = np.where(through, np.inf, t_box[:, cols])

    # Ground plane z = g0 + a x + b y: t (dz - a dx - b dy) = g0, hit only when t > 0.
    g0, ga, gb = ground
    denom = dirs[:, 2] - ga * dirs[:, 0] - gb * dirs[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(denom * g0 > 0, g0 / denom, np.inf)
    n_ground = np.array([-ga, -gb, 1.0]) / math.sqrt(ga * ga + gb * gb + 1.0)
    cos_ground = np.abs(dirs @ n_ground)

    t_all = np.concatenate([t_ground[:, None], t_box], axis=1)  # column 0 ground, then objects, clutter
    first = np.argmin(t_all, axis=1)
    t_first = t_all[np.arange(R), first]
    keep = t_first <= max_range
    first, t_first, d = first[keep], t_first[keep], dirs[keep]
    cos_all = np.concatenate([cos_ground[:, None], cos_box], axis=1)[keep]
    cos_first = cos_all[np.arange(first.size), first]
    hit_index = first - 1  # -1 ground, 0..M-1 objects, M.. clutter

    # Materials: one reflectivity per surface, drawn from its class/kind range.
    refl_ground = rng.uniform(*_REFLECTIVITY["ground"])
    refl_obj = np.array([rng.uniform(*_REFLECTIVITY.get(str(n), _REFLECTIVITY["Car"])) for n in names])
    refl_clut = np.array([rng.uniform(*_REFLECTIVITY[str(k)]) for k in kinds])
    refl = np.concatenate([[refl_ground], refl_obj, refl_clut])[first]

    sigma = np.full(first.size, range_noise)
    if veg.size:
        sigma[np.isin(hit_index, M + veg)] = 4 * range_noise
    noise = np.clip(rng.standard_normal(first.size), -2.5, 2.5) * sigma
    r = t_first + noise
    xyz = d * r[:, None]
    inten = refl * (0.25 + 0.75 * cos_first) * (1.0 - 0.3 * t_first / max_range)
    inten = np.clip(inten + 0.02 * rng.standard_normal(first.size), 0.0, 1.0)
    points = np.concatenate([xyz, inten[:, None]], axis=1).astype(np.float32)

    # Visibility: rays that hit object m first vs rays that would hit it with nothing else there.
    alone = np.isfinite(t_box[:, :M]) & (t_box[:, :M] <= max_range)
    n_alone = alone.sum(axis=0)
    n_seen = np.bincount(hit_index[(hit_index >= 0) & (hit_index < M)], minlength=M)[:M]
    vis = np.where(n_alone > 0, n_seen / np.maximum(n_alone, 1), 0.0)
    return Rendered(points=points, hit_index=hit_index.astype(np.int64), visible_fraction=vis)


def _occlusion_level(visible_fraction: np.ndarray) -> np.ndarray:
    """KITTI occlusion level 0/1/2 from the visible fraction (thresholds 0.8 and 0.4)."""
    v = np.asarray(visible_fraction)
    return np.where(v >= 0.8, 0, np.where(v >= 0.4, 1, 2)).astype(np.int64)


# ----------------------------------------------------------------------------------------------
# KITTI export
# ----------------------------------------------------------------------------------------------


# Calibration keys KITTI files carry that ``Calibration`` does not hold; written with every frame.
def _proj(tx: float, ty: float, tz: float) -> np.ndarray:
    f, cu, cv = 721.5377, 609.5593, 172.854
    return np.array([[f, 0.0, cu, tx], [0.0, f, cv, ty], [0.0, 0.0, 1.0, tz]])


_CALIB_EXTRA = {
    "P0": _proj(0.0, 0.0, 0.0),
    "P1": _proj(-387.5744, 0.0, 0.0),
    "P3": _proj(-334.1085, 2.330660, 0.003201153),
    "Tr_imu_to_velo": np.array([[1.0, 0.0, 0.0, -0.8086759], [0.0, 1.0, 0.0, 0.3195559], [0.0, 0.0, 1.0, -0.7997231]]),
}


def kitti_calibration() -> Calibration:
    """The fixed calibration written with every frame (KITTI-like values).

    ``R0_rect`` is identity and ``Tr_velo_to_cam`` maps LiDAR (x fwd, y left, z up) to camera
    (x right, y down, z fwd) plus a small translation. The calib files also carry ``P0``, ``P1``,
    ``P3`` and ``Tr_imu_to_velo`` (``_CALIB_EXTRA``), which ``Calibration`` does not hold.
    """
    return Calibration(
        P2=_proj(44.85728, 0.2163791, 0.002745884),
        R0_rect=np.eye(3),
        Tr_velo_to_cam=np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27]]),
    )


def lidar_boxes_to_kitti_labels(
    boxes: np.ndarray,
    names: Sequence[str],
    occlusion: Optional[np.ndarray] = None,
    calib: Optional[Calibration] = None,
    image_size: tuple[int, int] = IMAGE_SIZE,
) -> list[KittiObject]:
    """KITTI ``label_2`` objects (write them with ``pointcloud.kitti_io.write_labels``) for LiDAR boxes.

    Fields: type, truncated, occluded, alpha, bbox (x1 y1 x2 y2), h w l, location (x y z), ry, with
      * ``h, w, l = dz, dy, dx``; location = bottom-face centre in the rectified camera frame
        (``pointcloud.boxes.boxes_lidar_to_camera``);
      * ``ry = -heading - pi/2`` (exact because the rotation part of ``Tr_velo_to_cam`` is a pure
        axis permutation and ``R0_rect`` is identity), wrapped to [-pi, pi);
      * ``alpha = ry - arctan2(x_cam, z_cam)`` of the box centre (the observation angle; equals
        OpenPCDet's ``-arctan2(-y_lidar, x_lidar) + ry`` up to the calibration translation);
      * bbox = the 2-D extent of the 8 projected corners (through P2) clipped to the image; boxes
        must lie in front of the camera (``SyntheticScenes`` places them at x >= 4 m);
      * truncated = the fraction of the unclipped 2-D box area that lies outside the image
        (0 for objects fully in view).

    Args:
        boxes: (M, 7) LiDAR boxes.
        names: (M,) class names.
        occlusion: (M,) KITTI occlusion levels (default 0).
        calib: calibration (default ``kitti_calibration()``).
        image_size: (width, height) for clipping.

    Returns:
        M ``KittiObject``.
    """
    calib = kitti_calibration() if calib is None else calib
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    M = b.shape[0]
    occlusion = np.zeros(M, dtype=np.int64) if occlusion is None else np.asarray(occlusion)
    bt = torch.from_numpy(b)
    cam = boxes_lidar_to_camera(bt, calib).numpy()  # (x, y, z, l, h, w, ry), bottom centre
    ry = limit_period(cam[:, 6])
    ctr = calib.lidar_to_rect(b[:, :3])
    alpha = limit_period(ry - np.arctan2(ctr[:, 0], ctr[:, 2]))
    corners = calib.lidar_to_rect(box_corners(bt).numpy().reshape(-1, 3))
    uv = calib.rect_to_image(corners)[0].reshape(M, 8, 2)
    W, H = image_size
    objects = []
    for m in range(M):
        x1, y1 = uv[m].min(axis=0)
        x2, y2 = uv[m].max(axis=0)
        cx1, cy1 = np.clip(x1, 0, W - 1), np.clip(y1, 0, H - 1)
        cx2, cy2 = np.clip(x2, 0, W - 1), np.clip(y2, 0, H - 1)
        full = max((x2 - x1) * (y2 - y1), 1e-9)
        inside = max(cx2 - cx1, 0.0) * max(cy2 - cy1, 0.0)
        trunc = float(np.clip(1.0 - inside / full, 0.0, 1.0))
        objects.append(
            KittiObject(
                type=str(names[m]),
                truncated=trunc,
                occluded=int(occlusion[m]),
                alpha=float(alpha[m]),
                bbox=np.array([cx1, cy1, cx2, cy2]),
                dims_hwl=cam[m, [4, 5, 3]],
                location=cam[m, :3],
                ry=float(ry[m]),
            )
        )
    return objects


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------


class SyntheticScenes:
    """Seeded dataset of synthetic KITTI-like LiDAR scenes (torch-style: ``len`` / indexing).

    ``ds[i]`` is deterministic per ``(seed, i)`` (its generator is ``default_rng([seed, i])``) and
    returns ``{"points": (N, 4) float32, "gt_boxes": (M, 7) float32, "gt_names": (M,) str,
    "num_points_in_gt": (M,) int64, "frame_id": "%06d"}``; ``ds.scene(i)`` returns the full
    ``Scene`` (visibility, occlusion, clutter, ground). With the defaults a scene has ~25-28k
    points (~52k with ``azimuth_step=0.1``) and takes ~0.1 s on one CPU core. Objects are placed
    in front of the sensor within ``azimuth_fov - 3`` deg (within +-86 deg when
    ``azimuth_fov=None``), at x >= 4 m, and inside any side walls. See the module docstring for
    the rendering model and the label conventions.

    Args:
        num_scenes: dataset length.
        seed: base seed.
        classes: classes to place (must be keys of ``CLASS_MEAN_SIZES``).
        point_cloud_range: ``(x_min, y_min, z_min, x_max, y_max, z_max)``; objects are placed
            inside it and (with ``crop_to_range``) points are cropped to it.
        objects_per_scene: inclusive ``(min, max)`` number of objects (fewer if placement fails).
        beams, azimuth_step, azimuth_fov, max_range, range_noise: see ``render_scene``.
        size_jitter: relative std of object sizes around the class means (clipped at 2 sigma).
        clutter: whether to add walls, poles and vegetation.
        crop_to_range: crop points to ``point_cloud_range``.
    """

    def __init__(
        self,
        num_scenes: int,
        *,
        seed: int = 0,
        classes: Sequence[str] = ("Car", "Pedestrian", "Cyclist"),
        point_cloud_range: Sequence[float] = (0, -40, -3, 70.4, 40, 1),
        objects_per_scene: tuple[int, int] = (3, 12),
        beams: int = 64,
        azimuth_step: float = 0.2,
        azimuth_fov: Optional[float] = 45.0,
        max_range: float = 80.0,
        range_noise: float = 0.02,
        size_jitter: float = 0.07,
        clutter: bool = True,
        crop_to_range: bool = True,
    ) -> None:
        unknown = [c for c in classes if c not in CLASS_MEAN_SIZES]
        if unknown:
            raise ValueError(f"unknown classes {unknown}; known: {sorted(CLASS_MEAN_SIZES)}")
        if num_scenes < 0:
            raise ValueError("num_scenes must be >= 0")
        self.num_scenes = int(num_scenes)
        self.seed = int(seed)
        self.classes = tuple(classes)
        self.point_cloud_range = np.asarray(point_cloud_range, dtype=np.float64)
        self.objects_per_scene = (int(objects_per_scene[0]), int(objects_per_scene[1]))
        self.beams = beams
        self.azimuth_step = azimuth_step
        self.azimuth_fov = azimuth_fov
        self.max_range = max_range
        self.range_noise = range_noise
        self.size_jitter = size_jitter
        self.clutter = clutter
        self.crop_to_range = crop_to_range
        w = np.array([_CLASS_WEIGHTS.get(c, 1.0) for c in self.classes])
        self._class_p = w / w.sum()

    def __len__(self) -> int:
        return self.num_scenes

    def __getitem__(self, index: int) -> dict:
        return self.scene(index).to_dict()

    # -- layout ---------------------------------------------------------------------------------

    def _half_fov(self) -> float:
        return math.radians(self.azimuth_fov if self.azimuth_fov is not None else 89.0)

    def _place_walls(self, rng: np.random.Generator, ground_at) -> list[np.ndarray]:
        walls = []
        pr = self.point_cloud_range
        for side in (-1.0, 1.0):
            far = min(32.0, abs(pr[1 if side < 0 else 4]) - 1.0)
            # Walls stand 20-32 m to the side; a range narrower than that has none (and draws nothing for them).
            if far > 20.0 and rng.random() < 0.6:
                y = side * rng.uniform(20.0, far)
                length = rng.uniform(15.0, 45.0)
                x = rng.uniform(15.0 + length / 2, max(15.0 + length / 2, 75.0 - length / 2))
                h = rng.uniform(2.0, 4.0)
                heading = rng.uniform(-0.05, 0.05)
                walls.append(np.array([x, y, ground_at(x, y) + h / 2, length, 0.3, h, heading]))
        return walls

    def _free(self, box: np.ndarray, placed: list[np.ndarray], margin: float) -> bool:
        return not any(boxes_bev_overlap(box, p, margin) for p in placed)

    def scene(self, index: int) -> Scene:
        """Generate scene ``index`` (deterministic per ``(seed, index)``)."""
        if not 0 <= index < self.num_scenes:
            raise IndexError(f"index {index} out of range for {self.num_scenes} scenes")
        rng = np.random.default_rng([self.seed, int(index)])
        pr = self.point_cloud_range
        # Ground: height jitter of ~1 cm and slopes up to 0.06 deg (<= ~7 cm over 70 m).
        g0 = _GROUND_Z + float(np.clip(rng.normal(0.0, 0.01), -0.03, 0.03))
        ga, gb = rng.uniform(-0.001, 0.001, size=2)
        ground = (g0, float(ga), float(gb))

        def ground_at(x: float, y: float) -> float:
            return g0 + ga * x + gb * y

        walls = self._place_walls(rng, ground_at) if self.clutter else []
        # Keep objects on the road side of the walls.
        y_lo, y_hi = pr[1] + 1.0, pr[4] - 1.0
        for w in walls:
            if w[1] > 0:
                y_hi = min(y_hi, w[1] - 1.5)
            else:
                y_lo = max(y_lo, w[1] + 1.5)

        tan_fov = math.tan(self._half_fov() - math.radians(3.0))
        x_lo, x_hi = max(pr[0] + 4.0, 4.0), pr[3] - 3.0
        n_obj = int(rng.integers(self.objects_per_scene[0], self.objects_per_scene[1] + 1))
        placed: list[np.ndarray] = list(walls)
        obj_boxes, obj_names = [], []
        for _ in range(n_obj):
            cls = self.classes[int(rng.choice(len(self.classes), p=self._class_p))]
            mean = np.array(CLASS_MEAN_SIZES[cls])
            size = mean * (1.0 + np.clip(rng.normal(0.0, self.size_jitter, 3), -2 * self.size_jitter, 2 * self.size_jitter))
            for _attempt in range(30):
                x = rng.uniform(x_lo, x_hi)
                ymax = x * tan_fov
                lo, hi = max(y_lo, -ymax), min(y_hi, ymax)
                if hi <= lo:
                    continue
                y = rng.uniform(lo, hi)
                heading = rng.uniform(-np.pi, np.pi)
                box = np.array([x, y, ground_at(x, y) + size[2] / 2, *size, heading])
                if self._free(box, placed, 0.3):
                    placed.append(box)
                    obj_boxes.append(box)
                    obj_names.append(cls)
                    break

        clutter_boxes, clutter_kinds = [w for w in walls], ["wall"] * len(walls)
        if self.clutter:
            for kind, count in (("pole", int(rng.integers(2, 7))), ("vegetation", int(rng.integers(1, 5)))):
                for _ in range(count):
                    for _attempt in range(20):
                        x = rng.uniform(6.0, pr[3])
                        ymax = x * math.tan(self._half_fov())
                        lo, hi = max(pr[1], -ymax), min(pr[4], ymax)
                        y = rng.uniform(lo, hi)
                        if kind == "pole":
                            wid, h = rng.uniform(0.15, 0.3), rng.uniform(3.0, 7.0)
                            size = (wid, wid, h)
                        else:
                            size = (rng.uniform(1.0, 4.0), rng.uniform(1.0, 4.0), rng.uniform(1.0, 5.0))
                        box = np.array([x, y, ground_at(x, y) + size[2] / 2, *size, rng.uniform(-np.pi, np.pi)])
                        if self._free(box, placed, 0.5):
                            placed.append(box)
                            clutter_boxes.append(box)
                            clutter_kinds.append(kind)
                            break

        gt_boxes = np.array(obj_boxes, dtype=np.float64).reshape(-1, 7)
        gt_names = np.array(obj_names, dtype="<U10")
        clutter = Clutter(np.array(clutter_boxes, dtype=np.float64).reshape(-1, 7), np.array(clutter_kinds, dtype="<U10"))
        rendered = render_scene(
            gt_boxes,
            gt_names,
            clutter,
            rng,
            ground=ground,
            beams=self.beams,
            azimuth_step=self.azimuth_step,
            azimuth_fov=self.azimuth_fov,
            max_range=self.max_range,
            range_noise=self.range_noise,
        )
        points = rendered.points
        if self.crop_to_range:
            p = points
            mask = (
                (p[:, 0] >= pr[0]) & (p[:, 0] < pr[3]) & (p[:, 1] >= pr[1]) & (p[:, 1] < pr[4])
                & (p[:, 2] >= pr[2]) & (p[:, 2] < pr[5])
            )
            points = points[mask]
        gt32 = gt_boxes.astype(np.float32)
        # Counted in float64 (float32 points promote against the float64 boxes).
        in_box = points_in_boxes(torch.from_numpy(points), torch.from_numpy(gt32.astype(np.float64)))
        num_pts = in_box.sum(dim=1).numpy().astype(np.int64)
        return Scene(
            points=points,
            gt_boxes=gt32,
            gt_names=gt_names,
            num_points_in_gt=num_pts,
            frame_id=f"{index:06d}",
            visible_fraction=rendered.visible_fraction,
            occlusion=_occlusion_level(rendered.visible_fraction),
            clutter=clutter,
            ground=ground,
        )

    # -- export ---------------------------------------------------------------------------------

    def write_kitti(
        self,
        root: str | os.PathLike,
        split: str = "training",
        *,
        val_fraction: Optional[float] = None,
        indices: Optional[Sequence[int]] = None,
    ) -> list[str]:
        """Write scenes in the KITTI object layout with their image sets (OpenPCDet's ``data/kitti``).

        ``split="training"`` writes ``root/training/velodyne/%06d.bin`` (float32 x, y, z, intensity),
        ``root/training/label_2/%06d.txt`` (15-field camera-frame labels, see ``lidar_boxes_to_kitti_labels``) and
        ``root/training/calib/%06d.txt`` (``kitti_calibration``), and splits the n scenes written into
        ``ImageSets/train.txt`` and ``ImageSets/val.txt``: the last ``round(val_fraction * n)`` (halves up; at least
        1, at most n - 1) go to val, the rest to train, and ``ImageSets/trainval.txt`` lists all n. The scenes are
        independent draws, so a fixed tail is a fair held-out set, and the same one on every call.

        ``split="testing"`` writes ``root/testing/velodyne`` and ``root/testing/calib`` and ``ImageSets/test.txt``
        (all n): no labels, as KITTI's test split. Scene ``i`` always has frame id ``%06d % i``, so write
        testing frames from other ``indices`` than the training ones. No images are written; files are replaced
        atomically (:mod:`seqcore.atomic`).

        Args:
            root: dataset root.
            split: ``"training"`` or ``"testing"`` (sub-folder name).
            val_fraction: share of the scenes held out in ``val.txt``, in (0, 1); default 0.25. Training only.
            indices: scenes to write (default all), distinct ints in ``[0, num_scenes)``; at least 2 for
                training (train and val both non-empty), 1 for testing.

        Returns:
            The frame ids written, in index order.

        Raises:
            ValueError: ``split`` not ``"training"`` / ``"testing"``, ``val_fraction`` outside (0, 1) or given for
                testing, ``indices`` out of range, repeated or too few.
            TypeError: ``val_fraction`` not a real number, an index not an int.
        """
        if split not in ("training", "testing"):
            raise ValueError(f"split must be 'training' or 'testing', got {split!r}")
        if val_fraction is not None and split == "testing":
            raise ValueError("val_fraction is for split='training'; the testing split has no val image set")
        if val_fraction is None:
            val_fraction = 0.25
        if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)):
            raise TypeError(f"val_fraction must be a float in (0, 1), got {type(val_fraction).__name__}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        order = list(range(self.num_scenes)) if indices is None else list(indices)
        for i in order:
            if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
                raise TypeError(f"indices must be ints, got {type(i).__name__}")
            if not 0 <= i < self.num_scenes:
                raise ValueError(f"indices must be in [0, {self.num_scenes}), got {i}")
        if len(set(order)) != len(order):
            raise ValueError(f"indices must be distinct (a frame id is listed once), got {order}")
        needed = 2 if split == "training" else 1
        if len(order) < needed:
            raise ValueError(f"split={split!r} needs at least {needed} scene(s)"
                             + (" (train and val both non-empty)" if needed == 2 else "") + f", got {len(order)}")

        root = os.fspath(root)
        calib = kitti_calibration()
        calib_txt = calib.to_text(_CALIB_EXTRA)
        subs = ("velodyne", "label_2", "calib") if split == "training" else ("velodyne", "calib")
        dirs = {k: os.path.join(root, split, k) for k in subs}
        for d in dirs.values():
            os.makedirs(d, exist_ok=True)
        ids = []
        for i in order:
            sc = self.scene(int(i))
            fid = sc.frame_id
            write_points(os.path.join(dirs["velodyne"], fid + ".bin"), sc.points)
            if "label_2" in dirs:
                objects = lidar_boxes_to_kitti_labels(sc.gt_boxes, sc.gt_names, sc.occlusion, calib)
                write_labels(os.path.join(dirs["label_2"], fid + ".txt"), objects)
            atomic_write_text(os.path.join(dirs["calib"], fid + ".txt"), calib_txt)
            ids.append(fid)
        if split == "training":
            num_val = min(len(ids) - 1, max(1, math.floor(val_fraction * len(ids) + 0.5)))
            image_sets = {"train": ids[:-num_val], "val": ids[-num_val:], "trainval": ids}
        else:
            image_sets = {"test": ids}
        os.makedirs(os.path.join(root, "ImageSets"), exist_ok=True)
        for name, listed in image_sets.items():
            atomic_write_text(os.path.join(root, "ImageSets", name + ".txt"), "".join(f + "\n" for f in listed))
        return ids
