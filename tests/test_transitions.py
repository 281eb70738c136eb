"""Transitions (TR-1..TR-6), considerations (CF-1..CF-5) and services, each with a near miss."""

from __future__ import annotations

from typing import Any

import pytest

import levelcare
from cases import patient, person
from conftest import SHIPPED_LEVELS

Level = levelcare.Level


def _decide(facts: dict[str, Any]) -> tuple[str | None, str | None, list[str]]:
    decision = levelcare.decide(facts)
    assert decision.status == "complete"
    return (
        decision.level.value if decision.level else None,
        decision.transition.value if decision.transition else None,
        [r.rule_id for r in decision.reasons],
    )


# (name, facts, level, transition, rule that must be among the reasons, rule that must not)
TRANSITIONS: list[tuple[str, dict[str, Any], str, str, str | None, str | None]] = [
    (
        "TR-1 relapse with worsening steps up from IOP",
        patient("iop", recent_use="relapse", symptoms_trend="worsening"),
        "php",
        "step-up",
        "TR-1",
        None,
    ),
    (
        "TR-1 near miss: a lapse with worsening does not raise the level",
        patient("iop", recent_use="lapse", symptoms_trend="worsening"),
        "iop",
        "continue",
        "TR-4",
        "TR-1",
    ),
    (
        "TR-1 near miss: relapse with stable symptoms does not raise the level",
        patient("iop", recent_use="relapse", symptoms_trend="stable"),
        "iop",
        "continue",
        "TR-4",
        "TR-1",
    ),
    (
        "TR-1 at inpatient stays inpatient",
        patient("inpatient", recent_use="relapse", symptoms_trend="worsening"),
        "inpatient",
        "continue",
        "TR-1",
        None,
    ),
    (
        "TR-1 from outpatient goes to IOP",
        patient("outpatient", recent_use="relapse", symptoms_trend="worsening"),
        "iop",
        "step-up",
        "TR-1",
        None,
    ),
    (
        "TR-2 indicated above current steps up",
        patient("outpatient", addiction_severity="moderate"),
        "iop",
        "step-up",
        "TR-2",
        None,
    ),
    (
        "TR-2 steps up straight to the indicated level",
        patient("iop", withdrawal_risk="severe"),
        "inpatient",
        "step-up",
        "IN-2",
        None,
    ),
    (
        "TR-3 indicated equal to current continues",
        patient("iop", addiction_severity="moderate"),
        "iop",
        "continue",
        "TR-3",
        "TR-2",
    ),
    (
        "TR-3 near miss: indicated below current steps down",
        patient("php", addiction_severity="moderate"),
        "iop",
        "step-down",
        "TR-4",
        "TR-3",
    ),
    ("TR-4 all signs hold: step down", patient("php", addiction_severity="moderate"), "iop", "step-down", "TR-4", None),
    ("TR-5 bridge: PHP steps down no lower than IOP", patient("php"), "iop", "step-down", "TR-5", None),
    ("TR-5 bridge: inpatient steps down no lower than IOP", patient("inpatient"), "iop", "step-down", "TR-5", None),
    ("TR-5 near miss: IOP steps down to outpatient", patient("iop"), "outpatient", "step-down", "TR-6", "TR-5"),
    (
        "TR-6 early recovery keeps IOP",
        patient("iop", treatment_stage="early_recovery"),
        "iop",
        "continue",
        "TR-6",
        None,
    ),
    (
        "TR-6 under 12 weeks and goals unmet keeps IOP",
        patient("iop", weeks_at_current_level=11, goals_met=False),
        "iop",
        "continue",
        "TR-6",
        None,
    ),
    (
        "TR-6 near miss: 12 weeks with goals unmet steps down",
        patient("iop", weeks_at_current_level=12, goals_met=False),
        "outpatient",
        "step-down",
        None,
        "TR-5",
    ),
    (
        "TR-6 near miss: goals met before 12 weeks steps down",
        patient("iop", weeks_at_current_level=3, goals_met=True),
        "outpatient",
        "step-down",
        None,
        "TR-5",
    ),
    (
        "TR-6 does not apply to leaving PHP",
        patient("php", treatment_stage="engagement", goals_met=False, weeks_at_current_level=1),
        "iop",
        "step-down",
        "TR-5",
        "TR-6",
    ),
    ("outpatient with no need continues", patient("outpatient"), "outpatient", "continue", "TR-3", None),
]


