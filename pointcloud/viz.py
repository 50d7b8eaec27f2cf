"""Bird's-eye-view (BEV) plots of a LiDAR scene with ground-truth and predicted boxes.

Orientation: the LiDAR ``x`` axis (forward) is drawn to the **right** and ``y`` (left of the car) **upward**, with
equal axis scales. This is the ordinary right-handed ``x``/``y`` plane, so a box's ``heading`` (counter-clockwise
from +x) appears as the same counter-clockwise angle on the page, with no mirroring; a KITTI front range
(70.4 m x 80 m) then fills a near-square figure.

matplotlib is only in the ``examples`` extra, so it is imported inside the functions, and only its object API with
the Agg canvas is used (no ``pyplot``): plotting works headless and never opens a window or touches global state.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch

from pointcloud.iou import bev_corners
from seqcore.atomic import atomic_write
from seqcore.extras import install_command

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes

__all__ = ["plot_bev", "save_bev"]

GT_COLOR = "tab:green"
PRED_COLOR = "tab:red"


def _require_matplotlib() -> Any:
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "pointcloud.viz needs matplotlib, which is not a core dependency of seqcore; "
            f"install it with `{install_command('examples')}` (or `pip install matplotlib`)") from exc
    return Figure, FigureCanvasAgg


def _as_numpy(x: Any, name: str, cols: Optional[int] = None, min_cols: Optional[int] = None) -> np.ndarray:
    """``x`` (tensor or array-like) as a float64 numpy array, checked to be 2-D with the right column count."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 0:  # allow [] for "nothing"
        arr = arr.reshape(0, cols or min_cols or 0)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
    if cols is not None and arr.shape[1] != cols:
        raise ValueError(f"{name} must have {cols} columns, got shape {arr.shape}")
    if min_cols is not None and arr.shape[1] < min_cols:
        raise ValueError(f"{name} must have at least {min_cols} columns, got shape {arr.shape}")
    return arr


def _corners(boxes: np.ndarray) -> np.ndarray:
    """``(M, 4, 2)`` BEV corners, reusing :func:`pointcloud.iou.bev_corners` (CCW from the front-left corner)."""
    if boxes.shape[0] == 0:
        return np.zeros((0, 4, 2))
    return bev_corners(torch.from_numpy(boxes)).numpy()


def _draw_boxes(ax: "Axes", boxes: np.ndarray, color: str, linestyle: str, gid: str) -> None:
    """One closed polygon patch per box plus a heading tick (a line, not a patch) from the centre to the front."""
    from matplotlib.patches import Polygon

    corners = _corners(boxes)
    for box, quad in zip(boxes, corners):
        ax.add_patch(Polygon(quad, closed=True, fill=False, edgecolor=color, linestyle=linestyle, linewidth=1.2,
                             gid=gid))
        # Corners 0 and 3 are the local +dx/2 ones, so their midpoint is the middle of the front edge.
        front = 0.5 * (quad[0] + quad[3])
        ax.plot([box[0], front[0]], [box[1], front[1]], color=color, linewidth=1.2, linestyle="-")


