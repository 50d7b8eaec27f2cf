"""Input checks shared by the public operators: each error names the argument and what was expected."""
from __future__ import annotations

import torch
from torch import Tensor

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _values_checkable() -> bool:
    # Value checks need a host sync and data-dependent control flow; a compiled graph skips them.
    return not torch.compiler.is_compiling()


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
    if type(value).__name__ == "bool_" and type(value).__module__ == "numpy":
        return bool(value)
    raise TypeError(f"{name} must be a bool (True or False), got {type(value).__name__} {value!r}")


def check_shape(name: str, t: Tensor, expected: tuple[int, ...], layout: str) -> None:
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {layout} = {tuple(expected)}, got {tuple(t.shape)}")


def check_same_device(**tensors: Tensor | None) -> None:
    devices = {name: t.device for name, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        raise ValueError(f"all tensors must be on one device, got {devices}")


def check_log_decay(name: str, g: Tensor) -> None:
    if _values_checkable() and not bool((g <= 0).all()):
        raise ValueError(f"{name} is a log decay and must be <= 0 everywhere (no NaN); got max {g.max().item()}")


def check_range(name: str, t: Tensor, low: float, high: float) -> None:
    if _values_checkable() and not bool(((t >= low) & (t <= high)).all()):
        raise ValueError(
            f"{name} must lie in [{low}, {high}] (no NaN); got values in [{t.min().item()}, {t.max().item()}]"
        )


def check_cu_seqlens(cu_seqlens: Tensor | None, batch: int, length: int) -> int:
    """Validate packed-sequence offsets; returns the number of sequences N."""
    if cu_seqlens is None:
        return batch
    if not isinstance(cu_seqlens, Tensor) or cu_seqlens.dtype not in (torch.int32, torch.int64):
        raise TypeError("cu_seqlens must be an int32 or int64 tensor [0, t1, ..., T]")
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
    return float(scale)


def check_triton_dtype(backend: str, **tensors: Tensor | None) -> None:
    if backend != "triton":
        return
    for name, t in tensors.items():
        if t is not None and t.dtype == torch.float64:
            raise TypeError(f"backend='triton' supports float32/bfloat16/float16, but {name} is float64")
