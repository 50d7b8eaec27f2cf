"""The LION detector: points -> voxels -> LION backbone -> dense BEV -> 2-D network -> CenterPoint-style head."""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import Tensor, nn

from seqcore.checkpoint import load_checkpoint, save_checkpoint
from seqcore.ops.validation import check_int

from ..voxels import DynamicVFE, voxelize
from .backbone import LIONBackbone, SparseBEV
from .config import LIONConfig
from .head import CenterHead, conv_bn
from .voxel_ops import check_inside

# The kind under which seqcore.checkpoint files of this model are written and recognised.
CHECKPOINT_KIND = "pointcloud.lion.LIONDetector"


def dense_bev(bev: SparseBEV, batch_size: int) -> Tensor:
    """Scatter BEV voxels into a dense ``(B, C, ny, nx)`` map (empty cells are 0)."""
    _, ny, nx = bev.shape
    check_inside(bev.coords, bev.shape)
    if bev.coords.shape[0] and int(bev.coords[:, 0].max()) >= batch_size:
        raise ValueError(f"BEV voxels of sample {int(bev.coords[:, 0].max())} do not fit batch_size={batch_size}")
    b, _, y, x = bev.coords.unbind(1)
    flat = bev.features.new_zeros(batch_size * ny * nx, bev.features.shape[1])
    flat = flat.index_copy(0, (b * ny + y) * nx + x, bev.features)
    return flat.view(batch_size, ny, nx, -1).permute(0, 3, 1, 2).contiguous()


