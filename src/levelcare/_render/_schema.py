"""JSON Schema (draft 2020-12) of an assessment, derived from a vocabulary.

Forms and questionnaires in other applications validate against this schema before
they call levelcare; the schema and :meth:`Vocabulary.validate` agree because both
read the same vocabulary. One difference is inherent to JSON Schema: it counts
``12.0`` as an integer, while levelcare asks for ``12``.
"""

from __future__ import annotations

from typing import Any

from .._model import RulebaseInfo
from .._rulebase._vocabulary import Fact, Vocabulary

__all__ = ["DIALECT", "assessment_schema"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _fact_schema(fact: Fact) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": fact.meaning}
    if fact.kind == "integer":
        schema["type"] = ["integer", "null"]
        schema["minimum"] = fact.minimum or 0
        schema["maximum"] = fact.maximum or 0
    elif fact.kind == "boolean":
        schema["type"] = ["boolean", "null"]
    else:
        schema["type"] = ["string", "null"]
        schema["enum"] = [*fact.values, None]
    return schema


def assessment_schema(vocabulary: Vocabulary, rulebase: RulebaseInfo | None = None) -> dict[str, Any]:
    """The JSON Schema of an assessment for ``vocabulary``.

    Every fact is an optional property that may be ``null`` (unknown); any other
    property is rejected, as :meth:`Vocabulary.validate` rejects unknown facts.
    Properties follow vocabulary order and carry each fact's meaning.

    Args:
        vocabulary: The facts of a rule base.
        rulebase: When given, the schema's title and ``$comment`` name the rule
            base it was generated from.

    Returns:
        A JSON-ready dict.
    """
    title = "levelcare assessment"
    schema: dict[str, Any] = {"$schema": DIALECT, "title": title}
    if rulebase is not None:
        schema["title"] = f"{title} for {rulebase.name} {rulebase.version}"
        schema["$comment"] = (
            f"Generated from the fact vocabulary of rule base {rulebase.name} {rulebase.version} "
            f"(sha256 {rulebase.sha256})."
        )
    schema["description"] = (
        "The known facts about one person. Every fact is optional; a missing fact or null means unknown."
    )
    schema["type"] = "object"
    schema["properties"] = {fact.name: _fact_schema(fact) for fact in vocabulary.facts}
    schema["additionalProperties"] = False
    return schema
