"""Whether a condition can hold at all, and why not, in words.

Satisfiability here is decided on a disjunctive normal form, which is exact but
can grow large: the verifier decides satisfiability with decision diagrams
(``_space``) and uses this module only to explain a condition already known to
be impossible.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .._render._wording import PLAIN, condition_text
from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import Vocabulary

Allowed = frozenset[Any] | tuple[tuple[int, int], ...]
Term = dict[str, Allowed]
_MAX_TERMS = 20_000


class _TooLarge(Exception):
    """A condition's normal form outgrew ``_MAX_TERMS``."""


def _satisfiable(condition: cond.Condition, vocabulary: Vocabulary) -> bool:
    """Whether some values of the facts make ``condition`` hold (context atoms: any value).

    A condition too large to expand counts as satisfiable: the verifier reports
    only what it has shown.
    """
    try:
        return bool(_terms(condition))
    except _TooLarge:
        return True


def _terms(condition: cond.Condition) -> list[Term]:
    """Disjunctive normal form, without contradictory terms.

    Raises:
        _TooLarge: more than ``_MAX_TERMS`` terms.
    """
    return cond.fold(condition, _NormalForm())


class _NormalForm:
    """A condition as the terms of its disjunctive normal form; a term maps a fact (or ``@`` context) to what it allows."""

    def value(self, atom: cond.ValueAtom) -> list[Term]:
        return [{atom.fact: atom.allowed}] if atom.allowed else []

    def range(self, atom: cond.RangeAtom) -> list[Term]:
        return [{atom.fact: atom.intervals}] if atom.intervals else []

    def program(self, atom: cond.ProgramAtom) -> list[Term]:
        return [{}]  # a programme minimum can always be met or missed by some value

    def context(self, atom: cond.ContextAtom) -> list[Term]:
        return [{"@" + atom.name: atom.allowed}] if atom.allowed else []

    def all(self, items: Iterator[list[Term]]) -> list[Term]:
        acc: list[Term] = [{}]
        for terms in items:
            acc = [m for a in acc for b in terms if (m := _merge(a, b)) is not None]
            if not acc:
                return []
            if len(acc) > _MAX_TERMS:
                raise _TooLarge
        return acc

    def any(self, items: Iterator[list[Term]]) -> list[Term]:
        found: list[Term] = []
        for terms in items:
            found += terms
            if len(found) > _MAX_TERMS:
                raise _TooLarge
        return found


def _merge(a: Term, b: Term) -> Term | None:
    merged = dict(a)
    for name, allowed in b.items():
        if name in merged:
            both = _intersect(merged[name], allowed)
            if not both:
                return None
            merged[name] = both
        else:
            merged[name] = allowed
    return merged


def _intersect(a: Allowed, b: Allowed) -> Allowed:
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return a & b
    result: list[tuple[int, int]] = []
    for lo, hi in a:
        for lo2, hi2 in b:
            if max(lo, lo2) <= min(hi, hi2):
                result.append((max(lo, lo2), min(hi, hi2)))
    return tuple(result)


def _describe(condition: cond.Condition, vocabulary: Vocabulary) -> str:
    """A part of a condition in words, for messages; a part of several parts in parentheses."""
    return condition_text(condition, vocabulary, style=PLAIN, nested=True)


def _conflict(condition: cond.Condition, vocabulary: Vocabulary) -> str:
    """Why no values of the facts make ``condition`` hold.

    Not a :func:`cond.fold`: a fold combines the meanings of the parts, and this
    searches the parts themselves -- it descends only into the first impossible
    part, and tries groups and pairs of sibling parts together to find the ones
    that clash.
    """

    def sat(condition: cond.Condition) -> bool:
        return _satisfiable(condition, vocabulary)

    if isinstance(condition, (cond.ValueAtom, cond.RangeAtom, cond.ContextAtom)):
        return f"its condition asks that {_describe(condition, vocabulary)}, which no assessment can be"
    if isinstance(condition, cond.Any_):
        if not condition.items:
            return "its condition is empty"
        reasons = [_conflict(c, vocabulary) for c in condition.items]
        return "every alternative is impossible: " + "; ".join(reasons)
    if isinstance(condition, cond.All):
        for item in condition.items:
            if not sat(item):
                return _conflict(item, vocabulary)
        atoms_by_name: dict[str, list[cond.Condition]] = {}
        for item in condition.items:
            if isinstance(item, (cond.ValueAtom, cond.RangeAtom)):
                atoms_by_name.setdefault(item.fact, []).append(item)
            elif isinstance(item, cond.ContextAtom):
                atoms_by_name.setdefault("@" + item.name, []).append(item)
        for group in atoms_by_name.values():
            if len(group) > 1 and not sat(cond.All(tuple(group))):
                parts = " and that ".join(_describe(a, vocabulary) for a in group)
                together = "both" if len(group) == 2 else "all"
                return f"it is contradictory: it asks that {parts}, which cannot {together} be true at once"
        for i, first in enumerate(condition.items):
            for second in condition.items[i + 1 :]:
                if not sat(cond.All((first, second))):
                    return (
                        f"it is contradictory: {_describe(first, vocabulary)} and "
                        f"{_describe(second, vocabulary)} cannot both be true"
                    )
        return "it is contradictory: its parts cannot all be true at once"
    return "its condition cannot hold"  # pragma: no cover - a program atom alone is satisfiable
