"""A CenterPoint-style detection head on a dense BEV map: class heatmaps, box regression, losses and decoding.

Box encoding at a heatmap cell ``(i, j)`` (column ``i`` along x, row ``j`` along y) of size ``(cx, cy)`` metres:
``(x / cx - x0 / cx - i, y / cy - y0 / cy - j, z - z_c, log(dx / dx_c), log(dy / dy_c), log(dz / dz_c), sin 2h,
cos 2h, direction)``, with class priors ``(dx_c, dy_c, dz_c, z_c)`` (typical size and centre height): a
regression starts at the prior instead of at zero, which L1 steps (about the learning rate each) take hundreds of
steps to leave.

The heading ``h`` is regressed through the doubled angle: a box turned by pi is the same box, and LiDAR points
often cannot tell a car's front from its back, so regressing ``(sin h, cos h)`` pulls such objects towards the
mean of the two answers, ``(0, 0)``. ``direction`` is a logit for ``h`` being the doubled-angle solution plus pi
(SECOND's direction classifier), trained with binary cross-entropy; it only matters to users of the full heading
(KITTI's 3-D and BEV AP do not look at it).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nms import multiclass_nms

BOX_CODE = 9
REGRESSED = 8  # the first 8 channels are regressed with L1; the last is the direction logit
DIRECTION_WEIGHT = 0.2
HEATMAP_PRIOR = 0.1  # initial foreground probability, so the focal loss starts near its background optimum


def gaussian_radius(length: Tensor, width: Tensor, min_overlap: float) -> Tensor:
    """CenterNet's radius (in cells) within which a corner-shifted box keeps IoU >= ``min_overlap``; the minimum
    of its three cases (both corners moved in, out, or one each)."""
    b1 = length + width
    c1 = width * length * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (length + width)
    c2 = (1 - min_overlap) * width * length
    r2 = (b2 + torch.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (length + width)
    c3 = (min_overlap - 1) * width * length
    r3 = (b3 + torch.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CenterHead(nn.Module):
    """``(B, C, H, W)`` BEV features -> ``heatmap (B, K, H, W)`` logits and ``box (B, 9, H, W)`` codes.

    Args:
        in_channels: BEV channels C; channels: width of the head's convolutions.
        classes: class names, one heatmap channel each.
        cell_size: ``(cx, cy)`` metres per heatmap cell; origin ``(x0, y0)`` of cell ``(0, 0)``'s corner.
        priors: per class ``(dx, dy, dz, z)``, the size and centre height the box code is relative to (default
            ``(1, 1, 1, 0)``: plain logs and heights).
        reg_radius: cells around each object centre that regress its box (0: the centre only, as CenterPoint).
    """

    def __init__(self, in_channels: int, channels: int, classes: Sequence[str], cell_size: Sequence[float],
                 origin: Sequence[float], priors: Sequence[Sequence[float]] | None = None, *, min_radius: int = 2,
                 min_overlap: float = 0.1, reg_weight: float = 1.0, reg_radius: int = 1) -> None:
        super().__init__()
        self.classes = list(classes)
        self.cell_size = tuple(float(c) for c in cell_size)
        self.origin = tuple(float(o) for o in origin)
        self.min_radius = min_radius
        self.min_overlap = min_overlap
        self.reg_weight = reg_weight
        self.reg_radius = reg_radius
        self.shared = conv_bn(in_channels, channels)
        self.heatmap = nn.Sequential(conv_bn(channels, channels), nn.Conv2d(channels, len(self.classes), 1))
        self.box = nn.Sequential(conv_bn(channels, channels), nn.Conv2d(channels, BOX_CODE, 1))
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))
        nn.init.zeros_(self.box[-1].bias)
        with torch.no_grad():
            self.box[-1].bias[:2] = 0.5  # the centre cell's mean offset
        priors = torch.tensor([[1.0, 1.0, 1.0, 0.0]] * len(self.classes) if priors is None else priors,
                              dtype=torch.float32)
        if priors.shape != (len(self.classes), 4) or not (priors[:, :3] > 0).all():
            raise ValueError(f"priors must be one positive (dx, dy, dz) and a z per class, got {priors.tolist()}")
        self.register_buffer("priors", priors, persistent=False)

    def forward(self, bev: Tensor) -> dict[str, Tensor]:
        x = self.shared(bev)
        return {"heatmap": self.heatmap(x), "box": self.box(x)}

    # -- targets and losses -------------------------------------------------------------------------

    def targets(self, gt_boxes: Tensor, gt_classes: Tensor, size: Sequence[int]):
        """Heatmaps ``(B, K, H, W)`` (a Gaussian per object, 1 at its centre cell), and for every regressed cell
        (the ``(2 reg_radius + 1)^2`` cells around each centre, inside the map) its sample, its flat index into
        ``H * W`` and the box code ``(9,)`` relative to that cell; objects with class 0 (padding) or a centre off
        the map are left out.

        Args:
            gt_boxes: ``(B, M, 7)`` LiDAR boxes; gt_classes: ``(B, M)`` 1-based class indices, 0 for padding.
        """
        h, w = size
        batch = gt_boxes.shape[0]
        device = gt_boxes.device
        heatmap = torch.zeros(batch, len(self.classes), h, w, device=device)
        keep = (gt_classes > 0) & (gt_classes <= len(self.classes))
        sample = torch.nonzero(keep, as_tuple=True)[0]
        boxes = gt_boxes[keep].float()
        cls = gt_classes[keep].long() - 1
        u = (boxes[:, 0] - self.origin[0]) / self.cell_size[0]
        v = (boxes[:, 1] - self.origin[1]) / self.cell_size[1]
        on_map = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (boxes[:, 3:6] > 0).all(dim=1)
        sample, boxes, cls, u, v = sample[on_map], boxes[on_map], cls[on_map], u[on_map], v[on_map]
        iu, iv = u.floor().long(), v.floor().long()
        radius = gaussian_radius(boxes[:, 3] / self.cell_size[0], boxes[:, 4] / self.cell_size[1], self.min_overlap)
        radius = radius.floor().long().clamp(min=self.min_radius)
        ys = torch.arange(h, device=device)
        xs = torch.arange(w, device=device)
        for k in range(boxes.shape[0]):
            r = int(radius[k])
            sigma = (2 * r + 1) / 6
            y0, y1 = max(int(iv[k]) - r, 0), min(int(iv[k]) + r + 1, h)
            x0, x1 = max(int(iu[k]) - r, 0), min(int(iu[k]) + r + 1, w)
            dy = (ys[y0:y1] - iv[k]).float()[:, None]
            dx = (xs[x0:x1] - iu[k]).float()[None, :]
            blob = torch.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))
            region = heatmap[sample[k], cls[k], y0:y1, x0:x1]
            torch.maximum(region, blob, out=region)
        heading = boxes[:, 6]
        half = torch.atan2(torch.sin(2 * heading), torch.cos(2 * heading)) / 2  # what the doubled angle decodes to
        flipped = (torch.cos(heading - half) < 0).float()
        # Every cell within reg_radius of the centre regresses the box from its own position: more supervised
        # cells per object than CenterPoint's one, while decoding still reads the box at the heatmap peak.
        steps = torch.arange(-self.reg_radius, self.reg_radius + 1, device=device)
        dj, di = torch.meshgrid(steps, steps, indexing="ij")
        cell_u = (iu[:, None] + di.flatten()[None]).flatten()
        cell_v = (iv[:, None] + dj.flatten()[None]).flatten()
        per_object = di.numel()
        owner = torch.arange(boxes.shape[0], device=device).repeat_interleave(per_object)
        inside = (cell_u >= 0) & (cell_u < w) & (cell_v >= 0) & (cell_v < h)
        owner, cell_u, cell_v = owner[inside], cell_u[inside], cell_v[inside]
        b = boxes[owner]
        prior = self.priors[cls[owner]]
        size = (b[:, 3:6] / prior[:, :3]).log()
        code = torch.stack([
            u[owner] - cell_u, v[owner] - cell_v, b[:, 2] - prior[:, 3], size[:, 0], size[:, 1], size[:, 2],
            torch.sin(2 * b[:, 6]), torch.cos(2 * b[:, 6]), flipped[owner],
        ], dim=1)
        return heatmap, sample[owner], cell_v * w + cell_u, code

    def _check_targets(self, preds: dict[str, Tensor], gt_boxes: Tensor, gt_classes: Tensor) -> None:
        """The contract of :meth:`loss`: ``preds`` from :meth:`forward`, ``gt_boxes (B, M, 7)`` finite with positive
        sizes where ``gt_classes (B, M)`` (integers in ``[0, K]``) is not 0."""
        if not isinstance(preds, dict) or not {"heatmap", "box"} <= set(preds):
            raise ValueError("preds must hold 'heatmap' and 'box' (the output of forward)")
        batch = preds["heatmap"].shape[0]
        if not isinstance(gt_boxes, Tensor) or gt_boxes.dim() != 3 or gt_boxes.shape[0] != batch \
                or gt_boxes.shape[2] != 7 or not gt_boxes.is_floating_point():
            shape = tuple(gt_boxes.shape) if isinstance(gt_boxes, Tensor) else type(gt_boxes).__name__
            raise ValueError(f"gt_boxes must have shape (B={batch}, M, 7) (floating), got {shape}")
        if not isinstance(gt_classes, Tensor) or gt_classes.is_floating_point() or gt_classes.is_complex() \
                or gt_classes.dtype == torch.bool:
            raise TypeError(f"gt_classes must be an integer tensor, got {getattr(gt_classes, 'dtype', gt_classes)}")
        if gt_classes.shape != gt_boxes.shape[:2]:
            raise ValueError(f"gt_classes must have shape {tuple(gt_boxes.shape[:2])}, got {tuple(gt_classes.shape)}")
        if gt_classes.numel() and (int(gt_classes.min()) < 0 or int(gt_classes.max()) > len(self.classes)):
            raise ValueError(f"gt_classes must lie in [0, {len(self.classes)}] (0 is padding), got values in "
                             f"[{int(gt_classes.min())}, {int(gt_classes.max())}]")
        if not bool(torch.isfinite(gt_boxes).all()):
            raise ValueError("gt_boxes contains NaN or inf")
        # A real object with a non-positive size has no log-size code and would be dropped from the targets.
        bad = torch.nonzero((gt_classes > 0) & ~(gt_boxes[..., 3:6] > 0).all(dim=-1))
        if bad.numel():
            b, m = (int(i) for i in bad[0])
            raise ValueError(f"gt_boxes[{b}, {m}] has a non-positive size {gt_boxes[b, m, 3:6].tolist()}")

    def loss(self, preds: dict[str, Tensor], gt_boxes: Tensor, gt_classes: Tensor) -> tuple[Tensor, dict[str, float]]:
        """CenterNet focal loss on the heatmaps, plus ``reg_weight`` x (L1 on the box codes + 0.2 x binary
        cross-entropy on the direction) at the regressed cells, the focal loss normalized by the number of objects
        and the box terms by the number of regressed cells. Returns
        ``(total, {"heatmap": ..., "box": ..., "direction": ...})``."""
        self._check_targets(preds, gt_boxes, gt_classes)
        logits, box = preds["heatmap"], preds["box"]
        heatmap, sample, index, code = self.targets(gt_boxes, gt_classes, logits.shape[-2:])
        num = max(int(heatmap.eq(1).sum()), 1)
        cells = max(int(index.numel()), 1)
        prob = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
        positive = heatmap.eq(1).float()
        pos_loss = torch.log(prob) * (1 - prob) ** 2 * positive
        neg_loss = torch.log(1 - prob) * prob ** 2 * (1 - heatmap) ** 4 * (1 - positive)
        focal = -(pos_loss.sum() + neg_loss.sum()) / num
        flat = box.flatten(2)  # (B, 9, H * W)
        pred_code = flat[sample, :, index]
        pred_code = pred_code.float()
        reg = F.l1_loss(pred_code[:, :REGRESSED], code[:, :REGRESSED], reduction="sum") / cells
        direction = F.binary_cross_entropy_with_logits(pred_code[:, REGRESSED], code[:, REGRESSED],
                                                       reduction="sum") / cells
        total = focal + self.reg_weight * (reg + DIRECTION_WEIGHT * direction)
        return total, {"heatmap": float(focal.detach()), "box": float(reg.detach()),
                       "direction": float(direction.detach())}

    # -- decoding -----------------------------------------------------------------------------------

    @torch.no_grad()
    def decode(self, preds: dict[str, Tensor], *, score_threshold: float = 0.1, nms_iou: float = 0.1,
               max_detections: int = 100, pre_max: int = 500) -> list[dict[str, Tensor]]:
        """Per sample ``{"boxes": (D, 7), "scores": (D,), "labels": (D,) 0-based}``: heatmap peaks (3x3 local
        maxima) above ``score_threshold``, decoded and passed through per-class rotated BEV NMS."""
        heat = torch.sigmoid(preds["heatmap"].float())
        box = preds["box"].float()
        batch, num_classes, h, w = heat.shape
        peaks = heat * (heat == F.max_pool2d(heat, 3, 1, 1))
        k = min(pre_max, num_classes * h * w)
        scores, flat = peaks.flatten(1).topk(k, dim=1)
        out = []
        for b in range(batch):
            keep = scores[b] >= score_threshold
            s, f = scores[b][keep], flat[b][keep]
            label, cell = f // (h * w), f % (h * w)
            iv, iu = cell // w, cell % w
            c = box[b].flatten(1)[:, cell]  # (9, D)
            x = (iu.float() + c[0]) * self.cell_size[0] + self.origin[0]
            y = (iv.float() + c[1]) * self.cell_size[1] + self.origin[1]
            prior = self.priors[label].T  # (4, D)
            dims = c[3:6].clamp(max=5.0).exp() * prior[:3]
            heading = torch.atan2(c[6], c[7]) / 2 + math.pi * (c[8] > 0).float()
            boxes = torch.stack([x, y, c[2] + prior[3], dims[0], dims[1], dims[2], heading], dim=1)
            kept = multiclass_nms(boxes, s, label, nms_iou, post_max=max_detections)[:max_detections]
            out.append({"boxes": boxes[kept], "scores": s[kept], "labels": label[kept]})
        return out
