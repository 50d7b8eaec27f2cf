"""LION 3-D object detection on point clouds, built on seqcore (see the pointcloud issues)."""
