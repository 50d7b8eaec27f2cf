"""A CenterPoint-style detection head on a dense BEV map: class heatmaps, box regression, losses and decoding.

Box encoding at a heatmap cell ``(i, j)`` (column ``i`` along x, row ``j`` along y) of size ``(cx, cy)`` metres:
``(x / cx - x0 / cx - i, y / cy - y0 / cy - j, z, log dx, log dy, log dz, sin heading, cos heading)``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nms import multiclass_nms

BOX_CODE = 8
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
    """``(B, C, H, W)`` BEV features -> ``heatmap (B, K, H, W)`` logits and ``box (B, 8, H, W)`` codes.

    Args:
        in_channels: BEV channels C; channels: width of the head's convolutions.
        classes: class names, one heatmap channel each.
        cell_size: ``(cx, cy)`` metres per heatmap cell; origin ``(x0, y0)`` of cell ``(0, 0)``'s corner.
    """

    def __init__(self, in_channels: int, channels: int, classes: Sequence[str], cell_size: Sequence[float],
                 origin: Sequence[float], *, min_radius: int = 2, min_overlap: float = 0.1,
                 reg_weight: float = 1.0) -> None:
        super().__init__()
        self.classes = list(classes)
        self.cell_size = tuple(float(c) for c in cell_size)
        self.origin = tuple(float(o) for o in origin)
        self.min_radius = min_radius
        self.min_overlap = min_overlap
        self.reg_weight = reg_weight
        self.shared = conv_bn(in_channels, channels)
        self.heatmap = nn.Sequential(conv_bn(channels, channels), nn.Conv2d(channels, len(self.classes), 1))
        self.box = nn.Sequential(conv_bn(channels, channels), nn.Conv2d(channels, BOX_CODE, 1))
        nn.init.constant_(self.heatmap[-1].bias, -math.log((1 - HEATMAP_PRIOR) / HEATMAP_PRIOR))

    def forward(self, bev: Tensor) -> dict[str, Tensor]:
        x = self.shared(bev)
        return {"heatmap": self.heatmap(x), "box": self.box(x)}

    # -- targets and losses -------------------------------------------------------------------------

    def targets(self, gt_boxes: Tensor, gt_classes: Tensor, size: Sequence[int]):
        """Heatmaps ``(B, K, H, W)`` (a Gaussian per object, 1 at its centre cell), and per object the flat centre
        index into ``H * W``, its sample, its box code ``(8,)``; objects with class 0 (padding) or a centre off
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
        code = torch.stack([
            u - iu, v - iv, boxes[:, 2], boxes[:, 3].log(), boxes[:, 4].log(), boxes[:, 5].log(),
            torch.sin(boxes[:, 6]), torch.cos(boxes[:, 6]),
        ], dim=1)
        return heatmap, sample, iv * w + iu, code

    def loss(self, preds: dict[str, Tensor], gt_boxes: Tensor, gt_classes: Tensor) -> tuple[Tensor, dict[str, float]]:
        """CenterNet focal loss on the heatmaps plus ``reg_weight`` x L1 on the box codes at object centres,
        both normalized by the number of objects. Returns ``(total, {"heatmap": ..., "box": ...})``."""
        logits, box = preds["heatmap"], preds["box"]
        heatmap, sample, index, code = self.targets(gt_boxes, gt_classes, logits.shape[-2:])
        num = max(int(index.numel()), 1)
        prob = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
        positive = heatmap.eq(1).float()
        pos_loss = torch.log(prob) * (1 - prob) ** 2 * positive
        neg_loss = torch.log(1 - prob) * prob ** 2 * (1 - heatmap) ** 4 * (1 - positive)
        focal = -(pos_loss.sum() + neg_loss.sum()) / num
        flat = box.flatten(2)  # (B, 8, H * W)
        pred_code = flat[sample, :, index]
        reg = F.l1_loss(pred_code.float(), code, reduction="sum") / num
        total = focal + self.reg_weight * reg
        return total, {"heatmap": float(focal.detach()), "box": float(reg.detach())}

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
            c = box[b].flatten(1)[:, cell]  # (8, D)
            x = (iu.float() + c[0]) * self.cell_size[0] + self.origin[0]
            y = (iv.float() + c[1]) * self.cell_size[1] + self.origin[1]
            dims = c[3:6].clamp(max=5.0).exp()
            heading = torch.atan2(c[6], c[7])
            boxes = torch.stack([x, y, c[2], dims[0], dims[1], dims[2], heading], dim=1)
            kept = multiclass_nms(boxes, s, label, nms_iou, post_max=max_detections)[:max_detections]
            out.append({"boxes": boxes[kept], "scores": s[kept], "labels": label[kept]})
        return out
