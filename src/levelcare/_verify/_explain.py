"""Whether a condition can hold at all, and why not, in words.

Satisfiability here is decided on a disjunctive normal form, which is exact but
can grow large: the verifier decides satisfiability with decision diagrams
(``_space``) and uses this module only to explain a condition already known to
be impossible.
"""

from __future__ import annotations

import json
from typing import Any

from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import Vocabulary
from ._report import show as _show

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
        return bool(_terms(condition, vocabulary))
    except _TooLarge:
        return True


def _terms(condition: cond.Condition, vocabulary: Vocabulary) -> list[Term]:
    """Disjunctive normal form, without contradictory terms.

    Raises:
        _TooLarge: more than ``_MAX_TERMS`` terms.
    """
    if isinstance(condition, cond.Any_):
        terms: list[Term] = []
        for item in condition.items:
            terms += _terms(item, vocabulary)
            if len(terms) > _MAX_TERMS:
                raise _TooLarge
        return terms
    if isinstance(condition, cond.All):
        acc: list[Term] = [{}]
        for item in condition.items:
            acc = [m for a in acc for b in _terms(item, vocabulary) if (m := _merge(a, b)) is not None]
            if not acc:
                return []
            if len(acc) > _MAX_TERMS:
                raise _TooLarge
        return acc
    if isinstance(condition, cond.ValueAtom):
        return [{condition.fact: condition.allowed}] if condition.allowed else []
    if isinstance(condition, cond.RangeAtom):
        return [{condition.fact: condition.intervals}] if condition.intervals else []
    if isinstance(condition, cond.ContextAtom):
        return [{"@" + condition.name: condition.allowed}] if condition.allowed else []
    return [{}]  # a programme minimum can always be met or missed by some value


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
    """A condition in words, for messages."""
    if isinstance(condition, cond.ValueAtom):
        fact = vocabulary[condition.fact]
        values = [v for v in fact.values if v in condition.allowed]
        if not values:
            return f"{condition.fact} is none of its values"
        if len(values) == 1:
            return f"{condition.fact} is {_show(values[0])}"
        return f"{condition.fact} is one of {json.dumps(values)}"
    if isinstance(condition, cond.RangeAtom):
        if not condition.intervals:
            return f"{condition.fact} is no number in its range"
        ranges = " or ".join(str(lo) if lo == hi else f"from {lo} to {hi}" for lo, hi in condition.intervals)
        return f"{condition.fact} is {ranges}"
    if isinstance(condition, cond.ContextAtom):
        values = sorted(condition.allowed, key=str)
        if not values:
            return f"the decided {condition.name} is nothing it can be"
        return f"the decided {condition.name} is " + " or ".join(_show(v) for v in values)
    if isinstance(condition, cond.ProgramAtom):
        return f"{condition.fact} is {'below' if condition.below else 'at least'} the programme's minimum {condition.which}"
    joiner = " and " if isinstance(condition, cond.All) else " or "
    if not condition.items:
        return "always" if isinstance(condition, cond.All) else "never"
    return "(" + joiner.join(_describe(c, vocabulary) for c in condition.items) + ")"


def _conflict(condition: cond.Condition, vocabulary: Vocabulary) -> str:
    """Why no values of the facts make ``condition`` hold."""

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
