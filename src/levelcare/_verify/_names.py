"""Fact and field names that would match the engine's own durable-rules session state.

Read from the rule files as written, before (and whether or not) they load, and
from a rule base built in code past the loader.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from .._rulebase import RuleBase
from .._rulebase import _conditions as cond
from .._rulebase._reading import MAX_NESTING, RESERVED_NAMES, is_rule_file, item_label, nesting_depth
from ._report import RESERVED, Finding, error

_RESERVED_WHY = (
    "the engine itself writes a field of that name into every durable-rules session, "
    "so the engine's own session state would match"
)


def _reserved_fact(file: str, name: str) -> Finding:
    return error(
        RESERVED,
        name,
        file,
        f"fact {name!r} is named like a session field: {_RESERVED_WHY} a rule that reads it. "
        "Rename the fact, and every rule that reads it.",
    )


def _reserved_use(file: str, label: str, name: str, how: str) -> Finding:
    return error(
        RESERVED,
        label,
        file,
        f"the condition {how} {name!r}: {_RESERVED_WHY} it instead of the assessment. Use a fact with another name.",
    )


def _same_problem(file: str, rule_id: str, message: str, finding: Finding) -> bool:
    """Whether a loader problem says, less precisely, what a reserved-name finding says."""
    if finding.check != RESERVED or finding.file != file:
        return False
    if finding.rule_id != rule_id and not rule_id.startswith(finding.rule_id + " sign "):
        return False
    return any(repr(name) in message for name in RESERVED_NAMES)


def _raw_reserved(location: Traversable | Path) -> list[Finding]:
    """Reserved names in the rule files as written, read before (and whether or not) they load."""
    findings: list[Finding] = []
    try:
        if not location.is_dir():
            return findings
        # The same files the loader reads, read the same way (hidden files skipped,
        # a byte order mark allowed); a file nested too deeply is left to the
        # loader, which names it and its line.
        files = sorted((f for f in location.iterdir() if is_rule_file(f)), key=lambda f: f.name)
        for file in files:
            try:
                data = tomllib.loads(file.read_text(encoding="utf-8-sig"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError):
                continue  # the loader reports it
            if nesting_depth(data) > MAX_NESTING:
                continue  # the loader reports it
            findings += _reserved_in_file(file.name, data)
    except OSError:
        pass  # the loader reports what it cannot read
    return findings


def _reserved_in_file(file: str, data: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for table, items in data.items():
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            label = item_label(table, item)
            if table == "fact" and item.get("name") in RESERVED_NAMES:
                findings.append(_reserved_fact(file, str(item["name"])))
            if "when" in item:
                findings += [_reserved_use(file, label, n, h) for n, h in _reserved_in_condition(item["when"])]
            signs = item.get("signs") if table == "readiness" else None
            for sign in signs if isinstance(signs, list) else []:
                if isinstance(sign, dict) and "when" in sign:
                    findings += [_reserved_use(file, label, n, h) for n, h in _reserved_in_condition(sign["when"])]
    return findings


def _reserved_in_condition(data: object) -> Iterator[tuple[str, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in RESERVED_NAMES:
                yield str(key), "tests the field"
            if key == "fact" and value in RESERVED_NAMES:
                yield str(value), "reads fact"
            yield from _reserved_in_condition(value)
    elif isinstance(data, list):
        for item in data:
            yield from _reserved_in_condition(item)


def _vocabulary_reserved(rulebase: RuleBase) -> list[Finding]:
    """Reserved names in a rule base that was built without the loader's checks."""
    findings: list[Finding] = []
    for fact in rulebase.vocabulary.facts:
        if fact.name in RESERVED_NAMES:
            findings.append(_reserved_fact("", fact.name))
    for owner, file, condition in _every_condition(rulebase):
        for name in sorted(cond.facts_read(condition) & RESERVED_NAMES):
            findings.append(_reserved_use(file, owner, name, "reads fact"))
    return findings


def _every_condition(rulebase: RuleBase) -> Iterator[tuple[str, str, cond.Condition]]:
    for rule in rulebase.criteria:
        yield rule.id, rule.file, rule.when
    for emergency in rulebase.emergencies:
        yield emergency.id, emergency.file, emergency.when
    for escalation in rulebase.escalations:
        yield escalation.id, escalation.file, escalation.when
    for readiness in rulebase.readiness:
        for sign in readiness.signs:
            yield readiness.id, readiness.file, sign.when
    for service in rulebase.services:
        yield service.name, service.file, service.when
    for consideration in rulebase.considerations:
        yield consideration.id, consideration.file, consideration.when
