"""KITTI object-detection dataset and batch collation in OpenPCDet conventions.

Layout read (the official KITTI object benchmark tree, as OpenPCDet's ``data/kitti``)::

    root/ImageSets/{train,val,trainval,test}.txt   one frame id per line, one file per split
    root/training/velodyne/<id>.bin          (N, 4) float32 x, y, z, intensity (LiDAR frame)
    root/training/label_2/<id>.txt           camera-frame labels (15 fields per line)
    root/training/calib/<id>.txt             P0-P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo
    root/testing/{velodyne,calib}/<id>.*     the test split's frames: no label_2 (KITTI keeps those labels)

Splits ``train``, ``val`` and ``trainval`` list frames of ``training/``; ``test`` lists frames of ``testing/``;
``split=None`` reads every ``training/velodyne`` scan (a folder without ImageSets). Images (``image_2``) are not
read. Every sample is a dict of numpy arrays (plus the frame's :class:`Calibration`); :func:`collate` stacks a
list of them into OpenPCDet's batch layout. Boxes are ``(M, 7) (x, y, z, dx, dy, dz, heading)`` in the LiDAR
frame with z at the box centre.
"""
from __future__ import annotations

import math
import operator
import os
from typing import Any, Callable, Sequence

import numpy as np
import torch

from pointcloud.boxes import boxes_camera_to_lidar, points_in_boxes
from pointcloud.calibration import Calibration
from pointcloud.evaluation import FrameBoxes, frame_from_labels
from pointcloud.kitti_io import KittiObject, check_frame_id, difficulty, read_labels, read_points, text_lines
from seqcore.ops.validation import check_bool

__all__ = ["KittiDataset", "collate", "IMAGE_SIZE", "KITTI_CLASSES", "SPLITS"]

# (width, height) of KITTI image 2. Real frames vary by a few pixels (1224..1242 x 370..376); the fixed
# nominal size keeps the FOV crop independent of the images, which this dataset does not read.
IMAGE_SIZE = (1242, 375)

# Every class name a KITTI object label can carry (DontCare handled separately).
KITTI_CLASSES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc")

# The KITTI splits (OpenPCDet's ImageSets names) and the folder each one's frames live in. KITTI ships the test
# split's scans and calibrations but keeps its labels for the benchmark server.
SPLITS = ("train", "val", "trainval", "test")
_FOLDER = {"train": "training", "val": "training", "trainval": "training", "test": "testing", None: "training"}


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 7), dtype=np.float32)


def _camera_boxes(objects: Sequence[KittiObject]) -> np.ndarray:
    """KITTI objects -> (M, 7) float64 camera boxes ``(x, y, z, l, h, w, ry)`` (bottom centre, rect frame)."""
    if not objects:
        return np.zeros((0, 7), dtype=np.float64)
    rows = []
    for obj in objects:
        h, w, l = obj.dims_hwl
        rows.append([*obj.location, l, h, w, obj.ry])
    return np.asarray(rows, dtype=np.float64)


def _objects_to_lidar(objects: Sequence[KittiObject], calib: Calibration, where: str) -> np.ndarray:
    """Real objects -> (M, 7) float32 LiDAR boxes via :func:`boxes_camera_to_lidar` (float64 inside)."""
    if not objects:
        return _empty_boxes()
    try:
        boxes = boxes_camera_to_lidar(torch.from_numpy(_camera_boxes(objects)), calib)
    except ValueError as exc:  # e.g. a label with a non-positive size: say which file it came from
        raise ValueError(f"{where}: {exc}") from None
    return boxes.numpy().astype(np.float32)


def _dontcare_to_lidar(objects: Sequence[KittiObject], calib: Calibration) -> np.ndarray:
    """DontCare regions -> (D, 7) float32 LiDAR boxes, same formula as :func:`boxes_camera_to_lidar`.

    KITTI writes placeholder 3-D fields on DontCare lines (size -1, location -1000, ry -10), which
    :func:`boxes_camera_to_lidar` rightly rejects; they are transformed here without the size check so
    the array has the documented shape. Only their 2-D boxes (``dontcare_bbox``) carry meaning: the
    KITTI evaluation ignores detections that overlap them in the image.
    """
    if not objects:
        return _empty_boxes()
    cam = _camera_boxes(objects)
    l, h, w, ry = cam[:, 3], cam[:, 4], cam[:, 5], cam[:, 6]
    bottom = calib.rect_to_lidar(cam[:, :3])
    centre = bottom + np.stack([np.zeros_like(h), np.zeros_like(h), h / 2], axis=1)
    heading = -(math.pi / 2 + ry)
    return np.concatenate([centre, np.stack([l, w, h, heading], axis=1)], axis=1).astype(np.float32)


