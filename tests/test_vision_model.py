"""LightNet in timm: registration, shapes on any grid, position encodings, baselines' scan orders, checkpoints."""
from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

import vision
from seqcore.nn import rotate
from vision import GridScan, LightNet, MDTPE, axis_major_order, grid_coordinates, md_lrpe_angles

TINY = dict(patch_size=4, embed_dim=24, depth=2, num_heads=3)


def test_registered_in_timm_with_a_default_cfg() -> None:
    for name in ("lightnet_mini", "lightnet_tiny", "lightnet_small", "lightnet_base"):
        assert name in timm.list_models("lightnet*")
    model = timm.create_model("lightnet_tiny", num_classes=7, img_size=64)
    assert isinstance(model, LightNet)
    assert (model.embed_dim, len(model.blocks), model.num_heads, model.patch_size) == (192, 12, 3, 16)
    assert model.pretrained_cfg["architecture"] == "lightnet_tiny"
    assert model.default_cfg["classifier"] == "head"
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)


@pytest.mark.parametrize("size", [(32, 32), (48, 16), (16, 64)])
def test_any_multiple_of_the_patch_size_without_retraining(size: tuple[int, int]) -> None:
    model = timm.create_model("lightnet_tiny", num_classes=5, img_size=32, **TINY)
    x = torch.randn(2, 3, *size)
    assert model.forward_features(x).shape == (2, size[0] // 4 * size[1] // 4, 24)
    assert model(x).shape == (2, 5)


def test_one_and_three_dimensional_inputs() -> None:
    seq = LightNet(in_chans=2, num_classes=4, spatial_dims=1, **TINY)
    assert seq(torch.randn(3, 2, 40)).shape == (3, 4)
    vol = LightNet(in_chans=1, num_classes=4, spatial_dims=3, **{**TINY, "patch_size": 2})
    assert vol.forward_features(torch.randn(2, 1, 4, 6, 8)).shape == (2, 2 * 3 * 4, 24)


def test_head_interface() -> None:
    model = LightNet(num_classes=10, **TINY)
    x = torch.randn(2, 3, 16, 16)
    feats = model.forward_features(x)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 24)
    model.reset_classifier(0)
    assert model(x).shape == (2, 24)
    model.reset_classifier(3, global_pool="")
    assert model(x).shape == (2, 16, 3)
    assert model.get_classifier() is model.head
    assert model.no_weight_decay() == {"tpe.decay_logit", "tpe.q", "tpe.k"}


def test_bad_inputs_say_what_is_wrong() -> None:
    model = LightNet(num_classes=3, **TINY)
    with pytest.raises(ValueError, match="expected 3 input channels, got 1"):
        model(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match="multiple of the patch size 4"):
        model(torch.randn(1, 3, 18, 16))
    with pytest.raises(ValueError, match=r"4-D input \(B, C, H, W\)"):
        model(torch.randn(3, 16, 16))
    with pytest.raises(ValueError, match="scan_orders must be 1"):
        LightNet(scan_orders=2, **TINY)
    with pytest.raises(ValueError, match="scan_orders must be one of"):
        LightNet(mixer="gla", scan_orders=3, **TINY)


