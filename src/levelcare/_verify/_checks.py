"""The properties every rule base must have, proved over every combination of cells.

The placement mechanism (``_semantics._placement``) says when the final level
is at least ``k``: :meth:`Placement.at_least` gives that condition for an
admission (``current`` None) and for each current level. Each is encoded once
as a diagram ``g[k]`` over the cells of the clinical and progress facts (see
``_space``); every property is then a question about those diagrams:

* a gap: an assessment outside ``g[0]`` (no criterion holds, no fallback);
* an emergency below the top: the emergency's condition and not ``g[top]``;
* not monotone: for a need-ordered fact ``f``, neighbouring cells ``a`` and
  ``a+1`` and a threshold ``k``, ``g[k]`` with ``f = a`` and not ``g[k]`` with
  ``f = a+1``; for ``current_level``, ``g[k]`` at one current level and not at
  the next. Any combination in that set is two assessments that differ in one
  fact, the second lowering the level;
* a criterion that never decides: where it holds, ``g`` of the next level holds;
* a step down below a bridge's floor: not ``g[floor]`` for a level it bridges.

Each check's steps run under a time budget: a check not decided in time is
reported as unverified, never as passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

import attrs

from .._model import Level, Transition
from .._rulebase import Bridge, Escalation, Readiness, Rule, RuleBase, Sign
from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import CURRENT_LEVEL, Fact, Vocabulary
from .._semantics import Analysis, Placement
from .._semantics._unknowns import _cells
from ._explain import _conflict
from ._report import (
    BRIDGE_FLOOR,
    EMERGENCY,
    GAP,
    NEVER_DECIDES,
    NEVER_FIRES,
    NOT_MONOTONE,
    Finding,
    Severity,
    VerificationReport,
    error,
    show,
    sort_findings,
    unverified,
    warning,
)
from ._space import Clock, Node, OutOfTime, Space

Owner = Rule | Escalation | Readiness | Bridge
Context = tuple[Level, Transition, bool]


@attrs.frozen
class _Violation:
    """One step that lowers the level, with what caused it."""

    owner: Owner | None
    fact: str
    before: dict[str, Any]
    after: dict[str, Any]
    levels: tuple[Level, Level]
    current: Level | None
    count: int


class _Verifier:
    """Every symbolic check on one loaded rule base.

    Args:
        rulebase: The rule base.
        budget: Seconds the checks may take; ``None`` for no limit.
        backend: The ``dd`` module to build diagrams with (the best available by default).
    """

    def __init__(self, rulebase: RuleBase, budget: float | None = None, backend: Any = None) -> None:
        self.rb = rulebase
        self.vocabulary: Vocabulary = rulebase.vocabulary
        self.placement = Placement(rulebase)
        self.levels = rulebase.levels
        self.analysis = Analysis(self.placement)
        self.top = len(self.levels) - 1
        self.clock = Clock(budget)
        self.backend = backend
        self.findings: list[Finding] = []
        self.in_treatment = CURRENT_LEVEL in self.vocabulary
        self.clinical = self.analysis.clinical
        self.progress = self.analysis.progress
        self.names = self.clinical + self.progress
        self.contexts: dict[Context, dict[str, Any]] = {}
        # Per clinical fact and cell: where raising it lowers the indicated level.
        self._admission_drops: dict[tuple[str, int], Node] = {}

    # --- the diagrams ----------------------------------------------------------

    @cached_property
    def space(self) -> Space:
        return Space({n: self.analysis.cells[n] for n in self.names}, self.clock, self.backend)

    @cached_property
    def decided(self) -> Node:
        """Where the criteria give a level at all: everywhere when there is a fallback rule."""
        if self.placement.fallback is not None:
            return self.space.true
        return self.space.encode(self.placement.at_least(None, self.levels.lowest))

    @cached_property
    def admitted(self) -> list[Node]:
        """``admitted[k]``: the indicated level is at least level ``k`` (``k = 0``: decided)."""
        return [self.decided] + [self.space.encode(self.placement.at_least(None, level)) for level in self.levels[1:]]

    def staying(self, current: int) -> list[Node]:
        """``staying(c)[k]``: in treatment at level ``c``, the final level is at least ``k``."""
        cache: dict[int, list[Node]] = self.__dict__.setdefault("_staying", {})
        found = cache.get(current)
        if found is None:
            now = self.levels[current]
            found = [self.decided]
            for level in self.levels[1:]:
                found.append(self.space.encode(self.placement.at_least(now, level)))
            cache[current] = found
        return found

    @cached_property
    def emergency(self) -> list[Node]:
        return [self.space.encode(item.when) for item in self.rb.emergencies]

    @cached_property
    def any_emergency(self) -> Node:
        result = self.space.false
        for node in self.emergency:
            result |= node
        return result

    # --- report --------------------------------------------------------------

    def report(self, location: str, found: Iterable[Finding]) -> VerificationReport:
        """Run every check in turn; a check not decided within the budget is reported as such."""
        self.findings = list(found)
        steps: list[tuple[str, str, Callable[[], None]]] = [
            (NEVER_FIRES, "whether each level and transition rule can fire", self._never_fires),
            (GAP, "whether every complete assessment gets a level", self._gaps),
            (EMERGENCY, "whether every emergency comes with the highest level", self._emergencies),
            (NOT_MONOTONE, "monotonicity for new admissions", self._monotone_admission),
            (NEVER_DECIDES, "whether each criterion ever decides the level", self._never_decides),
        ]
        if self.in_treatment:
            steps += [
                (NOT_MONOTONE, "monotonicity for someone in treatment", self._monotone_in_treatment),
                (BRIDGE_FLOOR, "whether step downs keep to every bridge's floor", self._bridge_floors),
            ]
        steps.append((NEVER_FIRES, "which decisions occur, for services and considerations", self._decisions))
        budget = self.clock.budget
        for check, what, step in steps:
            try:
                self.clock.tick()
                step()
            except OutOfTime:
                self.findings.append(
                    unverified(
                        check,
                        f"not decided within the time budget of {budget:g} s: {what}. Nothing is known about "
                        "this check; allow more time (levelcare check --budget SECONDS, or verify(..., budget=...)).",
                    )
                )
        # Only a report whose every check was decided covered every combination.
        decided = not any(f.severity is Severity.UNVERIFIED for f in self.findings)
        return VerificationReport(
            location=location,
            rulebase=self.rb.info,
            findings=sort_findings(self.findings),
            checked=self.checked if decided else {},
        )

    @property
    def checked(self) -> dict[str, int]:
        clinical = 1
        for name in self.clinical:
            clinical *= len(self.analysis.cells[name])
        counts = {"clinical": clinical}
        if self.in_treatment:
            progress = 1
            for name in self.progress:
                progress *= len(self.analysis.cells[name])
            counts["transitions"] = len(self.levels) * clinical * progress
        return counts

    # --- one assessment ----------------------------------------------------------

    def _cells_of(self, facts: Mapping[str, Any]) -> dict[str, int]:
        return {n: self.analysis.cell_of(n, facts[n]) for n in self.names if n in facts}

    def _level(self, cells: Mapping[str, int], current: int | None) -> Level:
        """The level the diagrams give one combination of cells."""
        thresholds = self.admitted if current is None else self.staying(current)
        level = 0
        for k in range(1, len(self.levels)):
            if self.space.holds(thresholds[k], cells):
                level = k
        return self.levels[level]

    def level_of(self, facts: Mapping[str, Any]) -> Level:
        """The final level the diagrams give one complete assessment.

        Only for checking the verifier against the engine.
        """
        current = facts.get(CURRENT_LEVEL)
        if current is None:
            return self._level(self._cells_of({n: facts[n] for n in self.clinical}), None)
        return self._level(self._cells_of(facts), self.levels[current].rank)

    def _assessment(self, cells: Mapping[str, int], current: int | None) -> dict[str, Any]:
        values = self.space.values({n: cells[n] for n in self.clinical})
        if current is not None:
            values[CURRENT_LEVEL] = self.levels[current].value
            values.update(self.space.values({n: cells[n] for n in self.progress}))
        return values

    # --- rules that can never fire -----------------------------------------------

    def _possible(self, condition: cond.Condition) -> bool:
        return bool(self.space.encode(condition) & self.space.domain(self.names) != self.space.false)

    def _never_fires(self) -> None:
        vocabulary = self.vocabulary
        for owner, file, condition in self._level_conditions():
            if not self._possible(condition):
                self.findings.append(
                    error(NEVER_FIRES, owner, file, f"{owner} can never fire: {_conflict(condition, vocabulary)}.")
                )
        for readiness in self.rb.readiness:
            for number, sign in enumerate(readiness.signs, start=1):
                if not self._possible(sign.when):
                    self.findings.append(
                        error(
                            NEVER_FIRES,
                            readiness.id,
                            readiness.file,
                            f"sign {number} of {readiness.id} can never be met, so no one ever steps down from "
                            f"{_levels_text(self.levels, readiness.applies_to)}: {_conflict(sign.when, vocabulary)}.",
                        )
                    )
            if all(level == self.levels.lowest for level in readiness.applies_to):
                self.findings.append(
                    error(
                        NEVER_FIRES,
                        readiness.id,
                        readiness.file,
                        f"{readiness.id} can never fire: it applies only to {self.levels[0].value}, and there is "
                        "no lower level to step down to.",
                    )
                )

    def _level_conditions(self) -> Iterator[tuple[str, str, cond.Condition]]:
        for rule in self.rb.criteria:
            yield rule.id, rule.file, rule.when
        for emergency in self.rb.emergencies:
            yield emergency.id, emergency.file, emergency.when
        for escalation in self.rb.escalations:
            yield escalation.id, escalation.file, escalation.when

    # --- gaps, emergencies, criteria that never decide -------------------------------

    def _gaps(self) -> None:
        space = self.space
        undecided = ~self.decided & space.domain(self.clinical)
        if undecided != space.false:
            self.findings.append(
                error(
                    GAP,
                    "",
                    "",
                    "complete assessments get no level: no criterion holds and there is no "
                    "[[rule]] with otherwise = true to fall back on",
                    counterexample=space.values(space.lowest(undecided, self.clinical)),
                    count=space.count(undecided, self.clinical),
                )
            )

    def _emergencies(self) -> None:
        space = self.space
        top = self.admitted[self.top]
        for item, node in zip(self.rb.emergencies, self.emergency):
            self.clock.tick()
            wrong = node & ~top & space.domain(self.clinical)
            if wrong == space.false:
                continue
            cells = space.lowest(wrong, self.clinical)
            decided = space.holds(self.decided, cells)
            where = f"the level is {self._level(cells, None).value}" if decided else "no level is decided"
            self.findings.append(
                error(
                    EMERGENCY,
                    item.id,
                    item.file,
                    f"when {item.id} declares an emergency, {where} instead of {self.levels[-1].value}: "
                    f"a crisis response must come with the highest level. "
                    f"Add a criterion for {self.levels[-1].value} whose condition covers {item.id}'s.",
                    counterexample=space.values(cells),
                    count=space.count(wrong, self.clinical),
                )
            )

    def _never_decides(self) -> None:
        space = self.space
        for rule in self.rb.criteria:
            self.clock.tick()
            if rule.level == self.levels.highest:
                continue
            fires = space.encode(rule.when) & space.domain(self.clinical)
            if fires == space.false:
                continue  # reported as never firing
            above = self.admitted[rule.level.rank + 1]
            if fires & ~above != space.false:
                continue
            cells = space.lowest(fires, self.clinical)
            facts = space.values(cells)
            higher = next(r for r in self.rb.criteria if r.level > rule.level and cond.holds(r.when, facts))
            self.findings.append(
                warning(
                    NEVER_DECIDES,
                    rule.id,
                    rule.file,
                    f"whenever {rule.id} holds, a criterion for a higher level holds too (here {higher.id}, "
                    f"{higher.level.value}), so {rule.id} never decides a level. Widen its condition or remove it.",
                    counterexample=facts,
                    count=space.count(fires, self.clinical),
                )
            )

    # --- monotonicity ----------------------------------------------------------------

    def _drops(self, thresholds: Sequence[Node], name: str, position: int) -> Node:
        """Where raising ``name`` from cell ``position`` one step takes some threshold away."""
        space = self.space
        found = space.false
        for node in thresholds[1:]:
            self.clock.tick()
            found |= space.at(node, name, position) & ~space.at(node, name, position + 1)
        return found

    def _monotone_admission(self) -> None:
        violations: list[_Violation] = []
        others_of = {name: tuple(n for n in self.clinical if n != name) for name in self.clinical}
        for name in self.clinical:
            for position in range(len(self.analysis.cells[name]) - 1):
                dropped = self._drops(self.admitted, name, position)
                self._admission_drops[name, position] = dropped
                violations += self._split(dropped, name, position, None, others_of[name])
        self._report_violations(violations)

    def _monotone_in_treatment(self) -> None:
        violations: list[_Violation] = []
        names = self.progress + self.clinical
        others_of = {name: tuple(n for n in self.names if n != name) for name in names}
        for name in self.progress:
            for position in range(len(self.analysis.cells[name]) - 1):
                for current in range(len(self.levels)):
                    dropped = self._drops(self.staying(current), name, position)
                    violations += self._split(dropped, name, position, current, others_of[name])
        for current in range(len(self.levels) - 1):
            dropped = self.space.false
            for node, higher in zip(self.staying(current)[1:], self.staying(current + 1)[1:]):
                self.clock.tick()
                dropped |= node & ~higher
            violations += self._split(dropped, CURRENT_LEVEL, current, current, self.names)
        # In treatment the threshold is the admission one or a part (escalation,
        # unmet sign, bridge). Raising a clinical fact no part reads cannot take a
        # part away, so any threshold it takes away is an admission one, which the
        # admission check reports: only the facts parts read need checking here.
        read: set[str] = set()
        for now in self.levels:
            for level in self.levels:
                for _, condition in self.placement.parts(now, level):
                    read |= cond.facts_read(condition)
        for name in (n for n in self.clinical if n in read):
            for position in range(len(self.analysis.cells[name]) - 1):
                for current in range(len(self.levels)):
                    dropped = self._drops(self.staying(current), name, position)
                    # Where the indicated level itself drops, the admission check reports it.
                    dropped &= ~self._admission_drops[name, position]
                    violations += self._split(dropped, name, position, current, others_of[name])
        self._report_violations(violations)

    def _split(
        self, dropped: Node, name: str, position: int, current: int | None, others: Sequence[str]
    ) -> list[_Violation]:
        """The steps in ``dropped``, one violation per rule to blame, lowest need first."""
        space = self.space
        remaining = dropped & space.domain(others)
        found: list[_Violation] = []
        while remaining != space.false:
            self.clock.tick()
            cells = space.lowest(remaining, others)
            violation = self._violation(cells, name, position, current)
            blamed = self._blamed(remaining, violation.owner, name, position)
            if blamed & remaining == space.false:
                blamed = remaining
            blamed &= remaining
            found.append(attrs.evolve(violation, count=space.count(blamed, others)))
            remaining &= ~blamed
        return found

    def _blamed(self, remaining: Node, owner: Owner | None, name: str, position: int) -> Node:
        """The steps in ``remaining`` where ``owner`` holds before and not after.

        Moving ``current_level`` changes no fact, only which rules apply: there
        the steps where the owner holds.
        """
        space = self.space
        if owner is None or isinstance(owner, Bridge):
            return remaining
        conditions: list[cond.Condition]
        if isinstance(owner, Readiness):
            conditions = [sign.unmet for sign in owner.signs]
        else:
            conditions = [owner.when]
        blamed = space.false
        for condition in conditions:
            node = space.encode(condition)
            if name == CURRENT_LEVEL:
                blamed |= node
            else:
                blamed |= space.at(node, name, position) & ~space.at(node, name, position + 1)
        return remaining & blamed

    def _violation(self, cells: dict[str, int], name: str, position: int, current: int | None) -> _Violation:
        """The two assessments of one step, their levels and the rule to blame."""
        before, after = dict(cells), dict(cells)
        if name == CURRENT_LEVEL:
            assert current is not None
            facts_before, facts_after = self._assessment(before, current), self._assessment(after, current + 1)
            levels = (self._level(before, current), self._level(after, current + 1))
            blamed = self._culprit(levels[0], (self.levels[current], facts_before), (self.levels[current + 1], facts_after))
            return _Violation(blamed, name, facts_before, facts_after, levels, self.levels[current], 1)
        before[name], after[name] = position, position + 1
        facts_before, facts_after = self._assessment(before, current), self._assessment(after, current)
        low, high = _edge_values(self.vocabulary[name], self.analysis.cells[name], position)
        facts_before[name], facts_after[name] = low, high
        levels = (self._level(before, current), self._level(after, current))
        owner: Owner | None
        if current is None:
            owner = next(
                (
                    rule
                    for rule in self.rb.criteria
                    if rule.level == levels[0] and cond.holds(rule.when, facts_before) and not cond.holds(rule.when, facts_after)
                ),
                None,
            )
            return _Violation(owner, name, facts_before, facts_after, levels, None, 1)
        now = self.levels[current]
        owner = self._culprit(levels[0], (now, facts_before), (now, facts_after))
        return _Violation(owner, name, facts_before, facts_after, levels, now, 1)

    def _culprit(
        self, level: Level, before: tuple[Level, Mapping[str, Any]], after: tuple[Level, Mapping[str, Any]]
    ) -> Owner | None:
        """The escalation, readiness or bridge that held the level up before a step and not after."""
        after_parts = [(_owner(o), c) for o, c in self.placement.parts(after[0], level)]
        for raw, condition in self.placement.parts(before[0], level):
            owner = _owner(raw)
            if cond.holds(condition, before[1]) and not any(o is owner and cond.holds(c, after[1]) for o, c in after_parts):
                return owner
        return None

    def _report_violations(self, violations: Sequence[_Violation]) -> None:
        groups: dict[tuple[str, str], list[_Violation]] = {}
        for violation in violations:
            owner_id = violation.owner.id if violation.owner is not None else ""
            groups.setdefault((owner_id, violation.fact), []).append(violation)
        for (owner_id, name), found in groups.items():
            first = found[0]
            low, high = first.levels
            values = f"from {show(first.before[name])} to {show(first.after[name])}"
            fact = self.vocabulary[name]
            if name == CURRENT_LEVEL:
                setting, step = "for someone in treatment", f"moving {CURRENT_LEVEL} up {values}"
            else:
                setting = "for a new admission" if first.current is None else f"with {CURRENT_LEVEL} {show(first.current.value)}"
                step = f"raising {name} {values}"
                if fact.kind == "integer" and fact.need == "decreasing":
                    step = f"lowering {name} {values}, which means more need"
            message = f"{setting}, {step} (every other fact the same) lowers the level from {low.value} to {high.value}"
            if first.owner is not None:
                message += f"; {owner_id} holds before the change and not after"
            message += ". Raising need must never lower the level."
            file = first.owner.file if first.owner is not None else ""
            self.findings.append(
                error(
                    NOT_MONOTONE,
                    owner_id,
                    file,
                    message,
                    counterexample=first.before,
                    contrast=first.after,
                    count=sum(v.count for v in found),
                )
            )

    # --- bridges -------------------------------------------------------------------------

    def _bridge_floors(self) -> None:
        space = self.space
        for bridge in self.rb.bridges:
            for level in (lv for lv in self.levels if lv in bridge.applies_to):
                self.clock.tick()
                if bridge.floor.rank == 0:
                    continue  # nothing lies below the lowest level
                below = self.decided & ~self.staying(level.rank)[bridge.floor.rank] & space.domain(self.names)
                if below == space.false:
                    continue
                cells = space.lowest(below, self.names)
                reached = self._level(cells, level.rank)
                self.findings.append(
                    error(
                        BRIDGE_FLOOR,
                        bridge.id,
                        bridge.file,
                        f"someone in treatment at {level.value} steps down to {reached.value}, below the floor "
                        f"{bridge.floor.value} that {bridge.id} sets for {level.value}: the bridge never applies "
                        f"there. Give {level.value} one bridge, with a floor below it.",
                        counterexample=self._assessment(cells, level.rank),
                        count=space.count(below, self.names),
                    )
                )

    # --- decisions that occur: programmes, services and considerations ------------------------

    def _decisions(self) -> None:
        self._reached()
        reached: dict[Level, dict[str, Any]] = {}
        for (level, _, _), facts in self.contexts.items():
            reached.setdefault(level, facts)
        for level in self.levels:
            if level in reached and level.id not in self.rb.programs:
                self.findings.append(
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
        every = [(lv, t, e) for lv in self.levels for t in Transition for e in (False, True)]
        fixed = {(name, c): self._fixed(condition, c) for name, _, condition in outcomes for c in every}
        space = _outcome_space(self.vocabulary, list(fixed.values()), self.clock, self.backend)
        for name, file, condition in outcomes:
            possible = [c for c in every if space.encode(fixed[name, c]) & space.domain(space.names) != space.false]
            if not possible:
                self.findings.append(
                    error(NEVER_FIRES, name, file, f"{name} can never fire: {_conflict(condition, self.vocabulary)}.")
                )
            elif not any(c in self.contexts for c in possible):
                self.findings.append(
                    error(
                        NEVER_FIRES,
                        name,
                        file,
                        f"{name} can never fire: it needs a decision with {_contexts_text(possible, len(self.levels))}, "
                        "and no assessment leads to one.",
                    )
                )

    def _reached(self) -> None:
        """Every (level, transition, emergency) some complete assessment gets, with one such assessment."""
        space = self.space
        last = len(self.levels)
        flags = ((False, ~self.any_emergency), (True, self.any_emergency))
        for j in range(last):
            upper = self.admitted[j + 1] if j + 1 < last else space.false
            exact = self.decided & self.admitted[j] & ~upper & space.domain(self.clinical)
            for flag, node in flags:
                self.clock.tick()
                here = exact & node
                if here != space.false:
                    self.contexts[self.levels[j], Transition.ADMIT, flag] = space.values(space.lowest(here, self.clinical))
        if not self.in_treatment:
            return
        for current in range(last):
            row = self.staying(current)
            for j in range(last):
                upper = row[j + 1] if j + 1 < last else space.false
                exact = self.decided & row[j] & ~upper & space.domain(self.names)
                transition = (
                    Transition.STEP_UP if j > current else Transition.CONTINUE if j == current else Transition.STEP_DOWN
                )
                for flag, node in flags:
                    self.clock.tick()
                    key = (self.levels[j], transition, flag)
                    if key in self.contexts:
                        continue
                    here = exact & node
                    if here != space.false:
                        self.contexts[key] = self._assessment(space.lowest(here, self.names), current)

    def _outcome_conditions(self) -> Iterator[tuple[str, str, cond.Condition]]:
        for service in self.rb.services:
            yield service.name, service.file, service.when
        for consideration in self.rb.considerations:
            yield consideration.id, consideration.file, consideration.when

    def _fixed(self, condition: cond.Condition, context: Context) -> cond.Condition:
        """``condition`` with the decided level, transition and emergency flag filled in."""
        level, transition, emergency = context
        if isinstance(condition, cond.All):
            return cond.All(tuple(self._fixed(c, context) for c in condition.items))
        if isinstance(condition, cond.Any_):
            return cond.Any_(tuple(self._fixed(c, context) for c in condition.items))
        if isinstance(condition, cond.ContextAtom):
            value = {"level": level.value, "transition": transition.value, "emergency": emergency}[condition.name]
            return cond.TRUE if value in condition.allowed else cond.FALSE
        if isinstance(condition, cond.ProgramAtom):
            program = self.rb.programs.get(level.id)
            if program is None:
                return cond.FALSE
            minimum = program.hours_per_week[0] if condition.which == "hours" else program.days_per_week[0]
            fact = self.vocabulary[condition.fact]
            low, high = fact.minimum or 0, fact.maximum or 0
            interval = (low, minimum - 1) if condition.below else (minimum, high)
            return cond.RangeAtom(condition.fact, cond._normalise([interval]))
        return condition


def _owner(raw: object) -> Owner:
    """A part's owner as findings name it: an unmet readiness sign is its readiness rule."""
    if isinstance(raw, tuple):
        readiness, sign = raw
        assert isinstance(readiness, Readiness) and isinstance(sign, Sign)
        return readiness
    assert isinstance(raw, (Escalation, Bridge))
    return raw