def _bbox(objects: Sequence[KittiObject]) -> np.ndarray:
    """(M, 4) float32 2-D boxes ``(left, top, right, bottom)`` in image-2 pixels."""
    if not objects:
        return np.zeros((0, 4), dtype=np.float32)
    return np.stack([obj.bbox for obj in objects]).astype(np.float32)


def range_mask(points: np.ndarray, point_cloud_range: Sequence[float]) -> np.ndarray:
    """(N,) bool: points inside ``[x0, x1) x [y0, y1) x [z0, z1)``.

    Half-open and compared in float64, exactly like :func:`pointcloud.voxels.voxelize`, so every point the
    dataset keeps lands in a voxel and none is dropped later.
    """
    xyz = points[:, :3].astype(np.float64)
    lo = np.asarray(point_cloud_range[:3], dtype=np.float64)
    hi = np.asarray(point_cloud_range[3:], dtype=np.float64)
    return np.all((xyz >= lo) & (xyz < hi), axis=1)


def fov_mask(points: np.ndarray, calib: Calibration, image_size: tuple[int, int] = IMAGE_SIZE) -> np.ndarray:
    """(N,) bool: points in front of camera 2 whose projection falls inside the image.

    ``0 <= u < width``, ``0 <= v < height`` and depth ``>= 0`` (OpenPCDet's ``get_fov_flag`` rule). KITTI
    labels only cover objects visible in the front camera, so points outside its view would be unlabeled
    background (and the rear half of a 360-degree scan at that).
    """
    if points.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    pixels, depth = calib.lidar_to_image(points[:, :3])
    width, height = image_size
    with np.errstate(invalid="ignore"):  # depth-0 points give NaN pixels; NaN compares False
        return ((pixels[:, 0] >= 0) & (pixels[:, 0] < width)
                & (pixels[:, 1] >= 0) & (pixels[:, 1] < height) & (depth >= 0))


