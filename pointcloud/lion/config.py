"""The configuration that describes a whole LION detector, with the paper's KITTI setting and CPU-sized ones."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from seqcore.nn import MIXERS
from seqcore.ops.validation import check_int

from ..voxels import VoxelGrid


# KITTI's mean (dx, dy, dz) per class and the centre height of such a box on a road 1.73 m below the LiDAR.
KITTI_PRIORS = {
    "Car": (3.9, 1.6, 1.56, -1.73 + 1.56 / 2),
    "Pedestrian": (0.8, 0.6, 1.73, -1.73 + 1.73 / 2),
    "Cyclist": (1.76, 0.6, 1.73, -1.73 + 1.73 / 2),
}


@dataclass
class LIONConfig:
    """Everything needed to rebuild a :class:`~pointcloud.lion.LIONDetector` (saved inside its checkpoints).

    Backbone: ``len(windows)`` LION blocks. Block ``i`` mixes voxels in windows of ``windows[i] = (wx, wy, wz)``
    voxels, cut into groups of ``group_sizes[i]``, with ``layers_per_block`` LION layers arranged as a U
    (the first at the block's resolution, each next one after a merge by ``block_stride``, then expanded back).
    Between blocks, z is halved (``(1, 1, 2)`` merge) and voxel generation adds foreground voxels.

    Attributes:
        point_cloud_range: ``[x0, y0, z0, x1, y1, z1]`` metres; voxel_size ``[vx, vy, vz]``.
        classes: detected classes, in heatmap channel order.
        class_priors: per class ``[dx, dy, dz, z]``: the typical size and box-centre height the head regresses
            from (KITTI's mean sizes on a road 1.73 m below the sensor by default); every class needs one.
        operator: the ``seqcore.nn`` mixer of every LION block, by name (``"mamba2"``, ``"gla"``, ``"retnet"``,
            ``"deltanet"``, ``"hgrn"``, ``"linear_attn"``, ``"attention"`` for the window-attention baseline, ...).
        mixer_kwargs: extra keyword arguments for that mixer.
        generate_ratio: fraction of voxels per sample that spawn diagonal neighbours between blocks
            (0 switches voxel generation off).
        bev_channels / bev_stride: the 2-D network's width and its output stride w.r.t. the voxel grid in BEV.
        head_channels: width of the shared head convolution.
        min_radius / min_overlap: CenterNet's Gaussian radius rule for the heatmap targets.
        reg_radius: cells around each object centre that regress its box (0: the centre cell only).
        score_threshold, nms_iou, max_detections: decoding.
    """

    point_cloud_range: list[float] = field(default_factory=lambda: [0.0, -40.0, -3.0, 70.4, 40.0, 1.0])
    voxel_size: list[float] = field(default_factory=lambda: [0.2, 0.2, 0.125])
    classes: list[str] = field(default_factory=lambda: ["Car", "Pedestrian", "Cyclist"])
    class_priors: dict[str, list[float]] = field(default_factory=lambda: {k: list(v) for k, v in KITTI_PRIORS.items()})
    point_features: int = 4
    vfe_channels: list[int] = field(default_factory=lambda: [64, 64])
    dim: int = 64
    num_heads: int = 4
    operator: str = "mamba2"
    mixer_kwargs: dict[str, Any] = field(default_factory=dict)
    windows: list[list[int]] = field(default_factory=lambda: [[13, 13, 32], [13, 13, 16], [13, 13, 8], [13, 13, 4]])
    group_sizes: list[int] = field(default_factory=lambda: [4096, 2048, 1024, 512])
    layers_per_block: int = 2
    block_stride: list[int] = field(default_factory=lambda: [2, 2, 1])
    generate_ratio: float = 0.2
    bev_channels: int = 128
    bev_stride: int = 2
    bev_layers: int = 4
    head_channels: int = 64
    min_radius: int = 2
    min_overlap: float = 0.1
    reg_radius: int = 1
    score_threshold: float = 0.1
    nms_iou: float = 0.1
    max_detections: int = 100

    def __post_init__(self) -> None:
        self.grid  # noqa: B018 -- validates the range and voxel size
        if not self.classes:
            raise ValueError("classes must not be empty")
        missing = [c for c in self.classes if c not in self.class_priors]
        if missing:
            raise ValueError(f"class_priors needs [dx, dy, dz, z] for {missing}")
        for name in self.classes:
            prior = self.class_priors[name]
            if len(prior) != 4 or not all(math.isfinite(v) for v in prior) or min(prior[:3]) <= 0:
                raise ValueError(f"class_priors[{name!r}] must be four finite values [dx, dy, dz, z] with positive "
                                 f"sizes, got {prior}")
        for name, minimum in (("point_features", 3), ("dim", 1), ("num_heads", 1), ("bev_channels", 1),
                              ("bev_layers", 0), ("head_channels", 1), ("min_radius", 0), ("reg_radius", 0),
                              ("max_detections", 1), ("layers_per_block", 1)):
            # Stored as int: a numpy integer would not survive to_dict into a checkpoint's JSON.
            setattr(self, name, check_int(name, getattr(self, name), minimum))
        if not self.vfe_channels:
            raise ValueError(f"vfe_channels must be positive widths, one per VFE layer, got {self.vfe_channels}")
        self.vfe_channels = [check_int(f"vfe_channels[{i}]", c, 1) for i, c in enumerate(self.vfe_channels)]
        for name in ("score_threshold", "nms_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:  # NaN fails too
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.min_overlap < 1.0:
            raise ValueError(f"min_overlap must lie in (0, 1), got {self.min_overlap}")
        if self.operator not in MIXERS:
            raise ValueError(f"unknown operator {self.operator!r}; known: {', '.join(sorted(MIXERS))}")
        if len(self.windows) != len(self.group_sizes) or not self.windows:
            raise ValueError(f"need one group size per window: {len(self.windows)} windows, "
                             f"{len(self.group_sizes)} group sizes")
        for w in self.windows:
            if len(w) != 3 or min(w) < 1:
                raise ValueError(f"each window is three positive sizes (wx, wy, wz), got {w}")
        self.group_sizes = [check_int(f"group_sizes[{i}]", g, 1) for i, g in enumerate(self.group_sizes)]
        if len(self.block_stride) != 3 or min(self.block_stride) < 1:
            raise ValueError(f"block_stride is three positive strides (sx, sy, sz), got {self.block_stride}")
        if not 0.0 <= self.generate_ratio <= 1.0:
            raise ValueError(f"generate_ratio must lie in [0, 1], got {self.generate_ratio}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} must be divisible by num_heads {self.num_heads}")
        if self.bev_stride not in (1, 2, 4):
            raise ValueError(f"bev_stride must be 1, 2 or 4, got {self.bev_stride}")
        nz = self.grid.grid_shape[0]
        if nz % 2 ** (len(self.windows) - 1):
            raise ValueError(f"{nz} z cells cannot be halved between {len(self.windows)} blocks")
        ny, nx = self.grid.grid_shape[1:]
        if ny % self.bev_stride or nx % self.bev_stride:
            raise ValueError(f"the BEV grid {ny}x{nx} is not divisible by bev_stride {self.bev_stride}")

    @property
    def grid(self) -> VoxelGrid:
        return VoxelGrid(self.point_cloud_range, self.voxel_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "LIONConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown LIONConfig fields {unknown}")
        return cls(**values)

    @classmethod
    def kitti(cls, **changes: Any) -> "LIONConfig":
        """The paper's KITTI setting: range ``[0, -40, -3, 70.4, 40, 1]``, voxels ``[0.2, 0.2, 0.125]``, four
        blocks with windows ``[13, 13, 32/16/8/4]`` and groups ``4096/2048/1024/512``, 64 channels, 2 layers per
        block. Sized for a GPU."""
        return cls(**changes)

    @classmethod
    def small(cls, **changes: Any) -> "LIONConfig":
        """A CPU-trainable LION: 0.4 x 0.4 x 0.25 m voxels, two 32-channel blocks (windows ``[13, 13, 16/8]``,
        groups ``1024/512``), a 48-channel BEV network at 0.8 m cells, and RetNet as the operator: the fastest of
        the three measured on one CPU thread (1200 steps in 20.5 CPU minutes against 28.4 for GLA and 31.8 for
        Mamba-2) and level with the best on Car AP (``benchmarks/RESULTS.md``)."""
        values = dict(
            voxel_size=[0.4, 0.4, 0.25], vfe_channels=[32], dim=32, num_heads=2, operator="retnet",
            windows=[[13, 13, 16], [13, 13, 8]], group_sizes=[1024, 512], bev_channels=48, bev_layers=2,
            head_channels=32,
        )
        values.update(changes)
        return cls(**values)

    @classmethod
    def tiny(cls, **changes: Any) -> "LIONConfig":
        """The smallest useful LION, for tests: a 25.6 x 25.6 m range and 16 channels."""
        values = dict(
            point_cloud_range=[0.0, -12.8, -3.0, 25.6, 12.8, 1.0], voxel_size=[0.4, 0.4, 0.5],
            vfe_channels=[16], dim=16, num_heads=2, windows=[[8, 8, 8], [8, 8, 4]], group_sizes=[128, 64],
            bev_channels=16, bev_layers=1, head_channels=16,
        )
        values.update(changes)
        return cls(**values)
