"""levelcare: decide the level of care for substance use disorders, and explain why.

.. versionadded:: 1.0
"""

from ._engine import Engine, decide
from ._levels import Level, Transition
from ._model import Assessment, Decision, Program, Reason, RulebaseInfo
from ._verify import Finding, Severity, VerificationReport, verify
from .exceptions import (
    AssessmentProblem,
    EngineError,
    InvalidAssessment,
    InvalidDecisionData,
    LevelCareError,
    RuleBaseError,
    RuleProblem,
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
    "Level",
    "LevelCareError",
    "Program",
    "Reason",
    "RuleBaseError",
    "RuleProblem",
    "RulebaseInfo",
    "Severity",
    "Transition",
    "VerificationReport",
    "decide",
    "verify",
]
