"""Switching a model's mixers to sequence parallelism."""
from __future__ import annotations

from typing import Any

from torch import nn


def enable_sequence_parallel(model: nn.Module, group: Any) -> nn.Module:
    """Set ``sequence_parallel_group = group`` on every ``seqcore.nn`` mixer inside ``model`` (``None``
    switches it off) and return ``model``. Each rank then feeds its contiguous slice ``(B, T_r, C)`` of the same
    sequences; mixers exchange fixed-size states (and their short convolutions' last inputs) with the other ranks.

    Softmax attention layers gather every rank's keys and values instead (their traffic grows with ``T``). Raises
    ValueError for mixers without a sequence-parallel form (LightNet's 2-D scan), so a model never silently mixes
    only its own slice.
    """
    from ..nn.attention import SoftmaxAttention
    from ..nn.base import RecurrentMixer
    from ..nn.registry import MIXERS

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    recurrent = [m for m in model.modules() if isinstance(m, (RecurrentMixer, SoftmaxAttention))]
    others = [type(m).__name__ for m in model.modules()
              if type(m) in MIXERS.values() and not isinstance(m, (RecurrentMixer, SoftmaxAttention))]
    if group is not None and others:
        raise ValueError(f"no sequence-parallel form for {sorted(set(others))}; use recurrent mixers only")
    if not recurrent and group is not None:
        raise ValueError("the model has no seqcore.nn mixer to split the sequence over")
    for mixer in recurrent:
        mixer.sequence_parallel_group = group
    return model
