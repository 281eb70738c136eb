"""The fact vocabulary: what an assessment may say, and its validation.

The vocabulary is data in ``rules/vocabulary.toml``; this module only knows the
kinds of fact (ordinal, boolean, integer, level) and how to check a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._model import FactValue
from .._text import MAX_SHOWN, Problems, TooLongNumber, closest, integer_text, shorten, type_name
from ..exceptions import AssessmentProblem, InvalidAssessment

__all__ = [
    "CURRENT_LEVEL",
    "GROUPS",
    "KINDS",
    "MAX_SHOWN",
    "NEEDS",
    "Fact",
    "FactValue",
    "TooLongNumber",
    "Vocabulary",
    "closest",
    "integer_text",
    "plain",
    "shorten",
    "type_name",
]

GROUPS = ("clinical", "progress", "candidacy")
KINDS = ("ordinal", "boolean", "integer", "level")
NEEDS = ("increasing", "decreasing")
CURRENT_LEVEL = "current_level"


def plain(value: FactValue) -> FactValue:
    """``value`` as a plain ``str`` or ``int`` when it is an instance of a subclass.

    A subclass (``numpy.str_``, an ``IntEnum``) compares equal to the plain value
    but is not one, so it is converted before it reaches the engine.
    """
    kind = type(value)
    if kind is str or kind is bool or kind is int:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    return value


@attrs.frozen
class Fact:
    """One fact of the vocabulary.

    ``values`` lists the allowed values of a finite fact from lowest to highest
    need. An integer fact has ``minimum``/``maximum`` and, when rules read it,
    ``need``: whether a larger number means more need (``increasing``) or less.
    """

    name: str
    group: str
    kind: str
    meaning: str
    sources: tuple[str, ...]
    values: tuple[FactValue, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    need: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def finite(self) -> bool:
        return self.kind != "integer"

    def rank(self, value: FactValue) -> int:
        """Position of ``value`` in need order (finite facts only)."""
        for position, allowed in enumerate(self.values):
            if allowed == value and type(allowed) is type(value):
                return position
        msg = f"{value!r} is not a value of {self.name}"
        raise LookupError(msg)

    def allowed_text(self) -> str:
        if self.kind == "integer":
            return f"an integer from {self.minimum} to {self.maximum}"
        if self.kind == "boolean":
            return "true or false"
        return "one of " + ", ".join(repr(v) for v in self.values)

    def check(self, value: object, *, suggest: bool = True) -> str | None:
        """None when ``value`` is allowed, else a message saying how to fix it.

        Args:
            value: The value given for this fact.
            suggest: Whether to look for the allowed value a wrong string most
                likely means (False for a problem that will only be counted).

        Returns:
            None, or what is wrong and how to fix it.
        """
        if self.kind == "boolean":
            if isinstance(value, bool):
                return None
            return f"expected true or false, got {type_name(value)} {shorten(value)}"
        if self.kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                return f"expected {self.allowed_text()}, got {type_name(value)} {shorten(value)}"
            if not (self.minimum or 0) <= value <= (self.maximum or 0):
                return f"expected {self.allowed_text()}, got {shorten(value)}"
            return None
        if not isinstance(value, str):
            return f"expected {self.allowed_text()}, got {type_name(value)} {shorten(value)}"
        if value in self.values:
            return None
        hint = closest(value, [v for v in self.values if isinstance(v, str)]) if suggest else None
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        return f"expected {self.allowed_text()}, got string {shorten(value)}{suggestion}"


@attrs.frozen
class Vocabulary:
    """Every fact a rule base knows, in vocabulary order."""

    facts: tuple[Fact, ...]
    by_name: Mapping[str, Fact] = attrs.field(init=False, eq=False, repr=False)
    # For the fast path of validate(), per fact: its position and the
    # vocabulary's own str of its name; for a finite fact the vocabulary's own
    # object of each allowed value, by value (its type is checked, so True never
    # passes for 1); for an integer fact its bounds. Validated facts hold the
    # vocabulary's own strings, so later lookups compare them by identity.
    _order: Mapping[str, int] = attrs.field(init=False, eq=False, repr=False)
    _fast: Mapping[str, tuple[int, str, Mapping[FactValue, FactValue] | None, int, int]] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.facts})
        object.__setattr__(self, "_order", {f.name: i for i, f in enumerate(self.facts)})
        fast = {
            f.name: (i, f.name, {v: v for v in f.values} if f.finite else None, f.minimum or 0, f.maximum or 0)
            for i, f in enumerate(self.facts)
        }
        object.__setattr__(self, "_fast", fast)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def __getitem__(self, name: str) -> Fact:
        return self.by_name[name]

    def suggest(self, key: str, problems: Problems[Any] | None = None) -> str | None:
        """The fact a misspelt or aliased ``key`` most likely means.

        Args:
            key: The unknown name.
            problems: The problems being collected: once they are full, the
                problem this suggestion would go with is only counted, so none is
                looked for.

        Returns:
            A fact name, or None.
        """
        if problems is not None and problems.full:
            return None
        names = {f.name: f.name for f in self.facts}
        names.update({alias: f.name for f in self.facts for alias in f.aliases})
        hint = closest(key, names)
        return None if hint is None else names[hint]

    def group(self, group: str) -> tuple[Fact, ...]:
        return tuple(f for f in self.facts if f.group == group)

    def validate(self, data: object) -> dict[str, FactValue]:
        """The known facts of ``data``, in vocabulary order.

        Raises:
            InvalidAssessment: listing every problem in ``data``.
        """
        if not isinstance(data, Mapping):
            problem = AssessmentProblem(
                "",
                f"an assessment must be a mapping (a JSON object) of fact names to values, got {type_name(data)}",
            )
            raise InvalidAssessment([problem])
        fast = self._valid(data)
        if fast is not None:
            return fast
        problems = Problems(lambda text: AssessmentProblem("", text))
        known: dict[str, FactValue] = {}
        for key, value in data.items():
            if not isinstance(key, str):
                problems.append(
                    AssessmentProblem(
                        shorten(key),
                        f"fact names are strings, got {type_name(key)} {shorten(key)}",
                    )
                )
                continue
            key = str.__str__(key)  # a plain str, whatever subclass the caller used
            fact = self.by_name.get(key)
            if fact is None:
                hint = self.suggest(key, problems)
                suggestion = f"; did you mean {hint!r}?" if hint else ""
                problems.append(
                    AssessmentProblem(
                        key if len(key) <= MAX_SHOWN else shorten(key),
                        f"unknown fact{suggestion}",
                    )
                )
                continue
            if value is None:
                continue
            message = fact.check(value, suggest=not problems.full)
            if message is not None:
                problems.append(AssessmentProblem(key, message))
                continue
            known[fact.name] = plain(value)
        if problems:
            raise InvalidAssessment(problems.reported())
        return {f.name: known[f.name] for f in self.facts if f.name in known}

    def _valid(self, data: Mapping[Any, Any]) -> dict[str, FactValue] | None:
        """The known facts in vocabulary order when every entry is valid, else None.

        The common case, checked with set lookups only; any doubt falls back to the
        full check, which explains every problem.
        """
        fast = self._fast
        known: dict[str, FactValue] = {}
        last, ordered = -1, True
        for key, value in data.items():
            # Only plain str keys: a subclass takes the full check, which converts it.
            entry = fast.get(key) if type(key) is str else None
            if entry is None:
                return None
            if value is None:
                continue
            position, name, allowed, low, high = entry
            kind = type(value)
            if allowed is not None:
                # Only str and bool are ever allowed; anything else (a list, say)
                # must not even be hashed.
                if kind is not str and kind is not bool:
                    return None
                value = allowed.get(value)
                if type(value) is not kind:
                    return None
            elif kind is not int or not low <= value <= high:
                return None
            known[name] = value
            ordered = ordered and position > last
            last = position
        if ordered:
            return known
        order = self._order
        return {name: known[name] for name in sorted(known, key=order.__getitem__)}
