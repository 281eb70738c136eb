"""Readable clinical baselines shared by the table tests, and mixed assessments for the load tests."""

from __future__ import annotations

import random
from typing import Any

import levelcare

# Every clinical fact known at its lowest need: no criterion holds.
NO_NEED: dict[str, Any] = {
    "harm_risk": "none",
    "withdrawal_risk": "none",
    "medical_instability": False,
    "needs_24h_supervision": False,
    "needs_daily_monitoring": False,
    "addiction_severity": "mild",
    "psychiatric_severity": "none",
    "relapse_risk": "low",
    "home_environment": "supportive",
    "support_system": "strong",
}

# Progress of someone ready to step down: every readiness sign holds.
READY: dict[str, Any] = {
    "recent_use": "none",
    "symptoms_trend": "improving",
    "treatment_stage": "maintenance",
    "relapse_prevention_skills": True,
    "goals_met": True,
    "weeks_at_current_level": 13,
}


def person(**changes: Any) -> dict[str, Any]:
    """A new admission with no clinical need, changed as given."""
    return {**NO_NEED, **changes}


def patient(current_level: str, **changes: Any) -> dict[str, Any]:
    """Someone in treatment at ``current_level``, ready to step down unless changed."""
    return {**NO_NEED, **READY, "current_level": current_level, **changes}


def mixed_assessments(engine: levelcare.Engine, count: int, seed: int) -> list[dict[str, Any]]:
    """Complete and partial assessments, admissions and people in treatment, drawn from the vocabulary."""
    rng = random.Random(seed)
    items: list[dict[str, Any]] = []
    for index in range(count):
        unknown = (0.0, 0.0, 0.1, 0.4)[index % 4]
        item: dict[str, Any] = {}
        for fact in engine.vocabulary.facts:
            if rng.random() < unknown or (fact.name == "current_level" and index % 3 == 0):
                continue
            if fact.kind == "integer":
                item[fact.name] = rng.randint(fact.minimum or 0, fact.maximum or 0)
            else:
                item[fact.name] = rng.choice(fact.values)
        items.append(item)
    return items
