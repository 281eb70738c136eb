"""One table row per criterion: a case where it decides, and a near miss where it does not."""

from __future__ import annotations

from typing import Any

import pytest

import levelcare
from cases import person
from conftest import SHIPPED_LEVELS

# (criterion, facts where it decides, level, near-miss facts, near-miss level)
CRITERIA: list[tuple[str, dict[str, Any], str, dict[str, Any], str]] = [
    ("IN-1", person(harm_risk="high"), "inpatient", person(harm_risk="moderate"), "php"),
    ("IN-2", person(withdrawal_risk="severe"), "inpatient", person(withdrawal_risk="moderate"), "php"),
    ("IN-3", person(medical_instability=True), "inpatient", person(medical_instability=False), "outpatient"),
    ("IN-4", person(needs_24h_supervision=True), "inpatient", person(needs_24h_supervision=False), "outpatient"),
    (
        "IN-5",
        person(addiction_severity="severe", support_system="none"),
        "inpatient",
        person(addiction_severity="severe", support_system="limited"),
        "php",
    ),
    (
        "IN-5",
        person(addiction_severity="severe", home_environment="unsafe"),
        "inpatient",
        person(addiction_severity="moderate", home_environment="unsafe"),
        "php",
    ),
    (
        "IN-6",
        person(psychiatric_severity="severe", home_environment="unsafe"),
        "inpatient",
        person(psychiatric_severity="severe", home_environment="unstable"),
        "php",
    ),
    ("PH-1", person(needs_daily_monitoring=True), "php", person(needs_daily_monitoring=False), "outpatient"),
    ("PH-2", person(withdrawal_risk="moderate"), "php", person(withdrawal_risk="mild"), "outpatient"),
    ("PH-3", person(harm_risk="moderate"), "php", person(harm_risk="low"), "outpatient"),
    ("PH-4", person(addiction_severity="severe"), "php", person(addiction_severity="moderate"), "iop"),
    ("PH-5", person(psychiatric_severity="severe"), "php", person(psychiatric_severity="moderate"), "iop"),
    (
        "PH-6",
        person(addiction_severity="moderate", home_environment="unsafe"),
        "php",
        person(addiction_severity="mild", home_environment="unsafe"),
        "iop",
    ),
    (
        "PH-7",
        person(relapse_risk="high", addiction_severity="moderate", home_environment="unstable"),
        "php",
        person(relapse_risk="moderate", addiction_severity="moderate", home_environment="unstable"),
        "iop",
    ),
    (
        "PH-7",
        person(relapse_risk="high", addiction_severity="moderate", support_system="none"),
        "php",
        person(relapse_risk="high", addiction_severity="moderate", support_system="limited"),
        "iop",
    ),
    ("IO-1", person(addiction_severity="moderate"), "iop", person(addiction_severity="mild"), "outpatient"),
    ("IO-2", person(psychiatric_severity="moderate"), "iop", person(psychiatric_severity="mild"), "outpatient"),
    ("IO-3", person(relapse_risk="high"), "iop", person(relapse_risk="moderate"), "outpatient"),
    ("IO-4", person(home_environment="unstable"), "iop", person(home_environment="neutral"), "outpatient"),
    ("IO-4", person(support_system="none"), "iop", person(support_system="limited"), "outpatient"),
]


def _ids(decision: levelcare.Decision) -> list[str]:
    return [r.rule_id for r in decision.reasons]


@pytest.mark.parametrize(
    ("rule_id", "facts", "level", "near_facts", "near_level"),
    CRITERIA,
    ids=[f"{row[0]}-{i}" for i, row in enumerate(CRITERIA)],
)
def test_criterion_decides_and_near_miss_does_not(
    rule_id: str, facts: dict[str, Any], level: str, near_facts: dict[str, Any], near_level: str
) -> None:
    """The criterion sets the level and leads the reasons; one step short, it is absent."""
    decision = levelcare.decide(facts)
    assert (decision.level.value, decision.status) == (level, "complete")  # type: ignore[union-attr]
    assert _ids(decision)[0] == rule_id
    assert decision.reasons[0].sources
    near = levelcare.decide(near_facts)
    assert near.level.value == near_level  # type: ignore[union-attr]
    assert rule_id not in _ids(near)


def test_reason_cites_only_the_facts_the_rule_relied_on() -> None:
    """IN-5 fired through missing support cites severity and support, not the home."""
    decision = levelcare.decide(person(addiction_severity="severe", support_system="none"))
    in5 = next(r for r in decision.reasons if r.rule_id == "IN-5")
    assert dict(in5.facts) == {"addiction_severity": "severe", "support_system": "none"}
    assert in5.sources == ("iop-role", "glendale-iop", "jc-iop")
    assert in5.level is SHIPPED_LEVELS["inpatient"]


def test_op1_decides_when_no_criterion_holds() -> None:
    """With no need at all, OP-1 decides outpatient and every higher level is ruled out by name."""
    decision = levelcare.decide(person())
    assert decision.level is SHIPPED_LEVELS["outpatient"]
    assert _ids(decision) == ["OP-1"]
    assert [(r.level.value, r.rule_id) for r in decision.ruled_out if r.level] == [
        ("iop", "IO-1, IO-2, IO-3, IO-4"),
        ("php", "PH-1, PH-2, PH-3, PH-4, PH-5, PH-6, PH-7"),
        ("inpatient", "IN-1, IN-2, IN-3, IN-4, IN-5, IN-6"),
    ]


def test_em1_emergency_and_inpatient() -> None:
    """Imminent harm raises the emergency flag, leads the reasons and requires inpatient care."""
    decision = levelcare.decide(person(harm_risk="imminent"))
    assert decision.emergency is True
    assert decision.level is SHIPPED_LEVELS["inpatient"]
    assert _ids(decision)[:2] == ["EM-1", "IN-1"]
    assert "crisis_response" in decision.services


def test_em1_near_miss_high_harm_is_not_an_emergency() -> None:
    """High (not imminent) harm needs inpatient care but is not an emergency."""
    decision = levelcare.decide(person(harm_risk="high"))
    assert decision.emergency is False
    assert "EM-1" not in _ids(decision)
    assert "crisis_response" not in decision.services


def test_lower_levels_are_ruled_out_by_the_deciding_rule() -> None:
    """Each level below the decision names the rule that required more."""
    decision = levelcare.decide(person(withdrawal_risk="severe"))
    lower = [r for r in decision.ruled_out if r.level and r.level < SHIPPED_LEVELS["inpatient"]]
    assert [(r.level.value, r.rule_id) for r in lower if r.level] == [
        ("outpatient", "IN-2"),
        ("iop", "IN-2"),
        ("php", "IN-2"),
    ]
    assert all(r.facts == {"withdrawal_risk": "severe"} for r in lower)
