"""Reading the items of a rule base that require a level: criteria and emergencies.

``_ItemReader`` holds what every kind of item needs (ids, statements, sources,
conditions, level names); ``_transitions`` and ``_outcomes`` read the other kinds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._model import Level, LevelSet
from . import _conditions as cond
from ._items import Emergency, Rule
from ._reading import _ID, MAX_ID_LENGTH, _check_sources, _Collector, item_label
from ._vocabulary import (
    CURRENT_LEVEL,
    Vocabulary,
    shorten,
)


class _ItemReader:
    """What reading every kind of item needs: the problems, the vocabulary, the sources and the levels."""

    def __init__(self, problems: _Collector, vocabulary: Vocabulary, source_ids: set[str], levels: LevelSet) -> None:
        self.problems = problems
        self.levels = levels
        self.vocabulary = vocabulary
        self.source_ids = source_ids
        clinical = [f.name for f in vocabulary.group("clinical")]
        progress = [f.name for f in vocabulary.group("progress") if f.name != CURRENT_LEVEL]
        self.level_facts = clinical
        self.transition_facts = clinical + progress
        self.every_fact = [f.name for f in vocabulary.facts]

    def _common(self, file: str, table: str, item: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]] | None:
        label = item_label(table, item)
        rid = item.get("id")
        ok = True
        if not isinstance(rid, str) or not _ID.match(rid):
            self.problems.add(
                file,
                label,
                f"id must be a short name of letters, digits, dots and dashes such as 'XY-1', got {shorten(rid)}",
            )
            ok = False
        elif len(rid) > MAX_ID_LENGTH:
            self.problems.add(file, label, f"id is {len(rid)} characters long; at most {MAX_ID_LENGTH} are allowed")
            ok = False
        statement = item.get("statement")
        if not isinstance(statement, str) or not statement.strip():
            self.problems.add(file, label, "statement must be a non-empty sentence in the rule base's own words")
            ok = False
        sources = _check_sources(self.problems, file, label, item.get("sources"), self.source_ids)
        if not ok or not sources:
            return None
        return str(rid), str(statement).strip(), sources

    def _when(self, file: str, label: str, data: object, *, context: bool, facts: list[str]) -> cond.Condition | None:
        try:
            return cond.parse(
                data,
                self.vocabulary,
                context=context,
                facts=facts,
                levels=self.levels.ids,
                suggest=self.problems.closest,
            )
        except cond.ConditionError as error:
            for message in error.problems:
                self.problems.add(file, label, message)
            return None

    def _level(self, file: str, label: str, value: object, key: str = "level") -> Level | None:
        found = self.levels.get(value) if isinstance(value, str) else None
        if found is None:
            options = ", ".join(repr(i) for i in self.levels.ids)
            hint = self.problems.closest(value, self.levels.ids) if isinstance(value, str) else None
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            self.problems.add(
                file, label, f"{key} {shorten(value)} is not a declared [[level]]; use one of {options}{suggestion}"
            )
        return found

    def _levels(self, file: str, label: str, value: object) -> frozenset[Level] | None:
        if not isinstance(value, list) or not value:
            self.problems.add(file, label, "from must be a non-empty list of levels")
            return None
        found = [self._level(file, label, v, "from") for v in value]
        if any(level is None for level in found):
            return None
        return frozenset(level for level in found if level is not None)


class _Criteria(_ItemReader):
    """``[[rule]]`` and ``[[emergency]]``."""

    def rule(self, file: str, item: Mapping[str, Any]) -> Rule | None:
        common = self._common(file, "rule", item)
        level = self._level(file, item_label("rule", item), item.get("level"))
        otherwise = item.get("otherwise", False)
        label = item_label("rule", item)
        if not isinstance(otherwise, bool):
            self.problems.add(file, label, "otherwise must be true or false")
            return None
        if otherwise and "when" in item:
            self.problems.add(file, label, "a rule has either 'when' or 'otherwise = true', not both")
            return None
        if not otherwise and "when" not in item:
            self.problems.add(file, label, "[[rule]] is missing 'when' (or 'otherwise = true' for the fallback rule)")
            return None
        when = cond.TRUE if otherwise else self._when(file, label, item["when"], context=False, facts=self.level_facts)
        if common is None or level is None or when is None:
            return None
        return Rule(common[0], level, common[1], common[2], when, file, otherwise)

    def emergency(self, file: str, item: Mapping[str, Any]) -> Emergency | None:
        common = self._common(file, "emergency", item)
        when = self._when(file, item_label("emergency", item), item.get("when"), context=False, facts=self.level_facts)
        if common is None or when is None:
            return None
        return Emergency(common[0], common[1], common[2], when, file)
