"""LION (linear group RNN for 3-D detection), built on ``seqcore.nn`` mixers; in progress (see issue 9).

- :func:`partition`: X- / Y-ordered window serialization of sparse voxels, cut into groups packed with
  ``cu_seqlens``.
- :func:`merge_voxels` / :func:`expand_voxels`: the U-shaped downsampling inside a block and its way back.
- :func:`generate_voxels`: foreground voxels spawn empty diagonal neighbours for later layers to fill.
"""
from .partition import Partition, group_offsets, partition
from .voxel_ops import Merge, expand_voxels, generate_voxels, merge_voxels

__all__ = ["Merge", "Partition", "expand_voxels", "generate_voxels", "group_offsets", "merge_voxels", "partition"]