def plot_bev(
    points: Any,
    gt_boxes: Any = None,
    pred_boxes: Any = None,
    pred_scores: Any = None,
    *,
    point_cloud_range: Sequence[float] = (0, -40, -3, 70.4, 40, 1),
    ax: Optional["Axes"] = None,
    title: Optional[str] = None,
    score_threshold: float = 0.0,
    labels: Optional[Sequence[str]] = None,
    color_by: str = "height",
    point_size: float = 0.5,
) -> "Axes":
    """Draw a bird's-eye view of a scene: x (forward) to the right, y (left) upward, metres on both axes.

    Args:
        points: ``(N, 3 + C)`` LiDAR points (tensor or array; ``N`` may be 0); only those inside the BEV part
            (x, y) of ``point_cloud_range`` are drawn.
        gt_boxes: ``(G, 7)`` ground-truth boxes ``(x, y, z, dx, dy, dz, heading)``, drawn as solid green rotated
            rectangles with a heading tick from the centre to the front edge.
        pred_boxes: ``(P, 7)`` predicted boxes, drawn as dashed red rectangles with a heading tick.
        pred_scores: ``(P,)`` scores of ``pred_boxes``; written next to each box, and predictions with a score
            below ``score_threshold`` are not drawn. ``None``: all predictions are drawn, without scores.
        point_cloud_range: ``(6,)`` ``[x0, y0, z0, x1, y1, z1]``; sets the axis limits and the height colour scale.
        ax: matplotlib Axes to draw into; ``None`` makes a new Agg-backed Figure (no pyplot).
        title: optional axes title.
        score_threshold: minimum score of a drawn prediction (only used with ``pred_scores``).
        labels: ``(P,)`` class names of the predictions, written before the score.
        color_by: ``"height"`` (z, column 2) or ``"intensity"`` (column 3; falls back to height when absent).
        point_size: marker area of the points in points^2 (small: a scan has ~10^5 points).

    Returns:
        The Axes drawn into. Box rectangles are ``matplotlib.patches.Polygon`` patches with ``gid`` ``"gt"`` or
        ``"pred"``, one per drawn box.
    """
    Figure, FigureCanvasAgg = _require_matplotlib()
    pcr = [float(v) for v in point_cloud_range]
    if len(pcr) != 6:
        raise ValueError(f"point_cloud_range needs 6 values, got {len(pcr)}")
    if color_by not in ("height", "intensity"):
        raise ValueError(f"color_by must be 'height' or 'intensity', got {color_by!r}")

    pts = _as_numpy(points, "points", min_cols=3)
    gt = _as_numpy(gt_boxes, "gt_boxes", cols=7) if gt_boxes is not None else np.zeros((0, 7))
    pred = _as_numpy(pred_boxes, "pred_boxes", cols=7) if pred_boxes is not None else np.zeros((0, 7))
    scores = None
    if pred_scores is not None:
        scores = np.asarray(pred_scores.detach().cpu() if isinstance(pred_scores, torch.Tensor) else pred_scores,
                            dtype=np.float64).reshape(-1)
        if scores.shape[0] != pred.shape[0]:
            raise ValueError(f"pred_scores must have {pred.shape[0]} values, got {scores.shape[0]}")
    if labels is not None and len(labels) != pred.shape[0]:
        raise ValueError(f"labels must have {pred.shape[0]} entries, got {len(labels)}")

    if ax is None:
        fig = Figure(figsize=(7.0, 7.0 * (pcr[4] - pcr[1]) / (pcr[3] - pcr[0])))
        FigureCanvasAgg(fig)  # attaches itself to fig, so fig.savefig works without pyplot
        ax = fig.add_subplot(1, 1, 1)

    # Points: crop to the BEV window (drawing off-screen points only costs time), colour on a fixed scale.
    inside = ((pts[:, 0] >= pcr[0]) & (pts[:, 0] < pcr[3]) & (pts[:, 1] >= pcr[1]) & (pts[:, 1] < pcr[4]))
    shown = pts[inside]
    if color_by == "intensity" and pts.shape[1] > 3:
        values, vmin, vmax, cmap, clabel = shown[:, 3], 0.0, 1.0, "gray_r", "intensity"
    else:
        # A fixed z scale (the range's) keeps colours comparable between frames.
        values, vmin, vmax, cmap, clabel = shown[:, 2], pcr[2], pcr[5], "viridis", "z (m)"
    sc = ax.scatter(shown[:, 0], shown[:, 1], c=values, s=point_size, cmap=cmap, vmin=vmin, vmax=vmax,
                    linewidths=0, rasterized=True)
    if shown.shape[0]:
        ax.figure.colorbar(sc, ax=ax, fraction=0.04, pad=0.02, label=clabel)

    _draw_boxes(ax, gt, GT_COLOR, "-", "gt")
    keep = np.ones(pred.shape[0], dtype=bool) if scores is None else scores >= score_threshold
    kept = np.nonzero(keep)[0]
    _draw_boxes(ax, pred[kept], PRED_COLOR, "--", "pred")
    for i in kept:
        text = []
        if labels is not None:
            text.append(str(labels[i]))
        if scores is not None:
            text.append(f"{scores[i]:.2f}")
        if text:
            ax.text(pred[i, 0], pred[i, 1] + 0.5 * max(pred[i, 3], pred[i, 4]) + 0.3, " ".join(text),
                    color=PRED_COLOR, fontsize=6, ha="center", va="bottom", clip_on=True)

    ax.set_xlim(pcr[0], pcr[3])
    ax.set_ylim(pcr[1], pcr[4])
    ax.set_aspect("equal")
    ax.set_xlabel("x forward (m)")
    ax.set_ylabel("y left (m)")
    if title:
        ax.set_title(title)
    return ax


def save_bev(path: str | os.PathLike, points: Any, *args: Any, dpi: int = 150, **kwargs: Any) -> str:
    """Draw :func:`plot_bev` on a fresh Agg figure and write it as a PNG to ``path``.

    Args:
        path: output file (``.png``).
        points, *args, **kwargs: as :func:`plot_bev` (``ax`` is not allowed: the figure is made here).
        dpi: resolution of the PNG.

    Returns:
        ``str(path)``.
    """
    if "ax" in kwargs:
        raise ValueError("save_bev makes its own figure; call plot_bev(ax=...) to draw into an existing Axes")
    ax = plot_bev(points, *args, **kwargs)
    with atomic_write(path) as handle:
        ax.figure.savefig(handle, dpi=dpi, format="png", bbox_inches="tight")
    return os.fspath(path)
