"""LightNet against timm's model API, each call checked beside the same call on timm's ``vit_tiny_patch16_224``.

Both models are small (3 blocks) and see the same 2 x 2 token grid: LightNet with patch 4 on 8 px, the ViT with
patch 16 on 32 px, so shapes differ only in the width (24 against 192) and the ViT's class token.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import timm
import torch
from timm.models._features import FeatureGetterNet
from timm.optim import create_optimizer_v2
from torch.autograd.graph import saved_tensors_hooks

import vision.lightnet
from bad_inputs import Documented, assert_unique, expect
from vision import LightNet

DEPTH = 3
LIGHT = dict(img_size=8, patch_size=4, embed_dim=24, depth=DEPTH, num_heads=3, num_classes=5)
VIT = dict(pretrained=False, img_size=32, depth=DEPTH, num_classes=5)


def light(seed: int = 0, **kwargs: Any) -> LightNet:
    """A LightNet whose MD-TPE projection is not zero (it starts at zero, which would hide the encoding)."""
    torch.manual_seed(seed)
    model = timm.create_model("lightnet_tiny", **{**LIGHT, **kwargs})
    with torch.no_grad():
        (model.model if isinstance(model, FeatureGetterNet) else model).tpe.proj.weight.normal_(0, 0.1)
    return model


def vit(**kwargs: Any) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", **{**VIT, **kwargs})


def images(size: int, batch: int = 2, seed: int = 1, chans: int = 3) -> torch.Tensor:
    return torch.randn(batch, chans, size, size, generator=torch.Generator().manual_seed(seed))


X_LIGHT, X_VIT = images(8), images(32)


def block_outputs(model: LightNet, x: torch.Tensor) -> list[torch.Tensor]:
    """Each block's output ``(B, T, D)``, run by hand."""
    tokens, _, inputs = model._embed(x)
    out = []
    for block in model.blocks:
        tokens = block(tokens, **inputs)
        out.append(tokens)
    return out


# ------------------------------------------------------------------ 1. features_only, feature_info


