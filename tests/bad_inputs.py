"""The one form of the bad-input tables (``tests/test_bad_inputs_*.py``): every row expects either a named error
or a documented result, and :func:`expect` checks a row's call against it."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class Raises:
    """The call raises ``error`` with a message matching the regex ``match`` (which names the argument)."""

    error: type[BaseException]
    match: str


@dataclass(frozen=True)
class Documented:
    """A documented result: ``check(result)`` must hold; ``what`` says what the docs promise."""

    check: Callable[[Any], bool]
    what: str


def expect(call: Callable[[], Any], expected: Raises | Documented | tuple[type[BaseException], str]) -> None:
    """Run ``call`` and hold it to ``expected`` (a ``(error, match)`` pair stands for :class:`Raises`)."""
    if isinstance(expected, tuple):
        expected = Raises(*expected)
    if isinstance(expected, Raises):
        with pytest.raises(expected.error, match=expected.match):
            call()
    else:
        assert expected.check(call()), expected.what


def assert_unique(keys: Sequence[Any]) -> None:
    """Each row of a table is listed once."""
    repeated = sorted({str(k) for k in keys if list(keys).count(k) > 1})
    assert not repeated, f"rows listed more than once: {repeated}"
