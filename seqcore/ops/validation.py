"""Input checks shared by the public operators and by every package built on them (one implementation of each):
each error names the argument and what was expected, a ``TypeError`` for a wrong type, a ``ValueError`` for a wrong
shape or value.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _values_checkable() -> bool:
    # Value checks need a host sync and data-dependent control flow; a compiled graph skips them, and so does a
    # trace, which would record each check's outcome on the example inputs as a constant.
    return not (torch.compiler.is_compiling() or torch.jit.is_tracing())


def check_float(name: str, t: Tensor, rank: int | tuple[int, ...], layout: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {layout}, got {type(t).__name__}")
    if t.dtype not in _FLOATS:
        raise TypeError(f"{name} must be a floating-point tensor (float16/bfloat16/float32/float64), got {t.dtype}")
    ranks = (rank,) if isinstance(rank, int) else rank
    if t.dim() not in ranks:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(t.shape)}")


def check_bool(name: str, value: object) -> bool:
    """A flag must be a real ``bool``: ``"no"``, ``0`` or ``None`` silently meaning True or False hides mistakes.

    numpy's ``bool_`` is accepted (what comparisons on arrays return) and converted.
    """
    if isinstance(value, bool):
        return value
    # numpy 2 names the type ``numpy.bool`` (``numpy.bool_`` is an alias); numpy 1 named it ``bool_``
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"):
        return bool(value)
    raise TypeError(f"{name} must be a bool (True or False), got {type(value).__name__} {value!r}")


def check_int(name: str, value: object, minimum: int | None) -> int:
    """``value`` as an int ``>= minimum`` (``minimum=None``: any int, as for seeds and axes).

    numpy integers are accepted; a bool, a float such as ``2.0`` or ``2.5`` and a string are refused, not truncated.

    Raises:
        TypeError: not an integer, e.g. ``n_lags must be an int >= 1, got float 2.5``.
        ValueError: below ``minimum``, e.g. ``n_lags must be >= 1, got 0``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        bound = "" if minimum is None else f" >= {minimum}"
        raise TypeError(f"{name} must be an int{bound}, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_shape(name: str, t: Tensor, expected: tuple[int, ...], layout: str) -> None:
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {layout} = {tuple(expected)}, got {tuple(t.shape)}")


def check_same_device(**tensors: object) -> None:
    """One device for every tensor, and one that holds data (the value checks and the kernels read it).

    Arguments that are not tensors are left to their own type checks.
    """
    devices = {name: t.device for name, t in tensors.items() if isinstance(t, Tensor)}
    if len(set(devices.values())) > 1:
        raise ValueError(f"all tensors must be on one device, got {devices}")
    if any(d.type == "meta" for d in devices.values()):
        raise ValueError("tensors on the 'meta' device hold no data; the operators need real tensors (CPU or CUDA)")


def _bounds(t: Tensor) -> tuple[float, float]:
    """``(min, max)`` in one pass without a full-size temporary; NaN anywhere makes both NaN."""
    low, high = torch.aminmax(t)
    return low.item(), high.item()


def check_log_decay(name: str, g: Tensor) -> None:
    """``g <= 0`` everywhere; ``-inf`` (a full reset of the state) is allowed, NaN and ``+inf`` are not."""
    if _values_checkable() and g.numel():
        high = g.amax().item()
        if not high <= 0:
            raise ValueError(f"{name} is a log decay and must be <= 0 everywhere (no NaN); got max {high}")


def check_finite(name: str, t: Tensor) -> None:
    if _values_checkable() and t.numel():
        low, high = _bounds(t)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{name} must be finite (no NaN or inf); got values in [{low}, {high}]")


def check_range(name: str, t: Tensor, low: float, high: float) -> None:
    if _values_checkable() and t.numel():
        t_low, t_high = _bounds(t)
        if not (low <= t_low and t_high <= high):
            raise ValueError(f"{name} must lie in [{low}, {high}] (no NaN); got values in [{t_low}, {t_high}]")


def check_cu_seqlens(cu_seqlens: Tensor | None, batch: int, length: int) -> int:
    """Validate packed-sequence offsets; returns the number of sequences N."""
    if cu_seqlens is None:
        return batch
    if not isinstance(cu_seqlens, Tensor) or cu_seqlens.dtype not in (torch.int32, torch.int64):
        got = cu_seqlens.dtype if isinstance(cu_seqlens, Tensor) else type(cu_seqlens).__name__
        raise TypeError(f"cu_seqlens must be an int32 or int64 tensor [0, t1, ..., T], got {got}")
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2:
        raise ValueError(f"cu_seqlens must be 1-D with at least 2 entries [0, ..., T], got shape {tuple(cu_seqlens.shape)}")
    if batch != 1:
        raise ValueError(f"with cu_seqlens, sequences are packed along T and the batch size must be 1, got B={batch}")
    if _values_checkable():
        cu = cu_seqlens.tolist()
        if cu[0] != 0:
            raise ValueError(f"cu_seqlens must start at 0, got {cu[0]}")
        if any(b <= a for a, b in zip(cu, cu[1:])):
            raise ValueError(f"cu_seqlens must be strictly increasing (every sequence non-empty), got {cu}")
        if cu[-1] != length:
            raise ValueError(f"cu_seqlens must end at T={length}, got {cu[-1]}")
    return cu_seqlens.numel() - 1


def check_initial_state(initial_state: Tensor | None, expected: tuple[int, ...], layout: str) -> None:
    if initial_state is None:
        return
    check_float("initial_state", initial_state, len(expected), layout)
    check_shape("initial_state", initial_state, expected, layout)


def check_scale(scale: float | None, head_dim: int) -> float:
    if scale is None:
        return head_dim**-0.5
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise TypeError(f"scale must be a float or None, got {type(scale).__name__}")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    return float(scale)


def check_triton_dtype(backend: str, **tensors: Tensor | None) -> None:
    if not backend.startswith("triton"):
        return
    for name, t in tensors.items():
        if t is not None and t.dtype == torch.float64:
            raise TypeError(f"backend={backend!r} supports float32/bfloat16/float16, but {name} is float64")
