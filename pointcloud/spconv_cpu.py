"""Make spconv 2.3's backward passes run on CPU-only machines.

Why this exists: ``spconv.pytorch.ops`` calls ``get_current_stream()`` (which reads
``torch.cuda.current_stream().cuda_stream``) unconditionally in its backward paths, even when every tensor is
on the CPU. Without an NVIDIA driver that raises "Found no NVIDIA driver", so no spconv layer can be trained
on CPU although the CPU kernels themselves work. The stream handle is ignored by the CPU kernels, so a stream
of 0 is a correct answer there. We replace ``spconv.pytorch.ops.get_current_stream`` -- and only that name in
only that module -- by a wrapper that returns 0 when CUDA is unavailable and defers to the original
otherwise. This is the one place the project patches spconv; call :func:`apply_cpu_backward_patch` once
(e.g. at ``pointcloud`` import) and tests call it explicitly.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

__all__ = ["apply_cpu_backward_patch", "is_patched"]

# The original function, kept so the wrapper can defer to it whenever CUDA does become available.
_ORIGINAL: Optional[Callable[[], int]] = None
_MARK = "_seqcore_cpu_stream_patch"


def _cpu_safe_current_stream() -> int:
    """Return the current CUDA stream handle, or 0 (the null stream, ignored by CPU kernels) without CUDA."""
    if torch.cuda.is_available() and _ORIGINAL is not None:
        return _ORIGINAL()
    return 0


setattr(_cpu_safe_current_stream, _MARK, True)


def is_patched() -> bool:
    """True when ``spconv.pytorch.ops.get_current_stream`` is this module's CPU-safe wrapper."""
    try:
        import spconv.pytorch.ops as ops
    except Exception:  # spconv missing or broken: nothing is patched
        return False
    return bool(getattr(getattr(ops, "get_current_stream", None), _MARK, False))


def apply_cpu_backward_patch() -> bool:
    """Patch spconv so its backward passes run without an NVIDIA driver; idempotent.

    The patch is applied only when all of these hold: ``spconv.pytorch.ops`` imports, CUDA is unavailable,
    and the module has an attribute ``get_current_stream`` whose function is named ``get_current_stream``
    (so a future spconv that restructures this code is left alone rather than patched blindly).

    Returns:
        True when the patch is in effect after the call (applied now or earlier), False otherwise.
    """
    global _ORIGINAL
    try:
        import spconv.pytorch.ops as ops
    except Exception:
        return False
    current = getattr(ops, "get_current_stream", None)
    if current is None:
        return False
    if getattr(current, _MARK, False):
        return True  # already patched: calling twice must not wrap the wrapper
    if torch.cuda.is_available():
        return False  # the real stream exists; spconv works as shipped
    if not callable(current) or getattr(current, "__name__", None) != "get_current_stream":
        return False
    _ORIGINAL = current
    ops.get_current_stream = _cpu_safe_current_stream
    return True
