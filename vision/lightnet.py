"""LightNet backbones ("You Only Scan Once", Qin et al. 2024) with timm's model conventions.

Patch embedding -> MD-TPE -> ``depth`` pre-norm residual blocks (mixer + SwiGLU, from :class:`seqcore.nn.SeqBlock`)
-> RMSNorm -> average pool -> linear head. With ``mixer="lightnet"`` each block mixes all tokens through one
global ``softmax_T(K)^T V`` product with MD-LRPE rotations; with a multiplicative-decay mixer (``"gla"``,
``"retnet"``, ...) ``scan_orders`` sets how many scans cover the grid: 1 (row-major, causal), 2 (row-major,
forward and reverse) or ``2 * ndim`` (forward and reverse along every axis-major order: 4 on images). That is the
baseline of the one-scan claim (``benchmarks/vision_scans.py``).

Inputs of any spatial rank: ``spatial_dims=1`` takes ``(B, C, L)``, 2 takes ``(B, C, H, W)``, 3 takes
``(B, C, D, H, W)``; every spatial size must be a multiple of the patch size, and any such size works without
retraining (the position encodings are computed from the grid of each input, so timm's ``dynamic_img_size`` is
the default and there is no position table to interpolate).

Registered with timm: ``lightnet_tiny`` / ``lightnet_small`` / ``lightnet_base`` (``import vision`` first).
Widths, depths and heads follow DeiT (192/384/768, 12, 3/6/12), so that each compares with the DeiT of its size
(``benchmarks/vision.py`` compares the tiny ones); the paper's own classification models were not checked against
these numbers.
``lightnet_mini`` (patch 8, width 128, depth 4) is a small model for 32 px images. No weights are published.

timm's model API as its vision transformers have it: ``features_only=True`` / ``out_indices`` (through
``forward_intermediates``, timm's ``FeatureGetterNet``), ``feature_info``, ``prune_intermediate_layers``,
``set_grad_checkpointing``, ``group_matcher`` (layer-wise learning-rate decay), ``dynamic_img_size``,
``reset_classifier``, ``forward_features`` / ``forward_head``, ``no_weight_decay``.
"""
from __future__ import annotations

import numbers
import os
import zipfile
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from timm.layers import trunc_normal_
from timm.models import build_model_with_cfg, checkpoint, generate_default_cfgs, register_model

from seqcore.nn import SeqBlock
from seqcore.nn.validation import check_fraction, check_positive_float
from seqcore.ops.validation import check_bool, check_float, check_int, check_same_device

from .position import MDTPE, check_base, md_lrpe_angles
from .scan_orders import GridScan

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
# LightNet pools by averaging or not at all: it has no class token, so timm's "token" pooling has nothing to take.
_GLOBAL_POOLS = ("avg", "")
_OUTPUT_FORMATS = ("NCHW", "NLC")


