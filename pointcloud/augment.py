"""Training-time data augmentation for LiDAR 3-D detection samples (OpenPCDet-style, numpy in / numpy out).

A *sample* is a dict with at least

- ``points``: ``(N, 3 + C)`` float32 LiDAR points (x, y, z, then C features such as intensity);
- ``gt_boxes``: ``(M, 7)`` float32 boxes ``(x, y, z, dx, dy, dz, heading)``, heading counter-clockwise about +z;
- ``gt_names``: ``(M,)`` str array of class names.

Every transform is a callable ``transform(sample, rng) -> sample``: all randomness comes from the
``np.random.Generator`` passed at call time (so a seed fixes the result), and the call is pure: it returns a new
dict with new arrays and never writes into the input. Keys other than the three above are passed through by
reference, untouched (note that per-box extras such as difficulties are *not* kept in sync by the transforms that
add or move boxes).

The deterministic cores (:func:`flip_sample`, :func:`rotate_sample`, :func:`scale_sample`, :func:`translate_sample`)
are public so that a caller (or a test) can apply an exact, chosen parameter.

Geometry is done in float64 and cast back to float32 at the end, so a round trip (rotate by ``a`` then ``-a``) is
exact to float32 rounding. Box-membership and collision checks reuse :func:`pointcloud.boxes.points_in_boxes`
(strict in BEV, inclusive in z) and :func:`pointcloud.iou.bev_iou` (``> 0`` counts as a collision).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from pointcloud.boxes import limit_period, points_in_boxes, validate_boxes
from pointcloud.iou import bev_iou
from seqcore.ops.validation import check_bool, check_int

__all__ = [
    "Sample",
    "Transform",
    "flip_sample",
    "rotate_sample",
    "scale_sample",
    "translate_sample",
    "RandomFlip",
    "RandomRotation",
    "RandomScaling",
    "RandomTranslation",
    "ObjectNoise",
    "GTEntry",
    "GTDatabase",
    "GTSampling",
    "Compose",
]

Sample = dict[str, Any]
Transform = Callable[[Mapping[str, Any], np.random.Generator], Sample]


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------


def _unpack(sample: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a sample and return float64 copies of points ``(N, 3+C)``, boxes ``(M, 7)`` and the names ``(M,)``.

    Copies (not views) so the caller can edit them freely without touching the input sample.
    """
    for key in ("points", "gt_boxes", "gt_names"):
        if key not in sample:
            raise KeyError(f"sample is missing the key {key!r}")
    points = np.array(sample["points"], dtype=np.float64)
    boxes = np.array(sample["gt_boxes"], dtype=np.float64)
    names = np.array(sample["gt_names"])
    if names.size == 0:  # an empty list becomes float64; keep names a str array so comparisons stay valid
        names = names.astype(str)
    if points.ndim != 2 or points.shape[1] < 3:
        raise ValueError(f"points must have shape (N, 3+C), got {points.shape}")
    if boxes.ndim == 1 and boxes.size == 0:  # tolerate np.zeros(0) for an empty scene
        boxes = boxes.reshape(0, 7)
    if boxes.ndim != 2 or boxes.shape[1] != 7:
        raise ValueError(f"gt_boxes must have shape (M, 7), got {boxes.shape}")
    if names.shape != (boxes.shape[0],):
        raise ValueError(f"gt_names must have shape ({boxes.shape[0]},), got {names.shape}")
    bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
    if bad.size:
        raise ValueError(f"points contains NaN or inf (point {int(bad[0])}: {points[bad[0]].tolist()})")
    validate_boxes(torch.from_numpy(boxes), name="gt_boxes")
    return points, boxes, names


def _check_rng(rng: np.random.Generator) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}")


def _finite_triple(name: str, values: Sequence[float], nonnegative: bool) -> np.ndarray:
    """``values`` as a ``(3,)`` float64 array of finite numbers (``>= 0`` when ``nonnegative``)."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.shape != (3,) or not np.isfinite(array).all() or (nonnegative and (array < 0).any()):
        raise ValueError(f"{name} must be 3 finite values{' >= 0' if nonnegative else ''}, got {values}")
    return array


def _pack(sample: Mapping[str, Any], points: np.ndarray, boxes: np.ndarray, names: np.ndarray) -> Sample:
    """A new sample dict: the input's other keys (by reference) plus the new float32 points/boxes and names."""
    out = dict(sample)
    out["points"] = np.ascontiguousarray(points, dtype=np.float32)
    out["gt_boxes"] = np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 7)
    out["gt_names"] = np.array(names)
    return out


