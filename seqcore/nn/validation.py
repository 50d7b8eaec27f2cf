"""Checks of the numbers that configure mixers and blocks; flags and integers go through
:func:`seqcore.ops.validation.check_bool` and :func:`seqcore.ops.validation.check_int`.

Each error names the argument and what was expected, at construction, instead of a shape error deep inside the
first forward pass (or no error at all: ``nn.Dropout(1.0)`` zeroes every output).
"""
from __future__ import annotations

import math
import numbers


def _real(name: str, value: object, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} {value!r}")
    return float(value)


def check_positive_float(name: str, value: object) -> float:
    """A finite number ``> 0``."""
    number = _real(name, value, "a finite number > 0")
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return number


def check_fraction(name: str, value: object) -> float:
    """A probability in ``[0, 1)`` (dropout, drop path): 1 would drop everything."""
    number = _real(name, value, "a number in [0, 1)")
    if not 0.0 <= number < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")
    return number
