"""The one checkpoint protocol of every package: atomic, tagged, configured, safely loaded, exactly resumable.

A checkpoint file holds one dict::

    {"format": "seqcore.checkpoint", "version": 1, "kind": "<what wrote it>", "config": {...} | None,
     "state": {...}}

- ``kind`` names the writer (``"pointcloud.lion.LIONDetector"``, ``"vision.train"``, ...); a loader asks for its kind
  and refuses any other.
- ``config`` is what defines the model or run (plain values); a loader that passes the config it expects gets a
  :class:`CheckpointError` listing every difference.
- ``state`` holds tensors and plain Python values only (bool, int, float, complex, str, bytes, None, torch dtypes,
  devices and sizes, in dicts, lists, tuples and sets). :func:`save_checkpoint` refuses anything else *before*
  writing, naming where it sits (numpy scalars are converted to Python numbers), so every checkpoint loads with
  ``torch.load(weights_only=True)``: loading never runs code.
- Files are written with :func:`seqcore.atomic.atomic_write`: a crash or a full disk during a save leaves the
  previous checkpoint as it was.

Resuming a training run exactly: :func:`training_state` captures the model, optimizer, scheduler, step and every
random number generator the run draws from (torch's, CUDA's, Python's, numpy's global one and any generators
passed by name); :func:`restore_training_state` puts all of them back.
"""
from __future__ import annotations

import os
import pickle
import random
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .atomic import atomic_write
from .ops.validation import check_int

__all__ = [
    "FORMAT", "VERSION", "Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint", "rng_state",
    "restore_rng_state", "training_state", "restore_training_state",
]

FORMAT = "seqcore.checkpoint"
VERSION = 1

_LEAVES = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.Size)


class CheckpointError(ValueError):
    """A file that is not a checkpoint of the expected kind, version or config, or cannot be loaded safely."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: who wrote it (``kind``), the protocol ``version``, its ``config`` and ``state``."""

    path: Path
    kind: str
    version: int
    config: dict[str, Any] | None
    state: dict[str, Any]


def _plain(value: Any, where: str) -> Any:
    """``value`` with numpy scalars turned into Python numbers; TypeError naming ``where`` for anything unsafe."""
    if isinstance(value, torch.Tensor):
        if type(value) not in (torch.Tensor, nn.Parameter):
            raise TypeError(f"{where} is a {type(value).__name__}; checkpoints hold plain torch.Tensor only")
        return value
    if isinstance(value, np.generic) and not isinstance(value, np.object_):
        return value.item()
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, Mapping):
        out: dict[Any, Any] = OrderedDict() if isinstance(value, OrderedDict) else {}
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool, type(None))):
                raise TypeError(f"{where} has a key of type {type(key).__name__}; use str or int keys")
            out[key] = _plain(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple, set)):
        items = [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
        # Subclasses (named tuples, ...) would need their class at load time: store the builtin container.
        return set(items) if isinstance(value, set) else tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, np.ndarray):
        raise TypeError(f"{where} is a numpy array; store torch.from_numpy(array) (checkpoints hold tensors and "
                        "plain Python values only)")
    raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}; checkpoints hold tensors "
                    "and plain Python values only (bool, int, float, str, bytes, None, lists, tuples, dicts)")


def _check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"kind must be a non-empty str naming the writer, got {kind!r}")
    return kind


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any], *, kind: str,
                    config: Mapping[str, Any] | None = None) -> None:
    """Write ``state`` (and ``config``) to ``path`` atomically, tagged with ``kind`` and the protocol version.

    Raises:
        TypeError: ``state`` is not a mapping, or holds a value that a safe load could not read (the message
            names where it sits), or ``kind`` is not a non-empty str.
        OSError: the write failed (the previous file at ``path`` is left untouched).
    """
    _check_kind(kind)
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a dict, got {type(state).__name__}")
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
    payload = {"format": FORMAT, "version": VERSION, "kind": kind,
               "config": None if config is None else _plain(dict(config), "config"),
               "state": _plain(dict(state), "state")}
    with atomic_write(path) as handle:
        torch.save(payload, handle)


def _differences(saved: Any, expected: Any, where: str = "") -> list[str]:
    if isinstance(saved, Mapping) and isinstance(expected, Mapping):
        out = []
        for key in sorted(set(saved) | set(expected), key=str):
            name = f"{where}.{key}" if where else str(key)
            if key not in saved:
                out.append(f"{name}: not in the checkpoint, now {expected[key]!r}")
            elif key not in expected:
                out.append(f"{name}: saved {saved[key]!r}, not expected now")
            else:
                out.extend(_differences(saved[key], expected[key], name))
        return out
    if isinstance(saved, (list, tuple)) and isinstance(expected, (list, tuple)):
        if list(saved) == list(expected):
            return []
    elif saved == expected:
        return []
    return [f"{where or 'config'}: saved {saved!r}, now {expected!r}"]