class KittiDataset:
    """KITTI object-detection frames of one split as OpenPCDet-style sample dicts.

    Args:
        root: KITTI object root, the folder holding ``training/`` (and ``testing/``, ``ImageSets/``); not a
            split folder such as ``root/training`` itself.
        split: which frames, OpenPCDet's KITTI splits:

            - ``"train"``, ``"val"``, ``"trainval"``: the ids in ``root/ImageSets/<split>.txt``, files under
              ``root/training/``;
            - ``"test"``: the ids in ``root/ImageSets/test.txt``, files under ``root/testing/`` (``velodyne``,
              ``calib``). KITTI's test frames have no labels: their samples hold only ``frame_id``, ``points``
              and ``calib``, :attr:`has_labels` is False and :meth:`ground_truth` refuses them;
            - ``None``: every ``root/training/velodyne/*.bin`` id, sorted (a folder without ImageSets, such as
              one frame copied out of KITTI). No ImageSets file is read.

            A named split's ImageSets file must exist: without it the split is undefined (using every frame
            would turn ``"val"`` into the training set), so that is an error, never a fallback.
        classes: classes kept as ground truth, in class-index order (index ``i`` -> ``i + 1`` in
            ``gt_classes`` / :func:`collate`; 0 is padding).
        point_cloud_range: ``(x0, y0, z0, x1, y1, z1)``; points outside are dropped (half-open, as the
            voxelizer). Boxes are *not* filtered by the range: evaluation needs every labelled object.
        fov_only: also drop points that do not project into the 1242x375 image of camera 2 (in front of
            it); KITTI labels only cover the front camera's view.
        transform: ``callable(dict) -> dict`` applied last (augmentation). A transform that drops boxes
            must drop the matching rows of ``gt_names`` / ``gt_classes`` too.
        calibration: one calibration for every frame instead of each frame's ``calib/<id>.txt`` (the
            ``calib`` folder is then not read and need not exist). Only right for data recorded with that
            calibration, e.g. :meth:`~pointcloud.synthetic.SyntheticScenes.write_kitti`'s; real KITTI frames
            each have their own.

    Raises:
        ValueError: unknown split, ``classes`` empty / containing duplicates or ``DontCare``, a bad range;
            ``root`` holding ``velodyne/`` itself (a split folder: pass the root above it); an ImageSets file
            that is not UTF-8 text, lists no frame, lists one twice, has more than one id on a line or an id
            that is not a plain frame name (``../..``, an absolute path, ``a/b``: ids become file names, so
            these would leave the dataset root) -- each naming the file and line; no ``.bin`` scan at all with
            ``split=None``.
        TypeError: ``fov_only`` not a bool, ``transform`` not callable, ``calibration`` not a
            :class:`Calibration`.
        FileNotFoundError: ``root``, the split's ImageSets file (the message says how to make one, or to pass
            ``split=None``), a needed sub-folder, or a listed frame's file is missing (the message names the
            path).

    Reading a frame (``dataset[i]``) raises ValueError naming the file (and line) on a malformed scan, label
    or calib file: see :func:`~pointcloud.kitti_io.read_points`, :func:`~pointcloud.kitti_io.read_labels`,
    :meth:`~pointcloud.calibration.Calibration.from_file`.

    Each sample (``dataset[i]``) holds ``frame_id`` str, ``points`` (N, 4) float32 (cropped) and ``calib`` the
    frame's :class:`Calibration`. Samples of a labelled split (all but ``"test"``) also hold, with M kept
    objects and D DontCare regions:
        ``gt_boxes`` (M, 7) float32 LiDAR boxes; ``gt_names`` (M,) str; ``gt_classes`` (M,) int64 1-based
        index into ``classes``; ``difficulty`` (M,) int64 (0 easy, 1 moderate, 2 hard, -1 none);
        ``truncated`` (M,) float32; ``occluded`` (M,) int64; ``alpha`` (M,) float32; ``bbox`` (M, 4) float32;
        ``num_points_in_gt`` (M,) int64 counted in the returned (cropped) points; ``other_boxes`` (K, 7)
        float32, ``other_names`` (K,) str, ``other_bbox`` (K, 4) float32 for labelled objects of other classes
        (the KITTI evaluation neither rewards nor penalises detections of e.g. a Car on a Van, and
        ignores Person_sitting for Pedestrian, so it needs them); ``dontcare_boxes`` (D, 7) float32,
        ``dontcare_bbox`` (D, 4) float32.

    Attributes:
        frame_ids: the split's frame ids, in ImageSets order (sorted for ``split=None``).
        has_labels: False for the ``"test"`` split, True otherwise.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = "train",
        *,
        classes: Sequence[str] = ("Car", "Pedestrian", "Cyclist"),
        point_cloud_range: Sequence[float] = (0, -40, -3, 70.4, 40, 1),
        fov_only: bool = True,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None (every scan under training/), got {split!r}")
        classes = tuple(classes)
        if not classes or len(set(classes)) != len(classes) or "DontCare" in classes:
            raise ValueError(f"classes must be non-empty, unique and not include DontCare, got {classes}")
        pcr = tuple(float(v) for v in point_cloud_range)
        if len(pcr) != 6 or not all(math.isfinite(v) for v in pcr) or not all(pcr[a + 3] > pcr[a] for a in range(3)):
            raise ValueError(f"point_cloud_range must be 6 finite values (x0, y0, z0, x1, y1, z1) with max > min, "
                             f"got {pcr}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable (sample dict -> sample dict) or None, got "
                            f"{type(transform).__name__}")
        if calibration is not None and not isinstance(calibration, Calibration):
            raise TypeError(f"calibration must be a Calibration or None (read calib/<id>.txt), got "
                            f"{type(calibration).__name__}")

        self.root = os.fspath(root)
        self.split = split
        self.classes = classes
        self.point_cloud_range = pcr
        self.fov_only = check_bool("fov_only", fov_only)
        self.transform = transform
        self.calibration = calibration
        self.has_labels = split != "test"

        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"KITTI root folder not found: {self.root}")
        if os.path.isdir(os.path.join(self.root, "velodyne")):
            raise ValueError(f"{self.root} holds velodyne/ itself: it is a split folder, not the KITTI root; pass "
                             f"the folder above it ({os.path.dirname(os.path.abspath(self.root))}) and choose the "
                             f"split with split=")
        folder = _FOLDER[split]
        subs = ("velodyne",) + ("label_2",) * self.has_labels + ("calib",) * (calibration is None)
        self._dirs = {}
        for sub in subs:
            path = os.path.join(self.root, folder, sub)
            if not os.path.isdir(path):
                raise FileNotFoundError(f"KITTI folder not found: {path} (expected root/{folder}/{sub})")
            self._dirs[sub] = path

        velodyne = self._dirs["velodyne"]
        if split is None:
            source = velodyne
            ids = sorted(name[:-4] for name in os.listdir(velodyne) if name.endswith(".bin"))
            if not ids:
                raise ValueError(f"{velodyne}: holds no .bin scan")
        else:
            source = os.path.join(self.root, "ImageSets", f"{split}.txt")
            if not os.path.isfile(source):
                raise FileNotFoundError(
                    f"KITTI image set not found: {source}, so split {split!r} lists no frames; write it (one frame "
                    f"id of root/{folder}/velodyne per line), or pass split=None to read every scan in {velodyne}")
            ids = _read_image_set(source)
        self.frame_ids: list[str] = ids
        # Check every frame's files now: failing at construction beats failing epochs into training.
        for fid in ids:
            for sub in self._dirs:
                path = self._path(sub, fid)
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"KITTI file not found: {path} (frame {fid!r} listed by {source})")

    def _path(self, sub: str, frame_id: str) -> str:
        """The path of one frame's file in sub-folder ``sub`` (``velodyne``, ``label_2`` or ``calib``)."""
        return os.path.join(self._dirs[sub], f"{frame_id}{'.bin' if sub == 'velodyne' else '.txt'}")

    def _calib(self, frame_id: str) -> Calibration:
        if self.calibration is not None:
            return self.calibration
        return Calibration.from_file(self._path("calib", frame_id))

    def __len__(self) -> int:
        return len(self.frame_ids)

    def _frame_id(self, index: int) -> str:
        if isinstance(index, bool):  # True would silently read frame 1
            raise TypeError("index must be an integer, got bool")
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"index must be an integer, got {type(index).__name__}") from None
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        return self.frame_ids[index]

    def ground_truth(self, index: int) -> FrameBoxes:
        """Frame ``index``'s evaluation ground truth: every labelled object (all classes, DontCare included) as
        :func:`pointcloud.evaluation.evaluate` expects it.

        Raises:
            ValueError: the ``"test"`` split, whose frames have no labels.
        """
        if not self.has_labels:
            raise ValueError(f"split {self.split!r} has no labels (KITTI's testing/ folder has no label_2), so "
                             "there is no ground truth to evaluate against; evaluate on 'val' (or 'train', "
                             "'trainval')")
        frame_id = self._frame_id(index)
        return frame_from_labels(read_labels(self._path("label_2", frame_id)), self._calib(frame_id))

    def __getitem__(self, index: int) -> dict[str, Any]:
        frame_id = self._frame_id(index)
        calib = self._calib(frame_id)

        points = read_points(self._path("velodyne", frame_id))  # (N, 4) float32, N may be 0 (0-byte file)
        keep = range_mask(points, self.point_cloud_range)
        if self.fov_only:
            keep &= fov_mask(points, calib)
        points = np.ascontiguousarray(points[keep], dtype=np.float32)

        sample: dict[str, Any] = {"frame_id": frame_id, "points": points}
        if self.has_labels:
            sample.update(self._labels(self._path("label_2", frame_id), points, calib))
        sample["calib"] = calib
        if self.transform is not None:
            sample = self.transform(sample)
        return sample

    def _labels(self, label_path: str, points: np.ndarray, calib: Calibration) -> dict[str, Any]:
        """The label fields of a sample (see the class docstring) from one ``label_2`` file."""
        objects = read_labels(label_path)
        gt = [o for o in objects if o.type in self.classes]
        dontcare = [o for o in objects if o.type == "DontCare"]
        other = [o for o in objects if o.type not in self.classes and o.type != "DontCare"]

        gt_boxes = _objects_to_lidar(gt, calib, label_path)
        if len(gt):
            # Counted in the returned points (OpenPCDet counts in the FOV points too), so that the
            # database sampler / min-points filters see what the network sees.
            inside = points_in_boxes(torch.from_numpy(points[:, :3]), torch.from_numpy(gt_boxes))
            num_points = inside.sum(dim=1).numpy().astype(np.int64)
        else:
            num_points = np.zeros(0, dtype=np.int64)
        return {
            "gt_boxes": gt_boxes,
            "gt_names": np.array([o.type for o in gt], dtype=str),
            "gt_classes": np.array([self.classes.index(o.type) + 1 for o in gt], dtype=np.int64),
            "difficulty": np.array([difficulty(o) for o in gt], dtype=np.int64),
            "truncated": np.array([o.truncated for o in gt], dtype=np.float32),
            "occluded": np.array([o.occluded for o in gt], dtype=np.int64),
            "alpha": np.array([o.alpha for o in gt], dtype=np.float32),
            "bbox": _bbox(gt),
            "num_points_in_gt": num_points,
            "other_boxes": _objects_to_lidar(other, calib, label_path),
            "other_names": np.array([o.type for o in other], dtype=str),
            "other_bbox": _bbox(other),
            "dontcare_boxes": _dontcare_to_lidar(dontcare, calib),
            "dontcare_bbox": _bbox(dontcare),
        }


