"""KITTI object-benchmark file I/O: velodyne ``.bin`` scans and ``label_2`` / result text files."""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from seqcore.atomic import atomic_write, atomic_write_text

__all__ = [
    "read_points", "write_points", "KittiObject", "read_labels", "write_labels", "difficulty", "text_lines",
    "check_frame_id",
]

_POINT_BYTES = 4 * 4  # x, y, z, intensity as float32

# A frame id names files inside a dataset folder: letters, digits, '_', '-' and '.', not starting with '.', so no
# id can hold a path separator or be '.' / '..' and reach outside that folder.
_FRAME_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def check_frame_id(frame_id: str, where: str = "") -> str:
    """Return ``frame_id`` if it is a plain frame name (``000008``, ``scene_1.0042``), else raise ValueError.

    ``where`` (e.g. ``"path:line: "``) prefixes the message. A frame id becomes ``<folder>/<id>.<ext>``, so anything
    with a separator, ``..`` or an absolute path would read or write outside the dataset.
    """
    if not isinstance(frame_id, str) or not _FRAME_ID.fullmatch(frame_id):
        raise ValueError(f"{where}frame id {frame_id!r} is not a plain frame name (letters, digits, '_', '-' and "
                         "'.', not starting with '.'); a path there would leave the dataset folder")
    return frame_id


