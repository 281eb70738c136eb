"""Placement overrides: the level a person received, when it is not the level indicated.

::

    from levelcare import Engine
    from levelcare.overrides import PlacementOverride, nearest_available

    engine = Engine.default()
    decision = engine.decide(facts)
    one_up = engine.levels[decision.level.rank + 1]
    record = PlacementOverride.create(
        engine, decision=decision, facts=facts, received=one_up,
        reasons=["payer-decision"], text=f"Authorised for {one_up.label} only",
    )
    json.dumps(record.to_dict())

Reason codes (:data:`REASONS`) form a small code list of their own, with
displays; the levels come from the engine's rule base.

:func:`summarise` reads override records and CDS Hooks feedback records back and
counts them per level indicated and, with the assessments behind them, per rule::

    from levelcare.overrides import summarise

    summary = summarise(["overrides.jsonl", "levelcare-feedback.jsonl"], engine, population="people.jsonl")
    for tally in summary.levels:
        print(tally.key, tally.accepted, tally.overridden, tally.above, tally.below)

.. versionadded:: 1.0
"""

from ._adapters._overrides import (
    REASON_SYSTEM,
    REASONS,
    PlacementOverride,
    facts_digest,
    nearest_available,
    reason_codings,
)
from ._adapters._practice import OverrideSummary, ReasonCount, Tally, Unreadable, summarise
from .exceptions import InvalidOverride

__all__ = [
    "REASONS",
    "REASON_SYSTEM",
    "InvalidOverride",
    "OverrideSummary",
    "PlacementOverride",
    "ReasonCount",
    "Tally",
    "Unreadable",
    "facts_digest",
    "nearest_available",
    "reason_codings",
    "summarise",
]
