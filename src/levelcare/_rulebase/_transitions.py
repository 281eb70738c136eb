"""Reading the items that move a person already in treatment: escalations, transition notes, readiness and bridges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._model import Transition
from . import _conditions as cond
from ._criteria import _ItemReader
from ._items import Bridge, Escalation, Readiness, Sign, TransitionNote
from ._reading import item_label
from ._vocabulary import (
    shorten,
    type_name,
)


class _Transitions(_ItemReader):
    """``[[escalation]]``, ``[[transition]]``, ``[[readiness]]`` and ``[[bridge]]``."""

    def escalation(self, file: str, item: Mapping[str, Any]) -> Escalation | None:
        common = self._common(file, "escalation", item)
        label = item_label("escalation", item)
        when = self._when(file, label, item.get("when"), context=False, facts=self.transition_facts)
        steps = item.get("levels_above_current")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            self.problems.add(
                file, label, f"levels_above_current must be a whole number of at least 1, got {shorten(steps)}"
            )
            return None
        if common is None or when is None:
            return None
        return Escalation(common[0], common[1], common[2], when, steps, file)

    def transition(self, file: str, item: Mapping[str, Any]) -> TransitionNote | None:
        common = self._common(file, "transition", item)
        kind = item.get("kind")
        allowed = (Transition.STEP_UP.value, Transition.CONTINUE.value)
        if kind not in allowed:
            self.problems.add(
                file,
                item_label("transition", item),
                f"kind must be 'step-up' or 'continue' (a step down is explained by [[readiness]]), got {shorten(kind)}",
            )
            return None
        if common is None:
            return None
        return TransitionNote(common[0], Transition(kind), common[1], common[2], file)

    def readiness(self, file: str, item: Mapping[str, Any]) -> Readiness | None:
        common = self._common(file, "readiness", item)
        label = item_label("readiness", item)
        applies = frozenset(self.levels[1:]) if "from" not in item else self._levels(file, label, item["from"])
        signs_data = item.get("signs")
        if not isinstance(signs_data, list) or not signs_data:
            self.problems.add(file, label, "signs must be a non-empty list of { statement, when } tables")
            return None
        signs = []
        for index, sign in enumerate(signs_data):
            where = f"{label} sign {index + 1}"
            if not isinstance(sign, dict) or set(sign) != {"statement", "when"}:
                found = sorted(sign) if isinstance(sign, dict) else type_name(sign)
                self.problems.add(file, where, f"a sign is a table with exactly statement and when, found {found}")
                continue
            statement = sign["statement"]
            if not isinstance(statement, str) or not statement.strip():
                self.problems.add(file, where, "statement must be a non-empty sentence")
                continue
            when = self._when(file, where, sign["when"], context=False, facts=self.transition_facts)
            if when is not None:
                signs.append(Sign(statement.strip(), when, cond.negate(when, self.vocabulary)))
        if common is None or applies is None or len(signs) != len(signs_data):
            return None
        return Readiness(common[0], common[1], common[2], applies, tuple(signs), file)

    def bridge(self, file: str, item: Mapping[str, Any]) -> Bridge | None:
        common = self._common(file, "bridge", item)
        label = item_label("bridge", item)
        applies = self._levels(file, label, item.get("from"))
        floor = self._level(file, label, item.get("floor"), "floor")
        if applies is not None and floor is not None and any(level <= floor for level in applies):
            self.problems.add(file, label, f"floor {floor.id!r} must be below every level in from")
            return None
        if common is None or applies is None or floor is None:
            return None
        return Bridge(common[0], common[1], common[2], applies, floor, file)
