"""LION backbone cost per voxel as the group grows: linear-RNN operators against window softmax attention (SDPA).

    python benchmarks/lion.py                              # groups 256 ... 4096, mamba2 / retnet / attention
    python benchmarks/lion.py --operators mamba2 gla attention --groups 512 4096
    python benchmarks/lion.py --quick                      # small scene, two group sizes (what the test runs)

Method. Two synthetic scenes (``SyntheticScenes``, 360-degree scans with 0.1-degree azimuth steps, about 100k
points each) are voxelized on the paper's KITTI grid (0.2 x 0.2 x 0.125 m) and given random 64-channel features.
One LION block (two LION layers in a U, windows ``[13, 13, 32]``, 4 heads) runs forward and backward with the
group size under test. The baseline is the same block with ``operator="attention"``: softmax attention inside
the same groups, through ``torch.nn.functional.scaled_dot_product_attention`` with a key mask, so the windows,
groups, descriptors, norms and merges are identical and only the mixer differs.

Each configuration runs in a freshly forked child (``benchmarks/measure.py``): one untimed step, then
``--repeats`` timed steps (median, process CPU time with one thread by default, so other jobs on the machine do
not inflate it). Peak memory is the resident-set peak over all steps, above the inputs and weights. The table
gives voxels/s, microseconds per voxel, the per-voxel cost relative to the operator's own smallest group, and
attention's cost per voxel divided by the operator's at the same group size.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch

from benchmarks.measure import ChildError, in_child, peak_bytes, reset_peak, time_calls
from pointcloud import SyntheticScenes, VoxelGrid, voxelize
from pointcloud.lion import LIONBlock

KITTI_RANGE = (0.0, -40.0, -3.0, 70.4, 40.0, 1.0)
KITTI_VOXEL = (0.2, 0.2, 0.125)
WINDOW = (13, 13, 32)


@dataclass
class Row:
    operator: str
    group: int
    voxels: int
    seconds: float
    peak_mb: float

    @property
    def us_per_voxel(self) -> float:
        return 1e6 * self.seconds / self.voxels


def scene_voxels(num_scenes: int, azimuth_step: float, voxel_size=KITTI_VOXEL) -> tuple[torch.Tensor, tuple]:
    """``(coords (V, 4), grid shape)`` of ``num_scenes`` 360-degree synthetic scans."""
    scenes = SyntheticScenes(num_scenes, seed=0, azimuth_fov=None, azimuth_step=azimuth_step)
    points = [torch.from_numpy(scenes[i]["points"]) for i in range(num_scenes)]
    batch = torch.cat([torch.full((len(p),), i) for i, p in enumerate(points)])
    grid = VoxelGrid(KITTI_RANGE, voxel_size)
    return voxelize(torch.cat(points), batch, grid).coords, grid.grid_shape


def measure(operator: str, group: int, coords: torch.Tensor, shape: tuple, batch_size: int, dim: int,
            repeats: int, clock: str) -> Row:
    """Runs in a child: one LION block forward + backward at ``group``."""
    torch.manual_seed(0)
    block = LIONBlock(dim, operator, WINDOW, group, depth=2, stride=(2, 2, 1), num_heads=4, mixer_kwargs={})
    features = torch.randn(len(coords), dim, requires_grad=True)

    def step() -> None:
        block.zero_grad(set_to_none=True)
        block(coords, features, shape, batch_size).square().mean().backward()

    base = reset_peak()  # before the untimed step: a later reset would miss the blocks it leaves cached
    timing = time_calls(step, warmup=1, repeats=repeats, clock=clock)
    return Row(operator, group, len(coords), timing.median, peak_bytes(base) / 2**20)


def table(rows: list[Row], baseline: str = "attention") -> str:
    lines = ["| operator | group | voxels | voxels/s | us/voxel | vs own smallest group | peak MB | "
             f"{baseline} / operator |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    smallest = {}
    for r in rows:
        smallest.setdefault(r.operator, r.us_per_voxel)
    base = {r.group: r for r in rows if r.operator == baseline}
    for r in rows:
        ratio = f"{base[r.group].us_per_voxel / r.us_per_voxel:.2f}x" if r.group in base else "-"
        lines.append(f"| {r.operator} | {r.group} | {r.voxels:,} | {r.voxels / r.seconds:,.0f} | "
                     f"{r.us_per_voxel:.1f} | {r.us_per_voxel / smallest[r.operator]:.2f} | {r.peak_mb:.0f} | "
                     f"{ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operators", nargs="+", default=["mamba2", "retnet", "attention"])
    parser.add_argument("--groups", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="one small scene, groups 64 and 256, one repeat")
    args = parser.parse_args(argv)
    if not os.path.exists("/proc/self/clear_refs"):
        parser.error("the benchmark forks a child per configuration and reads /proc: it needs Linux")
    if args.clock == "cpu" and args.threads > 1:
        parser.error("--clock cpu sums the CPU time of all threads; use --clock wall with --threads > 1")
    if args.quick:
        coords, shape = scene_voxels(1, 0.8, voxel_size=(0.4, 0.4, 0.125))
        args.groups, args.repeats, args.dim = [64, 256], 1, 32
    else:
        coords, shape = scene_voxels(args.scenes, 0.1)
    batch_size = int(coords[:, 0].max()) + 1
    print(f"{len(coords):,} voxels in {batch_size} scene(s) on a {shape} grid; window {WINDOW}, dim {args.dim}, "
          f"{args.clock} clock, {args.threads} thread(s)")
    rows: list[Row] = []
    for operator in args.operators:
        for group in args.groups:
            try:
                row = in_child(measure, operator, group, coords, shape, batch_size, args.dim, args.repeats,
                               args.clock, threads=args.threads)
            except ChildError as err:
                print(f"{operator} at group {group} failed: {err}")
                continue
            rows.append(row)
            print(f"  {operator:>10} group {group:>5}: {row.us_per_voxel:.1f} us/voxel, {row.peak_mb:.0f} MB",
                  flush=True)
    print()
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