@pytest.mark.parametrize("out_indices", [None, (0, -1), 2, [1]], ids=["default", "(0,-1)", "2", "[1]"])
def test_features_only_is_built_as_for_the_vit(out_indices: Any) -> None:
    extra = {} if out_indices is None else {"out_indices": out_indices}
    ours = light(features_only=True, **extra)
    theirs = vit(features_only=True, **extra)
    assert type(ours) is type(theirs) is FeatureGetterNet
    assert ours.feature_info.module_name() == theirs.feature_info.module_name()
    assert ours.feature_info.channels() == [24] * len(theirs.feature_info.channels())
    assert ours.feature_info.reduction() == [4] * len(theirs.feature_info.reduction())
    # Both prune the blocks after the last one taken, the final norm and the head.
    assert len(ours.model.blocks) == len(theirs.model.blocks)
    assert isinstance(ours.model.norm, torch.nn.Identity) and isinstance(ours.model.head, torch.nn.Identity)
    got, want = ours(X_LIGHT), theirs(X_VIT)
    assert [tuple(y.shape) for y in got] == [(2, 24, 2, 2)] * len(want)
    assert [tuple(y.shape) for y in want] == [(2, 192, 2, 2)] * len(want)
    # The features are the unpruned model's intermediates (same seed, same weights).
    full = light()
    indices = 3 if out_indices is None else out_indices
    for a, b in zip(got, full.forward_intermediates(X_LIGHT, indices=indices, intermediates_only=True)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert ours.pretrained_cfg["architecture"] == "lightnet_tiny"


def test_feature_info_lists_every_block() -> None:
    assert light().feature_info == [dict(module=f"blocks.{i}", num_chs=24, reduction=4) for i in range(DEPTH)]
    assert [set(d) for d in vit().feature_info] == [{"module", "num_chs", "reduction"}] * DEPTH


# ------------------------------------------------------------------ 2. forward_intermediates, prune


@pytest.mark.parametrize("indices", [None, 1, 2, [0], [0, -1], (2, 0), [1, 1]])
@pytest.mark.parametrize("output_fmt", ["NCHW", "NLC"])
def test_forward_intermediates_follows_the_vit(indices: Any, output_fmt: str) -> None:
    ours, theirs = light().eval(), vit().eval()
    final, inter = ours.forward_intermediates(X_LIGHT, indices=indices, output_fmt=output_fmt)
    vit_final, vit_inter = theirs.forward_intermediates(X_VIT, indices=indices, output_fmt=output_fmt)
    assert len(inter) == len(vit_inter)
    grid_part = (2, 24, 2, 2) if output_fmt == "NCHW" else (2, 4, 24)
    assert [tuple(y.shape) for y in inter] == [grid_part] * len(inter)
    assert [tuple(y.shape) for y in vit_inter] == [(2, 192, 2, 2) if output_fmt == "NCHW" else (2, 4, 192)] * len(inter)
    assert final.shape == (2, 4, 24) and vit_final.shape == (2, 5, 192)  # the ViT keeps its class token
    torch.testing.assert_close(final, ours.forward_features(X_LIGHT), rtol=0, atol=0)
    # Which blocks, in which order: block order, whatever order the indices came in (as the ViT does).
    blocks = block_outputs(ours, X_LIGHT)
    taken = sorted({i % DEPTH for i in (range(DEPTH) if indices is None else range(DEPTH - indices, DEPTH)
                                        if isinstance(indices, int) else indices)})
    for y, i in zip(inter, taken, strict=True):
        want = blocks[i] if output_fmt == "NLC" else blocks[i].reshape(2, 2, 2, 24).permute(0, 3, 1, 2)
        torch.testing.assert_close(y, want, rtol=0, atol=0)


def test_forward_intermediates_options() -> None:
    model = light().eval()
    blocks = block_outputs(model, X_LIGHT)
    normed = model.forward_intermediates(X_LIGHT, indices=[0], norm=True, output_fmt="NLC", intermediates_only=True)
    torch.testing.assert_close(normed[0], model.norm(blocks[0]), rtol=0, atol=0)
    # stop_early: the blocks after the last taken one do not run; the final output is that block's, normed.
    calls = []
    hooks = [b.register_forward_hook(lambda m, i, o, n=n: calls.append(n)) for n, b in enumerate(model.blocks)]
    final, inter = model.forward_intermediates(X_LIGHT, indices=[1], stop_early=True, output_fmt="NLC")
    for hook in hooks:
        hook.remove()
    assert calls == [0, 1]
    torch.testing.assert_close(final, model.norm(blocks[1]), rtol=0, atol=0)
    vit_only = vit().forward_intermediates(X_VIT, indices=1, intermediates_only=True)
    only = model.forward_intermediates(X_LIGHT, indices=1, intermediates_only=True)
    assert isinstance(only, list) and isinstance(vit_only, list) and len(only) == len(vit_only) == 1


@pytest.mark.parametrize("spatial_dims, size, grid", [(1, (12,), (3,)), (3, (8, 4, 12), (2, 1, 3))])
def test_forward_intermediates_nchw_is_the_grid_channels_first_on_any_rank(spatial_dims: int, size: tuple,
                                                                           grid: tuple) -> None:
    model = LightNet(spatial_dims=spatial_dims, **{**LIGHT, "img_size": size[0]})
    x = torch.randn(2, 3, *size)
    nchw = model.forward_intermediates(x, indices=1, intermediates_only=True)[0]
    nlc = model.forward_intermediates(x, indices=1, output_fmt="NLC", intermediates_only=True)[0]
    assert nchw.shape == (2, 24, *grid)
    torch.testing.assert_close(nchw, nlc.reshape(2, *grid, 24).movedim(-1, 1), rtol=0, atol=0)


@pytest.mark.parametrize("indices", [1, 2, [0], [0, -2], (1,)])
def test_prune_intermediate_layers_follows_the_vit(indices: Any) -> None:
    full, ours, theirs = light().eval(), light().eval(), vit()
    kept = ours.prune_intermediate_layers(indices)
    assert kept == theirs.prune_intermediate_layers(indices)
    assert len(ours.blocks) == len(theirs.blocks) == max(kept) + 1 == len(ours.feature_info)
    assert (ours.num_classes, ours.global_pool, type(ours.head)) == (theirs.num_classes, theirs.global_pool,
                                                                     type(theirs.head)) == (0, "", torch.nn.Identity)
    assert isinstance(ours.norm, torch.nn.RMSNorm)  # prune_norm=False keeps it
    for a, b in zip(ours.forward_intermediates(X_LIGHT, indices=kept, intermediates_only=True),
                    full.forward_intermediates(X_LIGHT, indices=kept, intermediates_only=True), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    kept_head = light()
    kept_head.prune_intermediate_layers(indices, prune_norm=True, prune_head=False)
    assert isinstance(kept_head.norm, torch.nn.Identity) and kept_head.num_classes == 5


# ------------------------------------------------------------------ 3. gradient checkpointing


def _gradients_and_saved_bytes(model: LightNet, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], int]:
    saved = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel() * t.element_size())
        return t

    model.zero_grad()
    torch.manual_seed(3)  # the same drop-path draws in both runs
    with saved_tensors_hooks(pack, lambda t: t):
        loss = model(x).logsumexp(-1).sum()
    loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters()}, sum(saved)


