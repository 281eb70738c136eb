"""The reader of every item, and the checks of how the items fit together (one fallback rule, one bridge per level, ...)."""

from __future__ import annotations

from typing import Any

from .._model import Level, LevelSet, Transition
from ._criteria import _Criteria
from ._items import Bridge, Escalation, Readiness, Rule, TransitionNote
from ._outcomes import _Outcomes
from ._reading import _Collector
from ._transitions import _Transitions
from ._vocabulary import (
    CURRENT_LEVEL,
    Vocabulary,
)


class _ItemLoader(_Criteria, _Transitions, _Outcomes):
    """Reads every kind of item, and checks ids across them."""

    def check_ids(self, tables: dict[str, list[tuple[str, dict[str, Any]]]]) -> None:
        seen: dict[str, str] = {}
        for table in ("rule", "emergency", "escalation", "transition", "readiness", "bridge", "consideration"):
            for file, item in tables[table]:
                rid = item.get("id")
                if not isinstance(rid, str):
                    continue
                if rid in seen:
                    self.problems.add(file, rid, f"duplicate rule id (also in {seen[rid]})")
                else:
                    seen[rid] = file
        names: set[str] = set()
        for file, item in tables["service"]:
            name = item.get("name")
            if isinstance(name, str):
                if name in names:
                    self.problems.add(file, name, "duplicate service name")
                names.add(name)


def _check_structure(
    problems: _Collector,
    levels: LevelSet,
    rules: tuple[Rule, ...],
    transitions: tuple[TransitionNote, ...],
    escalations: tuple[Escalation, ...],
    readiness: tuple[Readiness, ...],
    bridges: tuple[Bridge, ...],
    vocabulary: Vocabulary,
    tables: dict[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    fallbacks = [r for r in rules if r.otherwise]
    declared = [i for _, i in tables["rule"] if i.get("otherwise") is True]
    if len(declared) != 1:
        where = ", ".join(sorted({r.file for r in fallbacks})) or "(all files)"
        problems.add(
            where,
            "",
            f"exactly one [[rule]] needs otherwise = true (the level when no criterion holds), found {len(declared)}",
        )
    for rule in fallbacks:
        if levels and rule.level != levels.lowest:
            problems.add(rule.file, rule.id, f"the otherwise rule must be at the lowest level, {levels.lowest.id!r}")
    kinds: dict[Transition, str] = {}
    for note in transitions:
        if note.kind in kinds:
            problems.add(
                note.file, note.id, f"a second [[transition]] of kind {note.kind.value!r} (first: {kinds[note.kind]})"
            )
        kinds[note.kind] = note.id
    seen: dict[Level, str] = {}
    for bridge in bridges:
        for level in bridge.applies_to:
            if level in seen:
                problems.add(bridge.file, bridge.id, f"{level.id!r} already has a bridge ({seen[level]})")
            seen[level] = bridge.id
    in_treatment = bool(escalations or readiness or bridges or transitions)
    # A current_level fact that is declared but wrong has its own problem already.
    declared_current = any(item.get("name") == CURRENT_LEVEL for _, item in tables["fact"])
    if in_treatment and CURRENT_LEVEL not in vocabulary and not declared_current:
        problems.add("vocabulary", CURRENT_LEVEL, f"transition rules need a {CURRENT_LEVEL!r} fact of kind 'level'")
