"""Train a LION detector on synthetic LiDAR scenes (default) or a KITTI root, on a CPU or a GPU.

    python examples/pointcloud/train.py                          # small LION (retnet) on synthetic scenes
    python examples/pointcloud/train.py --operator mamba2        # swap the linear-RNN operator
    python examples/pointcloud/train.py --data path/to/kitti --config kitti --device cuda
    python examples/pointcloud/train.py --resume runs/lion/mamba2/last.pt
    python examples/pointcloud/train.py --quick                  # a 2-minute smoke run (make demo)

Synthetic scenes are written once in KITTI layout under ``--cache`` (train and a held-out val split from the same
seed, disjoint scene indices) and read back through ``KittiDataset``, so both data sources take the same path.
Training uses ground-truth sampling and flip / rotation / scaling / translation augmentation, AdamW with a
one-cycle schedule, tqdm progress, a checkpoint every evaluation (``last.pt``, resumable) and the best one
(``best.pt``). Every
``--eval-every`` steps the model is scored with the KITTI AP|R40 on the val split; the curve goes to
``curve.json`` / ``curve.png`` and a bird's-eye view of predictions to ``bev_<step>.png``.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from seqcore.extras import require_extra  # noqa: E402

require_extra("examples", "examples/pointcloud/train.py")  # matplotlib and tqdm: name the extra, not a bare ModuleNotFoundError

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pointcloud import (  # noqa: E402
    Compose, GTDatabase, GTSampling, RandomFlip, RandomRotation, RandomScaling, RandomTranslation,
)
from pointcloud.data import KittiDataset  # noqa: E402
from pointcloud.lion import LIONConfig, LIONDetector, evaluate_detector, to_batch  # noqa: E402
from pointcloud.lion.detector import CHECKPOINT_KIND  # noqa: E402
from seqcore.atomic import atomic_write, atomic_write_text  # noqa: E402
from seqcore.checkpoint import CheckpointError, load_checkpoint, restore_training_state, training_state  # noqa: E402
from pointcloud.synthetic import SyntheticScenes  # noqa: E402
from pointcloud.viz import save_bev  # noqa: E402

PRESETS = {"small": LIONConfig.small, "kitti": LIONConfig.kitti, "tiny": LIONConfig.tiny}
TARGET = ("Car", "3d", "moderate")


def synthetic_root(out: Path, train: int, val: int, seed: int) -> Path:
    """Write (once) ``train + val`` synthetic scenes in KITTI layout with ``train`` / ``val`` image sets.

    The scenes are built in a hidden folder beside the final one and renamed into place when complete, so an
    interrupted run never leaves a partial data set that the next run would take for the whole one (the next run
    removes what a dead builder left behind), and two runs building the same cache at once both end up reading the
    one that was renamed first.
    """
    root = out / f"synthetic_s{seed}_{train}_{val}"
    complete = root / "ImageSets" / "val.txt"
    if complete.is_file():
        return root
    out.mkdir(parents=True, exist_ok=True)
    for leftover in out.glob(f".{root.name}.*.partial"):
        pid = leftover.name[len(root.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
    if root.exists() and not complete.is_file():  # left by an interrupted run of a version that wrote in place
        shutil.rmtree(root)
    building = Path(tempfile.mkdtemp(dir=out, prefix=f".{root.name}.{os.getpid()}.", suffix=".partial"))
    try:
        scenes = SyntheticScenes(train + val, seed=seed)
        begin = time.perf_counter()
        scenes.write_kitti(building, val_fraction=val / (train + val))  # the last `val` scenes are val
        try:
            os.replace(building, root)
        except OSError:
            if not complete.is_file():  # not another run's finished copy: a real failure
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    print(f"wrote {train} + {val} synthetic scenes to {root} in {time.perf_counter() - begin:.0f} s")
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_split(root: Path, split: str, config: LIONConfig) -> KittiDataset:
    return KittiDataset(root, split, classes=config.classes, point_cloud_range=config.point_cloud_range)


# Objects pasted into each training scene from the ground-truth database (OpenPCDet's gt_sampling): more boxes
# per step for the head to learn from.
GT_SAMPLES = {"Car": 12, "Pedestrian": 6, "Cyclist": 6}


def augmentation(train_samples: list[dict[str, Any]], classes: list[str], gt_sampling: bool) -> Compose:
    steps = []
    if gt_sampling:
        database = GTDatabase.build(train_samples)
        steps.append(GTSampling(database, {c: GT_SAMPLES.get(c, 6) for c in classes}))
    return Compose(steps + [RandomFlip("x"), RandomRotation(math.pi / 4), RandomScaling((0.95, 1.05)),
                            RandomTranslation((0.2, 0.2, 0.1))])


def plot_curve(curve: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    steps = [c["step"] for c in curve]
    for key in sorted({k for c in curve for k in c["ap"]}):
        ax.plot(steps, [c["ap"].get(key, float("nan")) for c in curve], marker="o", label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("AP|R40 moderate (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path) as handle:
        fig.savefig(handle, dpi=110, format="png")
    plt.close(fig)


def run_eval(model, samples, ground_truth, step: int, out: Path) -> dict[str, Any]:
    begin = time.perf_counter()
    evaluation, detections = evaluate_detector(model, samples, ground_truth)
    ap = {f"{c} {m.upper()}": evaluation.ap[(c, m, "moderate")] for c, m, d in evaluation.ap if d == "moderate"
          and evaluation.num_gt[(c, m, d)]}
    save_bev(out / f"bev_{step:06d}.png", samples[0]["points"], samples[0]["gt_boxes"], detections[0].boxes,
             detections[0].scores, point_cloud_range=model.config.point_cloud_range,
             title=f"step {step}: ground truth (green), LION (red)")
    return {"step": step, "ap": ap, "table": evaluation.table(), "seconds": time.perf_counter() - begin}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train; returns ``{"curve": [...], "final": {...}, "train_seconds": float, "cpu_seconds": float, "out": str,
    "operator": str}`` (seconds of training steps, evaluations excluded; CPU seconds of this process)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a KITTI root (training/ + ImageSets/train.txt, val.txt)")
    parser.add_argument("--config", choices=sorted(PRESETS), default="small")
    parser.add_argument("--operator", help="seqcore.nn mixer of the LION blocks (default: the preset's, retnet "
                        "for small, mamba2 for kitti)")
    parser.add_argument("--no-generation", action="store_true", help="switch voxel generation off")
    parser.add_argument("--cache", type=Path, default=Path("runs/lion"), help="where synthetic scenes are written")
    parser.add_argument("--train-scenes", type=int, default=400)
    parser.add_argument("--val-scenes", type=int, default=50)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--eval-every", type=int, default=300)
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--no-gt-sampling", action="store_true", help="do not paste database objects into scenes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default runs/lion/<operator>")
    parser.add_argument("--resume", type=Path, help="a last.pt to continue from (same --steps schedule)")
    parser.add_argument("--stop-after", type=int, help="leave after this many steps of this invocation (a "
                        "checkpoint is written), e.g. for time-sliced jobs; --resume continues")
    parser.add_argument("--quick", action="store_true", help="tiny run for the demo: 16 + 6 scenes, 40 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.train_scenes, args.val_scenes, args.steps, args.eval_every = 16, 6, 40, 40
    if min(args.steps, args.batch_size, args.eval_every, args.train_scenes, args.val_scenes) < 1:
        parser.error("--steps, --batch-size, --eval-every, --train-scenes and --val-scenes must be positive")
    torch.set_num_threads(args.threads)
    try:
        resume = load_checkpoint(args.resume, kind=CHECKPOINT_KIND) if args.resume else None
    except (FileNotFoundError, CheckpointError) as err:
        parser.error(f"--resume: {err}")
    if resume is not None:
        config = LIONConfig.from_dict(resume.config)
    else:
        changes = {"operator": args.operator} if args.operator else {}
        if args.no_generation:
            changes["generate_ratio"] = 0.0
        config = PRESETS[args.config](**changes)
    out = args.out or Path("runs/lion") / config.operator
    out.mkdir(parents=True, exist_ok=True)
    root = args.data or synthetic_root(args.cache, args.train_scenes, args.val_scenes, args.seed)
    train_set, val_set = load_split(root, "train", config), load_split(root, "val", config)
    train_samples = [train_set[i] for i in range(len(train_set))]
    val_samples = [val_set[i] for i in range(len(val_set))]
    val_truth = [val_set.ground_truth(i) for i in range(len(val_set))]  # only the val labels are scored
    if not train_samples or not val_samples:
        raise SystemExit(f"{root} needs frames in both ImageSets/train.txt and ImageSets/val.txt")
    print(f"LION ({config.operator}) on {len(train_samples)} train / {len(val_samples)} val frames from {root}")

    torch.manual_seed(args.seed)
    model = LIONDetector(config).to(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.steps,
                                                    pct_start=0.3, div_factor=10, final_div_factor=100)
    rng = np.random.default_rng(args.seed)
    curve: list[dict[str, Any]] = []
    step, train_seconds, cpu_seconds, best = 0, 0.0, 0.0, -1.0
    if resume is not None:
        saved = resume.state
        if saved["total_steps"] != args.steps:
            raise SystemExit(f"{args.resume} follows a one-cycle schedule of {saved['total_steps']} steps; "
                             f"resume with --steps {saved['total_steps']}")
        step = restore_training_state(saved, model, optimizer, scheduler, generators={"data": rng})
        curve, best = saved["curve"], saved["best"]
        train_seconds, cpu_seconds = saved["train_seconds"], saved["cpu_seconds"]
        print(f"resumed from {args.resume} at step {step}")
    if step >= args.steps:
        raise SystemExit(f"the checkpoint is already at step {step} of --steps {args.steps}")
    stop = min(args.steps, step + args.stop_after) if args.stop_after else args.steps
    augment = None if args.no_augment else augmentation(train_samples, config.classes, not args.no_gt_sampling)

    model.train()
    bar = tqdm(total=args.steps, initial=step, desc=f"LION {config.operator}", unit="step")
    while step < stop:
        begin, begin_cpu = time.perf_counter(), time.process_time()
        chosen = rng.choice(len(train_samples), size=args.batch_size, replace=len(train_samples) < args.batch_size)
        batch = [train_samples[i] for i in chosen]
        if augment is not None:
            batch = [augment(s, rng) for s in batch]
        points, gt_boxes, gt_classes = to_batch(batch, config.classes)
        preds = model(points.to(args.device), len(batch))
        loss, parts = model.loss(preds, gt_boxes.to(args.device), gt_classes.to(args.device))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {float(loss)} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        scheduler.step()
        step += 1
        train_seconds += time.perf_counter() - begin
        cpu_seconds += time.process_time() - begin_cpu
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", heat=f"{parts['heatmap']:.3f}", box=f"{parts['box']:.3f}")
        if step % args.eval_every == 0 or step == stop:
            point = run_eval(model, val_samples, val_truth, step, out)
            point["train_seconds"], point["cpu_seconds"] = train_seconds, cpu_seconds
            curve.append(point)
            target = point["ap"].get(f"{TARGET[0]} {TARGET[1].upper()}", float("nan"))
            tqdm.write(f"step {step} ({train_seconds / 60:.1f} train min, {cpu_seconds / 60:.1f} CPU min): "
                       "moderate AP|R40 "
                       + ", ".join(f"{k} {v:.1f}" for k, v in point["ap"].items()))
            state = training_state(model, optimizer, scheduler, step=step, generators={"data": rng}, curve=curve,
                                   train_seconds=train_seconds, cpu_seconds=cpu_seconds, best=max(best, target),
                                   total_steps=args.steps)
            model.save(out / "last.pt", **{k: v for k, v in state.items() if k != "model"})
            if target > best:
                best = target
                model.save(out / "best.pt", step=step, ap=point["ap"])
            atomic_write_text(out / "curve.json", json.dumps(curve, indent=1))
            plot_curve(curve, out / "curve.png")
    bar.close()
    final = curve[-1]
    print(f"\n### LION ({config.operator}) after {step} steps, {train_seconds / 60:.1f} train minutes "
          f"({cpu_seconds / 60:.1f} CPU minutes): "
          f"AP|R40 (%) on {len(val_samples)} val frames\n\n{final['table']}\n\ncurve: {out / 'curve.png'}")
    return {"curve": curve, "final": final, "train_seconds": train_seconds, "cpu_seconds": cpu_seconds,
            "out": str(out),
            "operator": config.operator}


if __name__ == "__main__":
    main()
