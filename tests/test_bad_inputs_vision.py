"""Bad inputs to every public entry point of ``vision``: one row per case, each a named error or a documented result.

Columns: entry point, input, then either ``(exception type, regex of the message)`` or ``Documented(check, what)``.
The classes covered: wrong shapes and ranks, dtypes, devices ('meta' stands in for another device), NaN and inf,
empty inputs, out-of-range values, malformed files and non-bool flags.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("timm")
pytest.importorskip("torchvision")
pytest.importorskip("sklearn")

import timm

from bad_inputs import Documented, assert_unique, expect
from crafted import WritesMarker
from seqcore.nn import build_mixer
from vision import (
    MDTPE,
    GridScan,
    LightNet,
    axis_major_order,
    digits_datasets,
    grid_coordinates,
    image_folder_datasets,
    md_lrpe_angles,
)
from vision.data import DigitsDataset

NAN, INF = float("nan"), float("inf")


def tiny(**kwargs: Any) -> LightNet:
    options = dict(img_size=16, patch_size=4, in_chans=3, num_classes=5, embed_dim=16, depth=1, num_heads=2)
    torch.manual_seed(0)
    return LightNet(**(options | kwargs)).eval()


@functools.cache
def model(**kwargs: Any) -> LightNet:
    return tiny(**kwargs)


@functools.cache
def mdtpe() -> MDTPE:
    torch.manual_seed(0)
    return MDTPE(8, 2)


@functools.cache
def grid_scan() -> GridScan:
    torch.manual_seed(0)
    return GridScan(build_mixer("gla", 8, num_heads=2, bidirectional=True))


def images(*shape: int, fill: float | None = None, **kwargs: Any) -> torch.Tensor:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0), **kwargs)
    return x if fill is None else x.fill_(fill)


def one_nan(shape: tuple[int, ...]) -> torch.Tensor:
    x = images(*shape)
    x.view(-1)[0] = NAN
    return x


def tree(root: Path, image: Image.Image | None = None, name: str = "0.png", raw: bytes | None = None) -> Path:
    """``root/{train,val}/a/<name>`` (plus a good ``1.png`` in train): an image, or ``raw`` bytes."""
    for split in ("train", "val"):
        folder = root / split / "a"
        folder.mkdir(parents=True)
        Image.new("RGB", (4, 4), (10, 20, 30)).save(folder / "1.png")
        if raw is not None:
            (folder / name).write_bytes(raw)
        elif image is not None:
            image.save(folder / name)
    return root


def png_bytes() -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def load_first(root: Path) -> Any:
    """Load the training image that is not the good ``1.png``."""
    train, _ = image_folder_datasets(root)
    return train[next(i for i, (path, _) in enumerate(train.samples) if Path(path).name != "1.png")]


def pretrained_from(t: Path, damage: str) -> Any:
    """``timm.create_model`` with a weights file that is crafted or cut short; the crafted code must not run."""
    path = t / "weights.pth"
    if damage == "crafted":
        torch.save({"patch_embed.proj.weight": WritesMarker(t / "marker")}, path)
    else:
        torch.save(tiny().state_dict(), path)
        path.write_bytes(path.read_bytes()[:300])
    try:
        return timm.create_model("lightnet_tiny", pretrained=True, embed_dim=16, depth=1, num_heads=2,
                                 pretrained_cfg_overlay=dict(file=str(path)))
    finally:
        assert not (t / "marker").exists()


def digits(n: int = 3, level: float = 4.0, target: int = 1) -> DigitsDataset:
    return DigitsDataset(np.full((n, 8, 8), level), np.full(n, target), 8)


# (entry point, input, call(tmp_path), expected)
CASES: list[tuple[str, str, Callable[[Path], Any], Any]] = [
    # ------------------------------------------------------------------ LightNet constructor
    ("LightNet()", "patch_size=0", lambda t: tiny(patch_size=0), (ValueError, r"patch_size must be >= 1")),
    ("LightNet()", "patch_size=2.5", lambda t: tiny(patch_size=2.5), (TypeError, r"patch_size must be an int")),
    ("LightNet()", "in_chans=0", lambda t: tiny(in_chans=0), (ValueError, r"in_chans must be >= 1")),
    ("LightNet()", "num_classes=-1", lambda t: tiny(num_classes=-1), (ValueError, r"num_classes must be >= 0, got -1")),
    ("LightNet()", "num_heads=0", lambda t: tiny(num_heads=0), (ValueError, r"num_heads must be >= 1")),
    ("LightNet()", "embed_dim not divisible by num_heads", lambda t: tiny(embed_dim=15),
     (ValueError, r"embed_dim \(15\) must be divisible by num_heads \(2\)")),
    ("LightNet()", "embed_dim=0", lambda t: tiny(embed_dim=0, num_heads=1), (ValueError, r"embed_dim must be >= 1")),
    ("LightNet()", "depth=0", lambda t: tiny(depth=0), (ValueError, r"depth must be >= 1")),
    ("LightNet()", "mlp_ratio=0", lambda t: tiny(mlp_ratio=0.0), (ValueError, r"mlp_ratio must be a finite number > 0")),
    ("LightNet()", "mlp_ratio=nan", lambda t: tiny(mlp_ratio=NAN), (ValueError, r"mlp_ratio must be a finite number")),
    ("LightNet()", "drop_rate=1.5", lambda t: tiny(drop_rate=1.5), (ValueError, r"drop_rate must lie in \[0, 1\)")),
    ("LightNet()", "drop_rate=nan", lambda t: tiny(drop_rate=NAN), (ValueError, r"drop_rate must lie in \[0, 1\)")),
    ("LightNet()", "drop_path_rate=-0.1", lambda t: tiny(drop_path_rate=-0.1), (ValueError, r"drop_path_rate must lie")),
    ("LightNet()", "drop_path_rate=1.0", lambda t: tiny(drop_path_rate=1.0), (ValueError, r"drop_path_rate must lie")),
    ("LightNet()", "spatial_dims=4", lambda t: tiny(spatial_dims=4), (ValueError, r"spatial_dims must be 1, 2 or 3")),
    ("LightNet()", "unknown mixer", lambda t: tiny(mixer="nope"), (ValueError, r"unknown mixer 'nope'")),
    ("LightNet()", "lightnet with 2 scans", lambda t: tiny(scan_orders=2), (ValueError, r"scan_orders must be 1")),
    ("LightNet()", "gla with 3 scans", lambda t: tiny(mixer="gla", scan_orders=3),
     (ValueError, r"scan_orders must be one of \[1, 2, 4\]")),
    ("LightNet()", "scan_orders=1.0", lambda t: tiny(mixer="gla", scan_orders=1.0), (TypeError, r"scan_orders must be an int")),
    ("LightNet()", "use_tpe='no'", lambda t: tiny(use_tpe="no"), (TypeError, r"use_tpe must be a bool")),
    ("LightNet()", "use_lrpe=0", lambda t: tiny(use_lrpe=0), (TypeError, r"use_lrpe must be a bool")),
    ("LightNet()", "lrpe_base=1", lambda t: tiny(lrpe_base=1.0), (ValueError, r"lrpe_base must be a finite number > 1")),
    ("LightNet()", "lrpe_base=inf", lambda t: tiny(lrpe_base=INF), (ValueError, r"lrpe_base must be a finite number > 1")),
    ("LightNet()", "lrpe_base=nan", lambda t: tiny(lrpe_base=NAN), (ValueError, r"lrpe_base must be a finite number > 1")),
    ("LightNet()", "global_pool='max'", lambda t: tiny(global_pool="max"), (ValueError, r"global_pool must be 'avg' or ''")),
    ("LightNet()", "img_size=0", lambda t: tiny(img_size=0), (ValueError, r"img_size must be a positive int")),
    ("LightNet()", "img_size of 3 axes for 2-D", lambda t: tiny(img_size=(16, 16, 16)), (ValueError, r"img_size must be")),
    ("LightNet()", "mixer_kwargs not a dict", lambda t: tiny(mixer_kwargs=[1]), (TypeError, r"mixer_kwargs must be a dict")),
    ("LightNet()", "unknown mixer option", lambda t: tiny(mixer_kwargs={"bogus": 1}), (TypeError, r"no option 'bogus'")),
    ("LightNet()", "mixer flag bidirectional='yes'", lambda t: tiny(mixer="gla", mixer_kwargs={"bidirectional": "yes"}),
     (TypeError, r"bidirectional must be a bool")),
    ("LightNet()", "4 scans with a causal mixer", lambda t: tiny(mixer="gla", scan_orders=4, mixer_kwargs={"bidirectional": False}),
     (ValueError, r"GridScan needs a bidirectional mixer")),
    # ------------------------------------------------------------------ LightNet forward
    ("LightNet.forward", "rank 3", lambda t: model()(images(3, 16, 16)), (ValueError, r"expected a 4-D input \(B, C, H, W\)")),
    ("LightNet.forward", "a list", lambda t: model()([[1.0]]), (TypeError, r"x must be a torch.Tensor")),
    ("LightNet.forward", "1 channel for 3", lambda t: model()(images(2, 1, 16, 16)), (ValueError, r"expected 3 input channels, got 1")),
    ("LightNet.forward", "size not a multiple of the patch", lambda t: model()(images(2, 3, 15, 16)),
     (ValueError, r"positive multiple of the patch size 4, got \(15, 16\)")),
    ("LightNet.forward", "H=0", lambda t: model()(images(2, 3, 0, 16)), (ValueError, r"positive multiple of the patch size")),
    ("LightNet.forward", "int64 pixels", lambda t: model()(torch.zeros(2, 3, 16, 16, dtype=torch.long)),
     (TypeError, r"x must be a floating-point tensor")),
    ("LightNet.forward", "uint8 pixels", lambda t: model()(torch.zeros(2, 3, 16, 16, dtype=torch.uint8)),
     (TypeError, r"x must be a floating-point tensor")),
    ("LightNet.forward", "float64 input, float32 model", lambda t: model()(images(2, 3, 16, 16, dtype=torch.float64)),
     (TypeError, r"x is torch.float64 but the model's weights are torch.float32")),
    ("LightNet.forward", "meta device", lambda t: model()(images(2, 3, 16, 16, device="meta")),
     (ValueError, r"all tensors must be on one device")),
    ("LightNet.forward", "all NaN", lambda t: model()(images(2, 3, 16, 16, fill=NAN)), (ValueError, r"x must be finite")),
    ("LightNet.forward", "one NaN pixel", lambda t: model()(one_nan((2, 3, 16, 16))), (ValueError, r"x must be finite, got 1 NaN")),
    ("LightNet.forward", "inf", lambda t: model()(images(2, 3, 16, 16, fill=INF)), (ValueError, r"x must be finite")),
    ("LightNet.forward", "B=0", lambda t: model()(images(0, 3, 16, 16)),
     Documented(lambda y: y.shape == (0, 5), "an empty batch gives (0, num_classes)")),
    ("LightNet.forward", "B=0, 4 scans of gla", lambda t: model(mixer="gla", scan_orders=4)(images(0, 3, 16, 16)),
     Documented(lambda y: y.shape == (0, 5), "an empty batch gives (0, num_classes)")),
    ("LightNet.forward", "meta device, 4 scans of gla", lambda t: model(mixer="gla", scan_orders=4)(images(1, 3, 16, 16, device="meta")),
     (ValueError, r"all tensors must be on one device")),
    ("LightNet.forward", "1-D model, 2-D input", lambda t: model(spatial_dims=1)(images(2, 3, 16, 16)),
     (ValueError, r"expected a 3-D input \(B, C, L\)")),
    ("LightNet.forward", "num_classes=0", lambda t: model(num_classes=0)(images(2, 3, 16, 16)),
     Documented(lambda y: y.shape == (2, 16), "no head: the pooled features (B, embed_dim)")),
    ("LightNet.forward_head", "pre_logits='no'", lambda t: model().forward_head(images(2, 16, 16), pre_logits="no"),
     (TypeError, r"pre_logits must be a bool")),
    ("LightNet.forward_head", "pooled (B, D) instead of tokens", lambda t: model().forward_head(images(2, 16)),
     (ValueError, r"x must have shape \(B, T, D=16\)")),
    ("LightNet.forward_head", "NaN in one token", lambda t: model().forward_head(one_nan((2, 16, 16))),
     Documented(lambda y: bool(torch.isnan(y[0]).all()) and bool(torch.isfinite(y[1]).all()),
                "NaN propagates to the pooled row it is in, not to the others")),
    ("LightNet.forward_head", "B=0", lambda t: model().forward_head(images(0, 16, 16)),
     Documented(lambda y: y.shape == (0, 5), "(0, num_classes)")),
    ("LightNet.reset_classifier", "num_classes=-1", lambda t: tiny().reset_classifier(-1), (ValueError, r"num_classes must be >= 0, got -1")),
    ("LightNet.reset_classifier", "global_pool='max'", lambda t: tiny().reset_classifier(3, "max"), (ValueError, r"global_pool must be")),
    # ------------------------------------------------------------------ timm
    ("timm.create_model", "pretrained=True without a file", lambda t: timm.create_model("lightnet_tiny", pretrained=True),
     (ValueError, r"no lightnet_tiny weights are published")),
    ("timm.create_model", "unknown kwarg", lambda t: timm.create_model("lightnet_tiny", bogus=1),
     (TypeError, r"unexpected keyword argument 'bogus'")),
    ("timm.create_model", "in_chans=0", lambda t: timm.create_model("lightnet_tiny", in_chans=0), (ValueError, r"in_chans must be >= 1")),
    ("timm.create_model", "num_classes=-1", lambda t: timm.create_model("lightnet_tiny", num_classes=-1),
     (ValueError, r"num_classes must be >= 0, got -1")),
    ("timm.create_model", "crafted weights file", lambda t: pretrained_from(t, "crafted"),
     (ValueError, r"cannot load the weights file .*weights\.pth safely \(weights_only=True\): UnpicklingError")),
    ("timm.create_model", "truncated weights file", lambda t: pretrained_from(t, "truncated"),
     (ValueError, r"cannot load the weights file .*weights\.pth safely")),
    ("timm.create_model", "missing weights file", lambda t: timm.create_model("lightnet_tiny", pretrained=True,
     pretrained_cfg_overlay=dict(file=str(t / "none.pth"))), (FileNotFoundError, r"no weights file .*none\.pth")),
    ("timm.create_model", "use_lrpe='no'", lambda t: timm.create_model("lightnet_tiny", use_lrpe="no"), (TypeError, r"use_lrpe must be a bool")),
    # ------------------------------------------------------------------ position encodings
    ("grid_coordinates", "empty grid", lambda t: grid_coordinates(()), (ValueError, r"grid_shape must be a non-empty sequence")),
    ("grid_coordinates", "a zero size", lambda t: grid_coordinates((0, 3)), (ValueError, r"positive sizes")),
    ("grid_coordinates", "a float size", lambda t: grid_coordinates((2.5,)), (ValueError, r"positive sizes \(ints\)")),
    ("grid_coordinates", "a bool size", lambda t: grid_coordinates((True, 2)), (ValueError, r"positive sizes \(ints\)")),
    ("grid_coordinates", "an int", lambda t: grid_coordinates(5), (TypeError, r"grid_shape must be a sequence of ints")),
    ("md_lrpe_angles", "head_dim below the rank", lambda t: md_lrpe_angles((2, 2, 2), 2), (ValueError, r"at least the number of grid axes")),
    ("md_lrpe_angles", "head_dim=0", lambda t: md_lrpe_angles((2,), 0), (ValueError, r"head_dim must be >= 1")),
    ("md_lrpe_angles", "base=1", lambda t: md_lrpe_angles((2, 2), 8, 1.0), (ValueError, r"base must be a finite number > 1")),
    ("md_lrpe_angles", "base=inf", lambda t: md_lrpe_angles((2, 2), 8, INF), (ValueError, r"base must be a finite number > 1")),
    ("md_lrpe_angles", "base=nan", lambda t: md_lrpe_angles((2, 2), 8, NAN), (ValueError, r"base must be a finite number > 1")),
    ("MDTPE()", "dim not divisible", lambda t: MDTPE(10, 3), (ValueError, r"dim \(10\) must be divisible by num_heads \(3\)")),
    ("MDTPE()", "num_heads=0", lambda t: MDTPE(8, 0), (ValueError, r"num_heads must be >= 1")),
    ("MDTPE()", "init_decay=1", lambda t: MDTPE(8, 2, init_decay=1.0), (ValueError, r"init_decay must lie in \(0, 1\)")),
    ("MDTPE()", "init_decay=nan", lambda t: MDTPE(8, 2, init_decay=NAN), (ValueError, r"init_decay must be a finite")),
    ("MDTPE()", "ndim=0", lambda t: MDTPE(8, 2, ndim=0), (ValueError, r"ndim must be >= 1")),
    ("MDTPE.forward", "T not the grid's", lambda t: mdtpe()(images(1, 5, 8), (2, 2)), (ValueError, r"x must have shape \(B, T=4, C=8\)")),
    ("MDTPE.forward", "C not dim", lambda t: mdtpe()(images(1, 4, 6), (2, 2)), (ValueError, r"x must have shape \(B, T=4, C=8\)")),
    ("MDTPE.forward", "rank 2", lambda t: mdtpe()(images(4, 8), (2, 2)), (ValueError, r"x must have shape \(B, T=4, C=8\)")),
    ("MDTPE.forward", "grid of another rank", lambda t: mdtpe()(images(1, 4, 8), (4,)), (ValueError, r"encodes 2-D grids")),
    ("MDTPE.forward", "int64 x", lambda t: mdtpe()(torch.ones(1, 4, 8, dtype=torch.long), (2, 2)), (TypeError, r"floating-point")),
    ("MDTPE.forward", "float64 x", lambda t: mdtpe()(images(1, 4, 8, dtype=torch.float64), (2, 2)), (TypeError, r"x is torch.float64")),
    ("MDTPE.forward", "meta device", lambda t: mdtpe()(images(1, 4, 8, device="meta"), (2, 2)), (ValueError, r"one device")),
    ("MDTPE.forward", "NaN in one token", lambda t: mdtpe()(one_nan((1, 4, 8)), (2, 2)),
     Documented(lambda y: bool(torch.isnan(y[0, 0]).any()) and not bool(torch.isnan(y[0, 3]).any()),
                "NaN propagates along the lines through it (token 3 shares no row or column with token 0)")),
    ("MDTPE.forward", "B=0", lambda t: mdtpe()(images(0, 4, 8), (2, 2)), Documented(lambda y: y.shape == (0, 4, 8), "(0, T, C)")),
    # ------------------------------------------------------------------ scan orders
    ("axis_major_order", "axis out of range", lambda t: axis_major_order((2, 3), 2), (ValueError, r"axis must be an int in \[-2, 2\)")),
    ("axis_major_order", "float axis", lambda t: axis_major_order((2, 3), 1.0), (TypeError, r"axis must be an int")),
    ("axis_major_order", "empty grid", lambda t: axis_major_order((), 0), (ValueError, r"grid_shape must be a non-empty")),
    ("GridScan()", "causal mixer", lambda t: GridScan(build_mixer("gla", 8, num_heads=2)), (ValueError, r"needs a bidirectional mixer")),
    ("GridScan.forward", "no grid_shape", lambda t: grid_scan()(images(1, 4, 8)), (ValueError, r"grid_shape must describe the 4 tokens")),
    ("GridScan.forward", "grid of other size", lambda t: grid_scan()(images(1, 4, 8), grid_shape=(3, 2)), (ValueError, r"describe the 4 tokens")),
    ("GridScan.forward", "rank 2", lambda t: grid_scan()(images(4, 8), grid_shape=(2, 2)), (ValueError, r"x must have shape \(B, T, C\)")),
    ("GridScan.forward", "int64 x", lambda t: grid_scan()(torch.ones(1, 4, 8, dtype=torch.long), grid_shape=(2, 2)), (TypeError, r"floating-point")),
    ("GridScan.forward", "a cache", lambda t: grid_scan()(images(1, 4, 8), cache=object(), grid_shape=(2, 2)), (ValueError, r"no decoding cache")),
    ("GridScan.forward", "B=0", lambda t: grid_scan()(images(0, 4, 8), grid_shape=(2, 2)), Documented(lambda y: y.shape == (0, 4, 8), "(0, T, C)")),
    # ------------------------------------------------------------------ digits
    ("digits_datasets", "img_size=0", lambda t: digits_datasets(img_size=0), (ValueError, r"img_size must be >= 1, got 0")),
    ("digits_datasets", "img_size=True", lambda t: digits_datasets(img_size=True), (TypeError, r"img_size must be an int >= 1, got bool True")),
    ("digits_datasets", "img_size=2.0", lambda t: digits_datasets(img_size=2.0), (TypeError, r"img_size must be an int >= 1, got float 2.0")),
    ("digits_datasets", "test_fraction=0", lambda t: digits_datasets(test_fraction=0), (ValueError, r"test_fraction must be a number in \(0, 1\)")),
    ("digits_datasets", "test_fraction=nan", lambda t: digits_datasets(test_fraction=NAN), (ValueError, r"test_fraction must be")),
    ("digits_datasets", "test_fraction='0.5'", lambda t: digits_datasets(test_fraction="0.5"), (ValueError, r"test_fraction must be")),
    ("digits_datasets", "seed=-1", lambda t: digits_datasets(seed=-1), (ValueError, r"seed must be >= 0, got -1")),
    ("digits_datasets", "seed=1.5", lambda t: digits_datasets(seed=1.5), (TypeError, r"seed must be an int >= 0, got float 1.5")),
    ("DigitsDataset()", "images (N, 8)", lambda t: DigitsDataset(np.zeros((3, 8)), np.zeros(3, dtype=int), 8), (ValueError, r"images must be \(N, H, W\)")),
    ("DigitsDataset()", "NaN levels", lambda t: digits(level=NAN), (ValueError, r"grey levels in \[0, 16\]")),
    ("DigitsDataset()", "level 40", lambda t: digits(level=40.0), (ValueError, r"grey levels in \[0, 16\], got values in \[40.0")),
    ("DigitsDataset()", "level -1", lambda t: digits(level=-1.0), (ValueError, r"grey levels in \[0, 16\]")),
    ("DigitsDataset()", "label 11", lambda t: digits(target=11), (ValueError, r"targets must be integer labels in 0..9")),
    ("DigitsDataset()", "img_size=0", lambda t: DigitsDataset(np.zeros((3, 8, 8)), np.zeros(3, dtype=int), 0), (ValueError, r"img_size must be")),
    ("DigitsDataset()", "transform not callable", lambda t: DigitsDataset(np.zeros((3, 8, 8)), np.zeros(3, dtype=int), 8, transform=3),
     (TypeError, r"transform must be a callable")),
    ("DigitsDataset()", "no images", lambda t: len(digits(n=0)), Documented(lambda n: n == 0, "an empty data set")),
    # ------------------------------------------------------------------ image folders
    ("image_folder_datasets", "root=None", lambda t: image_folder_datasets(None), (TypeError, r"root must be a path")),
    ("image_folder_datasets", "missing root", lambda t: image_folder_datasets(t / "missing"), (FileNotFoundError, r"does not exist")),
    ("image_folder_datasets", "empty root", lambda t: (t / "e").mkdir() or image_folder_datasets(t / "e"), (FileNotFoundError, r"no folder .*train")),
    ("image_folder_datasets", "class folders without images",
     lambda t: [(t / s / "a").mkdir(parents=True) for s in ("train", "val")] and image_folder_datasets(t), (ValueError, r"no images under")),
    ("image_folder_datasets", "only text files", lambda t: image_folder_datasets(tree(t, raw=b"text", name="notes.txt")),
     Documented(lambda d: len(d[0]) == 1, "files without an image extension are ignored")),
    ("image_folder_datasets", "in_chans=2", lambda t: image_folder_datasets(tree(t), in_chans=2), (ValueError, r"in_chans must be 1")),
    ("image_folder_datasets", "in_chans=True", lambda t: image_folder_datasets(tree(t), in_chans=True), (ValueError, r"in_chans must be 1")),
    ("image_folder_datasets", "splits a string", lambda t: image_folder_datasets(tree(t), splits="tv"), (ValueError, r"splits must name two different")),
    ("image_folder_datasets", "splits equal", lambda t: image_folder_datasets(tree(t), splits=("train", "train")), (ValueError, r"two different")),
    ("image_folder_datasets", "verify='yes'", lambda t: image_folder_datasets(tree(t), verify="yes"), (TypeError, r"verify must be a bool")),
    ("image_folder_datasets", "transform not callable", lambda t: image_folder_datasets(tree(t), train_transform="flip"),
     (TypeError, r"train_transform must be a callable")),
    ("image_folder_datasets[i]", "truncated PNG", lambda t: load_first(tree(t, raw=png_bytes()[:200])),
     (ValueError, r"0\.png is not a readable image")),
    ("image_folder_datasets[i]", "empty PNG", lambda t: load_first(tree(t, raw=b"")), (ValueError, r"0\.png is not a readable image")),
    ("image_folder_datasets[i]", "text named .png", lambda t: load_first(tree(t, raw=b"not an image")), (ValueError, r"0\.png is not a readable")),
    ("image_folder_datasets", "truncated PNG, verify=True", lambda t: image_folder_datasets(tree(t, raw=png_bytes()[:200]), verify=True),
     (ValueError, r"2 unreadable images: .*0\.png")),
    ("image_folder_datasets[i]", "int32 TIFF above 65535", lambda t: load_first(tree(t, Image.fromarray(np.array([[0, 70000]], np.int32)), "0.tiff")),
     (ValueError, r"0\.tiff: integer pixels .* \[0, 65535\]")),
    ("image_folder_datasets[i]", "float TIFF with NaN", lambda t: load_first(tree(t, Image.fromarray(np.array([[0.0, NAN]], np.float32)), "0.tiff")),
     (ValueError, r"0\.tiff: floating-point pixels .* \[0, 1\]")),
    ("image_folder_datasets[i]", "float TIFF above 1", lambda t: load_first(tree(t, Image.fromarray(np.array([[0.0, 2.0]], np.float32)), "0.tiff")),
     (ValueError, r"0\.tiff: floating-point pixels")),
    ("image_folder_datasets[i]", "16-bit PNG", lambda t: load_first(tree(t, Image.fromarray(np.array([[0, 32896, 65535]], np.uint16)))),
     Documented(lambda item: np.asarray(item[0])[0, :, 0].tolist() == [0, 128, 255], "16-bit levels / 257, not clipped")),
]


@pytest.mark.parametrize(
    "entry, description, call, expected", CASES, ids=[f"{e} | {d}" for e, d, _, _ in CASES]
)
def test_bad_input(tmp_path: Path, entry: str, description: str, call: Callable[[Path], Any], expected: Any) -> None:
    expect(lambda: call(tmp_path), expected)


def test_the_table_has_one_row_per_case() -> None:
    assert_unique([(entry, description) for entry, description, _, _ in CASES])
    assert all(isinstance(e, Documented) or (issubclass(e[0], Exception) and re.compile(e[1])) for *_, e in CASES)
