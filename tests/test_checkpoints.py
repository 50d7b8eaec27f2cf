"""Checkpoints in every package: a crafted pickle never runs, a save killed half-way or stopped by a full disk
keeps the previous checkpoint, and resuming after it continues exactly as the uninterrupted run."""
from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import checkpoint_cases as cases
from crafted import crafted_pickle
from scripts import load_script
from seqcore.checkpoint import CheckpointError, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def same(a: Any, b: Any) -> bool:
    """Bitwise equality through nested dicts, lists and tensors."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def temporaries(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, Any]:
    return {package: cases.RUNS[package](tmp_path_factory.mktemp(package)) for package in cases.PACKAGES}


@pytest.mark.parametrize("package", cases.PACKAGES)
def test_a_save_killed_half_way_keeps_the_previous_checkpoint(package: str, tmp_path: Path,
                                                             uninterrupted: dict[str, Any]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "checkpoint_cases.py"), package, str(tmp_path), "2"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    assert temporaries(tmp_path), "the kill should have hit a save in progress"
    assert cases.saved_step(package, tmp_path) == 1
    resumed = cases.RUNS[package](tmp_path, resume=True)
    assert same(resumed, uninterrupted[package])
    assert temporaries(tmp_path) == []  # the dead writer's partial file was cleared by the next save


@pytest.mark.parametrize("package", cases.PACKAGES)
def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(package: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    real, seen = torch.save, [0]

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if cases.checkpoint_saves(package) in cases.written_name(f):
            seen[0] += 1
            if seen[0] == 2:
                buffer = io.BytesIO()
                real(obj, buffer, *args, **kwargs)
                f.write(buffer.getvalue()[:1000])
                raise OSError(errno.ENOSPC, "No space left on device")
        real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    torch.set_num_threads(1)
    with pytest.raises(OSError, match=r"No space left on device\); the previous .* was left untouched"):
        cases.RUNS[package](tmp_path)
    assert cases.saved_step(package, tmp_path) == 1
    assert temporaries(tmp_path) == []


# ------------------------------------------------------------------ every loader refuses a crafted pickle


def _pointcloud_script(name: str):
    return load_script(ROOT / "examples" / "pointcloud" / f"{name}.py", f"pointcloud_{name}_crafted")


def _operator_table(path: Path) -> None:
    run = path.parent / "run"
    run.mkdir()
    (run / "curve.json").write_text(json.dumps([{"step": 1, "ap": {}, "train_seconds": 1.0}]))
    shutil.copy(path, run / "last.pt")
    _pointcloud_script("operator_table").main([str(run)])


def _infer(path: Path) -> None:
    from pointcloud import SyntheticScenes
    SyntheticScenes(2, seed=0).write_kitti(path.parent / "kitti")
    _pointcloud_script("infer").main(["--checkpoint", str(path), "--data", str(path.parent / "kitti"),
                                      "--split", "val", "--out", str(path.parent / "results")])


def _lion_resume(path: Path) -> None:
    _pointcloud_script("train").main(["--config", "tiny", "--train-scenes", "1", "--val-scenes", "1", "--steps", "2",
                                      "--cache", str(path.parent / "data"), "--out", str(path.parent / "run"),
                                      "--resume", str(path)])


def _vision_resume(path: Path) -> None:
    train = load_script(ROOT / "examples" / "vision" / "train.py", "vision_train_crafted")
    train.main(["--quick", "--out", str(path.parent / "run"), "--resume", str(path),
                "--model-kwargs", '{"embed_dim": 32, "depth": 1, "num_heads": 2}'])


def _dynamics_resume(path: Path) -> None:
    from timeseries.dynamics.models import ShallowPLRNN
    from timeseries.dynamics.observation import IdentityObservation
    from timeseries.dynamics.training import train_gtf
    train_gtf(ShallowPLRNN(2, 4), IdentityObservation(2, 2), torch.randn(100, 2).numpy(), epochs=2,
              batches_per_epoch=1, sequence_length=10, batch_size=2, progress=False, resume_from=path)


def _graphs_resume(path: Path) -> None:
    from graphs import GSMPlusPlus
    from graphs.tasks import make_task
    from graphs.training import fit_classifier
    data, spec = make_task("connectivity", 4, seed=0)
    fit_classifier(GSMPlusPlus(spec.in_channels, 8, spec.num_classes, task=spec.level), data, data, data,
                   epochs=1, progress=False, checkpoint=path, resume=True)


def _hugging_face_directory(path: Path) -> None:
    from timeseries.autotimes import HuggingFaceBackbone
    folder = path.parent / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2,
                                                    "n_positions": 32, "vocab_size": 10}))
    shutil.copy(path, folder / "pytorch_model.bin")
    HuggingFaceBackbone(folder)


def _timm_pretrained_file(path: Path) -> None:
    import timm
    import vision  # noqa: F401  (registers lightnet_*)
    timm.create_model("lightnet_tiny", pretrained=True, pretrained_cfg_overlay={"file": str(path)})


LOADERS: dict[str, tuple[Callable[[Path], Any], type[BaseException], str | None]] = {
    "seqcore.checkpoint.load_checkpoint": (lambda p: load_checkpoint(p, kind="vision.train"), CheckpointError,
                                           "cannot be loaded safely"),
    "pointcloud LIONDetector.load": (lambda p: __import__("pointcloud.lion", fromlist=["LIONDetector"])
                                     .LIONDetector.load(p), CheckpointError, "cannot be loaded safely"),
    "examples/pointcloud/train.py --resume": (_lion_resume, SystemExit, None),
    "examples/pointcloud/operator_table.py": (_operator_table, CheckpointError, "cannot be loaded safely"),
    "examples/pointcloud/infer.py --checkpoint": (_infer, CheckpointError, "cannot be loaded safely"),
    "examples/vision/train.py --resume": (_vision_resume, SystemExit, "cannot be loaded safely"),
    "timeseries.dynamics train_gtf(resume_from=)": (_dynamics_resume, CheckpointError, "cannot be loaded safely"),
    "graphs fit_classifier(resume=True)": (_graphs_resume, CheckpointError, "cannot be loaded safely"),
    "timeseries AutoTimes pretrained=<local Hugging Face directory>": (_hugging_face_directory, ValueError,
                                                                       "refusing to load the weights"),
    "timm.create_model(lightnet_*, pretrained file)": (_timm_pretrained_file, Exception,
                                                        "weights_only=True blocked|Weights only load failed"),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_every_loader_refuses_a_crafted_pickle(loader: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    load, error, message = LOADERS[loader]
    path, marker = crafted_pickle(tmp_path)
    with pytest.raises(error, match=message) as info:
        load(path)
    if error is SystemExit:
        assert "cannot be loaded safely" in capsys.readouterr().err + str(info.value)
    assert not marker.exists()


# ------------------------------------------------------------------ data caches built without a download

_KILL_WHILE_WRITING_SCENES = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import pointcloud.synthetic as synthetic
from scripts import load_script
real, calls = synthetic.write_points, [0]
def write_points(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    real(*args, **kwargs)
synthetic.write_points = write_points
load_script(Path(sys.argv[3]), "train").synthetic_root(Path(sys.argv[1]), 3, 2, 0)
"""


def test_an_interrupted_synthetic_scene_cache_is_rebuilt_whole(tmp_path: Path) -> None:
    script = ROOT / "examples" / "pointcloud" / "train.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", _KILL_WHILE_WRITING_SCENES, str(tmp_path / "cache"),
                          str(ROOT / "tests"), str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    assert [p.name for p in (tmp_path / "cache").iterdir()][0].endswith(".partial")  # nothing under the real name
    train = load_script(script, "pointcloud_train_cache")
    root = train.synthetic_root(tmp_path / "cache", 3, 2, 0)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [root.name]  # the dead builder's folder is gone
    fresh = train.synthetic_root(tmp_path / "fresh", 3, 2, 0)
    files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert len(files) == 5 * 3 + 3  # velodyne, label_2 and calib of 5 scenes; train.txt, val.txt, trainval.txt
    assert files == sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert all((fresh / f).read_bytes() == (root / f).read_bytes() for f in files)
