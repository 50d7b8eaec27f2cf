"""The checkpoints of ``examples/vision/train.py``, and rebuilding their model from the file alone.

Each is a :mod:`seqcore.checkpoint` of kind :data:`CHECKPOINT_KIND` whose ``config`` records the run's settings,
among them ``model`` (the timm name the model was built under) and ``model_kwargs`` (every keyword argument given
to ``timm.create_model``, the data's ``num_classes`` and ``in_chans`` included), and whose ``state["model"]`` holds
the weights. So ``timm.create_model(config["model"], **config["model_kwargs"])`` builds the model that was
trained, and :func:`load_model` does that and loads the weights.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

import timm
import torch
from torch import nn

from seqcore.checkpoint import CheckpointError, load_checkpoint

from . import lightnet  # noqa: F401  (registers lightnet_* with timm, which load_model may be asked for)

CHECKPOINT_KIND = "vision.train"


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """The model of a checkpoint written by ``examples/vision/train.py``, with its weights, in eval mode.

    Loading is safe (``torch.load(weights_only=True)``). Raises ``FileNotFoundError`` for a missing file and
    :class:`seqcore.checkpoint.CheckpointError` (a ``ValueError``) naming the file for one that is not such a
    checkpoint, that does not record the model's name and arguments (written before they were recorded), or
    that names a model timm does not know (import the package that registers it first).
    """
    saved = load_checkpoint(path, kind=CHECKPOINT_KIND, map_location=map_location)
    config = saved.config or {}
    name, kwargs = config.get("model"), config.get("model_kwargs")
    if not isinstance(name, str) or not isinstance(kwargs, Mapping) or "num_classes" not in kwargs:
        raise CheckpointError(f"{saved.path} does not record the model's timm name and constructor arguments "
                              "(config 'model' and 'model_kwargs'); it was written by an older train.py")
    if not timm.is_model(name):
        raise CheckpointError(f"{saved.path} holds a {name!r} model, which timm does not know; import the package "
                              "that registers it first")
    model = timm.create_model(name, pretrained=False, **kwargs)
    model.load_state_dict(saved.state["model"])
    return model.to(map_location).eval()
