"""The continuum example rule base: six levels of its own, decided as its criteria say.

Nothing here is about the shipped rule base: every level, fact and rule id comes
from ``examples/rulebases/continuum``, which shows that levels, vocabulary and
wording are rule-base data.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from typing import Any

import pytest

import levelcare
from conftest import EXAMPLES_DIR
from inprocess import run_levelcare
from levelcare import Decision, Engine
from levelcare._rulebase import load
from levelcare.testing import check_invariants

CONTINUUM = EXAMPLES_DIR / "rulebases" / "continuum"
RULEBASE = load(CONTINUUM)
LEVEL_IDS = ("outpatient", "intensive-outpatient", "day-treatment", "residential", "withdrawal-unit", "hospital")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.from_path(CONTINUUM)


# --- readable clinical baselines --------------------------------------------------------

# Every clinical fact known at its lowest need: no criterion holds.
NO_NEED: dict[str, Any] = {
    "harm_risk": "none",
    "withdrawal_risk": "none",
    "complicated_withdrawal_history": False,
    "medical_instability": False,
    "needs_24h_structure": False,
    "needs_daily_monitoring": False,
    "addiction_severity": "mild",
    "psychiatric_severity": "none",
    "relapse_risk": "low",
    "living_situation": "stable",
    "home_environment": "supportive",
    "support_system": "strong",
}

# Progress of someone ready to move to less care: every readiness sign holds.
READY: dict[str, Any] = {
    "recent_use": "none",
    "symptoms_trend": "improving",
    "withdrawal_complete": True,
    "relapse_prevention_skills": True,
    "goals_met": True,
    "weeks_at_current_level": 9,
}


def person(**changes: Any) -> dict[str, Any]:
    """A new admission with no clinical need, changed as given (None: the fact is unknown)."""
    return {k: v for k, v in {**NO_NEED, **changes}.items() if v is not None}


def patient(current_level: str, **changes: Any) -> dict[str, Any]:
    """Someone in treatment at ``current_level``, ready to step down unless changed."""
    return person(**{**READY, "current_level": current_level, **changes})


# --- decided cases --------------------------------------------------------------------------

ADMIT, UP, STAY, DOWN = "admit", "step-up", "continue", "step-down"

# (name, facts, level, transition, a rule that must be among the reasons)
DECIDED: list[tuple[str, dict[str, Any], str, str, str]] = [
    # New admissions, one or more per level, least intensive first.
    ("mild disorder, stable home, good support: counselling visits", person(), "outpatient", ADMIT, "OUT-1"),
    (
        "moderate disorder: intensive programme",
        person(addiction_severity="moderate"),
        "intensive-outpatient",
        ADMIT,
        "INT-1",
    ),
    (
        "mild disorder on a friend's sofa: intensive programme",
        person(living_situation="precarious"),
        "intensive-outpatient",
        ADMIT,
        "INT-4",
    ),
    (
        "severe disorder with a safe home and support: day treatment",
        person(addiction_severity="severe"),
        "day-treatment",
        ADMIT,
        "DAY-4",
    ),
    (
        "moderate withdrawal, a home and someone there: day treatment",
        person(withdrawal_risk="moderate"),
        "day-treatment",
        ADMIT,
        "DAY-2",
    ),
    (
        "moderate disorder with nowhere to sleep: residential",
        person(addiction_severity="moderate", living_situation="none"),
        "residential",
        ADMIT,
        "RES-3",
    ),
    (
        "clinician judges structure day and night is needed: residential",
        person(needs_24h_structure=True),
        "residential",
        ADMIT,
        "RES-1",
    ),
    (
        "severe disorder, nobody backing recovery: residential",
        person(addiction_severity="severe", support_system="none"),
        "residential",
        ADMIT,
        "RES-2",
    ),
    (
        "severe withdrawal expected: withdrawal unit",
        person(withdrawal_risk="severe"),
        "withdrawal-unit",
        ADMIT,
        "WDU-1",
    ),
    (
        "moderate withdrawal after past seizures: withdrawal unit",
        person(withdrawal_risk="moderate", complicated_withdrawal_history=True),
        "withdrawal-unit",
        ADMIT,
        "WDU-2",
    ),
    (
        "moderate withdrawal with nowhere to sleep: withdrawal unit, not residential",
        person(withdrawal_risk="moderate", living_situation="none", addiction_severity="moderate"),
        "withdrawal-unit",
        ADMIT,
        "WDU-3",
    ),
    (
        "severe withdrawal after past delirium: hospital",
        person(withdrawal_risk="severe", complicated_withdrawal_history=True),
        "hospital",
        ADMIT,
        "HOSP-3",
    ),
    ("physical illness needing hospital care: hospital", person(medical_instability=True), "hospital", ADMIT, "HOSP-1"),
    ("high danger of harm: hospital", person(harm_risk="high"), "hospital", ADMIT, "HOSP-2"),
    # People in treatment.
    (
        "counselling, severe withdrawal now: straight up to the withdrawal unit",
        patient("outpatient", withdrawal_risk="severe"),
        "withdrawal-unit",
        UP,
        "MOVE-UP",
    ),
    (
        "intensive programme, back to regular use and worsening: up one to day treatment",
        patient("intensive-outpatient", recent_use="relapse", symptoms_trend="worsening"),
        "day-treatment",
        UP,
        "ESC-1",
    ),
    (
        "residential, back to regular use and worsening: up one to the withdrawal unit",
        patient("residential", recent_use="relapse", symptoms_trend="worsening"),
        "withdrawal-unit",
        UP,
        "ESC-1",
    ),
    (
        "intensive programme, a single slip while worsening: stays",
        patient("intensive-outpatient", addiction_severity="moderate", recent_use="lapse", symptoms_trend="worsening"),
        "intensive-outpatient",
        STAY,
        "STAY",
    ),
    (
        "day treatment, still seen daily: stays",
        patient("day-treatment", needs_daily_monitoring=True),
        "day-treatment",
        STAY,
        "STAY",
    ),
    (
        "withdrawal unit, withdrawal not over: step down held back",
        patient("withdrawal-unit", withdrawal_complete=False),
        "withdrawal-unit",
        STAY,
        "READY-2",
    ),
    (
        "intensive programme, three weeks, goals not reached: step down held back",
        patient("intensive-outpatient", weeks_at_current_level=3, goals_met=False),
        "intensive-outpatient",
        STAY,
        "READY-3",
    ),
    (
        "residential, symptoms worsening: step down held back",
        patient("residential", symptoms_trend="worsening"),
        "residential",
        STAY,
        "READY-1",
    ),
    (
        "withdrawal over, still nowhere to sleep: down to residential",
        patient("withdrawal-unit", addiction_severity="moderate", living_situation="none"),
        "residential",
        DOWN,
        "RES-3",
    ),
    (
        "hospital, danger passed, mild disorder: bridged to the intensive programme",
        patient("hospital"),
        "intensive-outpatient",
        DOWN,
        "BRIDGE-1",
    ),
    (
        "withdrawal over, mild disorder: bridged to the intensive programme",
        patient("withdrawal-unit"),
        "intensive-outpatient",
        DOWN,
        "BRIDGE-1",
    ),
    (
        "residential, ready: bridged to the intensive programme",
        patient("residential"),
        "intensive-outpatient",
        DOWN,
        "BRIDGE-2",
    ),
    (
        "day treatment, severe disorder now moderate: down to the intensive programme",
        patient("day-treatment", addiction_severity="moderate"),
        "intensive-outpatient",
        DOWN,
        "INT-1",
    ),
    (
        "intensive programme, eight weeks, goals not reached: down to counselling",
        patient("intensive-outpatient", weeks_at_current_level=8, goals_met=False),
        "outpatient",
        DOWN,
        "READY-3",
    ),
]


@pytest.mark.parametrize(
    ("facts", "level", "transition", "because"), [row[1:] for row in DECIDED], ids=[row[0] for row in DECIDED]
)
def test_decided(engine: Engine, facts: dict[str, Any], level: str, transition: str, because: str) -> None:
    """Level, transition and status as the continuum's criteria say, with the deciding rule among the reasons."""
    decision = engine.decide(facts)
    assert decision.transition is not None
    assert (decision.status, decision.level, decision.transition.value) == ("complete", level, transition)
    assert decision.level_range == (decision.level, decision.level)
    assert decision.missing == ()
    assert because in [r.rule_id for r in decision.reasons]
    assert decision.program.level == level


