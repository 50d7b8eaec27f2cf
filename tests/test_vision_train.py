"""Vision data loaders (vision.data) and the training example (examples/vision/train.py), on tiny runs."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from scripts import load_script
from seqcore.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

pytest.importorskip("timm")
pytest.importorskip("torchvision")
pytest.importorskip("sklearn")

import timm

from vision import load_model
from vision.data import digits_datasets, image_folder_datasets

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "vision" / "train.py"
# A one-block model of width 32 keeps every run of the script to seconds; the mechanics are the same.
TINY = ["--model-kwargs", '{"embed_dim": 32, "depth": 1, "num_heads": 2}', "--threads", "1"]


@pytest.fixture(scope="module")
def train_script() -> ModuleType:
    return load_script(EXAMPLE, "vision_train_example")


@pytest.fixture(scope="module")
def digits() -> tuple:
    return digits_datasets(img_size=16)


def write_image_folder(root: Path, classes: dict[str, tuple[int, int]] | None = None) -> Path:
    """``root/<split>/<class>/<i>.png``: 16x16 RGB images, each class a different flat colour plus noise."""
    classes = classes or {"train": 3, "val": 3}
    rng = np.random.default_rng(0)
    for split, count in classes.items():
        for label, name in enumerate(("cat", "dog")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(rng.normal(60 + 120 * label, 20, size=(16, 16, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


# ----------------------------------------------------------------------------------------------- digits


def test_digits_split_sizes_and_labels(digits: tuple) -> None:
    train, test = digits
    assert (len(train), len(test)) == (1347, 450)
    assert train.classes == [str(d) for d in range(10)]
    image, label = train[0]
    assert image.mode == "L" and image.size == (16, 16) and 0 <= label < 10
    # Stratified: every class keeps its share (about 10%) in both parts.
    for part in (train, test):
        counts = np.bincount(part.targets, minlength=10)
        assert counts.min() >= 0.08 * len(part) and counts.max() <= 0.12 * len(part)


def test_digits_deterministic_and_seeded(digits: tuple) -> None:
    train, _ = digits
    again, _ = digits_datasets(img_size=16)
    other, _ = digits_datasets(img_size=16, seed=1)
    assert again.targets == train.targets
    assert np.array_equal(np.asarray(again.images[5]), np.asarray(train.images[5]))
    assert other.targets != train.targets


def test_digits_transform_and_size() -> None:
    import torchvision.transforms as T

    train, test = digits_datasets(img_size=24, test_fraction=0.5, train_transform=T.PILToTensor())
    assert len(train) + len(test) == 1797 and abs(len(test) - 899) <= 1
    image, _ = train[0]
    assert image.shape == (1, 24, 24) and image.dtype == torch.uint8 and image.max() > 200
    assert isinstance(test[0][0], Image.Image)


@pytest.mark.parametrize("kwargs", [{"img_size": 0}, {"test_fraction": 0.0}, {"test_fraction": 1.5}])
def test_digits_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        digits_datasets(**kwargs)


# ------------------------------------------------------------------------------------------ ImageFolder


def test_image_folder_loads(tmp_path: Path) -> None:
    import torchvision.transforms as T

    root = write_image_folder(tmp_path / "pets")
    train, val = image_folder_datasets(root, T.PILToTensor(), T.PILToTensor())
    assert (len(train), len(val)) == (6, 6)
    assert train.classes == val.classes == ["cat", "dog"]
    image, label = train[4]
    assert image.shape == (3, 16, 16) and label == 1
    grey, _ = image_folder_datasets(root, T.PILToTensor(), in_chans=1)
    assert grey[0][0].shape == (1, 16, 16)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_folder_datasets(tmp_path / "missing")
    (tmp_path / "no_val" / "train" / "a").mkdir(parents=True)
    Image.new("L", (4, 4)).save(tmp_path / "no_val" / "train" / "a" / "0.png")
    with pytest.raises(FileNotFoundError, match="val"):
        image_folder_datasets(tmp_path / "no_val")
    (tmp_path / "flat" / "train").mkdir(parents=True)
    (tmp_path / "flat" / "val").mkdir(parents=True)
    with pytest.raises(ValueError, match="no class subfolders"):
        image_folder_datasets(tmp_path / "flat")
    for split in ("train", "val"):
        (tmp_path / "empty" / split / "a").mkdir(parents=True)
        (tmp_path / "empty" / split / "a" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="no images"):
        image_folder_datasets(tmp_path / "empty")
    root = write_image_folder(tmp_path / "one_empty")
    (root / "train" / "bird").mkdir()
    with pytest.raises(ValueError, match="without images.*bird"):
        image_folder_datasets(root)
    (root / "train" / "bird" / "0.png").write_bytes((root / "train" / "cat" / "0.png").read_bytes())
    with pytest.raises(ValueError, match=r"same classes.*only in train: \['bird'\]"):
        image_folder_datasets(root)
    with pytest.raises(ValueError, match="in_chans"):
        image_folder_datasets(root, in_chans=2)


def _one_image_tree(root: Path, image: Image.Image, name: str = "0.png") -> Path:
    """``root/{train,val}/a/<name>`` holding ``image``: the smallest tree image_folder_datasets accepts."""
    for split in ("train", "val"):
        (root / split / "a").mkdir(parents=True)
        image.save(root / split / "a" / name)
    return root


def _loaded(root: Path, in_chans: int = 3) -> np.ndarray:
    train, _ = image_folder_datasets(root, in_chans=in_chans)
    image, _ = train[0]
    assert image.mode == ("RGB" if in_chans == 3 else "L")
    return np.asarray(image)


_SIXTEEN = np.array([[0, 257, 128 * 257, 65535, 1000, 65534]], dtype=np.uint16)
_SIXTEEN_8 = np.array([[0, 1, 128, 255, 4, 255]], dtype=np.uint8)  # round(v / 257)


def _palette() -> Image.Image:
    image = Image.new("P", (3, 1))
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 255, 0] + [0] * 759)
    for x in range(3):
        image.putpixel((x, 0), x)
    return image


# (stored mode, image, file name, expected RGB pixels (1, W, 3), expected 'L' pixels (1, W))
_MODES = {
    "I;16": (Image.fromarray(_SIXTEEN), "0.png", np.repeat(_SIXTEEN_8[..., None], 3, -1), _SIXTEEN_8),
    "I": (Image.fromarray(_SIXTEEN.astype(np.int32)), "0.tiff", np.repeat(_SIXTEEN_8[..., None], 3, -1), _SIXTEEN_8),
    "F": (Image.fromarray(np.array([[0.0, 0.25, 1.0]], dtype=np.float32)), "0.tiff",
          np.repeat(np.array([[0, 64, 255]], dtype=np.uint8)[..., None], 3, -1), np.array([[0, 64, 255]])),
    # Alpha is composited over black: (200, alpha 128) -> round(200 * 128 / 255) = 100.
    "LA": (Image.fromarray(np.array([[[200, 128], [200, 255], [90, 0]]], dtype=np.uint8), "LA"), "0.png",
           np.repeat(np.array([[100, 200, 0]], dtype=np.uint8)[..., None], 3, -1), np.array([[100, 200, 0]])),
    "RGBA": (Image.fromarray(np.array([[[255, 0, 0, 128], [0, 255, 0, 255]]], dtype=np.uint8), "RGBA"), "0.png",
             np.array([[[128, 0, 0], [0, 255, 0]]]), np.array([[38, 150]])),
    "P": (_palette(), "0.png", np.array([[[10, 20, 30], [200, 100, 50], [0, 255, 0]]]), np.array([[18, 124, 150]])),
    # PIL's CMYK conversion: R = 255 - min(255, C + K), and so on.
    "CMYK": (Image.fromarray(np.array([[[255, 0, 0, 0], [0, 0, 0, 128]]], dtype=np.uint8), "CMYK"), "0.tiff",
             np.array([[[0, 255, 255], [127, 127, 127]]]), np.array([[179, 127]])),
    "1": (Image.fromarray(np.array([[True, False]])), "0.png", np.array([[[255] * 3, [0] * 3]]), np.array([[255, 0]])),
}


@pytest.mark.parametrize("mode", sorted(_MODES))
@pytest.mark.parametrize("in_chans", [3, 1])
def test_image_folder_scales_every_mode_to_8_bit(tmp_path: Path, mode: str, in_chans: int) -> None:
    image, name, rgb, grey = _MODES[mode]
    root = _one_image_tree(tmp_path, image, name)
    with Image.open(root / "train" / "a" / name) as stored:
        assert stored.mode == mode
    np.testing.assert_array_equal(_loaded(root, in_chans), rgb if in_chans == 3 else grey)


def test_sixteen_bit_gradient_does_not_saturate(tmp_path: Path) -> None:
    gradient = (np.arange(64 * 64, dtype=np.float64).reshape(64, 64) * 65535 / (64 * 64 - 1)).astype(np.uint16)
    pixels = _loaded(_one_image_tree(tmp_path, Image.fromarray(gradient)))
    assert (pixels == 255).mean() < 0.01
    np.testing.assert_allclose(pixels[..., 0], gradient / 257, atol=0.5)


def test_palette_transparency_is_composited_over_black(tmp_path: Path) -> None:
    image = _palette()
    image.info["transparency"] = 1
    np.testing.assert_array_equal(_loaded(_one_image_tree(tmp_path, image)), [[[10, 20, 30], [0, 0, 0], [0, 255, 0]]])


@pytest.mark.parametrize(
    "image, match",
    [
        (Image.fromarray(np.array([[0, 70000]], dtype=np.int32)), r"0\.tiff.*integer pixels.*\[0, 65535\].*70000"),
        (Image.fromarray(np.array([[-1, 0]], dtype=np.int32)), r"0\.tiff.*\[0, 65535\].*-1"),
        (Image.fromarray(np.array([[0.0, 2.0]], dtype=np.float32)), r"0\.tiff.*floating-point.*\[0, 1\].*2"),
        (Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)), r"0\.tiff.*floating-point.*\[0, 1\].*nan"),
    ],
    ids=["int_above", "int_negative", "float_above", "float_nan"],
)
def test_out_of_range_pixels_name_the_file(tmp_path: Path, image: Image.Image, match: str) -> None:
    train, _ = image_folder_datasets(_one_image_tree(tmp_path, image, "0.tiff"))
    with pytest.raises(ValueError, match=match):
        train[0]


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_an_image"])
def test_unreadable_images_name_the_file_at_load_or_with_verify(tmp_path: Path, damage: str) -> None:
    root = write_image_folder(tmp_path / "pets")
    bad = root / "train" / "dog" / "1.png"
    if damage == "truncated":
        bad.write_bytes(bad.read_bytes()[:200])
    elif damage == "empty":
        bad.write_bytes(b"")
    else:
        bad.write_text("a text file with an image's name")
    train, _ = image_folder_datasets(root)
    index = train.samples.index((str(bad), 1))
    train[index - 1]
    with pytest.raises(ValueError, match=rf"{re.escape(str(bad))}.*not a readable image"):
        train[index]
    with pytest.raises(ValueError, match=rf"1 unreadable image: {re.escape(str(bad))}"):
        image_folder_datasets(root, verify=True)
    assert len(image_folder_datasets(write_image_folder(tmp_path / "clean"), verify=True)[0]) == 6


def test_image_folder_ignores_other_files_and_rejects_bad_flags(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "pets")
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1")
    train, _ = image_folder_datasets(root)
    assert len(train) == 6
    with pytest.raises(TypeError, match="verify must be a bool"):
        image_folder_datasets(root, verify="yes")


# ------------------------------------------------------------------------------------------ train script


def test_quick_run_writes_checkpoint_and_plot(train_script: ModuleType, tmp_path: Path) -> None:
    metrics = train_script.main(["--quick", "--out", str(tmp_path), *TINY])
    assert metrics["epochs"] == 1 and len(metrics["history"]) == 1
    assert 0 <= metrics["test_acc"] <= 1 and metrics["params"] > 0
    assert metrics["train_time_s"] > 0 and metrics["images_per_s"] > 0
    assert (tmp_path / "curves.png").stat().st_size > 0
    saved = load_checkpoint(tmp_path / "checkpoint.pt", kind=train_script.CHECKPOINT_KIND)
    assert saved.state["step"] == 1 and set(saved.state) >= {"model", "optimizer", "scheduler", "history", "rng"}


def test_resume_continues_exactly(train_script: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["--quick", "--epochs", "2", *TINY]
    full = train_script.main([*args, "--out", str(tmp_path / "full")])

    # Interrupt a second run right after its first checkpoint, then resume it.
    save = train_script.save_checkpoint

    def save_then_crash(*a, **k) -> None:
        save(*a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_script, "save_checkpoint", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_script.main([*args, "--out", str(tmp_path / "cut")])
    monkeypatch.setattr(train_script, "save_checkpoint", save)
    resumed = train_script.main([*args, "--out", str(tmp_path / "cut"), "--resume", str(tmp_path / "cut" / "checkpoint.pt")])

    assert resumed["epochs"] == 2
    keys = ("train_loss", "train_acc", "test_loss", "test_acc")
    for a, b in zip(full["history"], resumed["history"]):
        assert [a[k] for k in keys] == [b[k] for k in keys]
    weights = [load_checkpoint(tmp_path / run / "checkpoint.pt", kind=train_script.CHECKPOINT_KIND).state["model"]
               for run in ("full", "cut")]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


def test_resume_refuses_other_settings(train_script: ModuleType, tmp_path: Path) -> None:
    train_script.main(["--quick", "--out", str(tmp_path), *TINY])
    with pytest.raises(SystemExit, match="different config.*lr: saved 0.002, now 0.1"):
        train_script.main(["--quick", "--out", str(tmp_path), "--lr", "0.1", *TINY,
                           "--resume", str(tmp_path / "checkpoint.pt")])


@pytest.mark.parametrize("argv", [["--model-kwargs", "[1]"], ["--model-kwargs", "{depth: 2}"], ["--epochs", "0"]])
def test_bad_options_exit(train_script: ModuleType, argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        train_script.main(argv)


def test_trains_on_image_folder(train_script: ModuleType, tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "pets")
    metrics = train_script.main(["--data", str(root), "--img-size", "16", "--epochs", "2", "--batch-size", "4",
                                 "--out", str(tmp_path / "run"), *TINY])
    assert metrics["data"] == "pets" and metrics["epochs"] == 2
    assert (tmp_path / "run" / "curves.png").is_file()


# ------------------------------------------------------------------------------------ model in the checkpoint


def test_the_model_reported_and_saved_is_the_model_built(train_script: ModuleType, tmp_path: Path) -> None:
    metrics = train_script.main(["--quick", "--out", str(tmp_path), *TINY])
    config = load_checkpoint(tmp_path / "checkpoint.pt", kind=train_script.CHECKPOINT_KIND).config
    assert metrics["model"] == config["model"] == "lightnet_mini"
    assert config["model_kwargs"] == {"num_classes": 10, "in_chans": 1, "img_size": 32, "embed_dim": 32, "depth": 1,
                                      "num_heads": 2}
    rebuilt = timm.create_model(config["model"], **config["model_kwargs"])
    assert sum(p.numel() for p in rebuilt.parameters()) == metrics["params"]
    # No hidden settings: a named model is built as registered, with the data's classes, channels and size only.
    args = train_script.parse_args(["--model", "lightnet_tiny"])
    kwargs = train_script.model_kwargs(args, 10)
    assert kwargs == {"num_classes": 10, "in_chans": 1, "img_size": 32}
    tiny = train_script.build_model(args, kwargs)
    assert (tiny.embed_dim, len(tiny.blocks), tiny.num_heads, tiny.patch_size) == (192, 12, 3, 16)


def test_a_checkpoint_written_by_the_script_reloads_into_the_trained_model(train_script: ModuleType,
                                                                           tmp_path: Path) -> None:
    """The script runs in its own process; the model rebuilt from its checkpoint alone gives the test loss and
    accuracy that process measured with the trained model."""
    options = ["--quick", "--out", str(tmp_path), "--model-kwargs", json.dumps({"embed_dim": 16, "depth": 2,
               "num_heads": 2, "mixer": "gla", "scan_orders": 4, "drop_path_rate": 0.1}), "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(EXAMPLE), *options], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    path = tmp_path / "checkpoint.pt"
    saved = load_checkpoint(path, kind=train_script.CHECKPOINT_KIND)
    model = load_model(path)
    assert not model.training and model.mixer_name == "gla" and model.scan_orders == 4 and len(model.blocks) == 2
    weights = model.state_dict()
    assert weights.keys() == saved.state["model"].keys()
    assert all(torch.equal(weights[name], saved.state["model"][name]) for name in weights)
    args = train_script.parse_args(options)
    _, test_set, _, _ = train_script.build_datasets(args)
    loader = torch.utils.data.DataLoader(test_set, batch_size=args.batch_size)
    scores = train_script.evaluate(model, loader, torch.nn.CrossEntropyLoss(label_smoothing=args.smoothing),
                                   torch.device("cpu"))
    last = saved.state["history"][-1]
    assert scores["test_acc"] == last["test_acc"]
    assert scores["test_loss"] == pytest.approx(last["test_loss"], rel=1e-6)
    assert "| lightnet_mini | digits |" in run.stdout


def test_load_model_refuses_checkpoints_without_the_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "none.pt")
    old = tmp_path / "old.pt"  # what train.py wrote before it recorded the model's arguments
    save_checkpoint(old, {"model": {}}, kind="vision.train", config={"model": "lightnet_tiny", "model_kwargs": {}})
    with pytest.raises(CheckpointError, match=r"old\.pt does not record the model's timm name and constructor"):
        load_model(old)
    unknown = tmp_path / "unknown.pt"
    save_checkpoint(unknown, {"model": {}}, kind="vision.train",
                    config={"model": "no_such_net", "model_kwargs": {"num_classes": 2}})
    with pytest.raises(CheckpointError, match=r"unknown\.pt holds a 'no_such_net' model, which timm does not know"):
        load_model(unknown)
    other = tmp_path / "other.pt"
    save_checkpoint(other, {"model": {}}, kind="graphs.fit_classifier")
    with pytest.raises(CheckpointError, match=r"is a 'graphs.fit_classifier' checkpoint, expected 'vision.train'"):
        load_model(other)
