"""Backend names, and the choice ``backend="auto"`` makes."""
from __future__ import annotations

import importlib.util
import os

import torch

BACKENDS = ("auto", "recurrent", "chunk", "triton")


def triton_unavailable_reason(device: torch.device) -> str | None:
    """Why the Triton kernels cannot run on ``device`` now, or ``None`` if they can."""
    if importlib.util.find_spec("triton") is None:
        return "the 'triton' package is not installed"
    if device.type == "cuda":
        return None
    if os.environ.get("TRITON_INTERPRET") == "1":
        return None
    return (
        f"tensors are on '{device.type}': Triton compiles kernels for GPUs only; set TRITON_INTERPRET=1 "
        "before importing triton to run them (slowly) on the CPU"
    )


def resolve_backend(backend: str, device: torch.device) -> str:
    """Return a concrete backend name; ``auto`` is Triton on CUDA when it imports, else ``chunk``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "triton" if device.type == "cuda" and triton_unavailable_reason(device) is None else "chunk"
    if backend == "triton":
        reason = triton_unavailable_reason(device)
        if reason is not None:
            raise ValueError(f"backend='triton' cannot run here: {reason}")
    return backend