def test_the_table_covers_every_level_and_every_kind_of_move() -> None:
    assert {level for _, _, level, _, _ in DECIDED} == set(LEVEL_IDS)
    admitted = {level for _, facts, level, _, _ in DECIDED if "current_level" not in facts}
    assert admitted == set(LEVEL_IDS)
    moves = {(transition, because) for _, _, _, transition, because in DECIDED}
    assert {(DOWN, "BRIDGE-1"), (DOWN, "BRIDGE-2"), (UP, "ESC-1"), (STAY, "READY-2"), (STAY, "READY-3")} <= moves


def test_imminent_harm_is_an_emergency_at_the_top_level(engine: Engine) -> None:
    decision = engine.decide(person(harm_risk="imminent"))
    assert (decision.level, decision.emergency) == ("hospital", True)
    assert "crisis_response" in decision.services
    assert not engine.decide(person(harm_risk="high")).emergency


def test_a_held_back_step_down_names_the_missing_sign_in_the_rule_base_s_wording(engine: Engine) -> None:
    decision = engine.decide(patient("withdrawal-unit", withdrawal_complete=False))
    held = next(r for r in decision.reasons if r.rule_id == "READY-2")
    assert held.statement == (
        "Step down waits until this holds: No withdrawal is under way: it has run its course, or there was none."
    )
    below = [r for r in decision.ruled_out if r.rule_id == "READY-2"]
    assert [r.level for r in below] == list(LEVEL_IDS[:4])
    assert below[0].statement.startswith("Outpatient counselling would not be enough: Step down waits")


