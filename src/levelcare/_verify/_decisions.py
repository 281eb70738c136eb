"""Which decisions occur, and what needs them: programmes, services and considerations.

Every (level, transition, emergency) some complete assessment gets is found from
the thresholds (see ``_thresholds``), with the lowest-need assessment that gets
it. A level reached without a ``[[program]]`` is a gap. Services and
considerations are read after the level is decided, so each is checked against
the decisions that occur, with its facts free.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .._model import Level, Transition
from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import CURRENT_LEVEL, Vocabulary
from .._semantics._mdd import fact_cells
from ._explain import _conflict
from ._report import GAP, NEVER_FIRES, Finding, error, show
from ._space import Clock, Node, Space
from ._thresholds import Thresholds, outcomes

Context = tuple[Level, Transition, bool]
#: Where each decision is made, in the joint space of the mechanism's and the items' facts.
_Where = dict[Context, Node]


class Decisions:
    """The decisions one rule base's assessments reach."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds
        self.contexts: dict[Context, dict[str, Any]] = {}
        self._joint: tuple[Space, _Where] | None = None

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
        items = list(self._outcome_conditions())
        every = [(lv, tr, e) for lv in self.t.levels for tr in Transition for e in (False, True)]
        fixed = {(name, c): self._fixed(condition, c) for name, _, condition in items for c in every}
        space = _outcome_space(self.t.vocabulary, list(fixed.values()), self.t.clock, self.t.backend)
        for name, file, condition in items:
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
            else:
                found += self._together(name, file, possible, fixed)
        return found

    def _together(
        self,
        name: str,
        file: str,
        possible: Sequence[Context],
        fixed: Mapping[tuple[str, Context], cond.Condition],
    ) -> list[Finding]:
        """Never fires: the item's facts and the decisions it needs occur, but never in one assessment.

        ``possible`` are the decisions under which the item's condition can hold.

        The item's condition with a decision filled in is conjoined with where
        that decision is made; where the two never meet, every assessment that
        meets the item's facts gets another decision.
        """
        space, where = self._joint_space(fixed)
        needed = possible
        possible = [c for c in possible if c in self.contexts]
        inside = space.domain(space.names)
        for context in possible:
            self.t.clock.tick()
            if space.encode(fixed[name, context]) & where[context] & inside != space.false:
                return []
        # A counterexample: the lowest-need assessment meeting the item's facts
        # for the first decision it needs, and the decision it gets instead.
        context = possible[0]
        admission = context[1] is Transition.ADMIT
        names = [n for n in space.names if not (admission and n == CURRENT_LEVEL)]
        facts = space.encode(fixed[name, context]) & space.domain(names)
        cells = space.lowest(facts, names)
        gets = next(
            c for c, node in where.items() if (c[1] is Transition.ADMIT) == admission and space.holds(node, cells)
        )
        # The facts that decide the level, and those the item reads.
        read = cond.facts_read(fixed[name, context])
        shown = {
            n: v
            for n, v in space.values(cells).items()
            if n in read or n in self.t.clinical or (not admission and (n in self.t.progress or n == CURRENT_LEVEL))
        }
        decided = f"{gets[0].value} ({gets[1].value}{', emergency' if gets[2] else ''})"
        return [
            error(
                NEVER_FIRES,
                name,
                file,
                f"{name} can never fire: it needs a decision with {_contexts_text(needed, len(self.t.levels))}, "
                f"and no assessment that meets its other conditions gets one; the counterexample meets them and "
                f"is decided {decided}.",
                counterexample=shown,
            )
        ]

    def _joint_space(self, fixed: Mapping[tuple[str, Context], cond.Condition]) -> tuple[Space, _Where]:
        """The facts the mechanism and the items read, cut at both's thresholds, and where each decision is made."""
        if self._joint is None:
            placement = self.t.placement
            conditions = [*placement.deciding_conditions(), *fixed.values()]
            read: set[str] = set(self.t.names)
            for condition in fixed.values():
                read |= cond.facts_read(condition)
            read.discard(CURRENT_LEVEL)
            cells: dict[str, Sequence[Any]] = {
                f.name: fact_cells(f, conditions) for f in self.t.vocabulary.facts if f.name in read
            }
            ids = tuple(level.id for level in self.t.levels)
            if self.t.in_treatment:
                cells[CURRENT_LEVEL] = ids
            space = Space(cells, self.t.clock, self.t.backend)
            where: _Where = {}
            for (level_id, transition, flag), node in outcomes(placement, space, None).items():
                where[self.t.levels[level_id], transition, flag] = node
            if self.t.in_treatment:
                for (level_id, transition, flag), node in outcomes(placement, space, ids).items():
                    where[self.t.levels[level_id], transition, flag] = node
            self._joint = (space, where)
        return self._joint

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
                transition = self.t.placement.transition(self.t.levels[j], self.t.levels[current])
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
        return cond.RangeAtom(atom.fact, cond.normalise([interval]))


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
