"""LION (linear group RNN for 3-D detection) on ``seqcore.nn`` mixers.

Sparse voxels are serialized in X- and Y-ordered windows, cut into large groups and mixed by a linear-RNN
operator chosen by name; a 3-D spatial descriptor restores local structure before every merge; voxel
generation densifies the foreground; a CenterPoint-style head detects on the dense BEV map.

- :class:`LIONConfig`: the whole detector (``LIONConfig.kitti()`` is the paper's KITTI setting, ``.small()``
  trains on a CPU, ``.tiny()`` for tests); :class:`LIONDetector` (``forward`` / ``loss`` / ``predict`` /
  ``save`` / ``load``).
- Backbone pieces: :class:`LIONBackbone`, :class:`LIONBlock`, :class:`LIONLayer`, :class:`SpatialDescriptor`,
  :class:`CenterHead`.
- :func:`partition`: X- / Y-ordered window serialization of sparse voxels ``(V, 4)`` ``(batch, z, y, x)``, cut
  into groups packed with ``cu_seqlens``.
- :func:`merge_voxels` / :func:`expand_voxels`: the U-shaped downsampling inside a block and its way back.
- :func:`generate_voxels`: foreground voxels spawn empty diagonal neighbours for later layers to fill.
- :func:`to_batch`, :func:`detect`, :func:`evaluate_detector`: from sample dicts to tensors, detections and
  KITTI AP.
"""
from .backbone import LIONBackbone, LIONBlock, SparseBEV
from .config import LIONConfig
from .descriptor import SpatialDescriptor
from .detector import LIONDetector, dense_bev
from .head import CenterHead
from .layer import LIONLayer
from .partition import Partition, group_offsets, partition
from .training import detect, evaluate_detector, to_batch
from .voxel_ops import Merge, expand_voxels, generate_voxels, merge_voxels

__all__ = [
    "CenterHead", "LIONBackbone", "LIONBlock", "LIONConfig", "LIONDetector", "LIONLayer", "Merge", "Partition",
    "SparseBEV", "SpatialDescriptor", "dense_bev", "detect", "evaluate_detector", "expand_voxels",
    "generate_voxels", "group_offsets", "merge_voxels", "partition", "to_batch",
]
