"""Reasoning about unknown facts without enumerating their combinations.

For a monotone rule base the final level is a monotone function of every
need-ordered fact, so:

* filling every unknown fact with its lowest-need value gives the lowest level
  the unknowns allow, and filling with highest-need values the highest
  (``level_range``);
* "the level is at least k" is a monotone boolean function ``g_k`` of the facts,
  and an unknown fact ``f`` can change the level exactly when, for some k, there
  are values of the other unknowns under which ``f`` flips ``g_k``.

``g_k`` is built symbolically from the rule base (level criteria, escalations,
unmet readiness signs and bridge floors, for a given current level) and put in
disjunctive normal form over *cells*: each fact's values in need order, with an
integer's range cut at every threshold a rule mentions. For one term ``T`` that
needs ``f`` above its lowest value, the least-need completion ``u`` of ``T``
(each other unknown at the lowest value ``T`` allows, or its lowest value) is
the best witness: ``f`` flips ``g_k`` under some completion that satisfies ``T``
if and only if ``g_k(u, f = lowest)`` is false, by monotonicity. So ``missing``
costs one pass over the terms per unknown fact, never the product of domains.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._model import Level
from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import CURRENT_LEVEL, Fact
from ._placement import Placement

Term = dict[str, frozenset[int]]


class Analysis:
    """Cells, fills and ``missing`` for one rule base."""

    def __init__(self, placement: Placement) -> None:
        rulebase = placement.rulebase
        self._placement = placement
        self._rulebase = rulebase
        vocabulary = rulebase.vocabulary
        self.clinical = tuple(f.name for f in vocabulary.group("clinical"))
        self.progress = tuple(f.name for f in vocabulary.group("progress") if f.name != CURRENT_LEVEL)
        conditions = [r.when for r in rulebase.criteria]
        conditions += [e.when for e in rulebase.escalations]
        conditions += [e.when for e in rulebase.emergencies]
        conditions += [s.when for r in rulebase.readiness for s in r.signs]
        self.cells: dict[str, tuple[Any, ...]] = {}
        for name in self.clinical + self.progress:
            fact = vocabulary[name]
            self.cells[name] = _cells(fact, conditions) if fact.kind == "integer" else fact.values
        self._thresholds: dict[str | None, list[tuple[int, list[Term]]]] = {}

    def relevant(self, current: Level | None) -> tuple[str, ...]:
        """The facts that can matter: clinical, and progress when in treatment."""
        return self.clinical if current is None else self.clinical + self.progress

    def fills(self, unknown: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Lowest-need and highest-need values for the unknown facts."""
        names = list(unknown)
        return ({n: self.cells[n][0] for n in names}, {n: self.cells[n][-1] for n in names})

    def cell_of(self, name: str, value: Any) -> int:
        cells = self.cells[name]
        fact = self._rulebase.vocabulary[name]
        if fact.kind != "integer":
            return fact.rank(value)
        # Cells hold each interval's lower end; find the interval holding value.
        ordered = sorted(range(len(cells)), key=lambda i: cells[i])
        found = ordered[0]
        for index in ordered:
            if cells[index] <= value:
                found = index
        return found

    def missing(self, known: Mapping[str, Any], current: Level | None, unknown: Sequence[str]) -> tuple[str, ...]:
        """The unknown facts that can change the level, in vocabulary order."""
        known_cells = {n: self.cell_of(n, v) for n, v in known.items() if n in self.cells}
        found: set[str] = set()
        for _, terms in self._threshold_terms(current):
            restricted: list[Term] = []
            for term in terms:
                if all(known_cells[n] in allowed for n, allowed in term.items() if n in known_cells):
                    restricted.append({n: a for n, a in term.items() if n not in known_cells})
            if any(not term for term in restricted):
                continue  # this threshold is met whatever the unknowns are
            for name in unknown:
                if name not in found and _flips(name, restricted):
                    found.add(name)
        return tuple(n for n in self.relevant(current) if n in found)

    def _threshold_terms(self, current: Level | None) -> list[tuple[int, list[Term]]]:
        key = None if current is None else current.id
        cached = self._thresholds.get(key)
        if cached is None:
            levels = self._placement.levels
            cached = [(k, self._dnf(self._placement.at_least(current, levels[k]))) for k in range(1, len(levels))]
            self._thresholds[key] = cached
        return cached

    def _dnf(self, condition: cond.Condition) -> list[Term]:
        if isinstance(condition, cond.Any_):
            terms = [t for item in condition.items for t in self._dnf(item)]
            return _absorb(terms)
        if isinstance(condition, cond.All):
            acc: list[Term] = [{}]
            for item in condition.items:
                acc = [m for a in acc for b in self._dnf(item) if (m := _merge(a, b)) is not None]
            return _absorb(acc)
        if isinstance(condition, (cond.ValueAtom, cond.RangeAtom)):
            cells = self.cells[condition.fact]
            allowed = frozenset(
                i for i, value in enumerate(cells) if cond.atom_holds(condition, {condition.fact: value}, {})
            )
            if not allowed:
                return []
            if len(allowed) == len(cells):
                return [{}]
            return [{condition.fact: allowed}]
        msg = f"condition {condition!r} cannot appear in a level or transition rule"
        raise AssertionError(msg)  # pragma: no cover - the loader rejects it


def _cells(fact: Fact, conditions: Iterable[cond.Condition]) -> tuple[int, ...]:
    low, high = fact.minimum or 0, fact.maximum or 0
    cuts = {low}
    for condition in conditions:
        for atom in cond.atoms(condition):
            if isinstance(atom, cond.RangeAtom) and atom.fact == fact.name:
                for start, end in atom.intervals:
                    cuts.update(c for c in (start, end + 1) if low < c <= high)
    starts = sorted(cuts)
    return tuple(reversed(starts)) if fact.need == "decreasing" else tuple(starts)


def _merge(a: Term, b: Term) -> Term | None:
    merged = dict(a)
    for name, allowed in b.items():
        if name in merged:
            both = merged[name] & allowed
            if not both:
                return None
            merged[name] = both
        else:
            merged[name] = allowed
    return merged


def _absorb(terms: list[Term]) -> list[Term]:
    """Drop terms implied by another (a term that allows less than another)."""
    kept: list[Term] = []
    for term in sorted(terms, key=len):
        if not any(_covers(other, term) for other in kept):
            kept.append(term)
    return kept


def _covers(general: Term, specific: Term) -> bool:
    return all(name in specific and specific[name] <= allowed for name, allowed in general.items())


def _satisfied(term: Term, assignment: Mapping[str, int]) -> bool:
    return all(assignment.get(name, 0) in allowed for name, allowed in term.items())


def _flips(name: str, terms: list[Term]) -> bool:
    for term in terms:
        allowed = term.get(name)
        if allowed is None or 0 in allowed:
            continue
        witness = {n: min(a) for n, a in term.items() if n != name}
        witness[name] = 0
        if not any(_satisfied(t, witness) for t in terms):
            return True
    return False
