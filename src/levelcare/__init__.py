"""levelcare: decide the level of care for substance use disorders, and explain why.

.. versionadded:: 1.0
"""

from typing import TYPE_CHECKING, Any

from ._engine import Engine, decide
from ._model import Decision, Level, LevelSet, Program, Reason, RulebaseInfo, Transition
from ._rulebase._assessment import Assessment
from .exceptions import (
    AssessmentProblem,
    EngineError,
    InvalidAssessment,
    InvalidDecisionData,
    InvalidOverride,
    LevelCareError,
    RuleBaseError,
    RuleProblem,
    UnknownLevel,
    UnverifiedRuleBase,
)

__all__ = [
    "Assessment",
    "AssessmentProblem",
    "Decision",
    "Engine",
    "EngineError",
    "Finding",
    "InvalidAssessment",
    "InvalidDecisionData",
    "InvalidOverride",
    "Level",
    "LevelCareError",
    "LevelSet",
    "Program",
    "Reason",
    "RuleBaseError",
    "RuleProblem",
    "RulebaseInfo",
    "Severity",
    "Transition",
    "UnknownLevel",
    "UnverifiedRuleBase",
    "VerificationReport",
    "decide",
    "verify",
]

if TYPE_CHECKING:
    from ._verify import Finding, Severity, VerificationReport, verify

# The verifier loads the BDD package and its dependencies (a few tenths of a
# second); an application that only decides never pays for it.
_VERIFIER = frozenset({"Finding", "Severity", "VerificationReport", "verify"})


def __getattr__(name: str) -> Any:
    if name in _VERIFIER:
        from . import _verify

        value = getattr(_verify, name)
        globals()[name] = value
        return value
    msg = f"module 'levelcare' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
