"""The loaded rule base: its items (rules, transitions, services, ...) and the wording templates, as immutable values."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .._model import Level, LevelSet, Program, RulebaseInfo, Transition
from . import _conditions as cond
from ._cases import Case
from ._vocabulary import (
    Vocabulary,
)

#: The sentences the engine writes itself, and the fields each template may use.
WORDING_FIELDS: dict[str, frozenset[str]] = {
    "ruled_out_below": frozenset({"level", "Level", "statement"}),
    "none_holds": frozenset({"level", "Level", "rules"}),
    "none_can_hold": frozenset({"level", "Level", "rules"}),
    "no_criterion": frozenset({"level", "Level"}),
    "step_down_held_back": frozenset({"sign"}),
}


@attrs.frozen
class Wording:
    """The rule base's templates for the sentences the engine writes itself.

    Each is a ``str.format`` template; ``{level}`` is a level's label and
    ``{Level}`` the same with a capital first letter.
    """

    ruled_out_below: str
    none_holds: str
    none_can_hold: str
    no_criterion: str
    step_down_held_back: str

    def say(self, key: str, *, level: Level | None = None, **fields: str) -> str:
        template: str = getattr(self, key)
        if level is not None:
            fields = {"level": level.label, "Level": level.label[:1].upper() + level.label[1:], **fields}
        return template.format(**fields)


@attrs.frozen
class Source:
    id: str
    title: str
    covers: str = ""


@attrs.frozen
class Rule:
    """A criterion that requires a level (``otherwise``: the level when none holds)."""

    id: str
    level: Level
    statement: str
    sources: tuple[str, ...]
    when: cond.Condition
    file: str
    otherwise: bool = False


@attrs.frozen
class _Stated:
    """An item that says one thing, on its sources, whenever its condition holds."""

    id: str
    statement: str
    sources: tuple[str, ...]
    when: cond.Condition
    file: str


@attrs.frozen
class Emergency(_Stated):
    """An emergency: the most intensive level, at once."""


@attrs.frozen
class Escalation:
    id: str
    statement: str
    sources: tuple[str, ...]
    when: cond.Condition
    levels_above_current: int
    file: str


@attrs.frozen
class TransitionNote:
    id: str
    kind: Transition
    statement: str
    sources: tuple[str, ...]
    file: str


@attrs.frozen
class Sign:
    statement: str
    when: cond.Condition
    unmet: cond.Condition


@attrs.frozen
class Readiness:
    """Signs that must all hold before a step down from the levels in ``applies_to``."""

    id: str
    statement: str
    sources: tuple[str, ...]
    applies_to: frozenset[Level]
    signs: tuple[Sign, ...]
    file: str


@attrs.frozen
class Bridge:
    id: str
    statement: str
    sources: tuple[str, ...]
    applies_to: frozenset[Level]
    floor: Level
    file: str


@attrs.frozen
class Service:
    name: str
    sources: tuple[str, ...]
    when: cond.Condition
    file: str


@attrs.frozen
class Consideration(_Stated):
    """A point for the clinician to weigh beside the level."""


@attrs.frozen
class RuleBase:
    """A loaded, checked rule base. Immutable; shared by every decision."""

    info: RulebaseInfo
    description: str
    levels: LevelSet
    wording: Wording
    vocabulary: Vocabulary
    sources: tuple[Source, ...]
    rules: tuple[Rule, ...]
    emergencies: tuple[Emergency, ...]
    escalations: tuple[Escalation, ...]
    transitions: tuple[TransitionNote, ...]
    readiness: tuple[Readiness, ...]
    bridges: tuple[Bridge, ...]
    programs: Mapping[str, Program]
    services: tuple[Service, ...]
    considerations: tuple[Consideration, ...]
    location: str
    #: Expected decisions the rule base carries (``[[case]]``), run by ``levelcare check``.
    cases: tuple[Case, ...] = ()

    def as_unverified(self) -> RuleBase:
        """This rule base marked as one that did not pass ``levelcare check``: its decisions say so."""
        return attrs.evolve(self, info=attrs.evolve(self.info, unverified=True))

    @property
    def fallback(self) -> Rule:
        return next(r for r in self.rules if r.otherwise)

    @property
    def criteria(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.otherwise)

    def transition_note(self, kind: Transition) -> TransitionNote | None:
        return next((t for t in self.transitions if t.kind is kind), None)
