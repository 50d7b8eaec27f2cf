"""CPU cost of the point-cloud operators a 3-D detector runs per frame: voxelization, 3-D IoU matrices, rotated NMS.

    python benchmarks/pointcloud_ops.py              # KITTI-size: 120k points, 500 x 500 IoU, 5,000-box NMS
    python benchmarks/pointcloud_ops.py --quick      # small sizes, one repeat (what the test runs)
    python benchmarks/pointcloud_ops.py --threads 8  # torch intra-op threads (default 1)

Method. Inputs are synthetic but shaped like real data, with a fixed seed:

- scene: a KITTI-size scan of 120,000 (x, y, z, intensity) points: ~80 % ground returns whose density falls with
  range like a spinning LiDAR's (radius drawn ~ uniform, so points per m^2 ~ 1/r), ~15 % on ~30 car-sized objects
  (points on box surfaces) and ~5 % scattered clutter (poles, vegetation), all inside the range
  [0, -40, -3, 70.4, 40, 1]; voxel size 0.05 x 0.05 x 0.1 m (a 1408 x 1600 x 40 grid, as SECOND / PV-RCNN use).
- IoU: ``iou_3d`` on a 500 x 500 matrix of car-sized boxes, (a) spread over the 70 m x 80 m scene (typical: few
  pairs overlap, so the circumcircle pre-test skips most of them) and (b) all overlapping within ~1 m (worst case:
  every pair is clipped).
- NMS: ``nms_rotated`` (BEV IoU, threshold 0.7, as an RPN-stage NMS) on 5,000 proposals jittered around 50 objects,
  100 per object, the way a dense head's proposals pile up around each object.

Each operator runs once as warm-up, then ``--repeats`` times; the table reports the median wall time. Targets (met
or missed): voxelizing the scene under 50 ms and each 500 x 500 IoU matrix under 1 s (NMS has no target; its time is
reported). Targets only apply at the full sizes, so ``--quick`` marks them "n/a".
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch

from benchmarks.measure import time_calls
from pointcloud.iou import iou_3d
from pointcloud.nms import nms_rotated
from pointcloud.voxels import VoxelGrid, voxelize

POINT_CLOUD_RANGE = (0.0, -40.0, -3.0, 70.4, 40.0, 1.0)
VOXEL_SIZE = (0.05, 0.05, 0.1)
CAR = (3.9, 1.6, 1.56)  # KITTI mean car size (dx, dy, dz), metres
GROUND_Z = -1.73  # KITTI sensor height above the road


@dataclass
class Row:
    """One benchmark result: ``ms`` is the median wall time, ``target_ms`` None when the case has no target."""

    op: str
    case: str
    size: str
    ms: float
    throughput: str
    target_ms: Optional[float]
    met: Optional[bool]


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` in ms over ``repeats`` runs, after one untimed warm-up (allocator, caches)."""
    return time_calls(fn, warmup=1, repeats=max(1, repeats)).median * 1e3