class PatchEmbed(nn.Module):
    """Non-overlapping patches of a 1-, 2- or 3-D input: ``(B, C, *spatial) -> (B, T, D)`` and the token grid.

    ``x`` must be floating point, finite, of the weights' dtype (unless autocast is on) and device, with every
    spatial size a positive multiple of ``patch_size``; ``B = 0`` gives ``(0, T, D)``. With ``img_size`` (one
    size per spatial axis) only inputs of exactly that size are taken (``strict_img_size``, which timm reads as
    a fixed input size); without it any multiple of the patch size is.
    """

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, spatial_dims: int,
                 img_size: Sequence[int] | None = None) -> None:
        super().__init__()
        if spatial_dims not in _CONV:
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        patch_size = check_int("patch_size", patch_size, 1)
        in_chans = check_int("in_chans", in_chans, 1)
        embed_dim = check_int("embed_dim", embed_dim, 1)
        if img_size is not None:
            img_size = _check_img_size(img_size, spatial_dims)
            if any(n % patch_size for n in img_size):
                raise ValueError(f"img_size {img_size} must be a multiple of the patch size {patch_size} on every "
                                 "axis: a model fixed to that size could take no input")
        self.patch_size, self.in_chans, self.spatial_dims = patch_size, in_chans, spatial_dims
        self.img_size, self.strict_img_size = img_size, img_size is not None
        self.proj = _CONV[spatial_dims](in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        want = 2 + self.spatial_dims
        layout = {1: "(B, C, L)", 2: "(B, C, H, W)", 3: "(B, C, D, H, W)"}[self.spatial_dims]
        if isinstance(x, Tensor) and x.dim() != want:
            raise ValueError(f"expected a {want}-D input {layout}, got shape {tuple(x.shape)}")
        check_float("x", x, want, layout)
        if x.shape[1] != self.in_chans:
            raise ValueError(f"expected {self.in_chans} input channels, got {x.shape[1]} (shape {tuple(x.shape)})")
        spatial = tuple(x.shape[2:])
        if any(n < 1 or n % self.patch_size for n in spatial):
            raise ValueError(
                f"every spatial size must be a positive multiple of the patch size {self.patch_size}, got "
                f"{spatial}; resize or pad the input"
            )
        if self.img_size is not None and spatial != self.img_size:
            raise ValueError(f"this model takes only img_size {self.img_size} (built with dynamic_img_size=False), "
                             f"got an input of size {spatial}; build it with dynamic_img_size=True for any size")
        _check_input(x, self.proj.weight)
        y = self.proj(x)
        return y.flatten(2).transpose(1, 2), tuple(y.shape[2:])


class LightNet(nn.Module):
    """LightNet classifier: ``(B, C, *spatial) -> (B, num_classes)``; see the module docstring.

    Args follow timm's vision transformers: ``img_size`` (the default input size, an int or one per spatial
    axis), ``patch_size``, ``in_chans``, ``num_classes`` (0: no head), ``global_pool`` (``"avg"`` or ``""``; no
    ``"token"``: there is no class token), ``embed_dim``, ``depth``, ``num_heads``, ``mlp_ratio``, ``drop_rate``
    (before the head), ``drop_path_rate``, ``dynamic_img_size`` (default True, unlike the ViT's False: any
    multiple of ``patch_size`` runs, the positions being computed from each input's grid; False fixes the input
    to ``img_size``, as a ViT without it). Specific: ``spatial_dims``, ``mixer`` (any :data:`seqcore.nn.MIXERS`
    name), ``scan_orders`` (decay mixers only), ``use_tpe``, ``use_lrpe``, ``lrpe_base``, ``mixer_kwargs``.

    Every argument is checked at construction (``TypeError`` / ``ValueError`` naming it; flags must be bools).
    ``forward`` takes floating-point, finite input of the model's dtype and device; NaN or inf raise
    ``ValueError`` (one NaN pixel would reach every token of the image through the global mixer), and an empty
    batch (``B = 0``) gives ``(0, num_classes)``.
    """

    def __init__(
        self,
        img_size: int | Sequence[int] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        spatial_dims: int = 2,
        mixer: str = "lightnet",
        scan_orders: int = 1,
        use_tpe: bool = True,
        use_lrpe: bool = True,
        lrpe_base: float = 100.0,
        mixer_kwargs: dict[str, Any] | None = None,
        dynamic_img_size: bool = True,
    ) -> None:
        super().__init__()
        _check_global_pool(global_pool)
        depth, num_heads = check_int("depth", depth, 1), check_int("num_heads", num_heads, 1)
        embed_dim, num_classes = check_int("embed_dim", embed_dim, 1), check_int("num_classes", num_classes, 0)
        sizes = _check_img_size(img_size, spatial_dims)
        dynamic_img_size = check_bool("dynamic_img_size", dynamic_img_size)
        mlp_ratio = check_positive_float("mlp_ratio", mlp_ratio)
        drop_rate, drop_path_rate = check_fraction("drop_rate", drop_rate), check_fraction("drop_path_rate", drop_path_rate)
        use_tpe, use_lrpe = check_bool("use_tpe", use_tpe), check_bool("use_lrpe", use_lrpe)
        lrpe_base = check_base("lrpe_base", lrpe_base)
        if mixer_kwargs is not None and not isinstance(mixer_kwargs, Mapping):
            raise TypeError(f"mixer_kwargs must be a dict of mixer options or None, got {type(mixer_kwargs).__name__}")
        scan_orders = check_int("scan_orders", scan_orders, 1)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.img_size, self.patch_size = img_size, patch_size
        self.num_classes, self.global_pool = num_classes, global_pool
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.num_heads, self.spatial_dims, self.mixer_name = num_heads, spatial_dims, mixer
        self.dynamic_img_size, self.grad_checkpointing = dynamic_img_size, False
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, spatial_dims,
                                      img_size=None if dynamic_img_size else sizes)
        self.in_chans = self.patch_embed.in_chans
        self.tpe = MDTPE(embed_dim, num_heads, ndim=spatial_dims) if use_tpe else None
        self.lrpe_base = lrpe_base
        kwargs = dict(mixer_kwargs or {})
        if mixer == "lightnet":
            if scan_orders != 1:
                raise ValueError("LightNet needs one scan: scan_orders must be 1 with mixer='lightnet'")
            kwargs.setdefault("bidirectional", True)
            self.use_lrpe = use_lrpe
        else:
            allowed = (1, 2, 2 * spatial_dims)
            if scan_orders not in allowed:
                raise ValueError(f"scan_orders must be one of {sorted(set(allowed))} for {spatial_dims}-D inputs, got {scan_orders}")
            kwargs.setdefault("bidirectional", scan_orders > 1)
            self.use_lrpe = False
        self.scan_orders = scan_orders
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList()
        for rate in rates:
            block = SeqBlock(embed_dim, mixer, num_heads, ffn="glu", ffn_ratio=mlp_ratio, drop_path=rate,
                             mixer_kwargs=kwargs)
            if scan_orders == 2 * spatial_dims and scan_orders > 2:
                block.mixer = GridScan(block.mixer)
            self.blocks.append(block)
        # Every block keeps the patch grid: the same width and stride at each depth.
        self.feature_info = [dict(module=f"blocks.{i}", num_chs=embed_dim, reduction=patch_size) for i in range(depth)]
        self.norm = nn.RMSNorm(embed_dim)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(_init_weights)
        if self.tpe is not None:
            self.tpe.reset_parameters()

    # ------------------------------------------------------------------ timm interface

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """MD-TPE's decays and constant vectors are position parameters, kept out of weight decay."""
        return {"tpe.decay_logit", "tpe.q", "tpe.k"} if self.tpe is not None else set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups for timm's layer-wise learning-rate decay (``create_optimizer_v2(layer_decay=...)``):
        the stem (patch embedding, MD-TPE), then one layer per block, the final norm with the last block, as in
        timm's ViT; the head, matched by neither, gets the full rate. ``coarse`` changes nothing (blocks are the
        only stages), as for the ViT."""
        check_bool("coarse", coarse)
        return {"stem": r"^patch_embed|^tpe", "blocks": [(r"^blocks\.(\d+)", None), (r"^norm", (99999,))]}

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block in the backward pass instead of storing its activations (timm's
        ``--grad-checkpointing``): the same gradients for less memory and one more forward pass per block."""
        self.grad_checkpointing = check_bool("enable", enable)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head for ``num_classes`` outputs (0: none), on the model's device and dtype and in its
        train/eval mode; ``global_pool`` (``"avg"`` or ``""``) changes the pooling, None keeps it."""
        num_classes = check_int("num_classes", num_classes, 0)  # 0: no head
        if global_pool is not None:
            self.global_pool = _check_global_pool(global_pool)
        self.num_classes = num_classes
        weight = self.patch_embed.proj.weight
        self.head = (nn.Linear(self.embed_dim, num_classes, device=weight.device, dtype=weight.dtype)
                     if num_classes > 0 else nn.Identity())
        if num_classes > 0:
            _init_weights(self.head)
        self.head.train(self.training)

    def _embed(self, x: Tensor) -> tuple[Tensor, tuple[int, ...], dict[str, Any]]:
        """Tokens ``(B, T, D)`` after MD-TPE, their grid, and the per-block inputs (MD-LRPE angles or the grid)."""
        tokens, grid = self.patch_embed(x)
        if self.tpe is not None:
            tokens = self.tpe(tokens, grid)
        inputs: dict[str, Any] = {}
        if self.mixer_name == "lightnet" and self.use_lrpe:
            inputs["angles"] = md_lrpe_angles(grid, self.blocks[0].mixer.head_k, self.lrpe_base, tokens.device)
        elif isinstance(self.blocks[0].mixer, GridScan):
            inputs["grid_shape"] = grid
        return tokens, grid, inputs

    def _block(self, block: nn.Module, tokens: Tensor, inputs: dict[str, Any]) -> Tensor:
        if self.grad_checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
            # timm's wrapper: non-reentrant unless timm is set otherwise; the angles and grid are constants, so
            # they are bound to the block rather than passed as checkpointed inputs.
            return checkpoint(partial(block, **inputs), tokens)
        return block(tokens, **inputs)

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, C, *spatial) -> (B, T, embed_dim)``: normalized tokens in row-major grid order."""
        tokens, _, inputs = self._embed(x)
        for block in self.blocks:
            tokens = self._block(block, tokens, inputs)
        return self.norm(tokens)

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """The outputs of chosen blocks, with timm's ViT conventions (what ``features_only=True`` returns).

        Args:
            x: ``(B, C, *spatial)``, as for :meth:`forward`.
            indices: None: every block; an int ``n``: the last ``n``; a sequence: those blocks (negative from the
                end). Outputs come in block order.
            norm: apply the final norm to each intermediate.
            stop_early: skip the blocks after the last one taken (the final output is then that block's, normed).
            output_fmt: ``"NCHW"``: ``(B, D, *grid)`` (the token grid, channels first, for 1-, 2- or 3-D inputs);
                ``"NLC"``: ``(B, T, D)``.
            intermediates_only: return only the list.

        Returns:
            ``(final, intermediates)`` with ``final = norm(tokens)`` of shape ``(B, T, D)``, or ``intermediates``.
        """
        take, last = _take_indices(len(self.blocks), indices)
        norm, stop_early = check_bool("norm", norm), check_bool("stop_early", stop_early)
        intermediates_only = check_bool("intermediates_only", intermediates_only)
        if not isinstance(output_fmt, str) or output_fmt not in _OUTPUT_FORMATS:
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        tokens, grid, inputs = self._embed(x)
        intermediates = []
        for i, block in enumerate(self.blocks[: last + 1] if stop_early else self.blocks):
            tokens = self._block(block, tokens, inputs)
            if i in take:
                intermediates.append(self.norm(tokens) if norm else tokens)
        if output_fmt == "NCHW":
            intermediates = [y.reshape(y.shape[0], *grid, y.shape[-1]).movedim(-1, 1).contiguous()
                             for y in intermediates]
        if intermediates_only:
            return intermediates
        return self.norm(tokens), intermediates

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the blocks after the last of ``indices`` (as in :meth:`forward_intermediates`), the final norm if
        ``prune_norm``, the head and pooling if ``prune_head``; returns the kept indices, counted from the start."""
        take, last = _take_indices(len(self.blocks), indices)
        prune_norm, prune_head = check_bool("prune_norm", prune_norm), check_bool("prune_head", prune_head)
        self.blocks = self.blocks[: last + 1]
        self.feature_info = self.feature_info[: last + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool the tokens ``(B, T, D)`` (``global_pool="avg"``) and apply the head unless ``pre_logits``."""
        pre_logits = check_bool("pre_logits", pre_logits)
        check_float("x", x, 3, f"(B, T, D={self.embed_dim})")
        if x.shape[-1] != self.embed_dim:
            raise ValueError(f"x must have shape (B, T, D={self.embed_dim}), got {tuple(x.shape)}")
        if self.global_pool == "avg":
            x = x.mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _check_input(x: Tensor, weight: Tensor) -> None:
    """``x`` on ``weight``'s device, of its dtype (unless autocast is on, which casts for the layer), finite."""
    check_same_device(x=x, weights=weight)
    if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"x is {x.dtype} but the model's weights are {weight.dtype}; cast one to the other")
    if not torch.compiler.is_compiling() and x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"x must be finite, got {int((~torch.isfinite(x)).sum())} NaN or infinite values")