def test_services_and_considerations_follow_the_decided_level(engine: Engine) -> None:
    decision = engine.decide(patient("withdrawal-unit", addiction_severity="moderate", living_situation="none"))
    assert {"housing_support", "discharge_planning"} <= set(decision.services)
    carer = engine.decide(person(needs_24h_structure=True, caregiver=True))
    assert [r.rule_id for r in carer.considerations] == ["NOTE-3"]
    worker = engine.decide(person(addiction_severity="moderate", employed_or_in_school=True))
    assert [r.rule_id for r in worker.considerations] == ["NOTE-1"]


# --- unknown facts ----------------------------------------------------------------------------

# (name, facts, lowest and highest level the unknown facts allow, the facts that can move it)
UNKNOWN: list[tuple[str, dict[str, Any], tuple[str, str], tuple[str, ...]]] = [
    (
        "expected withdrawal unknown, no history of complications",
        person(withdrawal_risk=None),
        ("outpatient", "withdrawal-unit"),
        ("withdrawal_risk",),
    ),
    (
        "expected withdrawal unknown after past seizures",
        person(withdrawal_risk=None, complicated_withdrawal_history=True),
        ("outpatient", "hospital"),
        ("withdrawal_risk",),
    ),
    (
        "severe withdrawal, history unknown",
        person(withdrawal_risk="severe", complicated_withdrawal_history=None),
        ("withdrawal-unit", "hospital"),
        ("complicated_withdrawal_history",),
    ),
    (
        "moderate disorder, housing unknown",
        person(addiction_severity="moderate", living_situation=None),
        ("intensive-outpatient", "residential"),
        ("living_situation",),
    ),
    (
        "withdrawal unit with nowhere to sleep, whether withdrawal is over unknown",
        patient("withdrawal-unit", addiction_severity="moderate", living_situation="none", withdrawal_complete=None),
        ("residential", "withdrawal-unit"),
        ("withdrawal_complete",),
    ),
    (
        "nothing known at all",
        {},
        ("outpatient", "hospital"),
        (
            "harm_risk",
            "withdrawal_risk",
            "complicated_withdrawal_history",
            "medical_instability",
            "needs_24h_structure",
            "needs_daily_monitoring",
            "addiction_severity",
            "psychiatric_severity",
            "relapse_risk",
            "living_situation",
            "home_environment",
            "support_system",
        ),
    ),
]


@pytest.mark.parametrize(
    ("facts", "level_range", "missing"), [row[1:] for row in UNKNOWN], ids=[row[0] for row in UNKNOWN]
)
def test_unknown_facts_give_the_range_and_the_facts_that_decide_it(
    engine: Engine, facts: dict[str, Any], level_range: tuple[str, str], missing: tuple[str, ...]
) -> None:
    decision = engine.decide(facts)
    assert (decision.status, decision.level, decision.transition) == ("data-required", None, None)
    assert decision.level_range == level_range
    assert decision.missing == missing
    # The programme shown is the one at the top of the range.
    assert decision.program.level == level_range[1]


def test_a_known_fact_that_cannot_matter_leaves_the_decision_complete(engine: Engine) -> None:
    """Housing is unknown, but expected severe withdrawal already puts the person above residential."""
    decision = engine.decide(person(withdrawal_risk="severe", living_situation=None))
    assert (decision.status, decision.level) == ("complete", "withdrawal-unit")


# --- the rule base as a whole -------------------------------------------------------------------


