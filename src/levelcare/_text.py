"""Wording helpers shared by every error message: short echoes of user values and suggestions."""

from __future__ import annotations

import difflib
import math
import reprlib
import sys
from collections.abc import Mapping
from typing import Any

#: The most characters of a user's value that any message echoes.
MAX_SHOWN = 40


def shorten(value: object) -> str:
    """``repr`` of a user's value, cut so that a message never echoes long text.

    Safe for any value: huge integers are never converted to text in full, deep or
    long containers are shown only to a few levels and items, and an object whose
    ``repr`` fails is named by its type.
    """
    text = _SHOWN.repr(value)
    if len(text) > MAX_SHOWN:
        return text[: MAX_SHOWN - 3] + "..."
    return text


def integer_text(value: int) -> str:
    """An integer as text of at most 40 characters, however many digits it has."""
    number = int.__int__(value)  # a plain int, whatever subclass ``value`` is
    bits = number.bit_length()
    if bits <= 120:  # at most 37 digits: shown whole
        return repr(number)
    sign = "-" if number < 0 else ""
    estimate = int(bits * math.log10(2)) + 1
    limit = sys.get_int_max_str_digits()
    if limit == 0 or estimate < limit:
        try:
            digits = str(abs(number))
        except ValueError:  # the limit was lowered meanwhile
            pass
        else:
            return f"{sign}{digits[:12]}...({len(digits)} digits)"
    # Python refuses to write so long an integer as text (sys.set_int_max_str_digits).
    return f"{sign}<about {estimate} digits>"


class _Shown(reprlib.Repr):
    """reprlib, with integers written by :func:`integer_text`."""

    def repr_int(self, x: int, level: int) -> str:
        return integer_text(x)


_SHOWN = _Shown()
_SHOWN.maxlevel = 3
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = MAX_SHOWN
_SHOWN.maxdict = _SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxset = _SHOWN.maxfrozenset = 4


class TooLongNumber:
    """A JSON number with more digits than Python reads, read instead as its length.

    Args:
        digits: How many characters the number has.
    """

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<{self.digits} digits>"




def type_name(value: object) -> str:
    """The JSON-ish name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, (str, TooLongNumber)):
        return "string" if isinstance(value, str) else "number"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def closest(name: str, candidates: Any) -> str | None:
    """The candidate most like ``name``, or None when there are none."""
    names = list(candidates)
    if not names:
        return None
    found = difflib.get_close_matches(name, names, n=1, cutoff=0.0)
    return found[0] if found else None
