"""Monotonicity: raising one need-ordered fact one step never lowers the level.

For a fact ``f``, neighbouring cells ``a`` and ``a+1`` and a threshold ``k``
(see ``_thresholds``), the combinations of the other facts where ``g[k]`` holds
with ``f = a`` and not with ``f = a+1`` are exactly the steps that take the
level below ``k``; for ``current_level``, where ``g[k]`` holds at one current
level and not at the next. Each step found is two assessments that differ in
one fact; the one with the lowest need is reported, with the rule to blame and
how many steps share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._model import Level
from .._rulebase import Bridge, Escalation, Readiness, Rule, Sign
from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import CURRENT_LEVEL, Fact
from ._report import NOT_MONOTONE, Finding, error, show
from ._space import Node
from ._thresholds import Thresholds

Owner = Rule | Escalation | Readiness | Bridge


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


class Monotonicity:
    """The monotonicity checks of one rule base."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.t = thresholds
        # Per clinical fact and cell: where raising it lowers the indicated level.
        self._admission_drops: dict[tuple[str, int], Node] = {}

    def _drops(self, thresholds: Sequence[Node], name: str, position: int) -> Node:
        """Where raising ``name`` from cell ``position`` one step takes some threshold away."""
        space = self.t.space
        found = space.false
        for node in thresholds[1:]:
            self.t.clock.tick()
            found |= space.at(node, name, position) & ~space.at(node, name, position + 1)
        return found

    def admission(self) -> list[Finding]:
        """New admissions: each clinical fact raised one step."""
        violations: list[_Violation] = []
        others_of = {name: tuple(n for n in self.t.clinical if n != name) for name in self.t.clinical}
        for name in self.t.clinical:
            for position in range(len(self.t.analysis.cells[name]) - 1):
                dropped = self._admission_drop(name, position)
                violations += self._split(dropped, name, position, None, others_of[name])
        return self._report_violations(violations)

    def in_treatment(self) -> list[Finding]:
        """Someone in treatment: each progress fact, ``current_level``, and each clinical fact raised one step."""
        violations: list[_Violation] = []
        names = self.t.progress + self.t.clinical
        others_of = {name: tuple(n for n in self.t.names if n != name) for name in names}
        for name in self.t.progress:
            for position in range(len(self.t.analysis.cells[name]) - 1):
                for current in range(len(self.t.levels)):
                    dropped = self._drops(self.t.staying(current), name, position)
                    violations += self._split(dropped, name, position, current, others_of[name])
        for current in range(len(self.t.levels) - 1):
            dropped = self.t.space.false
            for node, higher in zip(self.t.staying(current)[1:], self.t.staying(current + 1)[1:]):
                self.t.clock.tick()
                dropped |= node & ~higher
            violations += self._split(dropped, CURRENT_LEVEL, current, current, self.t.names)
        # In treatment the threshold is the admission one or a part (escalation,
        # unmet sign, bridge). Raising a clinical fact no part reads cannot take a
        # part away, so any threshold it takes away is an admission one, which the
        # admission check reports: only the facts parts read need checking here.
        read: set[str] = set()
        for now in self.t.levels:
            for level in self.t.levels:
                for _, condition in self.t.placement.parts(now, level):
                    read |= cond.facts_read(condition)
        for name in (n for n in self.t.clinical if n in read):
            for position in range(len(self.t.analysis.cells[name]) - 1):
                for current in range(len(self.t.levels)):
                    dropped = self._drops(self.t.staying(current), name, position)
                    # Where the indicated level itself drops, the admission check reports it.
                    dropped &= ~self._admission_drop(name, position)
                    violations += self._split(dropped, name, position, current, others_of[name])
        return self._report_violations(violations)

    def _split(
        self, dropped: Node, name: str, position: int, current: int | None, others: Sequence[str]
    ) -> list[_Violation]:
        """The steps in ``dropped``, one violation per rule to blame, lowest need first."""
        space = self.t.space
        remaining = dropped & space.domain(others)
        found: list[_Violation] = []
        while remaining != space.false:
            self.t.clock.tick()
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
        space = self.t.space
        if owner is None or isinstance(owner, Bridge):
            return remaining
        conditions = [sign.unmet for sign in owner.signs] if isinstance(owner, Readiness) else [owner.when]
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
            facts_before, facts_after = self.t.assessment(before, current), self.t.assessment(after, current + 1)
            levels = (self.t.level(before, current), self.t.level(after, current + 1))
            blamed = self._culprit(
                levels[0], (self.t.levels[current], facts_before), (self.t.levels[current + 1], facts_after)
            )
            return _Violation(blamed, name, facts_before, facts_after, levels, self.t.levels[current], 1)
        before[name], after[name] = position, position + 1
        facts_before, facts_after = self.t.assessment(before, current), self.t.assessment(after, current)
        low, high = _edge_values(self.t.vocabulary[name], self.t.analysis.cells[name], position)
        facts_before[name], facts_after[name] = low, high
        levels = (self.t.level(before, current), self.t.level(after, current))
        owner: Owner | None
        if current is None:
            owner = next(
                (
                    rule
                    for rule in self.t.rb.criteria
                    if rule.level == levels[0]
                    and cond.holds(rule.when, facts_before)
                    and not cond.holds(rule.when, facts_after)
                ),
                None,
            )
            return _Violation(owner, name, facts_before, facts_after, levels, None, 1)
        now = self.t.levels[current]
        owner = self._culprit(levels[0], (now, facts_before), (now, facts_after))
        return _Violation(owner, name, facts_before, facts_after, levels, now, 1)

    def _culprit(
        self, level: Level, before: tuple[Level, Mapping[str, Any]], after: tuple[Level, Mapping[str, Any]]
    ) -> Owner | None:
        """The escalation, readiness or bridge that held the level up before a step and not after."""
        after_parts = [(_owner(o), c) for o, c in self.t.placement.parts(after[0], level)]
        for raw, condition in self.t.placement.parts(before[0], level):
            owner = _owner(raw)
            if cond.holds(condition, before[1]) and not any(
                o is owner and cond.holds(c, after[1]) for o, c in after_parts
            ):
                return owner
        return None

    def _admission_drop(self, name: str, position: int) -> Node:
        """Where raising clinical fact ``name`` from cell ``position`` lowers the indicated level."""
        found = self._admission_drops.get((name, position))
        if found is None:
            found = self._admission_drops[name, position] = self._drops(self.t.admitted, name, position)
        return found

    def _report_violations(self, violations: Sequence[_Violation]) -> list[Finding]:
        findings: list[Finding] = []
        groups: dict[tuple[str, str], list[_Violation]] = {}
        for violation in violations:
            owner_id = violation.owner.id if violation.owner is not None else ""
            groups.setdefault((owner_id, violation.fact), []).append(violation)
        for (owner_id, name), found in groups.items():
            first = found[0]
            low, high = first.levels
            values = f"from {show(first.before[name])} to {show(first.after[name])}"
            fact = self.t.vocabulary[name]
            if name == CURRENT_LEVEL:
                setting, step = "for someone in treatment", f"moving {CURRENT_LEVEL} up {values}"
            else:
                setting = (
                    "for a new admission"
                    if first.current is None
                    else f"with {CURRENT_LEVEL} {show(first.current.value)}"
                )
                step = f"raising {name} {values}"
                if fact.kind == "integer" and fact.need == "decreasing":
                    step = f"lowering {name} {values}, which means more need"
            message = f"{setting}, {step} (every other fact the same) lowers the level from {low.value} to {high.value}"
            if first.owner is not None:
                message += f"; {owner_id} holds before the change and not after"
            message += ". Raising need must never lower the level."
            file = first.owner.file if first.owner is not None else ""
            findings.append(
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
        return findings


def _owner(raw: object) -> Owner:
    """A part's owner as findings name it: an unmet readiness sign is its readiness rule."""
    if isinstance(raw, tuple):
        readiness, sign = raw
        assert isinstance(readiness, Readiness) and isinstance(sign, Sign)
        return readiness
    assert isinstance(raw, (Escalation, Bridge))
    return raw


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