def test_pretrained_loads_a_local_file_and_otherwise_says_none_are_published(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no lightnet_tiny weights are published"):
        timm.create_model("lightnet_tiny", pretrained=True)
    torch.manual_seed(0)
    source = timm.create_model("lightnet_tiny", num_classes=4, **TINY)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    # timm keeps a checkpoint's head only when the cfg says the checkpoint has as many classes as the model
    loaded = timm.create_model("lightnet_tiny", pretrained=True, num_classes=4,
                               pretrained_cfg_overlay=dict(file=str(path), num_classes=4), **TINY)
    x = torch.randn(2, 3, 16, 16)
    source.eval(), loaded.eval()
    torch.testing.assert_close(loaded(x), source(x), rtol=0, atol=0)
    backbone_only = timm.create_model("lightnet_tiny", pretrained=True, num_classes=4,
                                      pretrained_cfg_overlay=dict(file=str(path)), **TINY)
    assert torch.equal(backbone_only.patch_embed.proj.weight, source.patch_embed.proj.weight)
    assert not torch.equal(backbone_only.head.weight, source.head.weight)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = LightNet(num_classes=6, **TINY).eval()
    with torch.no_grad():  # MD-TPE's projection starts at zero: make it matter
        model.tpe.proj.weight.normal_(0, 0.1)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    again = LightNet(num_classes=6, **TINY).eval()
    again.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    x = torch.randn(3, 3, 20, 12)
    assert torch.equal(again(x), model(x))


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(2)
    model = LightNet(num_classes=4, drop_path_rate=0.1, **TINY)
    with torch.no_grad():
        model.tpe.proj.weight.normal_(0, 0.1)
    model(torch.randn(2, 3, 16, 16)).logsumexp(-1).sum().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


# ------------------------------------------------------------------ position encodings


def test_md_lrpe_scores_depend_only_on_the_offset_per_axis() -> None:
    grid = (5, 7)
    angles = md_lrpe_angles(grid, head_dim=6)
    coords = grid_coordinates(grid)
    q, k = torch.randn(1, 1, 1, 6).expand(1, 35, 1, 6), torch.randn(1, 1, 1, 6).expand(1, 35, 1, 6)
    scores = torch.einsum("bihd,bjhd->ij", rotate(q, angles), rotate(k, angles))
    index = {tuple(c.tolist()): i for i, c in enumerate(coords)}
    # the same offset (1, -2) from two different places gives the same score
    a, b = index[(0, 2)], index[(1, 0)]
    c, d = index[(3, 5)], index[(4, 3)]
    torch.testing.assert_close(scores[a, b], scores[c, d], rtol=1e-5, atol=1e-5)
    # a different offset gives a different score
    assert not torch.isclose(scores[a, b], scores[a, index[(1, 1)]], atol=1e-4)
    # channels split over the axes: the first 3 turn with the row, the last 3 with the column
    assert torch.equal(angles[index[(0, 4)], :3], torch.zeros(3))
    assert torch.equal(angles[index[(2, 0)], 3:], torch.zeros(3))


def test_md_lrpe_errors() -> None:
    with pytest.raises(ValueError, match="at least the number of grid axes"):
        md_lrpe_angles((2, 2, 2), head_dim=2)
    with pytest.raises(ValueError, match="positive sizes"):
        md_lrpe_angles((0, 3), head_dim=4)


def toeplitz_reference(tpe: MDTPE, x: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
    """Dense float64 form: along each axis, token i collects lambda^|i - j| (k * x_j) of its line, times q."""
    b, t, c = x.shape
    coords = grid_coordinates(grid).double()
    heads = torch.arange(c) // (c // tpe.num_heads)
    total = torch.zeros(b, t, c, dtype=torch.float64)
    for axis in range(len(grid)):
        others = [a for a in range(len(grid)) if a != axis]
        same_line = (coords[:, None, others] == coords[None, :, others]).all(-1)
        dist = (coords[:, None, axis] - coords[None, :, axis]).abs()
        lam = torch.sigmoid(tpe.decay_logit[axis].double())[heads]  # (C,)
        weight = torch.where(same_line[..., None], lam ** dist[..., None], torch.zeros(()))  # (T, T, C)
        total += tpe.q[axis].double() * torch.einsum("ijc,bjc->bic", weight, x.double() * tpe.k[axis].double())
    return x.double() + tpe.proj.double()(tpe.norm.double()(total))


@pytest.mark.parametrize("grid", [(9,), (4, 6), (3, 2, 5)])
def test_md_tpe_matches_the_dense_toeplitz_form(grid: tuple[int, ...]) -> None:
    torch.manual_seed(3)
    tpe = MDTPE(12, num_heads=3, ndim=len(grid))
    with torch.no_grad():
        tpe.decay_logit.normal_()
        tpe.q.normal_()
        tpe.k.normal_()
        tpe.proj.weight.normal_(0, 0.3)
    x = torch.randn(2, int(torch.tensor(grid).prod()), 12, dtype=torch.float64)
    out = tpe.double()(x, grid)
    torch.testing.assert_close(out, toeplitz_reference(tpe, x, grid), rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="encodes"):
        tpe(x, grid + (1,))


# ------------------------------------------------------------------ scan-order baselines


def test_axis_major_orders() -> None:
    assert axis_major_order((2, 3), 1).tolist() == [0, 1, 2, 3, 4, 5]
    assert axis_major_order((2, 3), 0).tolist() == [0, 3, 1, 4, 2, 5]


def test_grid_scan_averages_row_and_column_scans() -> None:
    torch.manual_seed(4)
    model = LightNet(num_classes=3, mixer="gla", scan_orders=4, **TINY)
    block_mixer = model.blocks[0].mixer
    assert isinstance(block_mixer, GridScan)
    x = torch.randn(2, 12, 24)
    cols = axis_major_order((3, 4), 0)
    expected = 0.5 * (block_mixer.mixer(x) + block_mixer.mixer(x[:, cols])[:, torch.argsort(cols)])
    torch.testing.assert_close(block_mixer(x, grid_shape=(3, 4)), expected, rtol=1e-5, atol=1e-6)
    assert model(torch.randn(2, 3, 12, 16)).shape == (2, 3)
    one = LightNet(num_classes=3, mixer="retnet", scan_orders=1, **TINY)
    assert not one.blocks[0].mixer.bidirectional
    two = LightNet(num_classes=3, mixer="retnet", scan_orders=2, **TINY)
    assert two.blocks[0].mixer.bidirectional and not isinstance(two.blocks[0].mixer, GridScan)


def test_lightnet_is_invariant_to_the_scan_order_where_decay_models_are_not() -> None:
    """Features of LightNet do not depend on how the grid is flattened once the positions travel with the
    tokens; the baselines' do. Checked on one block with MD-LRPE angles permuted like the tokens."""
    torch.manual_seed(5)
    model = LightNet(num_classes=3, **TINY)
    block = model.blocks[0]
    x = torch.randn(2, 12, 24)
    angles = md_lrpe_angles((3, 4), block.mixer.head_k)
    cols = axis_major_order((3, 4), 0)
    torch.testing.assert_close(block(x[:, cols], angles=angles[cols]), block(x, angles=angles)[:, cols],
                               rtol=1e-5, atol=1e-6)
    assert hasattr(vision, "lightnet_tiny")


def test_position_and_scan_wrappers_reject_bad_input() -> None:
    tpe = MDTPE(12, num_heads=3, ndim=2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, T=12, C=12\)"):
        tpe(torch.randn(1, 11, 12), (3, 4))
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MDTPE(10, num_heads=3)
    with pytest.raises(ValueError, match="init_decay"):
        MDTPE(12, num_heads=3, init_decay=1.0)
    model = LightNet(num_classes=3, mixer="gla", scan_orders=4, **TINY)
    scan = model.blocks[0].mixer
    with pytest.raises(ValueError, match="grid_shape must describe the 12 tokens"):
        scan(torch.randn(1, 12, 24), grid_shape=(3, 5))
    with pytest.raises(ValueError, match="no decoding cache"):
        scan(torch.randn(1, 12, 24), cache=object(), grid_shape=(3, 4))
    with pytest.raises(ValueError, match="needs a bidirectional mixer"):
        GridScan(LightNet(num_classes=3, mixer="gla", scan_orders=1, **TINY).blocks[0].mixer)
