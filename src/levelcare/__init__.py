"""levelcare: decide the level of care for substance use disorders, and explain why.

.. versionadded:: 1.0
"""

from ._engine import Engine, decide
from ._model import Decision, Level, LevelSet, Program, Reason, RulebaseInfo, Transition
from ._rulebase._assessment import Assessment
from ._verify import Finding, Severity, VerificationReport, verify
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
    "VerificationReport",
    "decide",
    "verify",
]
