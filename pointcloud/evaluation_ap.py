"""The per-class KITTI AP behind :func:`pointcloud.evaluation.evaluate`: ignore rules, matching, score thresholds
and the precision curve, on plain arrays of one class and difficulty.

The steps are the official devkit's (``evaluate_object.cpp``), as its Python port (OpenPCDet's
``kitti_object_eval_python``) runs them too:

1. :func:`ignored_ground_truth` / :func:`ignored_detections` mark each box 0 (counts), 1 (ignored: neither a hit
   nor a miss, nor a false positive) or -1 (another class, never looked at).
2. :meth:`FrameMatcher.hit_scores`: every ground truth that is not -1, in order, takes the highest-scoring free
   detection whose overlap is strictly above the minimum; the scores of the true positives (a counted ground truth
   taken by a counted detection) are the candidate thresholds.
3. :func:`devkit_thresholds` picks at most 41 of them while walking the sorted scores (method ``"devkit"``);
   :func:`exact_recall_thresholds` the score of the ``ceil(r * num_gt)``-th one for each recall position
   ``r = j / 40`` (method ``"exact_recall"``, a deviation).
4. :meth:`FrameMatcher.counts`: at each threshold the detections scored below it are dropped, every ground truth
   takes the free counted detection of largest overlap, the free counted detections left are false positives
   unless a DontCare region covers them (2-D metric only), and every true positive adds its orientation
   similarity ``(1 + cos(alpha_gt - alpha_dt)) / 2``.
5. :func:`average_precision`: devkit -- precision (and AOS) per threshold index, zero past the last threshold,
   each replaced by the maximum to its right; AP|R40 averages indices 1..40, AP|R11 indices 0, 4, ..., 40.
   Exact recall -- precision read at the recall positions themselves.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "MAX_OCCLUSION", "MAX_TRUNCATION", "METHODS", "MIN_HEIGHT", "NEIGHBOURS", "SAMPLE_POINTS", "FrameMatcher",
    "average_precision", "devkit_thresholds", "dontcare_mask", "exact_recall_thresholds", "ignored_detections",
    "ignored_ground_truth", "image_overlaps",
]

SAMPLE_POINTS = 41  # recall positions 0, 1/40, ..., 1
MIN_HEIGHT = (40.0, 25.0, 25.0)  # 2-D box height in pixels, per difficulty (easy, moderate, hard)
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
NEIGHBOURS = {"car": "van", "pedestrian": "person_sitting"}  # lower case: the devkit compares names so
METHODS = ("devkit", "exact_recall")


def _lower(names: np.ndarray) -> np.ndarray:
    return np.char.lower(np.asarray(names, dtype=str))


def ignored_ground_truth(names: np.ndarray, bbox: np.ndarray, occluded: np.ndarray, truncated: np.ndarray,
                         cls: str, difficulty: int) -> np.ndarray:
    """``(G,)`` int: 0 a counted ground truth of ``cls``; 1 ignored (``cls`` but too hard for the difficulty --
    2-D height ``<=`` the minimum, or occlusion / truncation above the maximum -- or the neighbouring class);
    -1 any other class."""
    lower = _lower(names)
    height = bbox[:, 3] - bbox[:, 1]
    too_hard = ((occluded > MAX_OCCLUSION[difficulty]) | (truncated > MAX_TRUNCATION[difficulty])
                | (height <= MIN_HEIGHT[difficulty]))
    same = lower == cls.lower()
    neighbour = lower == NEIGHBOURS[cls.lower()] if cls.lower() in NEIGHBOURS else np.zeros(len(lower), bool)
    return np.where(same & ~too_hard, 0, np.where(same | neighbour, 1, -1))


def ignored_detections(names: np.ndarray, bbox: np.ndarray, cls: str, difficulty: int) -> np.ndarray:
    """``(D,)`` int: 1 for any detection whose 2-D box is shorter than the minimum height (whatever its class: the
    devkit lets such a detection absorb a ground truth it overlaps, neither hit nor miss), else 0 for ``cls`` and
    -1 for other classes."""
    height = np.abs(bbox[:, 3] - bbox[:, 1])
    return np.where(height < MIN_HEIGHT[difficulty], 1, np.where(_lower(names) == cls.lower(), 0, -1))


def dontcare_mask(names: np.ndarray) -> np.ndarray:
    """``(G,)`` bool: the DontCare regions among the ground truth rows."""
    return _lower(names) == "dontcare"


def image_overlaps(a: np.ndarray, b: np.ndarray, over: str = "union") -> np.ndarray:
    """``(N, K)`` overlap of 2-D boxes ``a (N, 4)`` and ``b (K, 4)`` ``(left, top, right, bottom)``: the intersection
    area over the union (``over="union"``) or over the area of the box of ``a`` (``over="first"``, how the devkit
    measures a detection inside a DontCare region). No pixel is added to widths."""
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.where((width > 0) & (height > 0), width * height, 0.0)
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    if over == "first":
        denominator = np.broadcast_to(area_a, inter.shape)
    else:
        denominator = area_a + ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, denominator, out=out, where=inter > 0)
    return out


class FrameMatcher:
    """One frame's matching for one class, difficulty, metric and minimum overlap.

    Args:
        overlaps: ``(D, G)`` overlap of every detection with every ground truth row.
        scores: ``(D,)`` detection scores.
        ignored_gt, ignored_dt: from :func:`ignored_ground_truth` / :func:`ignored_detections`.
        min_overlap: a pair matches when its overlap is strictly above it.
        dontcare: ``(D, C)`` overlap of each detection with each DontCare region, over the detection's area, or
            ``None`` (the BEV and 3-D metrics: a DontCare region has no 3-D box to overlap).
        similarity: ``(D, G)`` orientation similarity ``(1 + cos(alpha_gt - alpha_dt)) / 2``, or ``None``.
    """

    def __init__(self, overlaps: np.ndarray, scores: np.ndarray, ignored_gt: np.ndarray, ignored_dt: np.ndarray,
                 min_overlap: float, dontcare: np.ndarray | None = None, similarity: np.ndarray | None = None):
        # Rows and columns marked -1 are never looked at: dropping them first keeps the loops short.
        gt = np.flatnonzero(ignored_gt != -1)
        dt = np.flatnonzero(ignored_dt != -1)
        self.ignored_gt = ignored_gt[gt]
        self.counted_dt = ignored_dt[dt] == 0
        self.scores = scores[dt]
        overlaps = overlaps[np.ix_(dt, gt)]
        self.candidate = overlaps > min_overlap
        self.overlaps = np.where(self.candidate, overlaps, -np.inf)
        self.similarity = None if similarity is None else similarity[np.ix_(dt, gt)]
        self.in_dontcare = (np.zeros(len(dt), bool) if dontcare is None or dontcare.shape[1] == 0
                            else (dontcare[dt] > min_overlap).any(axis=1))
        self.sorted_scores = np.sort(self.scores)
        self.idle = len(gt) == 0 and not self.counted_dt.any()

    def hit_scores(self) -> list[float]:
        """Scores of the true positives when each ground truth takes the highest-scoring free candidate (the
        first in order on a tie)."""
        free = np.ones(len(self.scores), bool)
        hits = []
        for i, ignored in enumerate(self.ignored_gt):
            options = self.candidate[:, i] & free
            if not options.any():
                continue
            j = int(np.argmax(np.where(options, self.scores, -np.inf)))
            free[j] = False
            if ignored == 0 and self.counted_dt[j]:
                hits.append(float(self.scores[j]))
        return hits

    def counts(self, threshold: float) -> tuple[int, int, float]:
        """``(tp, fp, summed orientation similarity of the true positives)`` at a score threshold.

        Each ground truth takes the free counted detection of largest overlap (the first on a tie). The devkit
        also lets an ignored detection take a ground truth no counted one matches; that changes neither a true
        nor a false positive (only the recall, which no AP reads), so it is left out here.
        """
        free = (self.scores >= threshold) & self.counted_dt
        active = free.copy()
        tp = 0
        similarity = 0.0
        for i, ignored in enumerate(self.ignored_gt):
            options = self.candidate[:, i] & free
            if not options.any():
                continue
            j = int(np.argmax(np.where(options, self.overlaps[:, i], -np.inf)))
            free[j] = False
            if ignored == 0:
                tp += 1
                if self.similarity is not None:
                    similarity += float(self.similarity[j, i])
        fp = int(np.sum(free & active & ~self.in_dontcare))
        return tp, fp, similarity

    def counts_at(self, thresholds: np.ndarray) -> np.ndarray:
        """``(T, 3)`` :meth:`counts` at every threshold; thresholds that keep the same detections share one
        matching."""
        out = np.zeros((len(thresholds), 3))
        if self.idle or len(thresholds) == 0:
            return out
        dropped = np.searchsorted(self.sorted_scores, thresholds, side="left")
        for key in np.unique(dropped):
            at = dropped == key
            out[at] = self.counts(float(thresholds[np.flatnonzero(at)[0]]))
        return out


def devkit_thresholds(scores: Sequence[float], num_gt: int) -> np.ndarray:
    """The devkit's score thresholds: walking the true-positive scores from the highest, the ``i``-th (0-based) is
    kept unless recall ``(i + 2) / num_gt`` is nearer the next sample position than ``(i + 1) / num_gt`` (the last
    score is always kept); each kept score advances the sample position by 1/40. At most 41 come out, one per
    precision index, whatever recall they reach. The float arithmetic is the devkit's, so ties break alike."""
    ordered = sorted(scores, reverse=True)
    kept = []
    current = 0.0
    last = len(ordered) - 1
    for i, score in enumerate(ordered):
        left = (i + 1) / num_gt
        right = (i + 2) / num_gt if i < last else left
        if i < last and right - current < current - left:
            continue
        kept.append(score)
        current += 1 / (SAMPLE_POINTS - 1.0)
    return np.array(kept, dtype=np.float64)