@pytest.mark.parametrize(
    ("facts", "level", "transition", "present", "absent"),
    [row[1:] for row in TRANSITIONS],
    ids=[row[0] for row in TRANSITIONS],
)
def test_transition(
    facts: dict[str, Any], level: str, transition: str, present: str | None, absent: str | None
) -> None:
    """Level and transition as the transition rules say, with the deciding rule among the reasons."""
    got_level, got_transition, ids = _decide(facts)
    assert (got_level, got_transition) == (level, transition)
    if present:
        assert present in ids
    if absent:
        assert absent not in ids


# Each readiness sign of TR-4 unmet alone, for someone who would otherwise step down.
UNMET_SIGNS: list[tuple[str, dict[str, Any], str]] = [
    ("harm above low", patient("inpatient", harm_risk="moderate"), "harm_risk"),
    ("withdrawal above mild", patient("inpatient", withdrawal_risk="moderate"), "withdrawal_risk"),
    ("symptoms worsening", patient("php", symptoms_trend="worsening"), "symptoms_trend"),
    ("return to regular use", patient("php", recent_use="relapse"), "recent_use"),
    ("no support at all", patient("php", support_system="none"), "support_system"),
    ("skills not practised", patient("php", relapse_prevention_skills=False), "relapse_prevention_skills"),
]


@pytest.mark.parametrize(("facts", "fact"), [row[1:] for row in UNMET_SIGNS], ids=[row[0] for row in UNMET_SIGNS])
def test_tr4_unmet_sign_holds_back_the_step_down(facts: dict[str, Any], fact: str) -> None:
    """One unmet sign keeps the current level; that sign is the leading reason, citing its fact."""
    decision = levelcare.decide(facts)
    assert decision.transition is levelcare.Transition.CONTINUE
    assert decision.level is levelcare.Engine.default().levels[facts["current_level"]]
    first = decision.reasons[0]
    assert first.rule_id == "TR-4"
    assert list(first.facts) == [fact]
    assert first.facts[fact] == facts[fact]
    assert "not yet met" in first.statement


def test_tr4_every_unmet_sign_is_its_own_reason() -> None:
    """Three unmet signs give three TR-4 reasons, in rule order."""
    # Symptoms stay stable: relapse with worsening would raise the level through TR-1 instead.
    decision = levelcare.decide(
        patient(
            "php", symptoms_trend="stable", recent_use="relapse", relapse_prevention_skills=False, support_system="none"
        )
    )
    held = [r for r in decision.reasons if r.rule_id == "TR-4"]
    assert [list(r.facts) for r in held] == [["recent_use"], ["support_system"], ["relapse_prevention_skills"]]


def test_tr6_each_unmet_condition_is_its_own_reason() -> None:
    """Early recovery and too few weeks without goals met are two TR-6 reasons."""
    decision = levelcare.decide(
        patient("iop", treatment_stage="early_recovery", weeks_at_current_level=6, goals_met=False)
    )
    held = [r for r in decision.reasons if r.rule_id == "TR-6"]
    assert [dict(r.facts) for r in held] == [
        {"treatment_stage": "early_recovery"},
        {"weeks_at_current_level": 6, "goals_met": False},
    ]


def test_lapse_alone_never_raises_the_level() -> None:
    """A brief lapse at any level never gives a level above the one without it."""
    for current in ("outpatient", "iop", "php", "inpatient"):
        for trend in ("improving", "stable", "worsening"):
            with_lapse = levelcare.decide(patient(current, recent_use="lapse", symptoms_trend=trend))
            without = levelcare.decide(patient(current, recent_use="none", symptoms_trend=trend))
            assert with_lapse.level == without.level, (current, trend)


def test_admission_ignores_progress_facts() -> None:
    """Without current_level the decision is an admission; progress facts change nothing."""
    plain = levelcare.decide(person(addiction_severity="moderate"))
    with_progress = levelcare.decide(
        person(addiction_severity="moderate", recent_use="relapse", symptoms_trend="worsening")
    )
    assert plain.transition is levelcare.Transition.ADMIT
    assert (with_progress.level, with_progress.transition) == (plain.level, plain.transition)


# --- considerations -------------------------------------------------------------

