"""KITTI object-benchmark calibration: LiDAR <-> rectified camera <-> image (left colour camera, P2).

Frames (KITTI conventions):
  * LiDAR (velodyne): x forward, y left, z up.
  * reference camera 0: x right, y down, z forward; reached from LiDAR by ``Tr_velo_to_cam``.
  * rectified camera: reference camera rotated by ``R0_rect``; all KITTI label locations live here.
  * image 2: rectified points projected with ``P2`` (3x4).

Everything is computed in numpy float64: the calibration matrices are given with ~13 significant
digits and the inverse transform must round-trip to ~1e-12, which float32 cannot hold.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from pointcloud.kitti_io import text_lines
from seqcore.atomic import atomic_write_text

__all__ = ["Calibration"]

# Number of values each known key carries in a KITTI object calib file. Unknown keys are ignored
# (other KITTI splits add keys), but a known key with the wrong count is an error.
_EXPECTED_COUNTS = {"P0": 12, "P1": 12, "P2": 12, "P3": 12, "R0_rect": 9, "Tr_velo_to_cam": 12, "Tr_imu_to_velo": 12}
_REQUIRED = ("P2", "R0_rect", "Tr_velo_to_cam")


def _as_points(points: np.ndarray, name: str = "points") -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {tuple(pts.shape)}")
    return pts


@dataclass(eq=False)  # numpy fields make the generated __eq__ ambiguous
class Calibration:
    """Calibration of one KITTI frame.

    Attributes:
        P2: (3, 4) projection matrix of the left colour camera (rectified frame -> image).
        R0_rect: (3, 3) rectifying rotation (reference camera -> rectified camera).
        Tr_velo_to_cam: (3, 4) rigid transform LiDAR -> reference camera.
    """

    P2: np.ndarray
    R0_rect: np.ndarray
    Tr_velo_to_cam: np.ndarray
    # 4x4 homogeneous LiDAR -> rectified transform and its inverse, cached because every box and
    # point conversion needs them.
    _lidar_to_rect: np.ndarray = field(init=False, repr=False, compare=False)
    _rect_to_lidar: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, shape in (("P2", (3, 4)), ("R0_rect", (3, 3)), ("Tr_velo_to_cam", (3, 4))):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != shape:
                raise ValueError(f"Calibration.{name} must have shape {shape}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"Calibration.{name} contains NaN or inf")
            setattr(self, name, arr)
        r0 = np.eye(4)
        r0[:3, :3] = self.R0_rect
        tr = np.eye(4)
        tr[:3, :] = self.Tr_velo_to_cam
        self._lidar_to_rect = r0 @ tr
        # A general inverse rather than the rigid-body transpose formula: the stored matrices are only
        # approximately orthonormal, and the exact inverse is what makes round trips exact.
        try:
            self._rect_to_lidar = np.linalg.inv(self._lidar_to_rect)
        except np.linalg.LinAlgError as exc:
            raise ValueError("Calibration: R0_rect @ Tr_velo_to_cam is singular") from exc

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Calibration":
        """Read a KITTI object calib file (``KEY: v1 v2 ...`` per line).

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: a line is not UTF-8 text, is malformed or holds NaN / inf (names the file and 1-based
                line number), or one of ``P2``, ``R0_rect``, ``Tr_velo_to_cam`` is missing (an empty file too).
        """
        path = os.fspath(path)
        values: dict[str, np.ndarray] = {}
        for lineno, raw in text_lines(path):
            line = raw.strip()
            if not line:
                continue
            key, sep, rest = line.partition(":")
            key = key.strip()
            if not sep or not key:
                raise ValueError(f"{path}:{lineno}: expected 'KEY: numbers', got {line[:80]!r}")
            try:
                nums = np.array([float(tok) for tok in rest.split()], dtype=np.float64)
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: non-numeric value in {key!r}: {exc}") from None
            expected = _EXPECTED_COUNTS.get(key)
            if expected is not None and nums.size != expected:
                raise ValueError(f"{path}:{lineno}: {key} needs {expected} values, got {nums.size}")
            if not np.isfinite(nums).all():
                raise ValueError(f"{path}:{lineno}: {key} holds NaN or inf: {rest.strip()[:80]!r}")
            if key in values:
                raise ValueError(f"{path}:{lineno}: duplicate key {key!r}")
            values[key] = nums
        missing = [k for k in _REQUIRED if k not in values]
        if missing:
            raise ValueError(f"{path}: missing calibration key(s) {missing}")
        return cls(
            P2=values["P2"].reshape(3, 4),
            R0_rect=values["R0_rect"].reshape(3, 3),
            Tr_velo_to_cam=values["Tr_velo_to_cam"].reshape(3, 4),
        )

    @property
    def lidar_to_rect_matrix(self) -> np.ndarray:
        """(4, 4) homogeneous transform LiDAR -> rectified camera (float64 copy)."""
        return self._lidar_to_rect.copy()

    @property
    def rect_to_lidar_matrix(self) -> np.ndarray:
        """(4, 4) homogeneous transform rectified camera -> LiDAR (exact inverse, float64 copy)."""
        return self._rect_to_lidar.copy()

    def lidar_to_rect(self, points: np.ndarray) -> np.ndarray:
        """LiDAR points (N, 3) -> rectified-camera points (N, 3), float64."""
        pts = _as_points(points)
        m = self._lidar_to_rect
        return pts @ m[:3, :3].T + m[:3, 3]

    def rect_to_lidar(self, points: np.ndarray) -> np.ndarray:
        """Rectified-camera points (N, 3) -> LiDAR points (N, 3), float64."""
        pts = _as_points(points)
        m = self._rect_to_lidar
        return pts @ m[:3, :3].T + m[:3, 3]

    def rect_to_image(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project rectified-camera points (N, 3) with P2.

        Returns:
            pixels: (N, 2) image coordinates (u, v), float64.
            depth: (N,) depth in the rectified camera frame (z minus P2's small baseline term, as
                OpenPCDet reports it). Points with depth <= 0 are behind the camera and their pixels
                are meaningless.
        """
        pts = _as_points(points)
        proj = pts @ self.P2[:, :3].T + self.P2[:, 3]
        with np.errstate(divide="ignore", invalid="ignore"):
            pixels = proj[:, :2] / proj[:, 2:3]
        depth = proj[:, 2] - self.P2[2, 3]
        return pixels, depth

    def lidar_to_image(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """LiDAR points (N, 3) -> (pixels (N, 2), depth (N,)); see :meth:`rect_to_image`."""
        return self.rect_to_image(self.lidar_to_rect(points))

    def to_text(self, extra: dict[str, np.ndarray] | None = None) -> str:
        """This calibration as KITTI object calib-file text (``KEY: v1 v2 ...``, ``%.12e`` values).

        Args:
            extra: further keys to write (e.g. ``P0``, ``P1``, ``P3``, ``Tr_imu_to_velo``, which
                this class does not hold); keys KITTI knows are checked for their value count.
                Known keys are written in KITTI's order, unknown ones after them.

        Returns:
            Text that :meth:`from_file` reads back to this calibration.
        """
        values = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in (extra or {}).items()}
        for key in _REQUIRED:
            if key in values:
                raise ValueError(f"extra must not contain {key!r}; it is part of the Calibration")
        values.update(P2=self.P2.reshape(-1), R0_rect=self.R0_rect.reshape(-1), Tr_velo_to_cam=self.Tr_velo_to_cam.reshape(-1))
        for key, vals in values.items():
            expected = _EXPECTED_COUNTS.get(key)
            if expected is not None and vals.size != expected:
                raise ValueError(f"{key} needs {expected} values, got {vals.size}")
        order = [k for k in _EXPECTED_COUNTS if k in values] + [k for k in values if k not in _EXPECTED_COUNTS]
        return "".join(key + ": " + " ".join(f"{v:.12e}" for v in values[key]) + "\n" for key in order)

    def write(self, path: str | os.PathLike, extra: dict[str, np.ndarray] | None = None) -> None:
        """Write :meth:`to_text` to ``path`` (atomically, :mod:`seqcore.atomic`)."""
        atomic_write_text(path, self.to_text(extra))
