"""Point-cloud foundations for 3-D detection on a CPU or a GPU (OpenPCDet conventions), and later LION.

Points are ``(N, 3 + C)`` float32 in the LiDAR frame (KITTI ``.bin``: x, y, z, intensity); boxes are ``(M, 7)``
``(x, y, z, dx, dy, dz, heading)`` in the LiDAR frame with z at the box centre.

- Data: :class:`KittiDataset` (KITTI folders), :class:`SyntheticScenes` (seeded LiDAR scenes, also written in
  KITTI layout), :mod:`pointcloud.augment` (flip, rotation, scaling, translation, object noise, ground-truth
  sampling), :func:`collate`; :mod:`pointcloud.kitti_io` and :class:`Calibration` for the files.
- Boxes: :func:`boxes_lidar_to_camera` / :func:`boxes_camera_to_lidar`, :func:`box_corners`,
  :func:`points_in_boxes`; rotated :func:`bev_iou` / :func:`iou_3d` and :func:`nms_rotated` in pure PyTorch.
- Voxels: :func:`voxelize` (dynamic) and :class:`DynamicVFE`; spconv's sparse convolutions train on the CPU, with
  the same result at every thread count, once ``pointcloud`` is imported (:func:`apply_cpu_backward_patch`,
  :func:`apply_cpu_thread_patch`).
- Evaluation: :func:`evaluate` (the KITTI devkit's 2-D / BEV / 3-D AP|R40 and R11 and AOS per difficulty;
  ``method="exact_recall"`` is a documented deviation) and KITTI result files.
- :func:`plot_bev` / :func:`save_bev`: bird's-eye views.
"""
# Named before any import below fails on a bare module name (docs/install.md).
from seqcore.extras import require_extra

require_extra("pointcloud")

from .augment import (
    Compose,
    GTDatabase,
    GTSampling,
    ObjectNoise,
    RandomFlip,
    RandomRotation,
    RandomScaling,
    RandomTranslation,
)
from .boxes import box_corners, boxes_camera_to_lidar, boxes_lidar_to_camera, limit_period, points_in_boxes
from .calibration import Calibration
from .data import KittiDataset, collate
from .evaluation import FrameBoxes, KittiEvaluation, evaluate, read_result_files, write_result_files
from .iou import bev_iou, bev_iou_aligned, iou_3d, iou_3d_aligned
from .kitti_io import KittiObject, read_labels, read_points, write_labels, write_points
from .nms import multiclass_nms, nms_rotated
from .spconv_cpu import apply_cpu_backward_patch, apply_cpu_thread_patch
from .synthetic import SyntheticScenes
from .viz import plot_bev, save_bev
from .voxels import DynamicVFE, VoxelGrid, Voxels, voxelize

# spconv's CPU build fails every backward pass by asking for a CUDA stream, and its CPU scatter-add races between
# threads; the guarded patches fix both once, here, so any spconv layer a user builds after importing pointcloud
# trains on the CPU and gives the same result at every thread count.
apply_cpu_backward_patch()
apply_cpu_thread_patch()

__all__ = [
    "Calibration", "Compose", "DynamicVFE", "FrameBoxes", "GTDatabase", "GTSampling", "KittiDataset",
    "KittiEvaluation", "KittiObject", "ObjectNoise", "RandomFlip", "RandomRotation", "RandomScaling",
    "RandomTranslation", "SyntheticScenes", "VoxelGrid", "Voxels", "apply_cpu_backward_patch",
    "apply_cpu_thread_patch", "bev_iou", "bev_iou_aligned", "box_corners", "boxes_camera_to_lidar",
    "boxes_lidar_to_camera", "collate", "evaluate", "iou_3d", "iou_3d_aligned", "limit_period", "multiclass_nms",
    "nms_rotated", "plot_bev", "points_in_boxes", "read_labels", "read_points", "read_result_files", "save_bev",
    "voxelize", "write_labels", "write_points", "write_result_files",
]
