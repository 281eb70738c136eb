"""The properties every rule base must have, proved over every combination of cells.

The placement mechanism's thresholds, "the level is at least ``k``", are held
as decision diagrams ``g[k]`` (``_thresholds``); every property is a question
about them:

* a gap: an assessment outside ``g[0]`` (no criterion holds, no fallback);
* an emergency below the top: the emergency's condition and not ``g[top]``. In
  treatment the level never falls below the indicated one, so admissions cover it;
* not monotone (``_monotone``);
* a criterion that never decides: where it holds, ``g`` of the next level holds;
* a step down below a bridge's floor: not ``g[floor]`` for a level it bridges;
* decisions that never occur, for programmes, services and considerations
  (``_decisions``).

Each check's steps run under a time budget: a check not decided in time is
reported as unverified, never as passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .._model import Level
from .._rulebase import RuleBase
from .._rulebase import _conditions as cond
from ._decisions import Decisions
from ._explain import _conflict
from ._monotone import Monotonicity
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
    sort_findings,
    unverified,
    warning,
)
from ._space import Clock, OutOfTime
from ._thresholds import Thresholds


class _Verifier:
    """Every symbolic check on one loaded rule base.

    Args:
        rulebase: The rule base.
        budget: Seconds the checks may take; ``None`` for no limit.
        backend: The ``dd`` module to build diagrams with (the best available by default).
    """

    def __init__(self, rulebase: RuleBase, budget: float | None = None, backend: Any = None) -> None:
        self.t = Thresholds(rulebase, Clock(budget), backend)
        self.findings: list[Finding] = []

    def level_of(self, facts: Mapping[str, Any]) -> Level:
        """The final level the diagrams give one complete assessment (for levelcare's own tests)."""
        return self.t.level_of(facts)

    # --- report --------------------------------------------------------------

    def report(self, location: str, found: Iterable[Finding]) -> VerificationReport:
        """Run every check in turn; a check not decided within the budget is reported as such."""
        self.findings = list(found)
        monotone = Monotonicity(self.t)
        steps: list[tuple[str, str, Callable[[], list[Finding] | None]]] = [
            (NEVER_FIRES, "whether each level and transition rule can fire", self._never_fires),
            (GAP, "whether every complete assessment gets a level", self._gaps),
            (EMERGENCY, "whether every emergency comes with the highest level", self._emergencies),
            (NOT_MONOTONE, "monotonicity for new admissions", monotone.admission),
            (NEVER_DECIDES, "whether each criterion ever decides the level", self._never_decides),
        ]
        if self.t.in_treatment:
            steps += [
                (NOT_MONOTONE, "monotonicity for someone in treatment", monotone.in_treatment),
                (BRIDGE_FLOOR, "whether step downs keep to every bridge's floor", self._bridge_floors),
            ]
        steps.append(
            (NEVER_FIRES, "which decisions occur, for services and considerations", Decisions(self.t).findings)
        )
        budget = self.t.clock.budget
        for check, what, step in steps:
            try:
                self.t.clock.tick()
                self.findings += step() or []
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
            rulebase=self.t.rb.info,
            findings=sort_findings(self.findings),
            checked=self.t.checked if decided else {},
        )

    # --- rules that can never fire -----------------------------------------------

    def _possible(self, condition: cond.Condition) -> bool:
        return bool(self.t.space.encode(condition) & self.t.space.domain(self.t.names) != self.t.space.false)

    def _never_fires(self) -> None:
        vocabulary = self.t.vocabulary
        for owner, file, condition in self._level_conditions():
            if not self._possible(condition):
                self.findings.append(
                    error(NEVER_FIRES, owner, file, f"{owner} can never fire: {_conflict(condition, vocabulary)}.")
                )
        for readiness in self.t.rb.readiness:
            for number, sign in enumerate(readiness.signs, start=1):
                if not self._possible(sign.when):
                    self.findings.append(
                        error(
                            NEVER_FIRES,
                            readiness.id,
                            readiness.file,
                            f"sign {number} of {readiness.id} can never be met, so no one ever steps down from "
                            f"{_levels_text(self.t.levels, readiness.applies_to)}: {_conflict(sign.when, vocabulary)}.",
                        )
                    )
            if all(level == self.t.levels.lowest for level in readiness.applies_to):
                self.findings.append(
                    error(
                        NEVER_FIRES,
                        readiness.id,
                        readiness.file,
                        f"{readiness.id} can never fire: it applies only to {self.t.levels[0].value}, and there is "
                        "no lower level to step down to.",
                    )
                )

    def _level_conditions(self) -> Iterator[tuple[str, str, cond.Condition]]:
        for rule in self.t.rb.criteria:
            yield rule.id, rule.file, rule.when
        for emergency in self.t.rb.emergencies:
            yield emergency.id, emergency.file, emergency.when
        for escalation in self.t.rb.escalations:
            yield escalation.id, escalation.file, escalation.when

    # --- gaps, emergencies, criteria that never decide -------------------------------

    def _gaps(self) -> None:
        space = self.t.space
        undecided = ~self.t.decided & space.domain(self.t.clinical)
        if undecided != space.false:
            self.findings.append(
                error(
                    GAP,
                    "",
                    "",
                    "complete assessments get no level: no criterion holds and there is no "
                    "[[rule]] with otherwise = true to fall back on",
                    counterexample=space.values(space.lowest(undecided, self.t.clinical)),
                    count=space.count(undecided, self.t.clinical),
                )
            )

    def _emergencies(self) -> None:
        space = self.t.space
        top = self.t.admitted[self.t.top]
        for item, node in zip(self.t.rb.emergencies, self.t.emergency):
            self.t.clock.tick()
            wrong = node & ~top & space.domain(self.t.clinical)
            if wrong == space.false:
                continue
            cells = space.lowest(wrong, self.t.clinical)
            decided = space.holds(self.t.decided, cells)
            where = f"the level is {self.t.level(cells, None).value}" if decided else "no level is decided"
            self.findings.append(
                error(
                    EMERGENCY,
                    item.id,
                    item.file,
                    f"when {item.id} declares an emergency, {where} instead of {self.t.levels[-1].value}: "
                    f"a crisis response must come with the highest level. "
                    f"Add a criterion for {self.t.levels[-1].value} whose condition covers {item.id}'s.",
                    counterexample=space.values(cells),
                    count=space.count(wrong, self.t.clinical),
                )
            )

    def _never_decides(self) -> None:
        space = self.t.space
        for rule in self.t.rb.criteria:
            self.t.clock.tick()
            if rule.level == self.t.levels.highest:
                continue
            fires = space.encode(rule.when) & space.domain(self.t.clinical)
            if fires == space.false:
                continue  # reported as never firing
            above = self.t.admitted[rule.level.rank + 1]
            if fires & ~above != space.false:
                continue
            cells = space.lowest(fires, self.t.clinical)
            facts = space.values(cells)
            higher = next(r for r in self.t.rb.criteria if r.level > rule.level and cond.holds(r.when, facts))
            self.findings.append(
                warning(
                    NEVER_DECIDES,
                    rule.id,
                    rule.file,
                    f"whenever {rule.id} holds, a criterion for a higher level holds too (here {higher.id}, "
                    f"{higher.level.value}), so {rule.id} never decides a level. Widen its condition or remove it.",
                    counterexample=facts,
                    count=space.count(fires, self.t.clinical),
                )
            )

    # --- bridges -------------------------------------------------------------------------

    def _bridge_floors(self) -> None:
        space = self.t.space
        for bridge in self.t.rb.bridges:
            for level in (lv for lv in self.t.levels if lv in bridge.applies_to):
                self.t.clock.tick()
                if bridge.floor.rank == 0:
                    continue  # nothing lies below the lowest level
                below = self.t.decided & ~self.t.staying(level.rank)[bridge.floor.rank] & space.domain(self.t.names)
                if below == space.false:
                    continue
                cells = space.lowest(below, self.t.names)
                reached = self.t.level(cells, level.rank)
                self.findings.append(
                    error(
                        BRIDGE_FLOOR,
                        bridge.id,
                        bridge.file,
                        f"someone in treatment at {level.value} steps down to {reached.value}, below the floor "
                        f"{bridge.floor.value} that {bridge.id} sets for {level.value}: the bridge never applies "
                        f"there. Give {level.value} one bridge, with a floor below it.",
                        counterexample=self.t.assessment(cells, level.rank),
                        count=space.count(below, self.t.names),
                    )
                )


def _levels_text(order: Sequence[Level], levels: Iterable[Level]) -> str:
    return ", ".join(level.id for level in order if level in set(levels))