def test_it_loads_with_its_own_levels_and_wording(engine: Engine) -> None:
    assert engine.levels.ids == LEVEL_IDS
    assert engine.levels.lowest == "outpatient"
    assert engine.levels.highest == "hospital"
    assert [engine.levels[i].rank for i in LEVEL_IDS] == list(range(6))
    assert engine.levels["withdrawal-unit"].label == "withdrawal unit"
    assert engine.levels["withdrawal-unit"] > engine.levels["residential"]
    assert engine.rulebase.name == "continuum-example"
    assert engine.vocabulary["current_level"].values == LEVEL_IDS
    assert set(RULEBASE.programs) == set(LEVEL_IDS)
    for new in ("complicated_withdrawal_history", "living_situation", "withdrawal_complete"):
        assert new in engine.vocabulary
    assert "needs_24h_supervision" not in engine.vocabulary
    assert RULEBASE.wording.say("none_holds", level=engine.levels["hospital"], rules="HOSP-1") == (
        "Not hospital: none of its criteria holds (HOSP-1)."
    )


def test_current_level_lists_the_declared_levels_in_order() -> None:
    declared = tomllib.loads((CONTINUUM / "levels.toml").read_text(encoding="utf-8"))["level"]
    facts = tomllib.loads((CONTINUUM / "vocabulary.toml").read_text(encoding="utf-8"))["fact"]
    current = next(f for f in facts if f["name"] == "current_level")
    assert current["values"] == [level["id"] for level in declared] == list(LEVEL_IDS)


def test_it_cites_no_licensed_criteria() -> None:
    """Our own words only: no licensed criteria sets by name and no numbered levels."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(CONTINUUM.rglob("*")) if p.is_file())
    for name in ("ASAM", "LOCUS", "InterQual", "MCG"):
        assert not re.search(rf"\b{name}\b", text, re.IGNORECASE), name
    assert not re.search(r"\blevel\s+\d+(\.\d+)?\b", text, re.IGNORECASE)


def test_verify_finds_nothing(engine: Engine) -> None:
    for target in (CONTINUUM, engine):
        report = levelcare.verify(target)
        assert report.findings == ()
        assert report.ok


def test_check_command_reports_no_findings() -> None:
    result = _run("check", str(CONTINUUM))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("0 errors, 0 warnings.")
    assert "Rule base continuum-example 0.1.0" in result.stdout


# Every need-ordered fact at each value is tried before the drawn examples, so even
# the first example takes long: the kit's quick run on a second rule base is
# tests/test_generated_levels.py's.
@pytest.mark.slow
@pytest.mark.parametrize("examples", [60])
def test_invariants_hold(engine: Engine, examples: int) -> None:
    check_invariants(engine, max_examples=examples)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_levelcare(*args)


def test_rules_reference_renders_every_level_most_intensive_first(engine: Engine) -> None:
    result = _run("rules", "--rules", str(CONTINUUM))
    assert result.returncode == 0, result.stderr
    headings = [line for line in result.stdout.splitlines() if line.startswith("## ") and "(`" in line]
    expected = [f"## {lvl.label[0].upper()}{lvl.label[1:]} (`{lvl.id}`)" for lvl in reversed(engine.levels)]
    assert headings == expected
    for rule in RULEBASE.rules:
        assert f"### {rule.id}\n" in result.stdout


def test_schema_lists_the_levels_and_the_new_facts(engine: Engine) -> None:
    result = _run("schema", "--rules", str(CONTINUUM))
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["properties"]["current_level"]["enum"] == [*LEVEL_IDS, None]
    assert set(schema["properties"]) == {f.name for f in engine.vocabulary.facts}
    assert schema["properties"]["living_situation"]["enum"] == ["stable", "precarious", "none", None]


def test_decide_on_the_worked_assessment() -> None:
    path = CONTINUUM / "assessments" / "after-withdrawal-no-home.json"
    result = _run("decide", "--rules", str(CONTINUUM), "--json", str(path))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["level"], data["transition"], data["status"]) == ("residential", "step-down", "complete")
    assert data["rulebase"]["name"] == "continuum-example"


@pytest.mark.parametrize(
    "facts",
    [row[1] for row in DECIDED] + [row[1] for row in UNKNOWN] + [person(harm_risk="imminent")],
    ids=[row[0] for row in DECIDED] + [row[0] for row in UNKNOWN] + ["emergency"],
)
def test_decisions_round_trip_through_a_dict(engine: Engine, facts: dict[str, Any]) -> None:
    decision = engine.decide(facts)
    again = Decision.from_dict(decision.to_dict(), levels=engine.levels)
    assert again == decision
    assert again.to_dict() == decision.to_dict()
    assert again.level_range[1].label == engine.levels[again.level_range[1].id].label
