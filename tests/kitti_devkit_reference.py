"""A slow, literal reference of the KITTI devkit's evaluation, written independently of ``pointcloud.evaluation``.

It follows the devkit's structure step by step (clean the data per frame, one statistics pass without a
threshold to collect true-positive scores, the threshold walk, one statistics pass per frame and threshold,
precision by threshold index with the maximum to the right) with plain Python loops and a sentinel score for
"nothing matched", and computes IoU with shapely in the camera frame (x-z footprint rotated by ry, height along
y) and with its own 2-D overlap -- so it shares no code with the library's vectorised, grouped implementation.
"""
from __future__ import annotations

import math

import numpy as np
from shapely.geometry import Polygon

NO_MATCH = -1e7
HEIGHTS = (40, 25, 25)
OCCLUSIONS = (0, 1, 2)
TRUNCATIONS = (0.15, 0.3, 0.5)


def footprint(box) -> Polygon:
    """Camera box ``(x, y, z, l, h, w, ry)``: its footprint in the x-z plane."""
    x, _, z, l, _, w, ry = box
    c, s = math.cos(ry), math.sin(ry)
    corners = [(l / 2, w / 2), (l / 2, -w / 2), (-l / 2, -w / 2), (-l / 2, w / 2)]
    return Polygon([(c * a + s * b + x, -s * a + c * b + z) for a, b in corners])


def camera_iou(a, b, metric: str) -> float:
    pa, pb = footprint(a), footprint(b)
    inter = pa.intersection(pb).area
    if metric == "bev":
        return inter / (pa.area + pb.area - inter)
    vertical = max(0.0, min(a[1], b[1]) - max(a[1] - a[4], b[1] - b[4]))
    volume = inter * vertical
    return volume / (a[3] * a[4] * a[5] + b[3] * b[4] * b[5] - volume)


