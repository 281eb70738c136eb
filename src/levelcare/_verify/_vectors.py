"""Running the test vectors a rule base carries (``[[case]]``) as part of ``levelcare check``.

Unlike the static checks, the cases are decided by the engine itself, so a case
that passes here gives the same decision in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import attrs

from .._engine import Engine
from .._model import Decision, Reason
from .._rulebase import Case, RuleBase
from .._rulebase._cases import NAME_LISTS
from .._text import shorten
from ..exceptions import InvalidAssessment, LevelCareError
from ._report import CASE, Finding, Severity, VerificationReport, sort_findings


def case_findings(rulebase: RuleBase, engine: Engine | None = None) -> list[Finding]:
    """An error for every case whose decision differs from its ``expect``."""
    if not rulebase.cases:
        return []
    try:
        engine = Engine(rulebase) if engine is None else engine
    except LevelCareError as error:
        message = f"the cases were not run: the engine could not be built ({error})"
        return [Finding(severity=Severity.ERROR, check=CASE, rule_id="", file="", message=message)]
    return [finding for case in rulebase.cases if (finding := _run(engine, case)) is not None]


def _rule_ids(reasons: Iterable[Reason]) -> list[str]:
    """The rule ids of ``reasons``, each once, in the decision's order.

    A ruled-out level that no criterion required names all its criteria in one
    reason, comma-separated; they count one by one.
    """
    ids: dict[str, None] = {}
    for reason in reasons:
        for rule_id in reason.rule_id.split(", "):
            ids.setdefault(rule_id, None)
    return list(ids)


def _program(decision: Decision) -> dict[str, Any]:
    program = decision.program
    return {
        "level": program.level.id,
        "hours_per_week": list(program.hours_per_week),
        "days_per_week": list(program.days_per_week),
        "recommended_minimum_days": program.recommended_minimum_days,
    }


def actual(decision: Decision) -> dict[str, Any]:
    """What ``decision`` says, by the keys a case's ``expect`` may name.

    Lists compared as sets (:data:`NAME_LISTS`) are in the decision's order.
    """
    ruled_out: dict[str, list[str]] = {}
    for reason in decision.ruled_out:
        if reason.level is not None:
            ruled_out.setdefault(reason.level.id, [])
            ruled_out[reason.level.id] += [i for i in _rule_ids([reason]) if i not in ruled_out[reason.level.id]]
    return {
        "level": None if decision.level is None else decision.level.id,
        "transition": None if decision.transition is None else decision.transition.value,
        "status": decision.status,
        "emergency": decision.emergency,
        "reasons": _rule_ids(decision.reasons),
        "ruled_out": ruled_out,
        "missing": list(decision.missing),
        "range": [level.id for level in decision.level_range],
        "services": list(decision.services),
        "considerations": _rule_ids(decision.considerations),
        "program": _program(decision),
    }


def _same(key: str, expected: Any, found: Any) -> bool:
    if key in NAME_LISTS:
        return set(expected) == set(found)
    if key == "ruled_out":
        return {k: set(v) for k, v in expected.items()} == {k: set(v) for k, v in found.items()}
    if key == "program":
        return all(found[k] == v for k, v in expected.items())
    return bool(expected == found)


def mismatches(case: Case, decision: Decision) -> list[str]:
    """Each way ``decision`` differs from what ``case`` expects, as "expected ..., got ..."."""
    found = actual(decision)
    wrong = []
    for key, expected in case.expect.items():
        shown = {k: found[key][k] for k in expected} if key == "program" else found[key]
        if not _same(key, expected, shown):
            wrong.append(f"expected {key} {json.dumps(expected)}, got {json.dumps(shown)}")
    return wrong


def _run(engine: Engine, case: Case) -> Finding | None:
    try:
        decision = engine.decide(dict(case.facts))
    except InvalidAssessment as error:  # pragma: no cover - the loader has checked the facts
        message = "; ".join(str(p) for p in error.problems)
        return _finding(case, f"the facts are not a valid assessment: {message}")
    except Exception as error:  # noqa: BLE001 - a rule base with other errors (a gap) can fail here
        return _finding(case, f"case {case.name!r}: no decision: {type(error).__name__}: {shorten(str(error))}")
    wrong = mismatches(case, decision)
    if not wrong:
        return None
    reasons = ", ".join(r.rule_id for r in decision.reasons) or "none"
    return _finding(case, f"case {case.name!r}: " + "; ".join(wrong) + f" (reasons: {reasons})")


def _finding(case: Case, message: str) -> Finding:
    return Finding(
        severity=Severity.ERROR,
        check=CASE,
        rule_id=case.name,
        file=case.file,
        message=message,
        counterexample=dict(case.facts),
    )


def with_cases(report: VerificationReport, rulebase: RuleBase, engine: Engine | None = None) -> VerificationReport:
    """``report`` with the findings of the rule base's cases added, and how many passed."""
    found = case_findings(rulebase, engine)
    failed = {finding.rule_id for finding in found}
    passed = sum(1 for case in rulebase.cases if case.name not in failed)
    if found and not failed - {""}:
        passed = 0  # the engine could not be built: no case ran
    return attrs.evolve(
        report,
        findings=sort_findings([*report.findings, *found]),
        cases=len(rulebase.cases),
        cases_passed=passed,
    )