class BEVNet(nn.Module):
    """A small 2-D network: ``log2(stride)`` stride-2 convolutions, then ``layers`` 3x3 convolutions."""

    def __init__(self, in_channels: int, channels: int, stride: int, layers: int) -> None:
        super().__init__()
        blocks, cin = [], in_channels
        for _ in range(stride.bit_length() - 1):
            blocks.append(conv_bn(cin, channels, 2))
            cin = channels
        blocks += [conv_bn(cin if i == 0 else channels, channels) for i in range(layers)]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class LIONDetector(nn.Module):
    """LION 3-D detector described by a :class:`LIONConfig`.

    Input points are ``(N, 1 + F)`` float ``[batch, x, y, z, features...]`` (the layout of
    :func:`pointcloud.collate`), ``F = config.point_features`` columns including x, y, z. Boxes are LiDAR
    ``(x, y, z, dx, dy, dz, heading)`` (OpenPCDet).
    """

    def __init__(self, config: LIONConfig) -> None:
        super().__init__()
        if not isinstance(config, LIONConfig):
            raise TypeError(f"config must be a LIONConfig (LIONConfig.from_dict for a dict), got "
                            f"{type(config).__name__}")
        if config.vfe_channels[-1] != config.dim:
            raise ValueError(f"vfe_channels must end in dim={config.dim}, got {config.vfe_channels}")
        self.config = config
        grid = config.grid
        self.vfe = DynamicVFE(config.point_features, config.vfe_channels)
        self.backbone = LIONBackbone(
            config.dim, config.operator, config.windows, config.group_sizes,
            layers_per_block=config.layers_per_block, block_stride=config.block_stride,
            generate_ratio=config.generate_ratio, num_heads=config.num_heads, mixer_kwargs=config.mixer_kwargs,
        )
        self.bev_net = BEVNet(config.dim, config.bev_channels, config.bev_stride, config.bev_layers)
        cell = (grid.voxel_size[0] * config.bev_stride, grid.voxel_size[1] * config.bev_stride)
        self.head = CenterHead(
            config.bev_channels, config.head_channels, config.classes, cell, grid.point_cloud_range[:2],
            [config.class_priors[c] for c in config.classes], min_radius=config.min_radius,
            min_overlap=config.min_overlap, reg_radius=config.reg_radius,
        )

    def _check_points(self, points: Tensor, batch_size: int) -> None:
        check_int("batch_size", batch_size, 1)
        width = 1 + self.config.point_features
        if not isinstance(points, Tensor) or points.dim() != 2 or points.shape[1] != width \
                or not points.is_floating_point():
            shape = tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__
            raise ValueError(f"points must be a float (N, {width}) tensor [batch, x, y, z, ...], "
                             f"got {shape} {getattr(points, 'dtype', '')}")
        device = self.head.priors.device
        if points.device != device:
            raise ValueError(f"points must be on the model's device ({device}), got {points.device}")
        if not points.shape[0]:
            return
        sample = points[:, 0]
        if not bool(torch.isfinite(sample).all()) or not bool((sample == sample.round()).all()):
            # .long() would truncate 0.5 to sample 0 and turn NaN into an arbitrary index.
            raise ValueError("batch column must hold integers (the sample index of each point)")
        if sample.min() < 0 or sample.max() >= batch_size:
            raise ValueError(f"batch column must lie in [0, {batch_size})")
        # xyz are checked by voxelize (NaN is an error, inf is out of range); a non-finite feature would poison its
        # voxel, so name it here in the detector's own column numbers.
        bad = ~torch.isfinite(points[:, 4:])
        if bool(bad.any()):
            row, col = (int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(f"points column {col + 4} (a point feature) holds NaN or inf at point {row}")

    def forward(self, points: Tensor, batch_size: int) -> dict[str, Tensor]:
        """``points (N, 1 + F)`` -> ``{"heatmap": (B, K, H, W) logits, "box": (B, 9, H, W)}``.

        Points outside ``config.point_cloud_range`` (an infinite coordinate included) are dropped; empty scans
        give maps all the same. Raises ValueError / TypeError on a bad ``batch_size``, the wrong width or dtype,
        another device, a non-integer or out-of-range batch column, NaN coordinates, NaN / inf features.
        """
        self._check_points(points, batch_size)
        grid = self.config.grid
        feats = points[:, 1:]
        voxels = voxelize(feats, points[:, 0].long(), grid)
        features = self.vfe(feats, voxels, grid)
        bev = self.backbone(voxels.coords, features, grid.grid_shape, batch_size)
        return self.head(self.bev_net(dense_bev(bev, batch_size)))

    def loss(self, preds: dict[str, Tensor], gt_boxes: Tensor, gt_classes: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Training loss; ``gt_boxes (B, M, 7)``, ``gt_classes (B, M)`` integers, 1-based in ``config.classes``
        order, 0 for padding and for objects of classes this model does not detect (``to_batch`` does this).

        Raises ValueError / TypeError on shapes that do not match ``preds``, non-integer classes or classes outside
        ``[0, K]``, NaN / inf boxes, a non-positive size on a real (class > 0) object."""
        return self.head.loss(preds, gt_boxes, gt_classes)

    @torch.no_grad()
    def predict(self, points: Tensor, batch_size: int) -> list[dict[str, Any]]:
        """Per sample ``{"boxes": (D, 7), "scores": (D,), "labels": (D,) 0-based, "names": list[str]}``."""
        preds = self.forward(points, batch_size)
        cfg = self.config
        out = self.head.decode(preds, score_threshold=cfg.score_threshold, nms_iou=cfg.nms_iou,
                               max_detections=cfg.max_detections)
        for d in out:
            d["names"] = [cfg.classes[int(i)] for i in d["labels"]]
        return out

    def save(self, path: str | os.PathLike, **extra: Any) -> None:
        """Save the weights and config, and any plain ``extra`` entries (a training state, metrics), to ``path``.

        The file is a :mod:`seqcore.checkpoint` (kind ``"pointcloud.lion.LIONDetector"``), written atomically: a
        crash or a full disk during the save leaves the previous file at ``path`` untouched.
        """
        if "model" in extra:
            raise ValueError("extra entries may not be named 'model' (the weights are stored under it)")
        save_checkpoint(path, {"model": self.state_dict(), **extra}, kind=CHECKPOINT_KIND,
                        config=self.config.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> "LIONDetector":
        """Rebuild a detector from a checkpoint written by :meth:`save` (or by the training script).

        Loading is safe (``weights_only``): a file that would run code, or is not a LION checkpoint, raises
        :class:`seqcore.checkpoint.CheckpointError` (a ``ValueError``) naming the file.
        """
        checkpoint = load_checkpoint(path, kind=CHECKPOINT_KIND, map_location=map_location)
        model = cls(LIONConfig.from_dict(checkpoint.config))
        model.load_state_dict(checkpoint.state["model"])
        return model
