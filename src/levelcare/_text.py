"""Wording helpers shared by every error message: short echoes of user values, suggestions,
and the bound on how many problems one error lists.

Every error that collects problems collects them in :class:`Problems`, so that
refusing bad input costs a small constant per problem however many there are: the
first :data:`MAX_PROBLEMS` are listed, the rest only counted, and a suggestion is
looked for only for a problem that will be listed, and only for a name of at most
:data:`MAX_SUGGESTED_LENGTH` characters.
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

#: The most characters of a user's value that any message echoes.
MAX_SHOWN = 40
#: The most problems one error lists; one more line says how many more were found.
MAX_PROBLEMS = 20
#: The longest name a suggestion is looked for: no declared name is nearly so long,
#: and comparing two names costs the product of their lengths.
MAX_SUGGESTED_LENGTH = 64


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
    """The candidate most like ``name``; None when there are none or ``name`` is too long to compare.

    Args:
        name: The unknown name, as the user gave it.
        candidates: The names it may have meant to be.

    Returns:
        The most alike candidate, or None when there are no candidates or
        ``name`` is longer than :data:`MAX_SUGGESTED_LENGTH` characters.
    """
    if len(name) > MAX_SUGGESTED_LENGTH:
        return None
    names = list(candidates)
    if not names:
        return None
    found = difflib.get_close_matches(name, names, n=1, cutoff=0.0)
    return found[0] if found else None


def more_problems(count: int) -> str:
    """The line that stands for ``count`` problems found but not listed."""
    return f"... and {count:,} more problem{'s' * (count != 1)}"


_MORE = re.compile(r"\.\.\. and ([0-9][0-9,]*) more problems?")


class _Problem(Protocol):
    @property
    def message(self) -> str: ...


P = TypeVar("P", bound=_Problem)


class Problems(Generic[P]):
    """Problems as they are found: the first :data:`MAX_PROBLEMS` kept, the rest only counted.

    A problem made by :func:`more_problems` (another error's count of what it
    left out, passed on) adds its count instead of being kept, so that errors
    built from other errors' problems still list at most the bound and count the
    rest exactly.

    Args:
        summary: Makes the problem that says how many more were found, from its
            message.
        limit: How many problems to list.
    """

    def __init__(self, summary: Callable[[str], P], *, limit: int = MAX_PROBLEMS) -> None:
        self._summary = summary
        self._limit = limit
        self.listed: list[P] = []
        self.omitted = 0

    @property
    def full(self) -> bool:
        """Whether a problem added now would only be counted."""
        return len(self.listed) >= self._limit

    def __len__(self) -> int:
        """How many problems were found, listed or not."""
        return len(self.listed) + self.omitted

    def __bool__(self) -> bool:
        return bool(self.listed) or self.omitted > 0

    def append(self, problem: P) -> None:
        """Add one problem: listed while there is room, else counted."""
        more = _MORE.fullmatch(problem.message)
        if more is not None:
            self.omitted += int(more.group(1).replace(",", ""))
        elif self.full:
            self.omitted += 1
        else:
            self.listed.append(problem)

    def extend(self, problems: Iterable[P]) -> None:
        """Add each problem of ``problems``, in order."""
        for problem in problems:
            self.append(problem)

    def closest(self, name: str, candidates: Any) -> str | None:
        """:func:`closest`, looked for only while a problem can still be listed.

        Returns:
            The suggestion, or None when there is none or the problem it would go
            with will only be counted.
        """
        return None if self.full else closest(name, candidates)

    def reported(self) -> tuple[P, ...]:
        """The listed problems, followed by one saying how many more were found, if any were."""
        if not self.omitted:
            return tuple(self.listed)
        return (*self.listed, self._summary(more_problems(self.omitted)))
