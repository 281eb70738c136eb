"""Test vectors a rule base carries: ``[[case]]`` tables of facts and the expected decision.

A case is written as::

    [[case]]
    name = "iop-too-early"
    story = "Six weeks in IOP, doing well but still in early recovery."
    expect = { level = "iop", transition = "continue", status = "complete" }

    [case.facts]
    harm_risk = "none"
    ...

``expect`` names any of ``level``, ``transition``, ``status`` and
``emergency``; the ones left out are not compared. A case whose expected status
is ``data-required`` has no level or transition. The loader checks every case
against the vocabulary; ``levelcare check`` decides each one and reports the
cases whose decision differs as errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

import attrs

from .._model import COMPLETE, DATA_REQUIRED, STATUSES, LevelSet, Transition
from ..exceptions import InvalidAssessment
from ._vocabulary import FactValue, Vocabulary, shorten, type_name

KEYS = ({"name", "facts", "expect"}, {"story"})
EXPECT_KEYS = ("level", "transition", "status", "emergency")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class _Problems(Protocol):
    def add(self, file: str, rule_id: str, message: str) -> None: ...

    def closest(self, name: str, candidates: Any) -> str | None: ...


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Case:
    """One expected decision: the facts and what the decision must say.

    Attributes:
        name: The case's name, unique in the rule base.
        facts: The assessment, valid for the rule base's vocabulary.
        expect: The expected ``level``, ``transition``, ``status`` and
            ``emergency``; only the keys given are compared.
        file: The rule file the case is in.
        story: A sentence saying what the case is about.
    """

    name: str
    facts: Mapping[str, FactValue] = attrs.field(converter=_frozen, hash=False)
    expect: Mapping[str, Any] = attrs.field(converter=_frozen, hash=False)
    file: str
    story: str = ""


def load_cases(
    problems: _Problems, items: list[tuple[str, dict[str, Any]]], vocabulary: Vocabulary, levels: LevelSet
) -> tuple[Case, ...]:
    """Check every ``[[case]]`` table; each problem names the file and the case."""
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for file, item in items:
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.add(
                file, "[[case]]", f"a case name is lower-case letters, digits, dots and dashes, got {shorten(name)}"
            )
            continue
        label = name if len(name) <= 40 else shorten(name)
        if name in seen:
            problems.add(file, label, f"duplicate case name (also in {seen[name]})")
            continue
        seen[name] = file
        story = item.get("story", "")
        ok = True
        if not isinstance(story, str):
            problems.add(file, label, f"story must be a sentence, got {type_name(story)}")
            ok = False
        facts = _facts(problems, file, label, item.get("facts"), vocabulary)
        expect = _expect(problems, file, label, item.get("expect"), levels)
        if ok and facts is not None and expect is not None:
            cases.append(Case(name, facts, expect, file, str(story).strip()))
    return tuple(cases)


def _facts(
    problems: _Problems, file: str, label: str, data: object, vocabulary: Vocabulary
) -> dict[str, FactValue] | None:
    if not isinstance(data, dict):
        problems.add(file, label, f"facts must be a table of fact names to values, got {type_name(data)}")
        return None
    try:
        return vocabulary.validate(data)
    except InvalidAssessment as error:
        for problem in error.problems:
            problems.add(file, label, f"facts: {problem}")
        return None


def _expect(problems: _Problems, file: str, label: str, data: object, levels: LevelSet) -> dict[str, Any] | None:
    if not isinstance(data, dict) or not data:
        keys = ", ".join(EXPECT_KEYS)
        problems.add(file, label, f"expect must be a table with at least one of {keys}, got {shorten(data)}")
        return None
    ok = True
    for key in data:
        if key not in EXPECT_KEYS:
            hint = problems.closest(str(key), EXPECT_KEYS)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            problems.add(file, label, f"unknown key {shorten(key)} in expect{suggestion}")
            ok = False
    level = data.get("level")
    if "level" in data and (not isinstance(level, str) or level not in levels.ids):
        options = ", ".join(repr(i) for i in levels.ids)
        hint = problems.closest(level, levels.ids) if isinstance(level, str) else None
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        problems.add(
            file, label, f"expect.level {shorten(level)} is not a declared level; use one of {options}{suggestion}"
        )
        ok = False
    transitions = [t.value for t in Transition]
    if "transition" in data and data["transition"] not in transitions:
        options = ", ".join(repr(t) for t in transitions)
        problems.add(file, label, f"expect.transition must be one of {options}, got {shorten(data['transition'])}")
        ok = False
    status = data.get("status", COMPLETE)
    if status not in STATUSES:
        options = ", ".join(repr(s) for s in STATUSES)
        problems.add(file, label, f"expect.status must be one of {options}, got {shorten(status)}")
        ok = False
    elif status == DATA_REQUIRED and ("level" in data or "transition" in data):
        problems.add(file, label, "a data-required decision has no level or transition; leave them out of expect")
        ok = False
    if "emergency" in data and not isinstance(data["emergency"], bool):
        problems.add(file, label, f"expect.emergency must be true or false, got {shorten(data['emergency'])}")
        ok = False
    return dict(data) if ok else None