def exact_recall_thresholds(scores: Sequence[float], num_gt: int) -> dict[int, float]:
    """For each recall position ``j / 40`` reachable by the true positives, the score of the
    ``ceil(j / 40 * num_gt)``-th best one (position 0 takes the best)."""
    ordered = sorted(scores, reverse=True)
    thresholds = {}
    for j in range(SAMPLE_POINTS):
        k = max(1, -(-j * num_gt // (SAMPLE_POINTS - 1)))
        if k <= len(ordered):
            thresholds[j] = ordered[k - 1]
    return thresholds


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    # Where the devkit would divide 0 by 0 (every detection above the threshold absorbed by ignored ground truth
    # or DontCare), the precision is 0 rather than NaN.
    out = np.zeros(len(numerator))
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _suffix_max(values: np.ndarray) -> np.ndarray:
    return np.maximum.accumulate(values[::-1])[::-1]


def average_precision(matchers: Sequence[FrameMatcher], num_gt: int, method: str) -> tuple[float, float, float, float]:
    """``(AP|R40, AP|R11, AOS|R40, AOS|R11)`` in percent over the frames' matchers (AOS is 0 when they carry no
    similarity); all 0 when no ground truth counts."""
    if num_gt == 0:
        return 0.0, 0.0, 0.0, 0.0
    scores = [s for m in matchers for s in m.hit_scores()]
    if method == "devkit":
        thresholds = devkit_thresholds(scores, num_gt)
        tp, fp, similarity = sum((m.counts_at(thresholds) for m in matchers), np.zeros((len(thresholds), 3))).T
        precision, aos = np.zeros(SAMPLE_POINTS), np.zeros(SAMPLE_POINTS)
        precision[:len(thresholds)] = _ratio(tp, tp + fp)
        aos[:len(thresholds)] = _ratio(similarity, tp + fp)
        precision, aos = _suffix_max(precision), _suffix_max(aos)
    else:
        distinct = np.array(sorted(set(exact_recall_thresholds(scores, num_gt).values())), dtype=np.float64)
        tp, fp, similarity = sum((m.counts_at(distinct) for m in matchers), np.zeros((len(distinct), 3))).T
        recall = tp / num_gt
        point_precision, point_aos = _ratio(tp, tp + fp), _ratio(similarity, tp + fp)
        precision, aos = np.zeros(SAMPLE_POINTS), np.zeros(SAMPLE_POINTS)
        for j in range(SAMPLE_POINTS):
            reached = recall >= j / (SAMPLE_POINTS - 1) - 1e-12
            if reached.any():
                precision[j], aos[j] = point_precision[reached].max(), point_aos[reached].max()
    return (100 * precision[1:].sum() / 40, 100 * precision[::4].sum() / 11,
            100 * aos[1:].sum() / 40, 100 * aos[::4].sum() / 11)