def _check_global_pool(global_pool: object) -> str:
    if global_pool not in _GLOBAL_POOLS:
        hint = ": LightNet has no class token for timm's 'token' pooling" if global_pool == "token" else ""
        raise ValueError(f"global_pool must be 'avg' or '' (the mean of the tokens, or none), got {global_pool!r}"
                         f"{hint}")
    return global_pool


def _check_img_size(img_size: object, spatial_dims: int) -> tuple[int, ...]:
    """One size per spatial axis. With a dynamic image size it is only recorded, but a wrong one would mislead
    timm's data configuration, which reads it as the input size."""
    sizes = img_size if isinstance(img_size, Sequence) else (img_size,)
    if not (len(sizes) in (1, spatial_dims) and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in sizes
    )):
        raise ValueError(
            f"img_size must be a positive int or {spatial_dims} of them (one per spatial axis), got {img_size!r}"
        )
    return tuple(int(n) for n in sizes) * (spatial_dims if len(sizes) == 1 else 1)


def _take_indices(depth: int, indices: object) -> tuple[list[int], int]:
    """timm's block selection: None is every block, an int ``n`` the last ``n``, a sequence those blocks
    (negative from the end); returns them counted from the start, and the largest."""
    if indices is None:
        indices = depth
    if isinstance(indices, numbers.Integral) and not isinstance(indices, bool):
        if not 1 <= indices <= depth:
            raise ValueError(f"indices as an int takes the last n blocks: n must be in [1, {depth}], got {indices}")
        take = list(range(depth - int(indices), depth))
    elif isinstance(indices, Sequence) and not isinstance(indices, (str, bytes)) and all(
        isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in indices
    ):
        if not indices or not all(-depth <= i < depth for i in indices):
            raise ValueError(f"indices must be one or more block numbers in [-{depth}, {depth}), got {list(indices)}")
        take = [int(i) + depth if i < 0 else int(i) for i in indices]
    else:
        raise TypeError(f"indices must be None, an int (the last n blocks) or a sequence of block numbers (ints), "
                        f"got {type(indices).__name__} {indices!r}")
    return take, max(take)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "", "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None, "crop_pct": 0.9,
        "interpolation": "bicubic", "fixed_input_size": False, "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225), "first_conv": "patch_embed.proj", "classifier": "head",
        "license": "apache-2.0", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "lightnet_mini.untrained": _cfg(input_size=(3, 32, 32), crop_pct=1.0),
    "lightnet_tiny.untrained": _cfg(),
    "lightnet_small.untrained": _cfg(),
    "lightnet_base.untrained": _cfg(),
})


