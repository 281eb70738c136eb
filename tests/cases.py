"""Readable clinical baselines shared by the table tests."""

from __future__ import annotations

from typing import Any

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
