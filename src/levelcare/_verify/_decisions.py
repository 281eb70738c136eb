"""Which decisions occur, and what needs them: programmes, services and considerations.

Every (level, transition, emergency) some complete assessment gets is found from
the thresholds (see ``_thresholds``), with the lowest-need assessment that gets
it. A level reached without a ``[[program]]`` is a gap. Services and
considerations are read after the level is decided, so each is checked against
the decisions that occur, with its facts free.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .._model import Level, Transition
from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import Vocabulary
from .._semantics._mdd import fact_cells
from ._explain import _conflict
from ._report import GAP, NEVER_FIRES, Finding, error, show
from ._space import Clock, Space
from ._thresholds import Thresholds

Context = tuple[Level, Transition, bool]


class Decisions:
    """The decisions one rule base's assessments reach."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds
        self.contexts: dict[Context, dict[str, Any]] = {}

    def findings(self) -> list[Finding]:
        """Levels reached without a programme, and services and considerations that never fire."""
        found: list[Finding] = []
        self._reached()
        reached: dict[Level, dict[str, Any]] = {}
        for (level, _, _), facts in self.contexts.items():
            reached.setdefault(level, facts)
        for level in self.t.levels:
            if level in reached and level.id not in self.t.rb.programs:
                found.append(
                    error(
                        GAP,
                        level.value,
                        "",
                        f"assessments reach {level.value}, but there is no [[program]] for it, so no "
                        "decision can be made for them",
                        counterexample=reached[level],
                    )
                )
        outcomes = list(self._outcome_conditions())
        every = [(lv, tr, e) for lv in self.t.levels for tr in Transition for e in (False, True)]
        fixed = {(name, c): self._fixed(condition, c) for name, _, condition in outcomes for c in every}
        space = _outcome_space(self.t.vocabulary, list(fixed.values()), self.t.clock, self.t.backend)
        for name, file, condition in outcomes:
            possible = [c for c in every if space.encode(fixed[name, c]) & space.domain(space.names) != space.false]
            if not possible:
                found.append(
                    error(NEVER_FIRES, name, file, f"{name} can never fire: {_conflict(condition, self.t.vocabulary)}.")
                )
            elif not any(c in self.contexts for c in possible):
                found.append(
                    error(
                        NEVER_FIRES,
                        name,
                        file,
                        f"{name} can never fire: it needs a decision with {_contexts_text(possible, len(self.t.levels))}, "
                        "and no assessment leads to one.",
                    )
                )
        return found

    def _reached(self) -> None:
        """Every (level, transition, emergency) some complete assessment gets, with one such assessment."""
        space = self.t.space
        last = len(self.t.levels)
        flags = ((False, ~self.t.any_emergency), (True, self.t.any_emergency))
        for j in range(last):
            upper = self.t.admitted[j + 1] if j + 1 < last else space.false
            exact = self.t.decided & self.t.admitted[j] & ~upper & space.domain(self.t.clinical)
            for flag, node in flags:
                self.t.clock.tick()
                here = exact & node
                if here != space.false:
                    self.contexts[self.t.levels[j], Transition.ADMIT, flag] = space.values(
                        space.lowest(here, self.t.clinical)
                    )
        if not self.t.in_treatment:
            return
        for current in range(last):
            row = self.t.staying(current)
            for j in range(last):
                upper = row[j + 1] if j + 1 < last else space.false
                exact = self.t.decided & row[j] & ~upper & space.domain(self.t.names)
                transition = (
                    Transition.STEP_UP if j > current else Transition.CONTINUE if j == current else Transition.STEP_DOWN
                )
                for flag, node in flags:
                    self.t.clock.tick()
                    key = (self.t.levels[j], transition, flag)
                    if key in self.contexts:
                        continue
                    here = exact & node
                    if here != space.false:
                        self.contexts[key] = self.t.assessment(space.lowest(here, self.t.names), current)

    def _outcome_conditions(self) -> Iterator[tuple[str, str, cond.Condition]]:
        for service in self.t.rb.services:
            yield service.name, service.file, service.when
        for consideration in self.t.rb.considerations:
            yield consideration.id, consideration.file, consideration.when

    def _fixed(self, condition: cond.Condition, context: Context) -> cond.Condition:
        """``condition`` with the decided level, transition and emergency flag filled in."""
        return cond.fold(condition, _Decided(self.t, context))


class _Decided(cond.Rebuild):
    """A condition read once a decision is known: its context and programme tests settled or made fact tests."""

    def __init__(self, thresholds: Thresholds, context: Context) -> None:
        self.t = thresholds
        self.level, self.transition, self.emergency = context

    def context(self, atom: cond.ContextAtom) -> cond.Condition:
        value = {"level": self.level.value, "transition": self.transition.value, "emergency": self.emergency}[atom.name]
        return cond.TRUE if value in atom.allowed else cond.FALSE

    def program(self, atom: cond.ProgramAtom) -> cond.Condition:
        program = self.t.rb.programs.get(self.level.id)
        if program is None:
            return cond.FALSE
        minimum = program.hours_per_week[0] if atom.which == "hours" else program.days_per_week[0]
        fact = self.t.vocabulary[atom.fact]
        low, high = fact.minimum or 0, fact.maximum or 0
        interval = (low, minimum - 1) if atom.below else (minimum, high)
        return cond.RangeAtom(atom.fact, cond._normalise([interval]))


def _outcome_space(vocabulary: Vocabulary, conditions: Sequence[cond.Condition], clock: Clock, backend: Any) -> Space:
    """Cells of every fact services and considerations read, cut at their own thresholds."""
    read: set[str] = set()
    for condition in conditions:
        read |= cond.facts_read(condition)
    cells: dict[str, tuple[Any, ...]] = {}
    for fact in vocabulary.facts:
        if fact.name in read:
            cells[fact.name] = fact_cells(fact, conditions)
    return Space(cells, clock, backend)


def _contexts_text(contexts: Sequence[Context], every_level: int) -> str:
    """The decisions a condition needs, as briefly as they can be said."""
    levels = sorted({c[0] for c in contexts}, key=lambda level: level.rank)
    transitions = [t for t in Transition if any(c[1] is t for c in contexts)]
    flags = sorted({c[2] for c in contexts})
    product = {(a, b, e) for a in levels for b in transitions for e in flags}
    if product == set(contexts):
        parts = []
        if len(levels) < every_level:
            parts.append("level " + " or ".join(level.value for level in levels))
        if len(transitions) < len(Transition):
            parts.append("transition " + " or ".join(t.value for t in transitions))
        if len(flags) == 1:
            parts.append(f"emergency {show(flags[0])}")
        return " and ".join(parts) or "any level"
    shown = [f"({a.value}, {b.value}, emergency {show(e)})" for a, b, e in contexts[:4]]
    more = ", ..." if len(contexts) > 4 else ""
    return "(level, transition, emergency) one of " + ", ".join(shown) + more