def load_checkpoint(path: str | os.PathLike, *, kind: str, config: Mapping[str, Any] | None = None,
                    map_location: str | torch.device | None = "cpu") -> Checkpoint:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(weights_only=True)``.

    Args:
        path: the file.
        kind: the writer the caller expects; any other kind is refused.
        config: if given, the config the caller expects; any difference is refused (tuples and lists compare
            equal item by item).
        map_location: passed to ``torch.load``.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is not a safe-loadable seqcore checkpoint (a pickle that would run code, a
            truncated or foreign file), or it was written by another kind, a newer protocol version or a
            different config. The message names the file.
    """
    _check_kind(kind)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, ImportError,
            IndexError, KeyError, TypeError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} cannot be loaded safely as a checkpoint (a truncated file, a foreign format "
                              f"or a pickle that would run code; nothing of it was executed): {first}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a seqcore checkpoint (no '{FORMAT}' format tag)")
    version = payload.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path} was written with checkpoint protocol version {version!r}; this seqcore reads "
                              f"versions up to {VERSION} (upgrade seqcore)")
    if payload.get("kind") != kind:
        raise CheckpointError(f"{path} is a {payload.get('kind')!r} checkpoint, expected {kind!r}")
    saved_config = payload.get("config")
    if config is not None:
        differ = _differences(saved_config if saved_config is not None else {}, _plain(dict(config), "config"))
        if differ:
            raise CheckpointError(f"{path} was written with a different config: " + "; ".join(differ))
    state = payload.get("state")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} has no state dict")
    return Checkpoint(path=path, kind=kind, version=version, config=saved_config, state=state)


def _generator_state(name: str, generator: Any) -> Any:
    if isinstance(generator, torch.Generator):
        return generator.get_state()
    if isinstance(generator, np.random.Generator):
        return generator.bit_generator.state
    raise TypeError(f"generators[{name!r}] must be a torch.Generator or numpy.random.Generator, got "
                    f"{type(generator).__name__}")


def rng_state(generators: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every random number generator a run may draw from: torch's (CPU and each initialized CUDA device),
    Python's ``random``, numpy's global one, and the named ``generators`` (torch or numpy ``Generator``)."""
    legacy = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "python": random.getstate(),
        "numpy": {**legacy, "state": {"key": torch.from_numpy(legacy["state"]["key"].astype(np.int64)),
                                      "pos": int(legacy["state"]["pos"])}},
        "generators": {name: _generator_state(name, g) for name, g in (generators or {}).items()},
    }
    return state


def restore_rng_state(state: Mapping[str, Any], generators: Mapping[str, Any] | None = None) -> None:
    """Put back what :func:`rng_state` captured (the named ``generators`` must match the captured names)."""
    generators = generators or {}
    saved = state.get("generators", {})
    if set(saved) != set(generators):
        raise CheckpointError(f"the checkpoint holds generators {sorted(saved)}, the caller passed {sorted(generators)}")
    torch.set_rng_state(state["torch"])
    if state.get("cuda"):
        if not torch.cuda.is_available():
            raise CheckpointError("the checkpoint holds CUDA generator states but CUDA is not available")
        torch.cuda.set_rng_state_all(state["cuda"])
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    legacy = dict(state["numpy"])
    legacy["state"] = {"key": legacy["state"]["key"].numpy().astype(np.uint32), "pos": legacy["state"]["pos"]}
    np.random.set_state(legacy)
    for name, generator in generators.items():
        if isinstance(generator, torch.Generator):
            generator.set_state(saved[name])
        elif isinstance(generator, np.random.Generator):
            generator.bit_generator.state = saved[name]
        else:
            _generator_state(name, generator)


def training_state(model: nn.Module, optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, *,
                   step: int, generators: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """What resuming a run needs: weights, optimizer and scheduler states, the ``step`` reached, every random
    generator (see :func:`rng_state`) and any plain ``extra`` values (history, best score, ...)."""
    step = check_int("step", step, 0)  # an int: a numpy integer would not load with weights_only=True
    reserved = {"model", "optimizer", "scheduler", "step", "rng"} & set(extra)
    if reserved:
        raise ValueError(f"extra entries may not be named {sorted(reserved)}")
    return {"model": model.state_dict(),
            "optimizer": None if optimizer is None else optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "step": step, "rng": rng_state(generators), **extra}


def restore_training_state(state: Mapping[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                           scheduler: Any = None, *, generators: Mapping[str, Any] | None = None) -> int:
    """Load what :func:`training_state` captured into ``model``, ``optimizer``, ``scheduler`` and the random
    generators; returns the step. A component passed here but absent from the checkpoint (or the reverse) is a
    :class:`CheckpointError`."""
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler)):
        if (state.get(name) is None) != (target is None):
            have = "holds" if state.get(name) is not None else "has no"
            raise CheckpointError(f"the checkpoint {have} {name} state but the caller passed "
                                  f"{'none' if target is None else 'one'}")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"], generators)
    return int(state["step"])
