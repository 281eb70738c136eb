"""Conditions in words: the one wording the rules reference and the verifier's messages share.

A condition is said the way a clinician would: an ordinal set by its shortest
faithful form (one value, "at least" or "at most" along the need order, "not"
one value, or a list), an integer by its ranges, a context test by what it
means. Only how names and values are marked differs between the two readers:
:data:`MARKDOWN` puts them in code spans, :data:`PLAIN` writes values as in
JSON and TOML, for messages printed in a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence

import attrs

from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import FactValue, Vocabulary

__all__ = ["MARKDOWN", "PLAIN", "Style", "alternatives", "code", "condition_text", "show"]

_CONTEXT_NOUNS = {"level": "the decided level", "transition": "the transition"}
_PROGRAM_UNITS = {"hours": "hours a week", "days": "days a week"}


def show(value: object) -> str:
    """A value as the rule files write it, without quotes: ``true``, ``high``, ``12``."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def code(value: object) -> str:
    """A name or value as a Markdown code span."""
    return f"`{show(value)}`"


def alternatives(words: Sequence[str], joiner: str = "or") -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" {joiner} " + words[-1]


@attrs.frozen
class Style:
    """How fact names and values are marked in a condition's words.

    Attributes:
        name: Marks a fact's name.
        value: Marks a fact's or context's value.
    """

    name: Callable[[str], str]
    value: Callable[[object], str]


#: Names and values in code spans, for Markdown documents.
MARKDOWN = Style(name=code, value=code)
#: Names as they are, values as in JSON and TOML, for plain-text messages.
PLAIN = Style(name=str, value=json.dumps)


def condition_text(
    condition: cond.Condition,
    vocabulary: Vocabulary,
    levels: Sequence[str] = (),
    *,
    style: Style = MARKDOWN,
    nested: bool = False,
) -> str:
    """A canonical condition as one line a clinician can read.

    Args:
        condition: A parsed, canonical condition.
        vocabulary: The rule base's facts, for need order and ranges.
        levels: The rule base's level ids, least intensive first, for level tests;
            without them a level test lists only the levels it allows.
        style: How names and values are marked.
        nested: Whether the text stands inside a larger sentence, so that a
            condition of several parts is put in parentheses.

    Returns:
        The condition in words.
    """
    text, compound = cond.fold(condition, _Words(vocabulary, tuple(levels), style))
    return f"({text})" if nested and compound else text


# The words of a part, and whether it joins several parts (and so needs
# parentheses inside a larger part).
_Said = tuple[str, bool]


@attrs.frozen
class _Words:
    vocabulary: Vocabulary
    levels: tuple[str, ...]
    style: Style

    def value(self, atom: cond.ValueAtom) -> _Said:
        return f"{self.style.name(atom.fact)} {self._value_phrase(atom)}", False

    def range(self, atom: cond.RangeAtom) -> _Said:
        return f"{self.style.name(atom.fact)} {self._range_phrase(atom)}", False

    def program(self, atom: cond.ProgramAtom) -> _Said:
        relation = "is below" if atom.below else "is at least"
        unit = _PROGRAM_UNITS.get(atom.which, atom.which)
        return f"{self.style.name(atom.fact)} {relation} the level's programme minimum of {unit}", False

    def context(self, atom: cond.ContextAtom) -> _Said:
        domain = cond.context_domain(atom.name, self.levels) if self.levels else tuple(sorted(atom.allowed, key=str))
        allowed = [d for d in domain if d in atom.allowed]
        if atom.name == "emergency":
            if allowed == [True]:
                return "an emergency applies", False
            if allowed == [False]:
                return "no emergency applies", False
            return ("always" if allowed else "never"), False
        return f"{_CONTEXT_NOUNS[atom.name]} is " + alternatives([self.style.value(v) for v in allowed]), False

    def all(self, items: Iterator[_Said]) -> _Said:
        return _joined(list(items), " and ", "always")

    def any(self, items: Iterator[_Said]) -> _Said:
        return _joined(list(items), " or ", "never")

    def _value_phrase(self, atom: cond.ValueAtom) -> str:
        values = self.vocabulary[atom.fact].values
        allowed = [v for v in values if _member(v, atom.allowed)]
        shown = [self.style.value(v) for v in allowed]
        if not allowed:
            return "is never any value"
        if len(allowed) == len(values):
            return "is known"
        if len(allowed) <= 2:
            return "is " + alternatives(shown)
        excluded = [v for v in values if not _member(v, atom.allowed)]
        if len(excluded) == 1:
            return f"is not {self.style.value(excluded[0])}"
        if allowed == list(values[len(values) - len(allowed) :]):
            return f"is at least {self.style.value(allowed[0])}"
        if allowed == list(values[: len(allowed)]):
            return f"is at most {self.style.value(allowed[-1])}"
        return "is " + alternatives(shown)

    def _range_phrase(self, atom: cond.RangeAtom) -> str:
        fact = self.vocabulary[atom.fact]
        low, high = fact.minimum or 0, fact.maximum or 0
        parts = []
        for start, end in atom.intervals:
            if start == end:
                parts.append(f"is {start}")
            elif start <= low:
                parts.append(f"is at most {end}")
            elif end >= high:
                parts.append(f"is at least {start}")
            else:
                parts.append(f"is from {start} to {end}")
        return alternatives(parts) if parts else "is never any value"


def _joined(parts: list[_Said], joiner: str, empty: str) -> _Said:
    if not parts:
        return empty, False
    if len(parts) == 1:
        return parts[0]
    return joiner.join(f"({text})" if compound else text for text, compound in parts), True


def _member(value: FactValue, allowed: Iterable[FactValue]) -> bool:
    # True == 1 in Python; a boolean value must only match a boolean.
    return any(value == a and type(value) is type(a) for a in allowed)
