"""Errors raised by levelcare.

Every error the library raises on purpose derives from :class:`LevelCareError`,
and each leaf is also a builtin, so callers can catch either::

    LevelCareError
    ├── InvalidAssessment   (also ValueError)    bad input facts
    ├── RuleBaseError       (also ValueError)    a rule base that is malformed or unsafe
    ├── InvalidDecisionData (also ValueError)    Decision.from_dict given malformed data
    ├── UnknownLevel        (also LookupError    a level id the rule base does not declare
    │                        and ValueError)
    ├── InvalidOverride     (also ValueError)    a placement override that cannot be recorded
    └── EngineError         (also RuntimeError)  the rules engine failed; never bad input

Both collect every problem they find and raise once, with each problem in
``.problems``.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = [
    "AssessmentProblem",
    "EngineError",
    "InvalidAssessment",
    "InvalidDecisionData",
    "InvalidOverride",
    "LevelCareError",
    "RuleBaseError",
    "RuleProblem",
    "UnknownLevel",
]


@attrs.frozen
class AssessmentProblem:
    """One problem with one fact of an assessment.

    Attributes:
        fact: The fact name (or the offending key) the problem is about; ``""``
            when the problem is with the assessment as a whole.
        message: What is wrong and how to fix it.

    .. versionadded:: 1.0
    """

    fact: str
    message: str

    def __str__(self) -> str:
        return f"{self.fact}: {self.message}" if self.fact else self.message


@attrs.frozen
class RuleProblem:
    """One problem found while loading a rule base.

    Attributes:
        file: The rule file, relative to the rule base folder.
        rule_id: The rule, fact or table the problem is in (``""`` when the problem
            is with the file as a whole).
        message: What is wrong and how to fix it.

    .. versionadded:: 1.0
    """

    file: str
    rule_id: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.rule_id}" if self.rule_id else self.file
        return f"{where}: {self.message}"


class LevelCareError(Exception):
    """Base class of every error levelcare raises on purpose.

    .. versionadded:: 1.0
    """


class InvalidAssessment(LevelCareError, ValueError):
    """The facts given to :func:`levelcare.decide` are not a valid assessment.

    Attributes:
        problems: Every problem found, each naming its fact.

    .. versionadded:: 1.0
    """

    def __init__(self, problems: Iterable[AssessmentProblem]) -> None:
        self.problems: tuple[AssessmentProblem, ...] = tuple(problems)
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"invalid assessment, {head}:\n{lines}")


class RuleBaseError(LevelCareError, ValueError):
    """A rule base is malformed, inconsistent or unsafe to run.

    Attributes:
        problems: Every problem found, each naming its file and rule.

    .. versionadded:: 1.0
    """

    def __init__(self, problems: Iterable[RuleProblem]) -> None:
        self.problems: tuple[RuleProblem, ...] = tuple(problems)
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"invalid rule base, {head}:\n{lines}")


class InvalidDecisionData(LevelCareError, ValueError):
    """:meth:`levelcare.Decision.from_dict` was given data it cannot read.

    Attributes:
        problems: Every problem found, each naming its field.

    .. versionadded:: 1.0
    """

    def __init__(self, *problems: str) -> None:
        self.problems: tuple[str, ...] = problems
        if len(problems) == 1:
            super().__init__(problems[0])
        else:
            lines = "\n".join(f"- {p}" for p in problems)
            super().__init__(f"invalid decision data, {len(problems)} problems:\n{lines}")


class UnknownLevel(LevelCareError, LookupError, ValueError):
    """A level id that the rule base does not declare, such as ``engine.levels["detox"]``.

    .. versionadded:: 1.0
    """


class InvalidOverride(LevelCareError, ValueError):
    """A placement override that cannot be recorded as given.

    Attributes:
        problems: Every problem found, each naming its field.

    .. versionadded:: 1.0
    """

    def __init__(self, problems: Iterable[AssessmentProblem]) -> None:
        self.problems: tuple[AssessmentProblem, ...] = tuple(problems)
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"invalid placement override, {head}:\n{lines}")


class EngineError(LevelCareError, RuntimeError):
    """The rules engine failed while evaluating valid facts.

    This signals a defect, not bad input; the evaluation's session is removed
    before it is raised, so the next decision is unaffected.

    .. versionadded:: 1.0
    """
