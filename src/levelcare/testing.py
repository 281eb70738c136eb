"""Hypothesis strategies and invariant checks for levelcare rule bases.

Everything here is derived from a rule base's own vocabulary, so it follows an
organisation's rule base as closely as the shipped one. Needs Hypothesis
(``pip install "levelcare[testing]"``).

.. versionadded:: 1.0
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

from ._engine import Engine
from ._vocabulary import CURRENT_LEVEL, Fact, FactValue
from .exceptions import AssessmentProblem, InvalidAssessment

__all__ = ["assessments", "fact_values"]

_ABSENT = object()


def _engine(engine: Engine | None) -> Engine:
    return Engine.default() if engine is None else engine


def fact_values(fact: Fact) -> st.SearchStrategy[FactValue]:
    """Every allowed value of one fact."""
    if fact.kind == "integer":
        return st.integers(min_value=fact.minimum or 0, max_value=fact.maximum or 0)
    return st.sampled_from(fact.values)


def assessments(
    engine: Engine | None = None,
    *,
    complete: bool = False,
    in_treatment: bool | None = None,
    **fixed: Any,
) -> st.SearchStrategy[dict[str, FactValue | None]]:
    """Valid assessments (as dicts) for ``engine``'s vocabulary.

    Args:
        engine: Whose vocabulary to draw from; the shipped rule base by default.
        complete: Every fact known. Otherwise any fact may be absent or ``None``.
        in_treatment: ``True``: ``current_level`` is always known; ``False``: never
            (a new admission); ``None``: either.
        **fixed: Facts pinned to a value, or to a strategy of values.

    Raises:
        InvalidAssessment: a pinned fact is unknown or its value is not allowed.

    .. versionadded:: 1.0
    """
    vocabulary = _engine(engine).vocabulary
    problems = []
    for name, value in fixed.items():
        if name not in vocabulary:
            problems.append(AssessmentProblem(name, "unknown fact; cannot pin it"))
        elif not isinstance(value, st.SearchStrategy) and value is not None:
            message = vocabulary[name].check(value)
            if message:
                problems.append(AssessmentProblem(name, message))
    if problems:
        raise InvalidAssessment(problems)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for fact in vocabulary.facts:
        if fact.name in fixed:
            value = fixed[fact.name]
            parts[fact.name] = value if isinstance(value, st.SearchStrategy) else st.just(value)
        elif fact.name == CURRENT_LEVEL and in_treatment is not None:
            parts[fact.name] = fact_values(fact) if in_treatment else st.just(_ABSENT)
        elif complete:
            parts[fact.name] = fact_values(fact)
        else:
            parts[fact.name] = st.one_of(st.just(_ABSENT), st.none(), fact_values(fact))
    return st.fixed_dictionaries(parts).map(_drop_absent)


def _drop_absent(drawn: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in drawn.items() if value is not _ABSENT}
