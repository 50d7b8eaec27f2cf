"""The point-cloud examples on a few synthetic scenes: the KITTI tour, LION training (and resuming) and inference
(on synthetic KITTI folders and the real KITTI frame)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kitti_files import KITTI_SAMPLE
from pointcloud import SyntheticScenes
from pointcloud.lion import LIONConfig, LIONDetector
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str):
    path = ROOT / "examples" / "pointcloud" / f"{name}.py"
    return load_script(path, f"pointcloud_{name}")


def test_kitti_tour_quick(tmp_path, capsys):
    rows = load_example("kitti_tour").main(["--quick", "--out", str(tmp_path)])
    car = {(r["noise"], r["metric"], r["difficulty"]): r["ap"] for r in rows if r["class"] == "Car"}
    # 5 cm of jitter keeps every car above IoU 0.7 (with N < 41 cars the devkit's sampling caps AP at (N - 1) / 40);
    # 50 cm loses most of them, more in 3-D than in BEV.
    n = next(r["num_gt"] for r in rows if r["class"] == "Car" and r["difficulty"] == "moderate")
    assert car[(0.05, "bev", "moderate")] > 0.9 * 100 * min(n - 1, 40) / 40
    assert car[(0.5, "3d", "moderate")] < car[(0.5, "bev", "moderate")] < 60
    assert (tmp_path / "bev.png").stat().st_size > 0
    assert (tmp_path / "results_noise_0.05" / "000000.txt").exists()
    assert "| Car | 3D | 0.7 |" in capsys.readouterr().out


def test_train_writes_checkpoints_curve_plots_and_resumes(tmp_path, capsys):
    train = load_example("train")
    common = ["--config", "tiny", "--operator", "retnet", "--train-scenes", "3", "--val-scenes", "2",
              "--eval-every", "2", "--cache", str(tmp_path / "data"), "--out", str(tmp_path / "run")]
    first = train.main(common + ["--steps", "4", "--stop-after", "2"])
    sets = tmp_path / "data" / "synthetic_s0_3_2" / "ImageSets"
    assert [(sets / f"{n}.txt").read_text().split() for n in ("train", "val")] == [
        ["000000", "000001", "000002"], ["000003", "000004"]]  # --train-scenes 3, --val-scenes 2, disjoint
    run = tmp_path / "run"
    assert [c["step"] for c in first["curve"]] == [2]
    for name in ("last.pt", "best.pt", "curve.json", "curve.png", "bev_000002.png"):
        assert (run / name).stat().st_size > 0, name
    resumed = train.main(common + ["--steps", "4", "--resume", str(run / "last.pt")])
    assert [c["step"] for c in resumed["curve"]] == [2, 4]
    assert [c["step"] for c in json.loads((run / "curve.json").read_text())] == [2, 4]
    out = capsys.readouterr().out
    assert "resumed from" in out and "| Car | 3D | 0.7 |" in out
    assert LIONDetector.load(run / "last.pt").config.operator == "retnet"
    with pytest.raises(SystemExit, match="already at step 4"):
        train.main(common + ["--steps", "4", "--resume", str(run / "last.pt")])
    with pytest.raises(SystemExit, match="resume with --steps 4"):
        train.main(common + ["--steps", "6", "--resume", str(run / "last.pt")])
    capsys.readouterr()
    runs = load_example("operator_table").main([str(run), "--plot", str(tmp_path / "operators.png")])
    assert runs[0]["operator"] == "retnet" and (tmp_path / "operators.png").stat().st_size > 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| retnet |")]
    assert len(row) == 1 and row[0].split("|")[2].strip() == "4"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("lion") / "tiny.pt"
    LIONDetector(LIONConfig.tiny(score_threshold=0.0, max_detections=5)).save(path)
    return path


def _infer(*args: str) -> dict:
    return load_example("infer").main([str(a) for a in args])


def test_infer_writes_kitti_results_and_scores_them(tmp_path, tiny_checkpoint, capsys):
    SyntheticScenes(2, seed=3).write_kitti(tmp_path / "kitti")
    out = tmp_path / "results"
    result = _infer("--checkpoint", tiny_checkpoint, "--data", tmp_path / "kitti", "--split", "trainval",
                    "--out", out)
    assert result["frame_ids"] == ["000000", "000001"]
    assert sorted(os.listdir(out)) == ["000000.txt", "000001.txt"]
    lines = (out / "000000.txt").read_text().splitlines()
    assert len(lines) == result["num_detections"][0] > 0 and len(lines[0].split()) == 16
    assert result["evaluation"] is not None and "| Car | 3D | 0.7 |" in capsys.readouterr().out


def test_infer_split_means_what_kitti_dataset_means(tmp_path, tiny_checkpoint):
    scenes = SyntheticScenes(5, seed=3)
    scenes.write_kitti(tmp_path / "kitti", val_fraction=0.4, indices=range(3))
    scenes.write_kitti(tmp_path / "kitti", "testing", indices=[3, 4])
    common = ("--checkpoint", tiny_checkpoint, "--data", tmp_path / "kitti")
    for split, ids in (("train", ["000000", "000001"]), ("val", ["000002"]), ("all", ["000000", "000001", "000002"])):
        result = _infer(*common, "--split", split, "--out", tmp_path / split)
        assert result["frame_ids"] == ids and result["evaluation"] is not None, split
    test = _infer(*common, "--split", "test", "--out", tmp_path / "test")
    assert test["frame_ids"] == ["000003", "000004"] and test["evaluation"] is None  # no labels: not scored
    assert sorted(os.listdir(tmp_path / "test")) == ["000003.txt", "000004.txt"]


def test_infer_refuses_a_split_folder_and_a_missing_image_set(tmp_path, tiny_checkpoint, capsys):
    # Before, --scans took the split folder while KittiDataset takes the root.
    SyntheticScenes(2, seed=3).write_kitti(tmp_path / "kitti")
    common = ("--checkpoint", tiny_checkpoint, "--out", tmp_path / "out")
    with pytest.raises(SystemExit):
        _infer(*common, "--data", tmp_path / "kitti" / "training", "--split", "val")
    err = capsys.readouterr().err
    assert "split folder, not the KITTI root" in err and f"({tmp_path / 'kitti'})" in err
    with pytest.raises(SystemExit):
        _infer(*common, "--data", tmp_path / "kitti", "--split", "test")  # no testing/ written
    assert "testing" in capsys.readouterr().err
    (tmp_path / "kitti" / "ImageSets" / "val.txt").unlink()
    with pytest.raises(SystemExit):
        _infer(*common, "--data", tmp_path / "kitti", "--split", "val")
    assert "val.txt" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_infer_without_calib_is_an_error_unless_synthetic_calib_is_asked_for(tmp_path, tiny_checkpoint, capsys):
    # Before, a missing calib/ silently meant the synthetic calibration, wrong for real data.
    SyntheticScenes(2, seed=3).write_kitti(tmp_path / "kitti")
    calib = tmp_path / "kitti" / "training" / "calib"
    (calib / "000001.txt").unlink()
    common = ("--checkpoint", tiny_checkpoint, "--data", tmp_path / "kitti", "--split", "val")
    with pytest.raises(SystemExit):
        _infer(*common, "--out", tmp_path / "a")
    assert str(calib / "000001.txt") in capsys.readouterr().err
    for f in calib.iterdir():
        f.unlink()
    calib.rmdir()
    with pytest.raises(SystemExit):
        _infer(*common, "--out", tmp_path / "a")
    assert f"KITTI folder not found: {calib}" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="--synthetic-calib: every frame gets SyntheticScenes' calibration"):
        result = _infer(*common, "--out", tmp_path / "b", "--synthetic-calib")
    assert result["frame_ids"] == ["000001"] and result["evaluation"] is not None


def test_infer_help_names_the_root_and_split(capsys):
    with pytest.raises(SystemExit):
        _infer("--help")
    out = " ".join(capsys.readouterr().out.split())
    for text in ("--data DATA", "KITTI root", "not a split folder", "{train,val,trainval,test,all}",
                 "--synthetic-calib"):
        assert text in out, text
    assert "--scans" not in out


@pytest.mark.skipif(not os.path.isdir(KITTI_SAMPLE), reason="the real KITTI frame is not beside the checkout")
def test_infer_runs_on_the_real_kitti_frame(tmp_path, tiny_checkpoint):
    result = _infer("--checkpoint", tiny_checkpoint, "--data", KITTI_SAMPLE, "--split", "all", "--out", tmp_path)
    assert result["frame_ids"] == ["000008"] and (tmp_path / "000008.txt").exists()
    assert result["evaluation"].num_gt[("Car", "3d", "moderate")] > 0


@pytest.mark.skipif(not os.path.isdir(KITTI_SAMPLE), reason="the real KITTI frame is not beside the checkout")
def test_kitti_tour_runs_on_the_real_kitti_frame(tmp_path, capsys):
    rows = load_example("kitti_tour").main(["--kitti", KITTI_SAMPLE, "--split", "all", "--noise", "0.05",
                                            "--out", str(tmp_path)])
    assert any(r["num_gt"] > 0 for r in rows if r["class"] == "Car")  # the frame's cars were read and scored
    assert "frame 000008" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # the sample has no ImageSets: a named split is an error
        load_example("kitti_tour").main(["--kitti", KITTI_SAMPLE, "--out", str(tmp_path)])


def test_kitti_tour_split_only_with_kitti(tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_example("kitti_tour").main(["--split", "val", "--out", str(tmp_path)])
    assert "--split picks frames of --kitti" in capsys.readouterr().err