def _box_surface_points(box: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``(n, 3)`` points on the sides and top of one box ``(7,)`` (a LiDAR sees surfaces, not volumes)."""
    x, y, z, dx, dy, dz, h = box.tolist()
    u = torch.rand(n, 3, generator=gen) - 0.5
    # Snap one of the x / y / top faces per point to the box boundary.
    face = torch.randint(0, 3, (n,), generator=gen)
    u[face == 0, 0] = torch.sign(u[face == 0, 0]) * 0.5
    u[face == 1, 1] = torch.sign(u[face == 1, 1]) * 0.5
    u[face == 2, 2] = 0.5
    local = u * torch.tensor([dx, dy, dz]) + 0.02 * torch.randn(n, 3, generator=gen)  # range noise
    c, s = math.cos(h), math.sin(h)
    return torch.stack([x + c * local[:, 0] - s * local[:, 1], y + s * local[:, 0] + c * local[:, 1],
                        z + local[:, 2]], dim=1)


def make_scene(num_points: int = 120_000, num_objects: int = 30, seed: int = 0) -> torch.Tensor:
    """A synthetic KITTI-like scan, ``(num_points, 4)`` float32 ``(x, y, z, intensity)``, all inside the range."""
    gen = torch.Generator().manual_seed(seed)
    x0, y0, z0, x1, y1, z1 = POINT_CLOUD_RANGE
    n_obj = int(0.15 * num_points)
    n_clutter = int(0.05 * num_points)
    n_ground = num_points - n_obj - n_clutter

    # Ground: radius uniform in [2, 80] m gives density ~ 1/r, as concentric scan rings do; keep the front window.
    parts = []
    need = n_ground
    while need > 0:
        r = 2.0 + 78.0 * torch.rand(2 * need, generator=gen)
        phi = (torch.rand(2 * need, generator=gen) - 0.5) * math.pi
        g = torch.stack([r * torch.cos(phi), r * torch.sin(phi), GROUND_Z + 0.05 * torch.randn(2 * need, generator=gen)],
                        dim=1)
        g = g[(g[:, 0] >= x0) & (g[:, 0] < x1) & (g[:, 1] >= y0) & (g[:, 1] < y1)][:need]
        parts.append(g)
        need -= g.shape[0]

    # Objects: cars at random poses, points per object ~ 1/r^2 like real returns (near cars get thousands).
    centres = torch.stack([5 + 60 * torch.rand(num_objects, generator=gen),
                           -35 + 70 * torch.rand(num_objects, generator=gen)], dim=1)
    weight = 1.0 / centres.norm(dim=1) ** 2
    counts = torch.floor(weight / weight.sum() * n_obj).long()
    counts[0] += n_obj - int(counts.sum())
    for (cx, cy), k in zip(centres.tolist(), counts.tolist()):
        box = torch.tensor([cx, cy, GROUND_Z + CAR[2] / 2, *CAR, float(torch.rand(1, generator=gen)) * math.pi])
        parts.append(_box_surface_points(box, k, gen))

    # Clutter: vertical structures (poles, trunks, bushes) as tight columns of points.
    cols = torch.stack([x1 * torch.rand(200, generator=gen), y0 + (y1 - y0) * torch.rand(200, generator=gen)], dim=1)
    pick = torch.randint(0, 200, (n_clutter,), generator=gen)
    clutter = torch.cat([cols[pick] + 0.1 * torch.randn(n_clutter, 2, generator=gen),
                         GROUND_Z + 3.0 * torch.rand(n_clutter, 1, generator=gen)], dim=1)
    parts.append(clutter)

    xyz = torch.cat(parts)
    # Clamp into the half-open range so every point is kept (the benchmark measures the binning, not the drop).
    lo = torch.tensor([x0, y0, z0])
    hi = torch.tensor([x1, y1, z1]) - 1e-3
    xyz = torch.maximum(torch.minimum(xyz, hi), lo)
    intensity = torch.rand(xyz.shape[0], 1, generator=gen)
    perm = torch.randperm(xyz.shape[0], generator=gen)  # real scans are not grouped by object
    return torch.cat([xyz, intensity], dim=1)[perm].float().contiguous()


def make_boxes(n: int, spread: bool, seed: int) -> torch.Tensor:
    """``(n, 7)`` car-sized boxes: spread over the 70 m x 80 m scene, or all within ~1 m of one point (worst case)."""
    gen = torch.Generator().manual_seed(seed)
    if spread:
        xy = torch.stack([70.0 * torch.rand(n, generator=gen), -40 + 80.0 * torch.rand(n, generator=gen)], dim=1)
    else:
        xy = torch.tensor([30.0, 0.0]) + (torch.rand(n, 2, generator=gen) - 0.5)
    size = torch.tensor(CAR) * (0.8 + 0.4 * torch.rand(n, 3, generator=gen))
    z = GROUND_Z + size[:, 2:3] / 2 + 0.2 * torch.randn(n, 1, generator=gen)
    heading = (torch.rand(n, 1, generator=gen) - 0.5) * 2 * math.pi
    return torch.cat([xy, z, size, heading], dim=1).float()


def make_proposals(n: int, num_objects: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, 7)`` proposals jittered around ``num_objects`` cars and their ``(n,)`` scores (higher near the truth)."""
    gen = torch.Generator().manual_seed(seed)
    objects = make_boxes(num_objects, spread=True, seed=seed + 1)
    owner = torch.arange(n) % num_objects
    jitter = torch.randn(n, 7, generator=gen) * torch.tensor([0.4, 0.4, 0.1, 0.2, 0.1, 0.1, 0.15])
    boxes = objects[owner] + jitter
    boxes[:, 3:6] = boxes[:, 3:6].clamp(min=0.3)
    # Scores fall with the offset from the object, as a trained head's do, plus noise.
    scores = torch.exp(-jitter[:, :2].norm(dim=1)) * (0.7 + 0.3 * torch.rand(n, generator=gen))
    return boxes.float(), scores.float()


def run(quick: bool, repeats: int) -> list[Row]:
    """Measure every case; sizes shrink under ``quick`` (targets then do not apply)."""
    n_points, n_iou, n_nms = (20_000, 100, 500) if quick else (120_000, 500, 5_000)
    rows: list[Row] = []

    grid = VoxelGrid(POINT_CLOUD_RANGE, VOXEL_SIZE)
    points = make_scene(n_points)
    voxels = voxelize(points, None, grid)
    ms = median_ms(lambda: voxelize(points, None, grid), repeats)
    rows.append(Row("voxelize", f"KITTI-like scan, {voxels.coords.shape[0]:,} voxels", f"{n_points:,} points", ms,
                    f"{n_points / (ms / 1e3) / 1e6:.1f} M points/s", 50.0, None))

    for spread, case in ((True, "spread over 70 x 80 m"), (False, "all overlapping")):
        a, b = make_boxes(n_iou, spread, seed=1), make_boxes(n_iou, spread, seed=2)
        ms = median_ms(lambda: iou_3d(a, b), repeats)  # noqa: B023 -- median_ms calls it at once
        rows.append(Row("iou_3d", case, f"{n_iou} x {n_iou}", ms,
                        f"{n_iou * n_iou / (ms / 1e3) / 1e6:.2f} M pairs/s", 1000.0, None))

    boxes, scores = make_proposals(n_nms, 50, seed=3)
    keep = nms_rotated(boxes, scores, 0.7)
    ms = median_ms(lambda: nms_rotated(boxes, scores, 0.7), repeats)
    rows.append(Row("nms_rotated", f"50 objects, BEV IoU > 0.7, {keep.numel()} kept", f"{n_nms:,} boxes", ms,
                    f"{n_nms / (ms / 1e3) / 1e3:.0f} k boxes/s", None, None))

    for row in rows:
        if row.target_ms is not None and not quick:
            row.met = row.ms < row.target_ms
    return rows


def print_table(rows: list[Row]) -> None:
    print("| op | case | size | median ms | throughput | target | met |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        target = f"< {r.target_ms:,.0f} ms" if r.target_ms is not None else "-"
        met = "n/a" if r.met is None else ("yes" if r.met else "MISSED")
        print(f"| {r.op} | {r.case} | {r.size} | {r.ms:,.2f} | {r.throughput} | {target} | {met} |")


def main(argv: list[str] | None = None) -> list[Row]:
    """Run the benchmark and print its markdown table; returns the rows."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20k points, 100 x 100 IoU, 500-box NMS, one repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case after the warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = 1 if args.quick else args.repeats
    print(f"# pointcloud ops (CPU): torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"median of {repeats} after 1 warm-up\n")
    rows = run(args.quick, repeats)
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
