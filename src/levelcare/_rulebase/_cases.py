"""Test vectors a rule base carries: ``[[case]]`` tables of facts and the expected decision.

A case is written as::

    [[case]]
    name = "iop-too-early"
    story = "Six weeks in IOP, doing well but still in early recovery."
    expect = { level = "iop", transition = "continue", status = "complete" }

    [case.facts]
    harm_risk = "none"
    ...

``expect`` names any of the keys below; the ones left out are not compared:

* ``level``, ``transition``, ``status``, ``emergency``: as the decision says them;
* ``reasons``: the rule ids of the reasons (each id once, in any order);
* ``ruled_out``: a table of every level ruled out to the rule ids that rule it out;
* ``missing``: the unknown facts that can still change the level (any order);
* ``range``: the lowest and highest level the unknown facts allow, ``[low, high]``;
* ``services``: the recommended service ids (any order);
* ``considerations``: the rule ids of the considerations (any order);
* ``program``: any of ``level``, ``hours_per_week`` and ``days_per_week`` (each
  ``[low, high]``) and ``recommended_minimum_days`` of the programme described.

A case whose expected status is ``data-required`` has no level or transition. The
loader checks every case against the vocabulary and the rule base's levels;
``levelcare check`` decides each one and reports the cases whose decision differs
as errors.
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
EXPECT_KEYS = (
    "level",
    "transition",
    "status",
    "emergency",
    "reasons",
    "ruled_out",
    "missing",
    "range",
    "services",
    "considerations",
    "program",
)
# Expectations compared as sets of names: the decision's order is deterministic,
# but a case pins what a clinician reads, not the order it is listed in.
NAME_LISTS = ("reasons", "missing", "services", "considerations")
PROGRAM_KEYS = ("level", "hours_per_week", "days_per_week", "recommended_minimum_days")
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
        expect: What the decision must say, by key (``level``, ``transition``,
            ``status``, ``emergency``, ``reasons``, ``ruled_out``, ``missing``,
            ``range``, ``services``, ``considerations``, ``program``); only the
            keys given are compared.
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
        expect = _expect(problems, file, label, item.get("expect"), levels, vocabulary)
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


def _expect(
    problems: _Problems, file: str, label: str, data: object, levels: LevelSet, vocabulary: Vocabulary
) -> dict[str, Any] | None:
    if not isinstance(data, dict) or not data:
        keys = ", ".join(EXPECT_KEYS)
        problems.add(file, label, f"expect must be a table with at least one of {keys}, got {shorten(data)}")
        return None
    found: list[str] = []
    for key in data:
        if key not in EXPECT_KEYS:
            hint = problems.closest(str(key), EXPECT_KEYS)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            found.append(f"unknown key {shorten(key)} in expect{suggestion}")
    found += _outcome_problems(problems, data, levels)
    found += _explanation_problems(problems, data, levels, vocabulary)
    for message in found:
        problems.add(file, label, message)
    return None if found else dict(data)


def _level_problem(problems: _Problems, where: str, value: object, levels: LevelSet) -> str | None:
    if isinstance(value, str) and value in levels.ids:
        return None
    options = ", ".join(repr(i) for i in levels.ids)
    hint = problems.closest(value, levels.ids) if isinstance(value, str) else None
    suggestion = f"; did you mean {hint!r}?" if hint else ""
    return f"{where} {shorten(value)} is not a declared level; use one of {options}{suggestion}"


def _outcome_problems(problems: _Problems, data: Mapping[str, Any], levels: LevelSet) -> list[str]:
    found: list[str] = []
    if "level" in data and (problem := _level_problem(problems, "expect.level", data["level"], levels)):
        found.append(problem)
    transitions = [t.value for t in Transition]
    if "transition" in data and data["transition"] not in transitions:
        options = ", ".join(repr(t) for t in transitions)
        found.append(f"expect.transition must be one of {options}, got {shorten(data['transition'])}")
    status = data.get("status", COMPLETE)
    if status not in STATUSES:
        options = ", ".join(repr(s) for s in STATUSES)
        found.append(f"expect.status must be one of {options}, got {shorten(status)}")
    elif status == DATA_REQUIRED and ("level" in data or "transition" in data):
        found.append("a data-required decision has no level or transition; leave them out of expect")
    if "emergency" in data and not isinstance(data["emergency"], bool):
        found.append(f"expect.emergency must be true or false, got {shorten(data['emergency'])}")
    return found


def _names(where: str, value: object) -> str | None:
    """A problem with a list of names (rule ids, facts, services), or ``None``."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return f"{where} must be a list of names, got {shorten(value)}"
    if len(set(value)) != len(value):
        return f"{where} names an entry twice: {shorten(value)}"
    return None


def _pair(where: str, value: object) -> str | None:
    """A problem with a ``[low, high]`` pair of integers, or ``None``."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and value[0] <= value[1]
    ):
        return None
    return f"{where} must be [low, high], two whole numbers with low <= high, got {shorten(value)}"


def _explanation_problems(
    problems: _Problems, data: Mapping[str, Any], levels: LevelSet, vocabulary: Vocabulary
) -> list[str]:
    found = [p for key in NAME_LISTS if key in data and (p := _names(f"expect.{key}", data[key]))]
    if "missing" in data and not any(p.startswith("expect.missing") for p in found):
        for name in data["missing"]:
            if name not in vocabulary.by_name:
                hint = problems.closest(name, tuple(vocabulary.by_name))
                suggestion = f"; did you mean {hint!r}?" if hint else ""
                found.append(f"expect.missing names {shorten(name)}, which is not a fact{suggestion}")
    if "ruled_out" in data:
        ruled_out = data["ruled_out"]
        if not isinstance(ruled_out, dict):
            found.append(f"expect.ruled_out must be a table of level ids to rule ids, got {shorten(ruled_out)}")
        else:
            for level, rule_ids in ruled_out.items():
                if problem := _level_problem(problems, "expect.ruled_out level", level, levels):
                    found.append(problem)
                where = level if len(level) <= 40 else shorten(level)
                if problem := _names(f"expect.ruled_out.{where}", rule_ids):
                    found.append(problem)
    if "range" in data:
        span = data["range"]
        if not isinstance(span, list) or len(span) != 2:
            found.append(f"expect.range must be [low, high], two level ids, got {shorten(span)}")
        else:
            wrong = [p for v in span if (p := _level_problem(problems, "expect.range level", v, levels))]
            found += wrong
            if not wrong and levels[span[0]].rank > levels[span[1]].rank:
                found.append(f"expect.range must be [low, high], least intensive first, got {shorten(span)}")
    if "program" in data:
        found += _program_problems(problems, data["program"], levels)
    return found


def _program_problems(problems: _Problems, program: object, levels: LevelSet) -> list[str]:
    if not isinstance(program, dict) or not program:
        keys = ", ".join(PROGRAM_KEYS)
        return [f"expect.program must be a table with at least one of {keys}, got {shorten(program)}"]
    found: list[str] = []
    for key, value in program.items():
        if key not in PROGRAM_KEYS:
            hint = problems.closest(str(key), PROGRAM_KEYS)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            found.append(f"unknown key {shorten(key)} in expect.program{suggestion}")
        elif key == "level":
            if problem := _level_problem(problems, "expect.program.level", value, levels):
                found.append(problem)
        elif key == "recommended_minimum_days":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                found.append(
                    f"expect.program.recommended_minimum_days must be a whole number of days, got {shorten(value)}"
                )
        elif problem := _pair(f"expect.program.{key}", value):
            found.append(problem)
    return found
