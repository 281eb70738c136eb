"""Whether the engine can compile and run a rule base that loads.

durable-rules has limits the rule language does not: a condition can be too
large for it to compile, and too many rules can hold at once for it to run.
The check goes through the engine itself, so it reports exactly what deciding
would meet, and names the rule when one rule alone is to blame.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs

from .._engine import Engine
from .._rulebase import RuleBase
from .._rulebase._vocabulary import CURRENT_LEVEL
from .._semantics import Analysis, Placement
from ..exceptions import EngineError, RuleBaseError
from ._report import ENGINE, Finding, error

_WHY = "durable-rules limits how large one condition may be; split it into several rules"


def engine_findings(rulebase: RuleBase, engine: Engine | None = None) -> list[Finding]:
    """Problems the engine meets building or running ``rulebase``.

    Args:
        rulebase: A rule base that loaded.
        engine: An engine already built on it; built here when ``None``.
    """
    if engine is None:
        try:
            engine = Engine(rulebase)
        except (EngineError, RuleBaseError) as problem:
            return _blame(rulebase, problem)
    return _run(rulebase, engine)


def _blame(rulebase: RuleBase, problem: Exception) -> list[Finding]:
    """The rules the engine cannot compile, each tried in a rule base of its own."""
    findings: list[Finding] = []
    for rule_id, file, alone in _alone(rulebase):
        try:
            Engine(alone)
        except (EngineError, RuleBaseError) as failure:
            findings.append(error(ENGINE, rule_id, file, f"the engine cannot compile {rule_id}: {failure}; {_WHY}."))
    if not findings:
        findings.append(
            error(
                ENGINE,
                "",
                "",
                f"the engine cannot compile the rule base, though it can compile each rule alone: {problem}",
            )
        )
    return findings


def _alone(rulebase: RuleBase) -> Iterator[tuple[str, str, RuleBase]]:
    """For each rule with a condition, the rule base holding it and nothing else it could fail with."""
    fallback = tuple(r for r in rulebase.rules if r.otherwise)
    empty: dict[str, Any] = {
        "rules": fallback,
        "emergencies": (),
        "escalations": (),
        "readiness": (),
        "services": (),
        "considerations": (),
    }
    for rule in rulebase.criteria:
        yield rule.id, rule.file, attrs.evolve(rulebase, **{**empty, "rules": (*fallback, rule)})
    for emergency in rulebase.emergencies:
        yield emergency.id, emergency.file, attrs.evolve(rulebase, **{**empty, "emergencies": (emergency,)})
    for escalation in rulebase.escalations:
        yield escalation.id, escalation.file, attrs.evolve(rulebase, **{**empty, "escalations": (escalation,)})
    for readiness in rulebase.readiness:
        yield readiness.id, readiness.file, attrs.evolve(rulebase, **{**empty, "readiness": (readiness,)})
    for service in rulebase.services:
        yield service.name, service.file, attrs.evolve(rulebase, **{**empty, "services": (service,)})
    for consideration in rulebase.considerations:
        yield (
            consideration.id,
            consideration.file,
            attrs.evolve(rulebase, **{**empty, "considerations": (consideration,)}),
        )


def _run(rulebase: RuleBase, engine: Engine) -> list[Finding]:
    """Decide the assessments under which the most rules hold: every fact at its highest need.

    An admission, and someone in treatment at each level; durable fails at run
    time when too many rules hold at once.
    """
    analysis = Analysis(Placement(rulebase))
    facts: dict[str, Any] = {n: analysis.cells[n][-1] for n in analysis.clinical}
    trials = [dict(facts)]
    if CURRENT_LEVEL in rulebase.vocabulary:
        for level in rulebase.levels:
            trial = {**facts, CURRENT_LEVEL: level.value}
            trial.update({n: analysis.cells[n][-1] for n in analysis.progress})
            trials.append(trial)
    for trial in trials:
        try:
            engine.decide(trial)
        except EngineError as problem:
            where = "a new admission" if CURRENT_LEVEL not in trial else f"{CURRENT_LEVEL} {trial[CURRENT_LEVEL]!r}"
            return [
                error(
                    ENGINE,
                    "",
                    "",
                    f"the engine fails to decide the assessment with every fact at its highest need, for {where}: "
                    f"{problem}. Fewer rules may hold at once.",
                    counterexample=trial,
                )
            ]
    return []