@pytest.mark.parametrize("kwargs", [{}, {"mixer": "gla", "scan_orders": 4}], ids=["lightnet", "gla x4"])
def test_grad_checkpointing_gives_the_same_gradients_and_stores_less(kwargs: dict,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    model = light(drop_path_rate=0.2, **kwargs).train()
    calls = []
    original = vision.lightnet.checkpoint

    def counted(*args: Any, **kw: Any) -> torch.Tensor:
        calls.append(1)
        return original(*args, **kw)

    monkeypatch.setattr(vision.lightnet, "checkpoint", counted)
    x = images(8)
    plain, plain_bytes = _gradients_and_saved_bytes(model, x)
    assert calls == []
    model.set_grad_checkpointing()
    assert model.grad_checkpointing is True
    checked, checked_bytes = _gradients_and_saved_bytes(model, x)
    assert len(calls) == DEPTH
    assert plain.keys() == checked.keys()
    for name in plain:
        torch.testing.assert_close(checked[name], plain[name], rtol=0, atol=0, msg=name)
    # What autograd keeps outside the recomputed blocks: the block inputs and the head, far less than every
    # activation of every block.
    assert checked_bytes < plain_bytes / 3
    calls.clear()
    model.forward_intermediates(x, indices=1)
    assert len(calls) == DEPTH
    calls.clear()
    with torch.no_grad():  # nothing to recompute for
        model(x)
    assert calls == []
    model.set_grad_checkpointing(False)
    model(x)
    assert calls == [] and not model.grad_checkpointing


def test_grad_checkpointing_under_timms_reentrant_setting() -> None:
    from timm.layers import set_reentrant_ckpt, use_reentrant_ckpt

    model = light()
    plain, _ = _gradients_and_saved_bytes(model, X_LIGHT)
    before = use_reentrant_ckpt()
    set_reentrant_ckpt(True)
    try:
        model.set_grad_checkpointing(True)
        checked, _ = _gradients_and_saved_bytes(model, X_LIGHT)
    finally:
        set_reentrant_ckpt(before)
    for name in plain:
        torch.testing.assert_close(checked[name], plain[name], rtol=0, atol=0, msg=name)


def test_set_grad_checkpointing_is_the_vits_switch() -> None:
    ours, theirs = light(), vit()
    for model in (ours, theirs):
        assert model.grad_checkpointing is False
        model.set_grad_checkpointing()
        assert model.grad_checkpointing is True
        model.set_grad_checkpointing(enable=False)
        assert model.grad_checkpointing is False


# ------------------------------------------------------------------ 4. layer-wise learning-rate decay


def _scales(model: torch.nn.Module, **kwargs: Any) -> dict[str, tuple[float, float]]:
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, layer_decay=0.65, **kwargs)
    by_param = {id(p): (g["lr_scale"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    return {name: by_param[id(p)] for name, p in model.named_parameters()}


def test_layer_decay_gives_one_scale_per_layer_as_for_the_vit() -> None:
    ours, theirs = _scales(light()), _scales(vit())
    decay = [0.65 ** (DEPTH + 1 - layer) for layer in range(DEPTH + 2)]  # stem, blocks, head
    assert sorted({s for s, _ in theirs.values()}) == pytest.approx(decay)
    assert sorted({s for s, _ in ours.values()}) == pytest.approx(decay)
    for scales in (ours, theirs):
        assert scales["patch_embed.proj.weight"][0] == pytest.approx(decay[0])
        for i in range(DEPTH):
            assert scales[f"blocks.{i}.norm1.weight"][0] == pytest.approx(decay[i + 1])
        assert scales["norm.weight"][0] == pytest.approx(decay[DEPTH])  # with the last block
        assert scales["head.weight"][0] == pytest.approx(1.0)
    for name in ("tpe.q", "tpe.k", "tpe.decay_logit", "tpe.proj.weight"):
        assert ours[name][0] == pytest.approx(decay[0]), name
    assert light().group_matcher(coarse=True) == light().group_matcher()


def test_layer_decay_keeps_position_parameters_out_of_weight_decay() -> None:
    scales = _scales(light(), weight_decay=0.05)
    assert scales["tpe.q"][1] == scales["tpe.k"][1] == scales["tpe.decay_logit"][1] == 0
    assert scales["blocks.0.ffn.fc1.weight"][1] == 0.05


# ------------------------------------------------------------------ 5. dynamic_img_size


def test_dynamic_img_size_as_for_the_vit() -> None:
    dynamic, fixed = light(dynamic_img_size=True).eval(), light(dynamic_img_size=False).eval()
    assert light().dynamic_img_size is True  # LightNet's default (the ViT's is False)
    fixed.load_state_dict(dynamic.state_dict())
    torch.testing.assert_close(dynamic(X_LIGHT), fixed(X_LIGHT), rtol=0, atol=0)
    for size in [(12, 12), (16, 8), (4, 20)]:
        y = dynamic(torch.randn(2, 3, *size))
        assert y.shape == (2, 5) and bool(torch.isfinite(y).all())
        with pytest.raises(ValueError, match=r"takes only img_size \(8, 8\).*dynamic_img_size=True"):
            fixed(torch.randn(2, 3, *size))
    vit_dynamic, vit_fixed = vit(dynamic_img_size=True).eval(), vit().eval()
    assert vit_dynamic(images(48)).shape == (2, 5)
    with pytest.raises(AssertionError):
        vit_fixed(images(48))
    # timm reads the same traits off both kinds of model
    assert dynamic._traits["fixed_input_size"] is vit_dynamic._traits["fixed_input_size"] is False
    assert fixed._traits["fixed_input_size"] is vit_fixed._traits["fixed_input_size"] is True


def test_dynamic_positions_are_computed_from_each_grid() -> None:
    """Nothing to interpolate: the same image at a new size is encoded from its own grid, and a model built for one
    size gives at another size what a model built for that size gives, with the same weights."""
    small, large = light(img_size=8).eval(), light(img_size=16, dynamic_img_size=False).eval()
    large.load_state_dict(small.state_dict())
    x = images(16)
    torch.testing.assert_close(small(x), large(x), rtol=0, atol=0)


# ------------------------------------------------------------------ 6. pooling and the head


def test_global_pool_token_is_refused_without_a_class_token() -> None:
    assert vit(global_pool="token")(X_VIT).shape == (2, 5)  # the ViT takes its class token
    with pytest.raises(AssertionError, match="class token"):
        vit(class_token=False, global_pool="token")
    message = r"global_pool must be 'avg' or '' \(the mean of the tokens, or none\), got 'token': .*no class token"
    with pytest.raises(ValueError, match=message):
        light(global_pool="token")
    with pytest.raises(ValueError, match=message):
        light().reset_classifier(3, "token")


def test_reset_classifier_and_head_as_for_the_vit() -> None:
    ours, theirs = light().eval(), vit().eval()
    for model, x, tokens in ((ours, X_LIGHT, 4), (theirs, X_VIT, 5)):
        width = model.num_features
        assert model.head_hidden_size == width == model.embed_dim
        assert model.forward_head(model.forward_features(x), pre_logits=True).shape == (2, width)
        model.reset_classifier(0)
        assert model(x).shape == (2, width) and model.num_classes == 0
        model.reset_classifier(4, "")
        assert model(x).shape == (2, tokens, 4)
        assert model.head.training is False  # the new head follows the model's mode
        model.reset_classifier(3, "avg")
        assert model(x).shape == (2, 3) and model.get_classifier() is model.head
        model.double()
        model.reset_classifier(2)
        assert model.head.weight.dtype == torch.float64  # and its dtype
    assert ours.global_pool == "avg"


def test_names_cfgs_and_no_weight_decay() -> None:
    model = light()
    names = dict(model.named_parameters())
    assert model.no_weight_decay() <= set(names)
    assert model.pretrained_cfg is model.default_cfg and model.pretrained_cfg["architecture"] == "lightnet_tiny"
    mini = timm.create_model("lightnet_mini", num_classes=10, in_chans=1)
    assert (mini.embed_dim, len(mini.blocks), mini.num_heads, mini.patch_size, mini.img_size) == (128, 4, 4, 8, 32)
    assert mini.pretrained_cfg["input_size"] == (3, 32, 32)  # the variant's size; channels are the caller's
    assert mini.in_chans == timm.create_model("vit_tiny_patch16_224", in_chans=1, img_size=32).in_chans == 1
    assert timm.create_model("lightnet_mini", features_only=True, in_chans=1).in_chans == 1
    assert mini(torch.randn(2, 1, 32, 32)).shape == (2, 10)


# ------------------------------------------------------------------ bad inputs to the calls above


def _model() -> LightNet:
    return light()


CASES: list[tuple[str, str, Callable[[], Any], Any]] = [
    ("forward_intermediates", "indices=0", lambda: _model().forward_intermediates(X_LIGHT, indices=0),
     (ValueError, r"indices as an int takes the last n blocks: n must be in \[1, 3\], got 0")),
    ("forward_intermediates", "indices=4", lambda: _model().forward_intermediates(X_LIGHT, indices=4),
     (ValueError, r"n must be in \[1, 3\], got 4")),
    ("forward_intermediates", "indices=[3]", lambda: _model().forward_intermediates(X_LIGHT, indices=[3]),
     (ValueError, r"indices must be one or more block numbers in \[-3, 3\), got \[3\]")),
    ("forward_intermediates", "indices=[-4]", lambda: _model().forward_intermediates(X_LIGHT, indices=[-4]),
     (ValueError, r"indices must be one or more block numbers")),
    ("forward_intermediates", "indices=[]", lambda: _model().forward_intermediates(X_LIGHT, indices=[]),
     (ValueError, r"indices must be one or more block numbers in \[-3, 3\), got \[\]")),
    ("forward_intermediates", "indices='1'", lambda: _model().forward_intermediates(X_LIGHT, indices="1"),
     (TypeError, r"indices must be None, an int \(the last n blocks\) or a sequence of block numbers \(ints\), got str")),
    ("forward_intermediates", "indices=1.0", lambda: _model().forward_intermediates(X_LIGHT, indices=1.0),
     (TypeError, r"indices must be None, an int .*got float")),
    ("forward_intermediates", "indices=True", lambda: _model().forward_intermediates(X_LIGHT, indices=True),
     (TypeError, r"indices must be None, an int .*got bool")),
    ("forward_intermediates", "output_fmt='NHWC'", lambda: _model().forward_intermediates(X_LIGHT, output_fmt="NHWC"),
     (ValueError, r"output_fmt must be 'NCHW' or 'NLC', got 'NHWC'")),
    ("forward_intermediates", "output_fmt=None", lambda: _model().forward_intermediates(X_LIGHT, output_fmt=None),
     (ValueError, r"output_fmt must be 'NCHW' or 'NLC'")),
    ("forward_intermediates", "norm='yes'", lambda: _model().forward_intermediates(X_LIGHT, norm="yes"),
     (TypeError, r"norm must be a bool")),
    ("forward_intermediates", "stop_early=1", lambda: _model().forward_intermediates(X_LIGHT, stop_early=1),
     (TypeError, r"stop_early must be a bool")),
    ("forward_intermediates", "intermediates_only=None",
     lambda: _model().forward_intermediates(X_LIGHT, intermediates_only=None), (TypeError, r"intermediates_only must be a bool")),
    ("forward_intermediates", "NaN pixel", lambda: _model().forward_intermediates(X_LIGHT.clone().index_fill_(2, torch.tensor([0]), float("nan"))),
     (ValueError, r"x must be finite")),
    ("forward_intermediates", "B=0", lambda: _model().forward_intermediates(images(8, batch=0), indices=1),
     Documented(lambda out: out[0].shape == (0, 4, 24) and out[1][0].shape == (0, 24, 2, 2), "empty outputs")),
    ("prune_intermediate_layers", "indices=0", lambda: _model().prune_intermediate_layers(0),
     (ValueError, r"n must be in \[1, 3\], got 0")),
    ("prune_intermediate_layers", "prune_norm='no'", lambda: _model().prune_intermediate_layers(1, prune_norm="no"),
     (TypeError, r"prune_norm must be a bool")),
    ("prune_intermediate_layers", "prune_head=0", lambda: _model().prune_intermediate_layers(1, prune_head=0),
     (TypeError, r"prune_head must be a bool")),
    ("set_grad_checkpointing", "enable='yes'", lambda: _model().set_grad_checkpointing("yes"),
     (TypeError, r"enable must be a bool")),
    ("group_matcher", "coarse=1", lambda: _model().group_matcher(coarse=1), (TypeError, r"coarse must be a bool")),
    ("LightNet()", "dynamic_img_size='yes'", lambda: light(dynamic_img_size="yes"),
     (TypeError, r"dynamic_img_size must be a bool")),
    ("LightNet()", "fixed img_size not a patch multiple", lambda: light(img_size=10, dynamic_img_size=False),
     (ValueError, r"img_size \(10, 10\) must be a multiple of the patch size 4")),
    ("LightNet()", "dynamic img_size not a patch multiple", lambda: light(img_size=10)(X_LIGHT),
     Documented(lambda y: y.shape == (2, 5), "recorded only: any multiple of the patch size runs")),
    ("LightNet()", "global_pool='max'", lambda: light(global_pool="max"),
     (ValueError, r"global_pool must be 'avg' or '' \(the mean of the tokens, or none\), got 'max'$")),
    ("timm.create_model", "features_only, out_indices=4", lambda: light(features_only=True, out_indices=4),
     (ValueError, r"n must be in \[1, 3\], got 4")),
    ("timm.create_model", "features_only, out_indices=(5,)", lambda: light(features_only=True, out_indices=(5,)),
     (ValueError, r"indices must be one or more block numbers in \[-3, 3\), got \[5\]")),
]


@pytest.mark.parametrize("entry, description, call, expected", CASES, ids=[f"{e} | {d}" for e, d, _, _ in CASES])
def test_bad_input(entry: str, description: str, call: Callable[[], Any], expected: Any) -> None:
    expect(call, expected)


def test_the_table_has_one_row_per_case() -> None:
    assert_unique([(entry, description) for entry, description, _, _ in CASES])
    assert all(isinstance(e, Documented) or (issubclass(e[0], Exception) and re.compile(e[1])) for *_, e in CASES)