def text_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every line of a UTF-8 text file, 1-based, without the line break.

    Raises:
        ValueError: a line is not UTF-8 (a binary or foreign file); names the file and the line.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield lineno, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not UTF-8 text (byte {raw[exc.start]:#04x} at column "
                                 f"{exc.start + 1}); is this a KITTI text file?") from None


def _first_bad_row(array: np.ndarray) -> int | None:
    """Index of the first row of a 2-D array holding NaN or inf, None when all are finite."""
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    return int(bad[0]) if bad.size else None


def read_points(path: str | os.PathLike) -> np.ndarray:
    """Read a KITTI velodyne scan: raw little-endian float32 records ``(x, y, z, intensity)``.

    Returns:
        (N, 4) float32 array in the LiDAR frame (N may be 0).

    An empty (0-byte) file is a scan without points: ``(0, 4)``.

    Raises:
        ValueError: the file size is not a multiple of 16 bytes (a truncated or foreign file), or a point holds
            NaN or inf (names the file and the point, i.e. the 16-byte record).
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size % _POINT_BYTES:
        raise ValueError(f"{path}: size {size} bytes is not a multiple of {_POINT_BYTES} "
                         "(4 float32 per point); the file is truncated or not a KITTI scan")
    points = np.fromfile(path, dtype="<f4").reshape(-1, 4)
    bad = _first_bad_row(points)
    if bad is not None:
        raise ValueError(f"{path}: point {bad} (bytes {bad * _POINT_BYTES}..{(bad + 1) * _POINT_BYTES - 1}) holds "
                         f"NaN or inf: {points[bad].tolist()}; the file is corrupt or not a KITTI scan")
    return points


def write_points(path: str | os.PathLike, points: np.ndarray) -> None:
    """Write an (N, 4) scan as raw little-endian float32 (the KITTI ``.bin`` layout); every value must be finite
    (what :func:`read_points` accepts). The file is replaced atomically (:mod:`seqcore.atomic`)."""
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise ValueError(f"points must have shape (N, 4), got {pts.shape}")
    pts = np.ascontiguousarray(pts, dtype="<f4")
    bad = _first_bad_row(pts)
    if bad is not None:
        raise ValueError(f"points must be finite: point {bad} holds NaN or inf {pts[bad].tolist()}")
    with atomic_write(path) as handle:
        handle.write(pts.tobytes())


@dataclass(eq=False)  # numpy fields make the generated __eq__ ambiguous
class KittiObject:
    """One line of a KITTI label / result file (camera frame).

    Attributes:
        type: class name, e.g. ``"Car"``, ``"DontCare"``.
        truncated: 0 (fully visible) .. 1 (fully truncated); -1 for DontCare.
        occluded: 0 visible, 1 partly, 2 largely occluded, 3 unknown; -1 for DontCare.
        alpha: observation angle in [-pi, pi].
        bbox: (4,) 2-D box ``(left, top, right, bottom)`` in image-2 pixels.
        dims_hwl: (3,) ``(height, width, length)`` in metres.
        location: (3,) bottom centre ``(x, y, z)`` in the rectified camera frame, metres.
        ry: yaw about the camera y axis in [-pi, pi].
        score: detection confidence (result files only), else ``None``.
    """

    type: str
    truncated: float
    occluded: int
    alpha: float
    bbox: np.ndarray
    dims_hwl: np.ndarray
    location: np.ndarray
    ry: float
    score: float | None = None

    def __post_init__(self) -> None:
        for name, n in (("bbox", 4), ("dims_hwl", 3), ("location", 3)):
            arr = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if arr.shape != (n,):
                raise ValueError(f"KittiObject.{name} needs {n} values, got {arr.size}")
            if not np.isfinite(arr).all():
                raise ValueError(f"KittiObject.{name} must be finite, got {arr.tolist()}")
            setattr(self, name, arr)
        # DontCare's placeholders (-1, -1000, -10) are finite; NaN or inf is a corrupt line or a broken detector.
        for name in ("truncated", "alpha", "ry", "score"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"KittiObject.{name} must be finite, got {value}")
        if not self.type or any(ch.isspace() for ch in self.type):
            raise ValueError(f"KittiObject.type must be a non-empty word, got {self.type!r}")


def _parse_line(tokens: list[str], where: str) -> KittiObject:
    if len(tokens) not in (15, 16):
        raise ValueError(f"{where}: expected 15 fields (16 with score), got {len(tokens)}")
    try:
        nums = [float(t) for t in tokens[1:]]
    except ValueError as exc:
        raise ValueError(f"{where}: non-numeric field: {exc}") from None
    occluded = nums[1]
    if not math.isfinite(occluded) or occluded != int(occluded):
        raise ValueError(f"{where}: occluded must be an integer, got {tokens[2]!r}")
    try:
        return KittiObject(
            type=tokens[0],
            truncated=nums[0],
            occluded=int(occluded),
            alpha=nums[2],
            bbox=np.array(nums[3:7]),
            dims_hwl=np.array(nums[7:10]),
            location=np.array(nums[10:13]),
            ry=nums[13],
            score=nums[14] if len(nums) == 15 else None,
        )
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def read_labels(path: str | os.PathLike) -> list[KittiObject]:
    """Read a KITTI ``label_2`` (15 fields per line) or result file (16 fields, last is the score).

    Blank lines are skipped (an empty file is a frame without objects: ``[]``); DontCare lines are returned like
    any other object.

    Raises:
        ValueError: a line is not UTF-8 text, has the wrong field count, a non-numeric field or a NaN / inf value
            (names file and line).
    """
    path = os.fspath(path)
    objects = []
    for lineno, line in text_lines(path):
        tokens = line.split()
        if tokens:
            objects.append(_parse_line(tokens, f"{path}:{lineno}"))
    return objects


def write_labels(path: str | os.PathLike, objects: list[KittiObject]) -> None:
    """Write objects in the KITTI label / result format.

    Geometry fields get 2 decimals, as the official devkit writes them; ``occluded`` is an integer. The file is
    replaced atomically (:mod:`seqcore.atomic`).
    The score, when present, is written as given (shortest exact repr, not rounded): ranking by
    score is what the evaluation uses, and rounding would create ties. Objects without a score give
    15-field (ground-truth style) lines.
    """
    lines = []
    for obj in objects:
        fields = [obj.type, f"{obj.truncated:.2f}", str(int(obj.occluded)), f"{obj.alpha:.2f}"]
        fields += [f"{v:.2f}" for v in (*obj.bbox, *obj.dims_hwl, *obj.location, obj.ry)]
        if obj.score is not None:
            fields.append(repr(float(obj.score)))
        lines.append(" ".join(fields) + "\n")
    atomic_write_text(path, "".join(lines))


# Official KITTI object-benchmark difficulty thresholds (easy, moderate, hard).
_MIN_HEIGHT = (40.0, 25.0, 25.0)
_MAX_OCCLUSION = (0, 1, 2)
_MAX_TRUNCATION = (0.15, 0.3, 0.5)


def difficulty(obj: KittiObject) -> int:
    """KITTI difficulty of a ground-truth object: 0 easy, 1 moderate, 2 hard, -1 none.

    The easiest level whose limits the object meets: 2-D box height (bottom - top) strictly above the
    minimum (the devkit ignores ``height <= MIN_HEIGHT``), occlusion and truncation at most the maxima.
    ``DontCare`` regions are never assigned a difficulty.
    """
    if obj.type == "DontCare":
        return -1
    height = float(obj.bbox[3] - obj.bbox[1])
    for level in range(3):
        if (height > _MIN_HEIGHT[level]
                and obj.occluded <= _MAX_OCCLUSION[level]
                and obj.truncated <= _MAX_TRUNCATION[level]):
            return level
    return -1