CONSIDERATIONS: list[tuple[str, dict[str, Any], str | None]] = [
    ("CF-1 IOP around work", person(addiction_severity="moderate", employed_or_in_school=True), "CF-1"),
    ("CF-1 IOP around caregiving", person(addiction_severity="moderate", caregiver=True), "CF-1"),
    (
        "CF-1 near miss: IOP, neither working nor caring",
        person(addiction_severity="moderate", employed_or_in_school=False, caregiver=False),
        None,
    ),
    ("CF-1 near miss: outpatient while working", person(employed_or_in_school=True), None),
    ("CF-2 PHP is a barrier for a worker", person(needs_daily_monitoring=True, employed_or_in_school=True), "CF-2"),
    ("CF-2 near miss: PHP, neither working nor caring", person(needs_daily_monitoring=True, caregiver=False), None),
    ("CF-3 hours below the IOP minimum", person(addiction_severity="moderate", hours_available_per_week=8), "CF-3"),
    (
        "CF-3 near miss: hours at the IOP minimum",
        person(addiction_severity="moderate", hours_available_per_week=9),
        None,
    ),
    ("CF-4 days below the IOP minimum", person(addiction_severity="moderate", days_available_per_week=2), "CF-4"),
    ("CF-4 near miss: days at the IOP minimum", person(addiction_severity="moderate", days_available_per_week=3), None),
    (
        "CF-5 under 12 weeks continuing IOP",
        patient("iop", addiction_severity="moderate", weeks_at_current_level=11),
        "CF-5",
    ),
    (
        "CF-5 near miss: 12 weeks continuing IOP",
        patient("iop", addiction_severity="moderate", weeks_at_current_level=12),
        None,
    ),
    (
        "CF-5 near miss: stepping up, not continuing",
        patient("outpatient", addiction_severity="moderate", weeks_at_current_level=2),
        None,
    ),
]


@pytest.mark.parametrize(
    ("facts", "rule_id"), [row[1:] for row in CONSIDERATIONS], ids=[row[0] for row in CONSIDERATIONS]
)
def test_consideration(facts: dict[str, Any], rule_id: str | None) -> None:
    """The consideration appears exactly when its condition holds, with its sources."""
    decision = levelcare.decide(facts)
    ids = [c.rule_id for c in decision.considerations]
    if rule_id is None:
        assert ids == []
    else:
        assert ids == [rule_id]
        assert decision.considerations[0].sources
        assert decision.considerations[0].level is None


def test_considerations_never_change_the_decision() -> None:
    """A barrier (CF-3, CF-4) is reported; the level is not lowered to fit it."""
    barrier = levelcare.decide(
        person(needs_daily_monitoring=True, hours_available_per_week=2, days_available_per_week=1)
    )
    assert barrier.level is SHIPPED_LEVELS["php"]
    assert [c.rule_id for c in barrier.considerations] == ["CF-3", "CF-4"]
    assert barrier.program.hours_per_week == (20, 35)


# --- services ---------------------------------------------------------------------

ALWAYS = ["individual_therapy", "group_therapy", "relapse_prevention"]
SERVICES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("always", person(), ALWAYS),
    ("crisis response for imminent harm", person(harm_risk="imminent"), [*ALWAYS, "crisis_response"]),
    ("withdrawal management from moderate", person(withdrawal_risk="moderate"), [*ALWAYS, "withdrawal_management"]),
    ("no withdrawal management when mild", person(withdrawal_risk="mild"), ALWAYS),
    ("dual diagnosis from mild", person(psychiatric_severity="mild"), [*ALWAYS, "dual_diagnosis"]),
    ("family therapy", person(family_involved=True), [*ALWAYS, "family_therapy"]),
    ("medication management", person(medication_indicated=True), [*ALWAYS, "medication_management"]),
    (
        "sober living for an unstable home in IOP",
        person(home_environment="unstable"),
        [*ALWAYS, "sober_living_referral"],
    ),
    ("no sober living referral at PHP", person(home_environment="unstable", needs_daily_monitoring=True), ALWAYS),
    ("motivational interviewing for low motivation", person(motivation="low"), [*ALWAYS, "motivational_interviewing"]),
    ("none for moderate motivation", person(motivation="moderate"), ALWAYS),
]


@pytest.mark.parametrize(("facts", "services"), [row[1:] for row in SERVICES], ids=[row[0] for row in SERVICES])
def test_services(facts: dict[str, Any], services: list[str]) -> None:
    """Recommended services, in rule-base order."""
    assert list(levelcare.decide(facts).services) == services


# --- programme --------------------------------------------------------------------


def test_iop_programme() -> None:
    """IOP is 9-19 hours over 3-5 days, with the 90-day recommended minimum stated."""
    program = levelcare.decide(person(addiction_severity="moderate")).program
    assert (program.level, program.hours_per_week, program.days_per_week) == (SHIPPED_LEVELS["iop"], (9, 19), (3, 5))
    assert program.recommended_minimum_days == 90
    assert "90 days" in program.typical_length
    assert "iop-structure" in program.sources


def test_programme_follows_the_top_of_the_range_when_data_is_required() -> None:
    """Without a level, the programme describes the most intensive level still possible."""
    decision = levelcare.decide({"addiction_severity": "moderate"})
    assert decision.level is None
    assert decision.program.level is decision.level_range[1]