def _rotz(xy: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
    """Rotate ``(..., 2)`` xy coordinates counter-clockwise by ``angle`` (scalar or broadcastable to ``(...)``)."""
    c, s = np.cos(angle), np.sin(angle)
    x, y = xy[..., 0], xy[..., 1]
    return np.stack([x * c - y * s, x * s + y * c], axis=-1)


def _inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(M, N)`` bool membership of ``points`` ``(N, 3+)`` in ``boxes`` ``(M, 7)`` (float64 numpy in, numpy out)."""
    if boxes.shape[0] == 0 or points.shape[0] == 0:
        return np.zeros((boxes.shape[0], points.shape[0]), dtype=bool)
    return points_in_boxes(torch.from_numpy(points[:, :3]), torch.from_numpy(boxes)).numpy()


def _bev_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(A, B)`` bool: BEV IoU > 0 between boxes ``a`` ``(A, 7)`` and ``b`` ``(B, 7)`` (float64 numpy)."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=bool)
    return (bev_iou(torch.from_numpy(a), torch.from_numpy(b)) > 0).numpy()


def _wrap(angle: np.ndarray) -> np.ndarray:
    """Wrap headings into ``[-pi, pi)``."""
    return np.asarray(limit_period(angle, offset=0.5, period=2 * math.pi))


# ----------------------------------------------------------------------------------------------------------------
# deterministic cores
# ----------------------------------------------------------------------------------------------------------------


def flip_sample(sample: Mapping[str, Any], axis: str = "x") -> Sample:
    """Mirror a sample, as OpenPCDet's ``random_flip_along_x`` / ``random_flip_along_y``.

    ``axis="x"`` flips along the x axis: ``y -> -y`` and ``heading -> -heading``.
    ``axis="y"`` flips along the y axis: ``x -> -x`` and ``heading -> -(heading + pi)``.
    Headings are not wrapped (as in OpenPCDet), so flipping twice is an identity: exact for ``"x"``, and for
    ``"y"`` up to the float32 rounding of ``heading + pi``.
    """
    points, boxes, names = _unpack(sample)
    if axis == "x":
        points[:, 1] = -points[:, 1]
        boxes[:, 1] = -boxes[:, 1]
        boxes[:, 6] = -boxes[:, 6]
    elif axis == "y":
        points[:, 0] = -points[:, 0]
        boxes[:, 0] = -boxes[:, 0]
        boxes[:, 6] = -(boxes[:, 6] + np.pi)
    else:
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    return _pack(sample, points, boxes, names)


def rotate_sample(sample: Mapping[str, Any], angle: float) -> Sample:
    """Rotate points and boxes counter-clockwise about the LiDAR z axis by ``angle`` (radians).

    Box headings become ``limit_period(heading + angle)`` in ``[-pi, pi)``.
    """
    if not math.isfinite(angle):
        raise ValueError(f"angle must be finite, got {angle}")
    points, boxes, names = _unpack(sample)
    points[:, :2] = _rotz(points[:, :2], angle)
    boxes[:, :2] = _rotz(boxes[:, :2], angle)
    boxes[:, 6] = _wrap(boxes[:, 6] + angle)
    return _pack(sample, points, boxes, names)


def scale_sample(sample: Mapping[str, Any], scale: float) -> Sample:
    """Scale point xyz, box centres and box sizes by ``scale`` (> 0); box volumes scale by ``scale**3``."""
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale}")
    points, boxes, names = _unpack(sample)
    points[:, :3] *= scale
    boxes[:, :6] *= scale
    return _pack(sample, points, boxes, names)


def translate_sample(sample: Mapping[str, Any], offset: Sequence[float]) -> Sample:
    """Shift point xyz and box centres by ``offset`` ``(3,)``."""
    shift = np.asarray(offset, dtype=np.float64).reshape(-1)
    if shift.shape != (3,) or not np.isfinite(shift).all():
        raise ValueError(f"offset must be 3 finite values (dx, dy, dz), got {offset}")
    points, boxes, names = _unpack(sample)
    points[:, :3] += shift
    boxes[:, :3] += shift
    return _pack(sample, points, boxes, names)


# ----------------------------------------------------------------------------------------------------------------
# global random transforms
# ----------------------------------------------------------------------------------------------------------------


class RandomFlip:
    """With probability ``p``, mirror the sample along ``axis`` (``"x"``: y -> -y; ``"y"``: x -> -x).

    One uniform draw per call whatever the outcome, so the rng stream advances the same way every time.
    """

    def __init__(self, axis: str = "x", p: float = 0.5) -> None:
        if axis not in ("x", "y"):
            raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.axis, self.p = axis, p

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator) -> Sample:
        _check_rng(rng)
        if rng.random() < self.p:
            return flip_sample(sample, self.axis)
        return _pack(sample, *_unpack(sample))

    def __repr__(self) -> str:
        return f"RandomFlip(axis={self.axis!r}, p={self.p})"


class RandomRotation:
    """Global rotation about z by an angle drawn uniformly from ``[-max_angle, max_angle]``."""

    def __init__(self, max_angle: float = math.pi / 4) -> None:
        if not (math.isfinite(max_angle) and max_angle >= 0):
            raise ValueError(f"max_angle must be finite and >= 0, got {max_angle}")
        self.max_angle = float(max_angle)

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator) -> Sample:
        _check_rng(rng)
        return rotate_sample(sample, float(rng.uniform(-self.max_angle, self.max_angle)))

    def __repr__(self) -> str:
        return f"RandomRotation(max_angle={self.max_angle})"


class RandomScaling:
    """Global scaling of xyz, box centres and sizes by a factor drawn uniformly from ``range``."""

    def __init__(self, range: tuple[float, float] = (0.95, 1.05)) -> None:  # noqa: A002 - name fixed by the API
        lo, hi = float(range[0]), float(range[1])
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ValueError(f"range must be finite and satisfy 0 < low <= high, got {range}")
        self.range = (lo, hi)

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator) -> Sample:
        _check_rng(rng)
        return scale_sample(sample, float(rng.uniform(*self.range)))

    def __repr__(self) -> str:
        return f"RandomScaling(range={self.range})"


class RandomTranslation:
    """Global shift of xyz and box centres by ``N(0, std)`` per axis (``std`` is ``(3,)``)."""

    def __init__(self, std: Sequence[float] = (0.2, 0.2, 0.2)) -> None:
        self.std = _finite_triple("std", std, nonnegative=True)

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator) -> Sample:
        _check_rng(rng)
        return translate_sample(sample, rng.normal(0.0, 1.0, size=3) * self.std)

    def __repr__(self) -> str:
        return f"RandomTranslation(std={tuple(self.std.tolist())})"


# ----------------------------------------------------------------------------------------------------------------
# per-object noise
# ----------------------------------------------------------------------------------------------------------------


class ObjectNoise:
    """Independently move each gt box together with the points inside it.

    For each box (in order) ``attempts`` candidate moves are drawn: a translation ``N(0, translation_std)`` and a
    rotation about the box centre uniform in ``rotation_range``. The first candidate whose BEV footprint does not
    overlap (``bev_iou > 0``) any other box -- in its current, possibly already moved, pose -- is applied; if all
    candidates collide the box and its points stay where they were.

    Points inside a box move rigidly with it. Scene points that were not inside the box but would end up inside
    its new pose are removed (``remove_intruders=True``, the default): otherwise the moved box would swallow
    background points and its point count would no longer describe the object. Points inside more than one box
    (only possible when the input boxes already overlap) stay put.
    """

    def __init__(
        self,
        translation_std: Sequence[float] = (0.25, 0.25, 0.25),
        rotation_range: tuple[float, float] = (-math.pi / 20, math.pi / 20),
        attempts: int = 10,
        remove_intruders: bool = True,
    ) -> None:
        std = _finite_triple("translation_std", translation_std, nonnegative=True)
        low, high = (float(v) for v in rotation_range)
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"rotation_range must be finite (low, high) with low <= high, got {rotation_range}")
        self.translation_std = std
        self.rotation_range = (low, high)
        self.attempts = check_int("attempts", attempts, 1)
        self.remove_intruders = check_bool("remove_intruders", remove_intruders)

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator) -> Sample:
        _check_rng(rng)
        points, boxes, names = _unpack(sample)
        m = boxes.shape[0]
        if m == 0:
            return _pack(sample, points, boxes, names)
        # Membership is fixed from the input poses: a point belongs to box i only if it is in i and no other box.
        inside = _inside(points, boxes)  # (M, N)
        owner = np.where(inside.sum(axis=0) == 1, inside.argmax(axis=0), -1)  # (N,)
        moved = np.zeros(m, dtype=bool)
        # All noise drawn up front in a fixed shape, so the rng stream does not depend on which candidates collide.
        shifts = rng.normal(0.0, 1.0, size=(m, self.attempts, 3)) * self.translation_std
        turns = rng.uniform(self.rotation_range[0], self.rotation_range[1], size=(m, self.attempts))
        for i in range(m):
            cand = np.repeat(boxes[i : i + 1], self.attempts, axis=0)  # (A, 7)
            cand[:, :3] += shifts[i]
            cand[:, 6] = _wrap(cand[:, 6] + turns[i])
            others = np.delete(boxes, i, axis=0)
            free = ~_bev_overlap(cand, others).any(axis=1)  # (A,)
            if not free.any():
                continue
            k = int(np.argmax(free))
            sel = owner == i
            centre = boxes[i, :3]
            rel = points[sel, :3] - centre
            rel[:, :2] = _rotz(rel[:, :2], turns[i, k])
            points[sel, :3] = rel + cand[k, :3]
            boxes[i] = cand[k]
            moved[i] = True
        if self.remove_intruders and moved.any():
            # Points owned by no moved box that now fall inside a moved box are background intruders.
            now_inside = _inside(points, boxes[moved])  # (moved, N)
            moved_ids = np.flatnonzero(moved)
            own_moved = np.isin(owner, moved_ids)
            intruder = now_inside.any(axis=0) & ~own_moved
            points = points[~intruder]
        return _pack(sample, points, boxes, names)

    def __repr__(self) -> str:
        return (f"ObjectNoise(translation_std={tuple(self.translation_std.tolist())}, "
                f"rotation_range={self.rotation_range}, attempts={self.attempts})")


# ----------------------------------------------------------------------------------------------------------------
# ground-truth database sampling
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GTEntry:
    """One ground-truth object cut out of a scene.

    Attributes:
        points: ``(K, 3+C)`` float32 points that were inside the box, in the scene's absolute LiDAR coordinates.
        box: ``(7,)`` float32 box ``(x, y, z, dx, dy, dz, heading)``.
        name: class name.
        num_points: ``K``.
    """

    points: np.ndarray
    box: np.ndarray
    name: str
    num_points: int


class GTDatabase:
    """Ground-truth objects per class, for :class:`GTSampling` (an in-memory ``dbinfos`` equivalent)."""

    def __init__(self, entries: Iterable[GTEntry] = ()) -> None:
        self.by_class: dict[str, list[GTEntry]] = {}
        for e in entries:
            self.by_class.setdefault(e.name, []).append(e)

    @classmethod
    def build(cls, samples: Iterable[Mapping[str, Any]]) -> "GTDatabase":
        """Cut every gt object out of ``samples``: the points inside its box (absolute coordinates) plus box/name.

        Points inside several (overlapping) boxes are copied into each of them.
        """
        entries: list[GTEntry] = []
        for sample in samples:
            points, boxes, names = _unpack(sample)
            inside = _inside(points, boxes)
            for i in range(boxes.shape[0]):
                pts = points[inside[i]].astype(np.float32)
                entries.append(GTEntry(points=pts, box=boxes[i].astype(np.float32), name=str(names[i]),
                                       num_points=int(pts.shape[0])))
        return cls(entries)

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_class.values())

    def __getitem__(self, name: str) -> list[GTEntry]:
        return self.by_class.get(name, [])

    @property
    def classes(self) -> list[str]:
        return sorted(self.by_class)

    def __repr__(self) -> str:
        return f"GTDatabase({ {k: len(v) for k, v in sorted(self.by_class.items())} })"


class GTSampling:
    """Paste objects from a :class:`GTDatabase` into a scene (OpenPCDet's ``gt_sampling``, without road planes).

    For each class in ``sample_groups`` the scene is topped up to the target count: database entries of that class
    with at least ``min_points`` points are visited in a random order (drawn from the rng) and accepted greedily
    when their BEV footprint overlaps (``bev_iou > 0``) neither a box already in the scene nor one added before;
    this stops when the target is reached or the candidates run out. Then scene points inside the added boxes are
    removed and the objects' own points are appended, so each added box holds exactly its database points.

    Objects keep their absolute database coordinates (no relocation or ground alignment).
    """

    def __init__(
        self,
        database: GTDatabase,
        sample_groups: Mapping[str, int] | None = None,
        min_points: int = 5,
        batch_size: int = 64,
    ) -> None:
        if sample_groups is None:
            sample_groups = {"Car": 15, "Pedestrian": 10, "Cyclist": 10}
        if any(int(n) < 0 for n in sample_groups.values()):
            raise ValueError(f"sample_groups counts must be >= 0, got {dict(sample_groups)}")
        self.database = database
        self.sample_groups = {str(k): int(v) for k, v in sample_groups.items()}
        self.min_points = int(min_points)
        # Candidates are collision-checked in batches with one bev_iou call, not one call per candidate.
        self.batch_size = max(1, int(batch_size))
        # Filter once: the eligible pool per class does not change between calls.
        self.pools: dict[str, list[GTEntry]] = {
            name: [e for e in database[name] if e.num_points >= self.min_points] for name in self.sample_groups
        }

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator) -> Sample:
        _check_rng(rng)
        points, boxes, names = _unpack(sample)
        added: list[GTEntry] = []
        placed = boxes.copy()  # scene boxes plus every box accepted so far, (K, 7)
        for name, target in self.sample_groups.items():
            need = target - int(np.sum(names == name))
            pool = self.pools[name]
            if need <= 0 or not pool:
                continue
            order = rng.permutation(len(pool))
            pos = 0
            while need > 0 and pos < len(order):
                batch = [pool[j] for j in order[pos : pos + self.batch_size]]
                pos += len(batch)
                cand = np.stack([e.box for e in batch]).astype(np.float64)  # (B, 7)
                hits_scene = _bev_overlap(cand, placed).any(axis=1)  # (B,)
                hits_batch = _bev_overlap(cand, cand)  # (B, B), diagonal is always True
                accepted: list[int] = []
                for b in range(len(batch)):
                    if hits_scene[b] or any(hits_batch[b, a] for a in accepted):
                        continue
                    accepted.append(b)
                    if len(accepted) == need:
                        break
                if accepted:
                    added.extend(batch[b] for b in accepted)
                    placed = np.concatenate([placed, cand[accepted]], axis=0)
                    need -= len(accepted)
        if not added:
            return _pack(sample, points, boxes, names)
        new_boxes = np.stack([e.box for e in added]).astype(np.float64)
        width = points.shape[1]
        for e in added:
            if e.points.shape[1] != width:
                raise ValueError(f"database points have {e.points.shape[1]} columns, scene points have {width}")
        # Scene points inside a pasted box would mix with the object's own points; drop them first.
        keep = ~_inside(points, new_boxes).any(axis=0)
        obj_points = np.concatenate([e.points for e in added], axis=0).astype(np.float64)
        points = np.concatenate([points[keep], obj_points], axis=0)
        boxes = np.concatenate([boxes, new_boxes], axis=0)
        names = np.concatenate([names, np.array([e.name for e in added])])
        return _pack(sample, points, boxes, names)

    def __repr__(self) -> str:
        return f"GTSampling(sample_groups={self.sample_groups}, min_points={self.min_points})"


class Compose:
    """Apply ``transforms`` in order, threading the same rng through all of them."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}] must be callable (sample, rng) -> sample, got {type(t).__name__}")

    def __call__(self, sample: Mapping[str, Any], rng: np.random.Generator) -> Sample:
        _check_rng(rng)
        out: Sample = dict(sample)
        for t in self.transforms:
            out = t(out, rng)
        return out

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"
