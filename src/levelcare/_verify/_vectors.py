"""Running the test vectors a rule base carries (``[[case]]``) as part of ``levelcare check``.

Unlike the static checks, the cases are decided by the engine itself, so a case
that passes here gives the same decision in production.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from .._engine import Engine
from .._rulebase import Case, RuleBase
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


def _run(engine: Engine, case: Case) -> Finding | None:
    try:
        decision = engine.decide(dict(case.facts))
    except InvalidAssessment as error:  # pragma: no cover - the loader has checked the facts
        message = "; ".join(str(p) for p in error.problems)
        return _finding(case, f"the facts are not a valid assessment: {message}")
    except Exception as error:  # noqa: BLE001 - a rule base with other errors (a gap) can fail here
        return _finding(case, f"case {case.name!r}: no decision: {type(error).__name__}: {shorten(str(error))}")
    found: dict[str, Any] = {
        "level": None if decision.level is None else decision.level.id,
        "transition": None if decision.transition is None else decision.transition.value,
        "status": decision.status,
        "emergency": decision.emergency,
    }
    wrong = [
        f"expected {key} {json.dumps(expected)}, got {json.dumps(found[key])}"
        for key, expected in case.expect.items()
        if found[key] != expected
    ]
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
    """``report`` with the findings of the rule base's cases added."""
    found = case_findings(rulebase, engine)
    if not found:
        return report
    return attrs.evolve(report, findings=sort_findings([*report.findings, *found]))
