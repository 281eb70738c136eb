"""Static verification of a rule base: :func:`levelcare.verify` and ``levelcare check``.

The verifier reads the canonical conditions the engine compiles (see
``_conditions``) and proves properties of the rule base over every combination
of *cells*: each finite fact's values, and each integer's range cut at every
threshold a level or transition rule mentions. Conditions become boolean
functions held in binary decision diagrams, so nothing is enumerated:

* ``_space``: facts and conditions as diagrams, and a time budget;
* ``_thresholds``: the placement mechanism's "level at least k" as diagrams;
* ``_checks``: runs every check under the budget; gaps, emergencies, criteria
  that never fire or never decide, bridge floors;
* ``_monotone``: monotonicity, for admissions and in treatment;
* ``_decisions``: the decisions that occur, for programmes, services and
  considerations;
* ``_compile``: whether the engine can compile and run the rule base;
* ``_names``: names that would match the engine's session state;
* ``_explain``: why a condition can never hold, in words;
* ``_report``: :class:`Finding` and :class:`VerificationReport`.
"""

from __future__ import annotations

import os
from importlib.resources.abc import Traversable
from pathlib import Path

from .._engine import Engine
from .._rulebase import load
from .._rulebase._vocabulary import shorten, type_name
from ..exceptions import RuleBaseError
from ._checks import _Verifier
from ._compile import engine_findings
from ._explain import _conflict, _satisfiable
from ._names import _raw_reserved, _same_problem, _vocabulary_reserved
from ._report import (
    LOAD,
    Finding,
    Severity,
    VerificationReport,
    error,
    sort_findings,
)
from ._vectors import with_cases

__all__ = [
    "Finding",
    "Severity",
    "VerificationReport",
    "require_verified",
    "verify",
]
__all__ += ["_Verifier", "_conflict", "_satisfiable"]  # for levelcare's own tests

#: The time budget of ``levelcare check`` and :func:`verify` when none is given, in seconds.
DEFAULT_BUDGET = 600.0


def verify(
    target: Engine | str | os.PathLike[str] | Traversable, *, budget: float | None = DEFAULT_BUDGET
) -> VerificationReport:
    """Check a rule base for mistakes a test suite of examples would miss.

    The check is static and symbolic: it encodes the conditions the engine
    compiles as binary decision diagrams and proves each property over every
    combination of the facts' cells, without enumerating them. It reports:

    * problems the loader finds (schema, vocabulary, duplicate ids, unknown
      sources), as findings rather than an exception;
    * fact or field names that would match the engine's own session state;
    * rules the engine cannot compile, or a rule base it cannot run;
    * rules that can never fire, with the reason;
    * gaps: complete assessments that get no decision;
    * emergencies that do not come with the highest level;
    * monotonicity violations: raising one need-ordered fact (clinical,
      progress or ``current_level``) one step lowers the level;
    * step downs below a bridge's floor;
    * rules that never decide anything (warning): whenever they fire, a rule
      for a higher level fires too;
    * cases (``[[case]]`` test vectors) whose decision, made by the engine,
      differs from what they expect (check ``case``).

    A check not decided within ``budget`` seconds is reported with severity
    :attr:`Severity.UNVERIFIED`, and the report is not :attr:`~VerificationReport.ok`.

    Args:
        target: An engine, or the folder of a rule base.
        budget: Seconds the symbolic checks may take (checked between their
            steps, so one step can run over); ``None`` for no limit.

    Returns:
        The report; :attr:`VerificationReport.ok` is false when there are errors
        or unverified checks.

    .. versionadded:: 1.0
    """
    if isinstance(target, Engine):
        rulebase = target.loaded_rulebase
        found = _vocabulary_reserved(rulebase) + engine_findings(rulebase, target)
        return with_cases(_Verifier(rulebase, budget).report(rulebase.location, found), rulebase, target)
    if not isinstance(target, (str, os.PathLike, Traversable)):
        finding = error(
            LOAD, "", "", f"expected an Engine or a rule base folder, got {type_name(target)} {shorten(target)}"
        )
        return VerificationReport(location=shorten(target), rulebase=None, findings=(finding,))
    location = target if isinstance(target, Traversable) else Path(os.fspath(target))
    reserved = _raw_reserved(location)
    try:
        rulebase = load(location)
    except RuleBaseError as problem:
        findings = list(reserved)
        for item in problem.problems:
            if not any(_same_problem(item.file, item.rule_id, item.message, r) for r in reserved):
                findings.append(error(LOAD, item.rule_id, item.file, item.message))
        return VerificationReport(location=str(target), rulebase=None, findings=sort_findings(findings))
    except OSError as problem:
        message = f"cannot read the rule base: {problem.strerror or problem}"
        findings = [error(LOAD, "", str(getattr(problem, "filename", "") or ""), message)]
        return VerificationReport(location=str(target), rulebase=None, findings=tuple(findings))
    return with_cases(_Verifier(rulebase, budget).report(str(target), reserved + engine_findings(rulebase)), rulebase)


def require_verified(engine: Engine, *, budget: float | None = DEFAULT_BUDGET) -> VerificationReport:
    """Check ``engine``'s rule base and refuse it unless the check passes.

    Raises:
        UnverifiedRuleBase: naming each error found, or each check not decided
            within ``budget`` seconds.
    """
    return verify(engine, budget=budget).raise_for_errors()
