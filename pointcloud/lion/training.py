"""Glue between sample dicts (:class:`~pointcloud.KittiDataset`, augmentations) and a :class:`LIONDetector`:
batching, detection into :class:`~pointcloud.evaluation.FrameBoxes`, and KITTI evaluation."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data import collate
from ..evaluation import IOU_THRESHOLDS, FrameBoxes, KittiEvaluation, evaluate, image_boxes
from ..synthetic import kitti_calibration
from .detector import LIONDetector

def to_batch(samples: Sequence[dict[str, Any]], classes: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
    """``(points (N, 5) [batch, x, y, z, intensity], gt_boxes (B, M, 7), gt_classes (B, M))`` for a list of
    samples; class indices are 1-based in ``classes`` order and recomputed from ``gt_names`` (augmentations
    that add objects do not update ``gt_classes``).

    Raises:
        ValueError: a sample without ``gt_boxes`` (a KITTI ``"test"`` split frame: it has no labels to train on).
    """
    unlabelled = [s.get("frame_id", i) for i, s in enumerate(samples) if "gt_boxes" not in s]
    if unlabelled:
        raise ValueError(f"samples {unlabelled} have no labels (frames of the KITTI 'test' split have none); "
                         "training needs a labelled split: 'train', 'val' or 'trainval'")
    batch = collate([{"points": s["points"], "gt_boxes": s["gt_boxes"], "gt_names": s["gt_names"],
                      "frame_id": s.get("frame_id", "")}
                     for s in samples], classes)
    boxes = torch.from_numpy(batch["gt_boxes"])
    return torch.from_numpy(batch["points"]), boxes[..., :7], boxes[..., 7].long()


def detect(model: LIONDetector, samples: Sequence[dict[str, Any]], batch_size: int = 4) -> list[FrameBoxes]:
    """Run ``model`` (in eval mode) on samples and return their detections, with 2-D boxes projected through
    each sample's ``calib`` (KITTI's standard calibration when a sample has none)."""
    was_training = model.training
    model.eval()
    frames = []
    try:
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            points, _, _ = to_batch([{**s, "gt_boxes": np.zeros((0, 7), np.float32), "gt_names": np.array([], str)}
                                     for s in chunk], model.config.classes)
            for s, det in zip(chunk, model.predict(points, len(chunk))):
                boxes = det["boxes"].double().numpy()
                calib = s.get("calib") or kitti_calibration()
                frames.append(FrameBoxes(boxes, np.array(det["names"], dtype=str), image_boxes(boxes, calib),
                                         scores=det["scores"].double().numpy()))
    finally:
        model.train(was_training)
    return frames


def evaluate_detector(model: LIONDetector, samples: Sequence[dict[str, Any]], ground_truth: Sequence[FrameBoxes],
                      batch_size: int = 4) -> tuple[KittiEvaluation, list[FrameBoxes]]:
    """KITTI AP of ``model`` on ``samples`` against ``ground_truth`` (one frame each), for the KITTI classes it
    detects. Returns the evaluation and the detections."""
    detections = detect(model, samples, batch_size)
    classes = [c for c in model.config.classes if c in IOU_THRESHOLDS]
    return evaluate(ground_truth, detections, classes=classes), detections
