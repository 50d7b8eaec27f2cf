"""Backend names, and the choices ``backend="auto"`` and ``backend="triton"`` make.

=====================  ==========================================================================================
``"recurrent"``        step loop in PyTorch (the reference design; any device)
``"chunk"``            chunkwise-parallel PyTorch (any device)
``"triton_chunk"``     chunked Triton kernels: ``tl.dot`` tiles over chunks of steps, for training and prefill
``"triton_recurrent"`` fused recurrent Triton kernels: one program walks each sequence step by step, for
                       decoding and short sequences
``"triton"``           ``triton_recurrent`` when the longest sequence has at most :data:`RECURRENT_MAX_LEN`
                       steps, else ``triton_chunk``
``"auto"``             ``triton`` for CUDA tensors when Triton imports, else ``chunk``
=====================  ==========================================================================================

Every Triton backend runs on CPU tensors only under ``TRITON_INTERPRET=1`` (slowly; that is how the tests run).
"""
from __future__ import annotations

import importlib.util
import os

import torch

BACKENDS = ("auto", "recurrent", "chunk", "triton", "triton_chunk", "triton_recurrent")
TRITON_BACKENDS = ("triton", "triton_chunk", "triton_recurrent")

# A chunk kernel launches several programs per chunk and pays their start-up once per chunk; below about one
# chunk of 64 steps the step loop has less to do (fla draws the same line for decoding: q_len <= 64).
RECURRENT_MAX_LEN = 64


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
    """A concrete backend name: ``auto`` becomes ``triton`` on CUDA when Triton imports, else ``chunk``.

    ``triton`` stays ``triton``: the kernel family is chosen per call by :func:`triton_kernel_kind`, once the
    sequence lengths are known.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "triton" if device.type == "cuda" and triton_unavailable_reason(device) is None else "chunk"
    if backend in TRITON_BACKENDS:
        reason = triton_unavailable_reason(device)
        if reason is not None:
            raise ValueError(f"backend={backend!r} cannot run here: {reason}")
    return backend


def triton_kernel_kind(backend: str, max_len: int) -> str:
    """``"chunk"`` or ``"recurrent"``: which Triton kernels a Triton backend runs for a longest sequence of ``max_len``."""
    if backend == "triton":
        return "recurrent" if max_len <= RECURRENT_MAX_LEN else "chunk"
    return backend.removeprefix("triton_")