def box_overlap(a, b, over_first: bool = False) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    if over_first:
        return w * h / area_a
    return w * h / (area_a + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


def clean(gt: dict, dt: dict, cls: str, difficulty: int):
    cls = cls.lower()
    neighbour = {"car": "van", "pedestrian": "person_sitting"}.get(cls)
    ignored_gt, dontcare, n_gt = [], [], 0
    for name, bbox, occ, trunc in zip(gt["names"], gt["bbox"], gt["occluded"], gt["truncated"]):
        name = name.lower()
        valid = 1 if name == cls else (0 if name == neighbour else -1)
        too_hard = occ > OCCLUSIONS[difficulty] or trunc > TRUNCATIONS[difficulty] or \
            bbox[3] - bbox[1] <= HEIGHTS[difficulty]
        if valid == 1 and not too_hard:
            ignored_gt.append(0)
            n_gt += 1
        elif valid == 0 or valid == 1:
            ignored_gt.append(1)
        else:
            ignored_gt.append(-1)
        if name == "dontcare":
            dontcare.append(bbox)
    ignored_dt = []
    for name, bbox in zip(dt["names"], dt["bbox"]):
        if abs(bbox[3] - bbox[1]) < HEIGHTS[difficulty]:
            ignored_dt.append(1)
        elif name.lower() == cls:
            ignored_dt.append(0)
        else:
            ignored_dt.append(-1)
    return ignored_gt, ignored_dt, dontcare, n_gt


def statistics(gt, dt, overlap, ignored_gt, ignored_dt, dontcare, min_overlap, two_d, compute_fp, thresh=0.0):
    n_dt = len(dt["scores"])
    assigned = [False] * n_dt
    below = [compute_fp and dt["scores"][j] < thresh for j in range(n_dt)]
    tp = fp = fn = 0
    hits, deltas = [], []
    for i in range(len(ignored_gt)):
        if ignored_gt[i] == -1:
            continue
        best, valid, best_overlap, took_ignored = -1, NO_MATCH, 0.0, False
        for j in range(n_dt):
            if ignored_dt[j] == -1 or assigned[j] or below[j]:
                continue
            o = overlap[j][i]
            if not compute_fp:
                if o > min_overlap and dt["scores"][j] > valid:
                    best, valid = j, dt["scores"][j]
            elif o > min_overlap and (o > best_overlap or took_ignored) and ignored_dt[j] == 0:
                best, valid, best_overlap, took_ignored = j, 1.0, o, False
            elif o > min_overlap and valid == NO_MATCH and ignored_dt[j] == 1:
                best, valid, took_ignored = j, 1.0, True
        if valid == NO_MATCH:
            if ignored_gt[i] == 0:
                fn += 1
        elif ignored_gt[i] == 1 or ignored_dt[best] == 1:
            assigned[best] = True
        else:
            tp += 1
            hits.append(dt["scores"][best])
            deltas.append(gt["alpha"][i] - dt["alpha"][best])
            assigned[best] = True
    similarity = -1.0
    if compute_fp:
        for j in range(n_dt):
            if not (assigned[j] or ignored_dt[j] != 0 or below[j]):
                fp += 1
        if two_d:
            for region in dontcare:
                for j in range(n_dt):
                    if assigned[j] or ignored_dt[j] != 0 or below[j]:
                        continue
                    if box_overlap(dt["bbox"][j], region, over_first=True) > min_overlap:
                        assigned[j] = True
                        fp -= 1
        if tp or fp:
            similarity = sum((1 + math.cos(d)) / 2 for d in deltas)
    return tp, fp, fn, similarity, hits


def thresholds_of(scores, n_gt):
    scores = sorted(scores, reverse=True)
    out, current = [], 0.0
    for i, score in enumerate(scores):
        left = (i + 1) / n_gt
        right = (i + 2) / n_gt if i < len(scores) - 1 else left
        if right - current < current - left and i < len(scores) - 1:
            continue
        out.append(score)
        current += 1 / 40.0
    return out


def overlaps_of(gt: dict, dt: dict, metric: str):
    if metric == "2d":
        return [[box_overlap(d, g) for g in gt["bbox"]] for d in dt["bbox"]]
    return [[camera_iou(d, g, metric) if not np.isnan(g).any() else 0.0 for g in gt["camera"]]
            for d in dt["camera"]]


def reference_ap(gts: list[dict], dts: list[dict], cls: str, difficulty: int, metric: str, min_overlap: float,
                 overlaps: list | None = None):
    """``(AP|R40, AP|R11, AOS|R40, AOS|R11)`` in percent; ``metric`` ``"2d"``, ``"bev"`` or ``"3d"`` (AOS on 2-D);
    ``overlaps`` the frames' :func:`overlaps_of` if already computed."""
    two_d = metric == "2d"
    frames, scores, n_gt = [], [], 0
    for k, (gt, dt) in enumerate(zip(gts, dts)):
        ig, idt, dc, n = clean(gt, dt, cls, difficulty)
        n_gt += n
        overlap = overlaps_of(gt, dt, metric) if overlaps is None else overlaps[k]
        frames.append((gt, dt, overlap, ig, idt, dc))
        scores += statistics(gt, dt, overlap, ig, idt, dc, min_overlap, two_d, compute_fp=False)[4]
    thresholds = thresholds_of(scores, n_gt) if n_gt else []
    pr = [[0, 0, 0, 0.0] for _ in thresholds]
    for gt, dt, overlap, ig, idt, dc in frames:
        for t, thresh in enumerate(thresholds):
            tp, fp, fn, similarity, _ = statistics(gt, dt, overlap, ig, idt, dc, min_overlap, two_d, True, thresh)
            pr[t][0] += tp
            pr[t][1] += fp
            pr[t][2] += fn
            if similarity != -1:
                pr[t][3] += similarity
    precision, aos = [0.0] * 41, [0.0] * 41
    for t, (tp, fp, _, similarity) in enumerate(pr):
        precision[t] = tp / (tp + fp)
        aos[t] = similarity / (tp + fp)
    for t in range(len(thresholds)):
        precision[t] = max(precision[t:])
        aos[t] = max(aos[t:])
    return (100 * sum(precision[1:]) / 40, 100 * sum(precision[::4]) / 11,
            100 * sum(aos[1:]) / 40, 100 * sum(aos[::4]) / 11)
