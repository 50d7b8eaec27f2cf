"""One small training run per package that writes checkpoints, for the fault tests of tests/test_checkpoints.py.

Each run trains for a few steps in ``folder`` and checkpoints after every one; ``resume=True`` continues from the
surviving checkpoint. ``saved_step(package, folder)`` reads back, through the package's own loader, the step of
the checkpoint a later run would resume from. Run as a script (``python checkpoint_cases.py PACKAGE FOLDER
KILL_AT``), the process kills itself with SIGKILL half-way through writing its ``KILL_AT``-th checkpoint.
"""
from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("graphs", "timeseries", "vision", "pointcloud")


def graphs_run(folder: Path, resume: bool = False) -> dict[str, Any]:
    from graphs import GSMPlusPlus
    from graphs.tasks import make_task
    from graphs.training import fit_classifier

    data, spec = make_task("connectivity", 24, seed=0)
    torch.manual_seed(0)
    net = GSMPlusPlus(spec.in_channels, 8, spec.num_classes, task=spec.level)
    result = fit_classifier(net, data[:16], data[16:], data[16:], epochs=3, lr=3e-3, batch_size=8, progress=False,
                            checkpoint=folder / "fit.pt", resume=resume)
    return {"history": result.history, "test_acc": result.test_acc, "weights": net.state_dict()}


def timeseries_run(folder: Path, resume: bool = False) -> dict[str, Any]:
    from timeseries.dynamics.models import ShallowPLRNN
    from timeseries.dynamics.observation import IdentityObservation
    from timeseries.dynamics.training import train_gtf

    torch.manual_seed(0)
    model, obs = ShallowPLRNN(2, 16), IdentityObservation(2, 2)
    t = np.arange(300) * 0.1
    latest = sorted(folder.glob("checkpoint_*.pt"))
    history = train_gtf(model, obs, np.stack([np.sin(t), np.cos(t)], axis=1), epochs=3, batches_per_epoch=3,
                        sequence_length=20, batch_size=4, alpha="adaptive", alpha_update_interval=2,
                        progress=False, random_state=7, checkpoint_dir=folder, checkpoint_every=1,
                        resume_from=latest[-1] if resume else None)
    return {"history": history, "weights": model.state_dict()}


def _script(relative: str, name: str):
    sys.path.insert(0, str(ROOT / "tests"))
    from scripts import load_script

    return load_script(ROOT / relative, name)


def vision_run(folder: Path, resume: bool = False) -> dict[str, Any]:
    train = _script("examples/vision/train.py", "vision_train_checkpoints")
    args = ["--quick", "--epochs", "3", "--out", str(folder), "--threads", "1",
            "--model-kwargs", '{"embed_dim": 32, "depth": 1, "num_heads": 2}']
    metrics = train.main(args + (["--resume", str(folder / "checkpoint.pt")] if resume else []))
    return {"history": [{k: v for k, v in row.items() if not k.endswith("_s")} for row in metrics["history"]]}


def pointcloud_run(folder: Path, resume: bool = False) -> dict[str, Any]:
    train = _script("examples/pointcloud/train.py", "pointcloud_train_checkpoints")
    args = ["--config", "tiny", "--operator", "retnet", "--train-scenes", "2", "--val-scenes", "1", "--steps", "3",
            "--eval-every", "1", "--cache", str(folder / "data"), "--out", str(folder / "run"), "--no-gt-sampling"]
    result = train.main(args + (["--resume", str(folder / "run" / "last.pt")] if resume else []))
    return {"ap": [point["ap"] for point in result["curve"]]}


RUNS = {"graphs": graphs_run, "timeseries": timeseries_run, "vision": vision_run, "pointcloud": pointcloud_run}


def saved_step(package: str, folder: Path) -> int:
    """The step of the checkpoint a resumed run would continue from, read by the package's own loader."""
    from seqcore.checkpoint import load_checkpoint

    if package == "graphs":
        from graphs.training import CHECKPOINT_KIND
        return load_checkpoint(folder / "fit.pt", kind=CHECKPOINT_KIND).state["step"]
    if package == "timeseries":
        from timeseries.dynamics.training import CHECKPOINT_KIND
        latest = sorted(folder.glob("checkpoint_*.pt"))[-1]
        return load_checkpoint(latest, kind=CHECKPOINT_KIND).state["step"]
    if package == "vision":
        return load_checkpoint(folder / "checkpoint.pt", kind="vision.train").state["step"]
    from pointcloud.lion import LIONDetector
    from pointcloud.lion.detector import CHECKPOINT_KIND
    LIONDetector.load(folder / "run" / "last.pt")
    return load_checkpoint(folder / "run" / "last.pt", kind=CHECKPOINT_KIND).state["step"]


def checkpoint_saves(package: str) -> str:
    """The file name whose saves are counted: vision and pointcloud also write plots, best.pt and curve.json."""
    return {"graphs": "fit.pt", "timeseries": "checkpoint_", "vision": "checkpoint.pt", "pointcloud": "last.pt"}[package]


def written_name(f: Any) -> str:
    """The file name behind a handle (atomic_write hands out ``os.fdopen`` handles, whose ``name`` is the fd)."""
    try:
        return os.path.basename(os.readlink(f"/proc/self/fd/{f.fileno()}"))
    except (AttributeError, OSError, io.UnsupportedOperation):
        return ""


def _die_in_save(counted: str, kill_at: int) -> None:
    """Make ``torch.save`` write half of its bytes and SIGKILL the process on the ``kill_at``-th counted save."""
    real = torch.save
    seen = [0]

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if counted in written_name(f):
            seen[0] += 1
            if seen[0] == kill_at:
                buffer = io.BytesIO()
                real(obj, buffer, *args, **kwargs)
                data = buffer.getvalue()
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
                os.kill(os.getpid(), signal.SIGKILL)
        real(obj, f, *args, **kwargs)

    torch.save = save


if __name__ == "__main__":
    package, folder, kill_at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    _die_in_save(checkpoint_saves(package), kill_at)
    RUNS[package](folder)
