"""Wording helpers shared by every error message: short echoes of user values and suggestions."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

#: The most characters of a user's value that any message echoes.
MAX_SHOWN = 40


def shorten(value: object) -> str:
    """``repr`` of a user's value, cut so that a message never echoes long text."""
    text = repr(value)
    if len(text) > MAX_SHOWN:
        return text[: MAX_SHOWN - 3] + "..."
    return text


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
    if isinstance(value, str):
        return "string"
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