def _read_image_set(path: str) -> list[str]:
    """The frame ids of an ImageSets file: one plain frame name per line, blank lines skipped, none twice."""
    ids: dict[str, int] = {}
    for lineno, line in text_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) != 1:
            raise ValueError(f"{path}:{lineno}: expected one frame id per line, got {len(tokens)} fields")
        frame_id = check_frame_id(tokens[0], f"{path}:{lineno}: ")
        if frame_id in ids:
            raise ValueError(f"{path}:{lineno}: frame id {frame_id!r} is listed twice (first on line {ids[frame_id]})")
        ids[frame_id] = lineno
    if not ids:
        raise ValueError(f"{path}: lists no frames")
    return list(ids)


def collate(samples: Sequence[dict[str, Any]], classes: Sequence[str] | None = None) -> dict[str, Any]:
    """Stack samples into OpenPCDet's batch layout (numpy arrays; move to torch/GPU afterwards).

    Args:
        samples: B sample dicts as :class:`KittiDataset` returns.
        classes: only needed for samples without ``gt_classes`` (e.g. built by hand): class names in
            index order, used to map ``gt_names`` to 1-based indices.

    Returns:
        ``points`` (sum N, 5) float32 ``[batch, x, y, z, intensity]``; ``gt_boxes`` (B, max M, 8) float32,
        the last column the 1-based class index, rows past a sample's M all zero (class 0 = padding;
        max M may be 0), only when the samples carry labels (``"test"`` split samples have none);
        ``frame_id`` list of B str; ``batch_size`` int B; every other field a list of B per-sample values.

    Raises:
        ValueError: empty ``samples``, labelled and unlabelled samples mixed, or a gt name not in ``classes``
            when ``gt_classes`` is absent.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    batch_size = len(samples)

    point_parts = []
    for b, s in enumerate(samples):
        pts = np.asarray(s["points"], dtype=np.float32).reshape(-1, 4)
        point_parts.append(np.concatenate([np.full((len(pts), 1), b, dtype=np.float32), pts], axis=1))
    batch: dict[str, Any] = {"points": np.concatenate(point_parts, axis=0)}

    unlabelled = [b for b, s in enumerate(samples) if "gt_boxes" not in s]
    if unlabelled and len(unlabelled) < batch_size:
        raise ValueError(f"samples {unlabelled} have no gt_boxes (unlabelled frames, e.g. of the KITTI 'test' "
                         "split) but the others have: batch labelled and unlabelled frames apart")
    if not unlabelled:
        batch["gt_boxes"] = _stack_boxes(samples, classes)
    batch["frame_id"] = [s["frame_id"] for s in samples]
    batch["batch_size"] = batch_size
    for key in samples[0]:
        if key not in batch:
            batch[key] = [s.get(key) for s in samples]
    return batch


def _stack_boxes(samples: Sequence[dict[str, Any]], classes: Sequence[str] | None) -> np.ndarray:
    """(B, max M, 8) float32: each sample's ``gt_boxes`` and 1-based class index, zero-padded (see :func:`collate`)."""
    batch_size = len(samples)
    max_m = max(len(s["gt_boxes"]) for s in samples)
    gt_boxes = np.zeros((batch_size, max_m, 8), dtype=np.float32)
    for b, s in enumerate(samples):
        m = len(s["gt_boxes"])
        if not m:
            continue
        if "gt_classes" in s:
            cls = np.asarray(s["gt_classes"])
        elif classes is not None:
            unknown = sorted(str(n) for n in set(s["gt_names"]) - set(classes))
            if unknown:
                raise ValueError(f"sample {b}: gt names {unknown} not in classes {tuple(classes)}")
            cls = np.array([list(classes).index(n) + 1 for n in s["gt_names"]])
        else:
            raise ValueError(f"sample {b} has no gt_classes; pass classes= to map gt_names")
        gt_boxes[b, :m, :7] = s["gt_boxes"]
        gt_boxes[b, :m, 7] = cls
    return gt_boxes