def _create(variant: str, pretrained: bool, **kwargs: Any) -> LightNet:
    overlay = kwargs.get("pretrained_cfg_overlay") or {}
    if pretrained and not (overlay.get("file") or overlay.get("state_dict")):
        raise ValueError(
            f"no {variant} weights are published; to load your own, pass pretrained=True with "
            "pretrained_cfg_overlay=dict(file='path/to/weights.pth', num_classes=N), N the classes of the "
            "checkpoint's head (timm drops the head when N differs from the model's num_classes)"
        )
    if pretrained and overlay.get("file"):
        _check_weights_file(os.fspath(overlay["file"]))
    # features_only as for timm's ViTs: FeatureGetterNet prunes the model and calls forward_intermediates;
    # the last 3 blocks by default.
    out_indices = kwargs.pop("out_indices", 3)
    return build_model_with_cfg(LightNet, variant, pretrained,
                                feature_cfg=dict(out_indices=out_indices, feature_cls="getter"), **kwargs)


def _check_weights_file(path: str) -> None:
    """Refuse, naming the file, a weights file that ``torch.load(weights_only=True)`` cannot read (crafted,
    truncated, not a checkpoint); timm would refuse it too, without saying which file. safetensors files are
    safe by construction and left to timm."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no weights file {path}")
    if path.endswith(".safetensors"):
        return
    try:
        # Mapped, not read, when the format allows it: only the pickled structure matters here.
        torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as error:  # every failure means the same here; the reason goes in the message
        detail = str(error).splitlines()[0] if str(error) else "no details"
        raise ValueError(f"cannot load the weights file {path} safely (weights_only=True): "
                         f"{type(error).__name__}: {detail}") from error


@register_model
def lightnet_mini(pretrained: bool = False, **kwargs: Any) -> LightNet:
    """LightNet-Mini: width 128, depth 4, 4 heads, patch 8, 32 px by default (a 4 x 4 token grid): small images
    such as the digits of ``examples/vision/train.py``; not a DeiT or paper shape."""
    args = dict(img_size=32, patch_size=8, embed_dim=128, depth=4, num_heads=4)
    return _create("lightnet_mini", pretrained, **{**args, **kwargs})


@register_model
def lightnet_tiny(pretrained: bool = False, **kwargs: Any) -> LightNet:
    """LightNet-Tiny: width 192, depth 12, 3 heads, patch 16 (DeiT-Tiny's shape)."""
    args = dict(patch_size=16, embed_dim=192, depth=12, num_heads=3)
    return _create("lightnet_tiny", pretrained, **{**args, **kwargs})


@register_model
def lightnet_small(pretrained: bool = False, **kwargs: Any) -> LightNet:
    """LightNet-Small: width 384, depth 12, 6 heads, patch 16 (DeiT-Small's shape)."""
    args = dict(patch_size=16, embed_dim=384, depth=12, num_heads=6)
    return _create("lightnet_small", pretrained, **{**args, **kwargs})


@register_model
def lightnet_base(pretrained: bool = False, **kwargs: Any) -> LightNet:
    """LightNet-Base: width 768, depth 12, 12 heads, patch 16 (DeiT-Base's shape)."""
    args = dict(patch_size=16, embed_dim=768, depth=12, num_heads=12)
    return _create("lightnet_base", pretrained, **{**args, **kwargs})
