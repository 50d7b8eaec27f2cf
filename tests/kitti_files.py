"""KITTI files the point-cloud tests share: where the shared real frame lives, and a calibration text."""
from __future__ import annotations

import os

from conftest import SHARED_DATA

KITTI_SAMPLE = os.path.join(SHARED_DATA, "kitti_sample")
FRAME = "000008"

# A realistic calibration (frame 000008's numbers, rounded) with every key a KITTI calib file has, so tests that
# write their own KITTI trees need no data files.
CALIB_TEXT = """\
P0: 721.5377 0 609.5593 0 0 721.5377 172.854 0 0 0 1 0
P1: 721.5377 0 609.5593 -387.5744 0 721.5377 172.854 0 0 0 1 0
P2: 721.5377 0 609.5593 44.85728 0 721.5377 172.854 0.2163791 0 0 1 0.002745884
P3: 721.5377 0 609.5593 -339.5242 0 721.5377 172.854 2.199936 0 0 1 0.002729905
R0_rect: 0.9999239 0.00983776 -0.00744505 -0.0098698 0.9999421 -0.00427846 0.00740253 0.00435161 0.9999631
Tr_velo_to_cam: 0.00753374 -0.9999714 -0.0006166 -0.00406977 0.0148025 0.00072807 -0.9998902 -0.07631618 0.9998621 0.00752379 0.01480755 -0.2717806
Tr_imu_to_velo: 0.9999976 0.00075531 -0.00203583 -0.8086759 -0.0007854 0.9998898 -0.01482298 0.3195559 0.0020244 0.01482454 0.9998881 -0.7997231
"""
