"""Errors raised by levelcare.

Every error the library raises on purpose derives from :class:`LevelCareError`,
and each leaf is also a builtin, so callers can catch either::

    LevelCareError
    ├── InvalidAssessment   (also ValueError)    bad input facts
    ├── RuleBaseError       (also ValueError)    a rule base that is malformed or unsafe
    │   └── UnverifiedRuleBase                   one that did not pass ``levelcare check``
    ├── InvalidDecisionData (also ValueError)    Decision.from_dict given malformed data
    ├── UnknownLevel        (also LookupError    a level id the rule base does not declare
    │                        and ValueError)
    ├── InvalidOverride     (also ValueError)    a placement override that cannot be recorded
    └── EngineError         (also RuntimeError)  the rules engine failed; never bad input

Those with ``.problems`` collect every problem they find and raise once. So that
refusing input costs a small constant per problem however many there are, they
list at most :data:`MAX_PROBLEMS` (20) problems, followed, when more were found,
by one that says how many (``... and 9,980 more problems``); ``.omitted`` holds
that count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ._text import MAX_PROBLEMS, Problems

__all__ = [
    "MAX_PROBLEMS",
    "AssessmentProblem",
    "EngineError",
    "InvalidAssessment",
    "InvalidDecisionData",
    "InvalidOverride",
    "LevelCareError",
    "RuleBaseError",
    "RuleProblem",
    "UnknownLevel",
    "UnverifiedRuleBase",
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
        if not self.file and not self.rule_id:  # the count of problems not listed
            return self.message
        where = f"{self.file}: {self.rule_id}" if self.rule_id else self.file
        return f"{where}: {self.message}"


def _assessment_problems(problems: Iterable[AssessmentProblem]) -> Problems[AssessmentProblem]:
    found = Problems(lambda text: AssessmentProblem("", text))
    found.extend(problems)
    return found


def _bounded(problems: Iterable[AssessmentProblem]) -> tuple[AssessmentProblem, ...]:
    """``problems`` as an error lists them: at most MAX_PROBLEMS, then how many more there were."""
    return _assessment_problems(problems).reported()


def _listing(found: Problems[Any], shown: tuple[object, ...]) -> str:
    """The count of every problem found, then one line per problem shown."""
    count = len(found)
    head = "1 problem" if count == 1 else f"{count:,} problems"
    lines = "\n".join(f"- {p}" for p in shown)
    return f"{head}:\n{lines}"


def _listed(error: InvalidAssessment | InvalidOverride, problems: Iterable[AssessmentProblem], what: str) -> str:
    """Give ``error`` the problems it lists and how many more were found; its message."""
    found = _assessment_problems(problems)
    error.problems = found.reported()
    error.omitted = found.omitted
    return f"{what}, {_listing(found, error.problems)}"


class LevelCareError(Exception):
    """Base class of every error levelcare raises on purpose.

    .. versionadded:: 1.0
    """


class InvalidAssessment(LevelCareError, ValueError):
    """The facts given to :func:`levelcare.decide` are not a valid assessment.

    Attributes:
        problems: The problems found, each naming its fact, in the order found: at
            most :data:`MAX_PROBLEMS`, followed, when more were found, by one with
            fact ``""`` saying how many more (``... and 9,980 more problems``).
        omitted: How many problems were found but not listed (0 when all are).

    .. versionadded:: 1.0
    """

    problems: tuple[AssessmentProblem, ...]
    omitted: int

    def __init__(self, problems: Iterable[AssessmentProblem]) -> None:
        super().__init__(_listed(self, problems, "invalid assessment"))


class RuleBaseError(LevelCareError, ValueError):
    """A rule base is malformed, inconsistent or unsafe to run.

    Attributes:
        problems: The problems found, each naming its file and rule: at most
            :data:`MAX_PROBLEMS`, followed, when more were found, by one with file
            and rule ``""`` saying how many more.
        omitted: How many problems were found but not listed (0 when all are).

    .. versionadded:: 1.0
    """

    def __init__(self, problems: Iterable[RuleProblem]) -> None:
        found = Problems(lambda text: RuleProblem("", "", text))
        found.extend(problems)
        self.problems: tuple[RuleProblem, ...] = found.reported()
        self.omitted: int = found.omitted
        super().__init__(f"invalid rule base, {_listing(found, self.problems)}")


class UnverifiedRuleBase(RuleBaseError):
    """A rule base that loads but did not pass ``levelcare check``, where a verified one is required.

    Raised by ``levelcare.verify(engine).raise_for_errors()``; ``levelcare batch`` and
    ``levelcare serve`` refuse such a rule base the same way unless told
    ``--allow-unverified``.

    Attributes:
        problems: Each error the check found (or each check it could not decide in
            its time budget), naming its file and rule, bounded as for
            :class:`RuleBaseError`.

    .. versionadded:: 1.0
    """

    def __init__(self, problems: Iterable[RuleProblem]) -> None:
        super().__init__(problems)
        listing = str(self).removeprefix("invalid rule base, ")
        self.args = (f"the rule base did not pass levelcare check, {listing}",)


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
        problems: The problems found, each naming its field: at most
            :data:`MAX_PROBLEMS`, followed, when more were found, by one with
            field ``""`` saying how many more.
        omitted: How many problems were found but not listed (0 when all are).

    .. versionadded:: 1.0
    """

    problems: tuple[AssessmentProblem, ...]
    omitted: int

    def __init__(self, problems: Iterable[AssessmentProblem]) -> None:
        super().__init__(_listed(self, problems, "invalid placement override"))


class EngineError(LevelCareError, RuntimeError):
    """The rules engine failed while evaluating valid facts.

    This signals a defect, not bad input; the evaluation's session is removed
    before it is raised, so the next decision is unaffected.

    .. versionadded:: 1.0
    """
