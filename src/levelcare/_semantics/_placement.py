"""The placement mechanism: how criteria, escalations, readiness and bridges give a level.

This module is the one definition of the mechanism. The engine settles each
decision with :meth:`Placement.settle`; the unknown-fact analysis, the verifier
and the reference renderer read the same mechanism as conditions
(:meth:`Placement.parts`, :meth:`Placement.at_least`) or as level moves
(:meth:`Placement.moves`). Nothing else restates it.

The mechanism, for a rule base with levels ``0 .. n-1`` (least intensive first):

* **Admission.** The indicated level is the highest level any holding criterion
  requires; when none holds, the level of the ``otherwise`` rule (the lowest).
* **In treatment** (``current_level`` known), the final level is at least ``k``
  exactly when the indicated level is at least ``k``, or one of the *parts* of
  ``k`` holds:

  - an escalation that holds and lifts to ``k`` or above (``current`` plus its
    ``levels_above_current``, no higher than the top level);
  - at or below the current level (``k <= current``): a readiness sign for the
    current level that is not met (the step down is held back), or a bridge from
    the current level whose floor is at least ``k`` (minimum stay and bridges).

  The final level is the highest ``k`` whose threshold holds; the transition is
  ``step-up``, ``continue`` or ``step-down`` by comparing it with the current
  level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import attrs

from .._model import Level, LevelSet, Transition
from .._rulebase import Bridge, Emergency, Escalation, Readiness, Rule, RuleBase, Sign
from .._rulebase import _conditions as cond

#: What a part of a threshold belongs to: an escalation, a readiness sign not met, or a bridge.
Owner = Escalation | tuple[Readiness, Sign] | Bridge
#: What can move the level or the emergency flag: a criterion, an emergency, an escalation, or a readiness sign.
Decider = Rule | Emergency | Escalation | tuple[Readiness, Sign]


@attrs.frozen
class Settled:
    """Where the mechanism puts one assessment, and what moved it there."""

    level: Level
    transition: Transition
    indicated: Level
    #: Escalations that lifted the level above the indicated one, in rule order.
    escalations: tuple[Escalation, ...] = ()
    #: Readiness signs not met that held a step down back.
    unmet: tuple[tuple[Readiness, Sign], ...] = ()
    #: The readiness rules that applied to a step down (met or not).
    readiness: tuple[Readiness, ...] = ()
    #: The bridge whose floor stopped a step down, if one did.
    bridge: Bridge | None = None


class Placement:
    """The placement mechanism of one rule base (see the module docstring)."""

    def __init__(self, rulebase: RuleBase) -> None:
        self.rulebase = rulebase
        self.levels: LevelSet = rulebase.levels
        # The loader insists on one; the verifier also reads rule bases built without it.
        self.fallback: Rule | None = next((r for r in rulebase.rules if r.otherwise), None)
        levels = self.levels
        self._readiness = {level.id: tuple(r for r in rulebase.readiness if level in r.applies_to) for level in levels}
        self._bridge = {
            level.id: next((b for b in rulebase.bridges if level in b.applies_to), None) for level in levels
        }
        deciders: list[tuple[Decider, cond.Condition]] = [(r, r.when) for r in rulebase.criteria]
        deciders += [(e, e.when) for e in rulebase.emergencies]
        deciders += [(e, e.when) for e in rulebase.escalations]
        deciders += [((r, s), s.unmet) for r in rulebase.readiness for s in r.signs]
        self._deciders = tuple(deciders)
        self._parts = {
            (current.rank, level.rank): tuple(self._build_parts(current, level))
            for current in levels
            for level in levels
        }

    # --- the mechanism's definition ----------------------------------------

    def target(self, escalation: Escalation, current: Level) -> Level:
        """The level an escalation lifts to from ``current``: never above the top level."""
        return self.levels[min(current.rank + escalation.levels_above_current, len(self.levels) - 1)]

    def _build_parts(self, current: Level, level: Level) -> Iterable[tuple[Owner, cond.Condition]]:
        for escalation in self.rulebase.escalations:
            if self.target(escalation, current) >= level:
                yield escalation, escalation.when
        if level <= current:
            for readiness in self._readiness[current.id]:
                for sign in readiness.signs:
                    yield (readiness, sign), sign.unmet
            bridge = self._bridge[current.id]
            if bridge is not None and bridge.floor >= level:
                yield bridge, cond.TRUE

    def parts(self, current: Level, level: Level) -> tuple[tuple[Owner, cond.Condition], ...]:
        """What, besides the indicated level, makes the final level at least ``level``."""
        return self._parts[current.rank, level.rank]

    def deciders(self) -> tuple[tuple[Decider, cond.Condition], ...]:
        """Every item that can move the level or the emergency flag, with the condition under which it does.

        Criteria, emergencies, escalations, then readiness signs, each in rule
        order. A readiness sign moves the level when it is *not* met, so its
        condition is the sign's negation (``sign.unmet``).
        """
        return self._deciders

    def deciding_conditions(self) -> tuple[cond.Condition, ...]:
        """The conditions of :meth:`deciders`: every condition that can move the level or the emergency flag.

        The facts' cells are cut at these conditions' thresholds wherever the
        level is reasoned about (a sign and its negation cut them alike).
        """
        return tuple(condition for _, condition in self._deciders)

    @staticmethod
    def transition(level: Level, current: Level | None) -> Transition:
        """The transition of a decision at ``level`` for someone at ``current`` (None: an admission).

        :meth:`settle` never holds a step down back without keeping the level at
        least ``current`` (an unmet sign is a part of every level up to it), so
        the transition follows from the final level and the current one alone.
        """
        if current is None:
            return Transition.ADMIT
        if level > current:
            return Transition.STEP_UP
        return Transition.CONTINUE if level == current else Transition.STEP_DOWN

    def criteria_at_least(self, level: Level) -> tuple[Rule, ...]:
        """The criteria that require ``level`` or a higher one."""
        return tuple(r for r in self.rulebase.criteria if r.level >= level)

    def at_least(self, current: Level | None, level: Level) -> cond.Condition:
        """The condition under which the final level is at least ``level``."""
        parts: list[cond.Condition] = [r.when for r in self.criteria_at_least(level)]
        if current is not None:
            parts += [condition for _, condition in self.parts(current, level)]
        return cond.Any_(tuple(parts))

    # --- one assessment ------------------------------------------------------

    def indicated(self, holding: Sequence[Rule]) -> tuple[Level, tuple[Rule, ...]]:
        """The indicated level and the criteria that require it (the fallback when none holds)."""
        if not holding:
            if self.fallback is None:
                return self.levels.lowest, ()
            return self.fallback.level, (self.fallback,)
        top = max(rule.level for rule in holding)
        return top, tuple(rule for rule in holding if rule.level == top)

    def settle(self, indicated: Level, current: Level | None, holds: Callable[[Owner], bool]) -> Settled:
        """The final level and transition, given which escalations and unmet signs hold.

        Args:
            indicated: The level the criteria indicate.
            current: The level the person is in now; None for an admission.
            holds: Whether a part's owner holds for this assessment (an
                escalation, or a readiness sign that is not met). Bridges
                always hold.
        """
        if current is None:
            return Settled(indicated, Transition.ADMIT, indicated)

        def lifted(level: Level, *, by_stay: bool) -> bool:
            return any(
                isinstance(owner, Bridge) or holds(owner)
                for owner, _ in self.parts(current, level)
                if by_stay or isinstance(owner, Escalation)
            )

        above = [level for level in self.levels if level > indicated]
        # Without the stay parts: where the criteria and escalations alone put the person.
        raised = max((level for level in above if lifted(level, by_stay=False)), default=indicated)
        final = max((level for level in above if lifted(level, by_stay=True)), default=indicated)
        escalations = tuple(e for e in self.rulebase.escalations if holds(e) and self.target(e, current) > indicated)
        transition = self.transition(final, current)
        if final > current or raised >= current:
            return Settled(final, transition, indicated, escalations)
        # A step down was possible: which readiness rules applied, and what held it.
        applying = self._readiness[current.id]
        unmet = tuple((r, s) for r in applying for s in r.signs if holds((r, s)))
        bridge = self._bridge[current.id]
        if bridge is not None and not bridge.floor > raised:
            bridge = None
        if transition is Transition.CONTINUE:
            return Settled(final, transition, indicated, escalations, unmet, applying)
        return Settled(final, transition, indicated, escalations, (), applying, bridge)

    # --- the mechanism as moves between levels -------------------------------

    def moves(self) -> tuple[list[tuple[Level, Level]], list[tuple[Level, Level]]]:
        """Every (from, to) step up and step down the mechanism allows."""
        indicated = {r.level for r in self.rulebase.rules}
        ups: list[tuple[Level, Level]] = []
        downs: list[tuple[Level, Level]] = []
        for current in self.levels:
            raised = {self.target(e, current) for e in self.rulebase.escalations}
            ups += [(current, t) for t in self.levels if t > current and (t in indicated or t in raised)]
        for current in self.levels:
            bridge = self._bridge[current.id]
            floor = bridge.floor if bridge is not None else self.levels.lowest
            floors = {floor} if bridge is not None else set()
            downs += [(current, t) for t in self.levels if floor <= t < current and (t in indicated or t in floors)]
        return ups, downs
