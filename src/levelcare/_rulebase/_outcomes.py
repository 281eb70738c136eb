"""Reading what a decision carries besides its level: programmes, services and considerations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._model import Program
from . import _conditions as cond
from ._criteria import _ItemReader
from ._items import Consideration, Service
from ._reading import _NAME, _check_sources, item_label
from ._vocabulary import (
    shorten,
)


class _Outcomes(_ItemReader):
    """``[[program]]``, ``[[service]]`` and ``[[consideration]]``."""

    def programs(self, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Program]:
        found: dict[str, Program] = {}
        for file, item in items:
            label = item_label("program", item)
            level = self._level(file, label, item.get("level"))
            sources = _check_sources(self.problems, file, label, item.get("sources"), self.source_ids)
            hours = self._pair(file, label, item.get("hours_per_week"), "hours_per_week", 168)
            days = self._pair(file, label, item.get("days_per_week"), "days_per_week", 7)
            length = item.get("typical_length")
            minimum = item.get("recommended_minimum_days")
            if not isinstance(length, str) or not length.strip():
                self.problems.add(file, label, "typical_length must be a non-empty string")
                continue
            if minimum is not None and (not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1):
                self.problems.add(file, label, "recommended_minimum_days must be a positive whole number")
                continue
            if level is None or hours is None or days is None or not sources:
                continue
            if level.id in found:
                self.problems.add(file, label, f"a second [[program]] for {level.id!r}")
                continue
            found[level.id] = Program(
                level=level,
                hours_per_week=hours,
                days_per_week=days,
                typical_length=length.strip(),
                recommended_minimum_days=minimum,
                sources=sources,
            )
        for level in self.levels:
            if level.id not in found and not any(item_label("program", i) == level.id for _, i in items):
                self.problems.add("programs", level.id, f"no [[program]] for {level.id!r}")
        return {level.id: found[level.id] for level in self.levels if level.id in found}

    def _pair(self, file: str, label: str, value: object, key: str, top: int) -> tuple[int, int] | None:
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not 0 <= value[0] <= value[1] <= top
        ):
            self.problems.add(file, label, f"{key} must be [minimum, maximum], whole numbers from 0 to {top}")
            return None
        return (value[0], value[1])

    def service(self, file: str, item: Mapping[str, Any]) -> Service | None:
        name = item.get("name")
        label = item_label("service", item)
        if not isinstance(name, str) or not _NAME.match(name):
            self.problems.add(file, label, f"service name must be snake_case, got {shorten(name)}")
            return None
        sources = _check_sources(self.problems, file, label, item.get("sources"), self.source_ids)
        when = (
            cond.TRUE
            if "when" not in item
            else self._when(file, label, item["when"], context=True, facts=self.every_fact)
        )
        if when is None or not sources:
            return None
        return Service(name, sources, when, file)

    def consideration(self, file: str, item: Mapping[str, Any]) -> Consideration | None:
        common = self._common(file, "consideration", item)
        when = self._when(
            file, item_label("consideration", item), item.get("when"), context=True, facts=self.every_fact
        )
        if common is None or when is None:
            return None
        return Consideration(common[0], common[1], common[2], when, file)
