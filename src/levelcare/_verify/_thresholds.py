"""The placement mechanism's thresholds as decision diagrams.

:meth:`Placement.at_least` gives, for an admission (``current`` None) and for
each current level, the condition under which the final level is at least
``k``. Each is encoded once as a diagram over the cells of the clinical and
progress facts (see ``_space``); every check reads these diagrams.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from .._model import Level, Transition
from .._rulebase import RuleBase
from .._rulebase._vocabulary import CURRENT_LEVEL, Vocabulary
from .._semantics import Analysis, Placement
from ._space import Clock, Node, Space

#: One decision as the verifier and the diff tell them apart: level id, transition, emergency.
Outcome = tuple[str, Transition, bool]


def exact_levels(placement: Placement, space: Space, current: Level | None) -> list[Node]:
    """``found[k]``: where the final level is level ``k``, for an admission or at ``current``.

    Level ``k`` is the highest whose threshold (:meth:`Placement.at_least`)
    holds; the lowest level is decided everywhere a fallback rule exists.
    """
    levels = placement.levels
    thresholds = [space.true if placement.fallback is not None else space.encode(placement.at_least(None, levels[0]))]
    thresholds += [space.encode(placement.at_least(current, level)) for level in levels[1:]]
    found: list[Node] = [space.false] * len(levels)
    above = space.false
    for rank in reversed(range(len(levels))):
        space.clock.tick()
        found[rank] = thresholds[rank] & ~above
        above |= thresholds[rank]
    return found


def outcomes(placement: Placement, space: Space, currents: Sequence[str] | None) -> dict[Outcome, Node]:
    """Where each decision (level, transition, emergency) is made, as diagrams over ``space``.

    Args:
        placement: One rule base's mechanism.
        space: Holds the facts the mechanism reads and, for ``currents``, the
            fact :data:`CURRENT_LEVEL` whose cell ``i`` is level ``currents[i]``.
        currents: ``None`` for admissions; else the ids of the current levels
            to decide for (each one of the rule base's levels).

    Returns:
        Only the decisions some combination gets.
    """
    levels = placement.levels
    emergency = space.false
    for item in placement.rulebase.emergencies:
        emergency |= space.encode(item.when)
    found: dict[Outcome, Node] = {}
    situations: list[tuple[Level | None, Node]]
    if currents is None:
        situations = [(None, space.true)]
    else:
        situations = [(levels[c], space.cell(CURRENT_LEVEL, i)) for i, c in enumerate(currents)]
    for current, where in situations:
        for level, exact in zip(levels, exact_levels(placement, space, current), strict=True):
            transition = placement.transition(level, current)
            for flag, node in ((True, emergency), (False, ~emergency)):
                space.clock.tick()
                here = exact & node & where
                if here != space.false:
                    key = (level.id, transition, flag)
                    found[key] = found.get(key, space.false) | here
    return found


class Thresholds:
    """The thresholds "the level is at least k" of one rule base, for admissions and each current level.

    Args:
        rulebase: The rule base.
        clock: The time budget, checked while conditions are encoded.
        backend: The ``dd`` module to build diagrams with (the best available by default).
    """

    def __init__(self, rulebase: RuleBase, clock: Clock, backend: Any = None) -> None:
        self.rb = rulebase
        self.vocabulary: Vocabulary = rulebase.vocabulary
        self.placement = Placement(rulebase)
        self.levels = rulebase.levels
        self.analysis = Analysis(self.placement)
        self.top = len(self.levels) - 1
        self.clock = clock
        self.backend = backend
        self.in_treatment = CURRENT_LEVEL in self.vocabulary
        self.clinical = self.analysis.clinical
        self.progress = self.analysis.progress
        self.names = self.clinical + self.progress
        self._staying: dict[int, list[Node]] = {}

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
        found = self._staying.get(current)
        if found is None:
            now = self.levels[current]
            found = [self.decided]
            for level in self.levels[1:]:
                found.append(self.space.encode(self.placement.at_least(now, level)))
            self._staying[current] = found
        return found

    @cached_property
    def emergency(self) -> list[Node]:
        """Each emergency rule's condition."""
        return [self.space.encode(item.when) for item in self.rb.emergencies]

    @cached_property
    def any_emergency(self) -> Node:
        result = self.space.false
        for node in self.emergency:
            result |= node
        return result

    @property
    def checked(self) -> dict[str, int]:
        """How many combinations the diagrams stand for: admissions, and in treatment."""
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

    def cells_of(self, facts: Mapping[str, Any]) -> dict[str, int]:
        """The cell each known fact's value lies in."""
        return {n: self.analysis.cell_of(n, facts[n]) for n in self.names if n in facts}

    def level(self, cells: Mapping[str, int], current: int | None) -> Level:
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
            return self.level(self.cells_of({n: facts[n] for n in self.clinical}), None)
        return self.level(self.cells_of(facts), self.levels[current].rank)

    def assessment(self, cells: Mapping[str, int], current: int | None) -> dict[str, Any]:
        """A complete assessment for a combination of cells (with ``current_level`` in treatment)."""
        values = self.space.values({n: cells[n] for n in self.clinical})
        if current is not None:
            values[CURRENT_LEVEL] = self.levels[current].value
            values.update(self.space.values({n: cells[n] for n in self.progress}))
        return values
