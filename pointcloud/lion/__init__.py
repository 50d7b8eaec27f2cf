"""LION (linear group RNN for 3-D detection), built on ``seqcore.nn`` mixers; in progress (see issue 9).

- :func:`partition`: X- / Y-ordered window serialization of sparse voxels, cut into groups packed with
  ``cu_seqlens``.
"""
from .partition import Partition, group_offsets, partition

__all__ = ["Partition", "group_offsets", "partition"]
