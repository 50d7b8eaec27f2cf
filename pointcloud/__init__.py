"""Point-cloud foundations for 3-D detection (OpenPCDet conventions) and, later, the LION detector.

Points are ``(N, 3 + C)`` float32 in the LiDAR frame (KITTI ``.bin``: x, y, z, intensity); boxes are ``(M, 7)``
``(x, y, z, dx, dy, dz, heading)`` in the LiDAR frame with z at the box centre.

- :mod:`pointcloud.voxels`: dynamic voxelization (:func:`voxelize`) and the PointNet-style :class:`DynamicVFE`.
- :mod:`pointcloud.spconv_cpu`: makes spconv's sparse convolutions train on the CPU (applied on import).
"""
from .spconv_cpu import apply_cpu_backward_patch
from .voxels import DynamicVFE, VoxelGrid, Voxels, voxelize

# spconv's CPU build fails every backward pass by asking for a CUDA stream; the guarded patch fixes that once,
# here, so any spconv layer a user builds after importing pointcloud trains on the CPU.
apply_cpu_backward_patch()

__all__ = ["DynamicVFE", "VoxelGrid", "Voxels", "apply_cpu_backward_patch", "voxelize"]