def _outcome_space(vocabulary: Vocabulary, conditions: Sequence[cond.Condition], clock: Clock, backend: Any) -> Space:
    """Cells of every fact services and considerations read, cut at their own thresholds."""
    read: set[str] = set()
    for condition in conditions:
        read |= cond.facts_read(condition)
    cells: dict[str, tuple[Any, ...]] = {}
    for fact in vocabulary.facts:
        if fact.name in read:
            cells[fact.name] = _cells(fact, conditions) if fact.kind == "integer" else fact.values
    return Space(cells, clock, backend)


def _edge_values(fact: Fact, cells: Sequence[Any], position: int) -> tuple[Any, Any]:
    """Two neighbouring values on either side of the step from cell ``position`` to the next.

    Finite facts have one value per cell. For an integer, the values nearest the
    threshold read best in a report: weeks 12 and 11, not 12 and 0.
    """
    if fact.kind != "integer":
        return cells[position], cells[position + 1]
    if fact.need == "decreasing":
        # Cells hold interval starts from highest to lowest.
        return cells[position], cells[position] - 1
    return cells[position + 1] - 1, cells[position + 1]


def _levels_text(order: Sequence[Level], levels: Iterable[Level]) -> str:
    return ", ".join(level.id for level in order if level in set(levels))


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
