"""Unknown facts: level_range, status and missing, checked against brute force."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import levelcare
from cases import patient, person
from conftest import SHIPPED_LEVELS
from levelcare.testing import assessments

ENGINE = levelcare.Engine.default()
ANALYSIS = ENGINE._analysis
CLINICAL = [f.name for f in ENGINE.vocabulary.group("clinical")]


def _relevant(facts: dict[str, Any]) -> list[str]:
    return list(
        ANALYSIS.relevant(None if facts.get("current_level") is None else ENGINE.levels[facts["current_level"]])
    )


def _brute_force(facts: dict[str, Any], unknown: list[str]) -> tuple[set[str], list[levelcare.Level]]:
    """Decide every combination of the unknown facts' values (one value per cell for integers)."""
    domains = [ANALYSIS.cells[name] for name in unknown]
    levels: dict[tuple[int, ...], levelcare.Level] = {}
    for choice in itertools.product(*[range(len(d)) for d in domains]):
        filled = {**facts, **{n: domains[i][c] for i, (n, c) in enumerate(zip(unknown, choice))}}
        decision = ENGINE.decide(filled)
        assert decision.level is not None
        levels[choice] = decision.level
    missing = set()
    for choice, level in levels.items():
        for position, name in enumerate(unknown):
            for other in range(len(domains[position])):
                changed = (*choice[:position], other, *choice[position + 1 :])
                if levels[changed] != level:
                    missing.add(name)
    return missing, list(levels.values())


@given(data=st.data(), facts=assessments(complete=True))
def test_missing_and_range_are_exact_against_brute_force(data: st.DataObject, facts: dict[str, Any]) -> None:
    """With up to four unknown facts, missing and level_range equal what enumeration finds."""
    relevant = _relevant(facts)
    unknown = data.draw(st.lists(st.sampled_from(relevant), min_size=1, max_size=4, unique=True), label="unknown")
    partial = {k: v for k, v in facts.items() if k not in unknown}
    decision = ENGINE.decide(partial)
    missing, levels = _brute_force(partial, unknown)
    assert decision.level_range == (min(levels), max(levels))
    order = {name: i for i, name in enumerate(relevant)}
    assert list(decision.missing) == sorted(missing, key=order.__getitem__)
    if len(set(levels)) == 1:
        assert (decision.status, decision.level) == ("complete", levels[0])
    else:
        assert (decision.status, decision.level, decision.transition) == ("data-required", None, None)


@given(assessments())
def test_status_range_and_missing_agree(facts: dict[str, Any]) -> None:
    """complete exactly when the range is one level; data-required means no level and something missing."""
    decision = ENGINE.decide(facts)
    low, high = decision.level_range
    assert low <= high
    if decision.status == "complete":
        assert low == high == decision.level
        assert decision.missing == ()
        assert decision.transition is not None
    else:
        assert decision.status == "data-required"
        assert low < high
        assert decision.level is None and decision.transition is None
        assert decision.missing
        assert set(decision.missing) <= set(_relevant(facts))
        assert not set(decision.missing) & {k for k, v in facts.items() if v is not None}


@given(assessments())
def test_emergency_only_when_imminent_harm_is_known(facts: dict[str, Any]) -> None:
    """An emergency is declared exactly when harm_risk is known to be imminent."""
    assert ENGINE.decide(facts).emergency is (facts.get("harm_risk") == "imminent")


def test_everything_unknown() -> None:
    """With no facts at all, every clinical fact is missing and any level is possible."""
    decision = levelcare.decide({})
    assert decision.status == "data-required"
    assert decision.level_range == (SHIPPED_LEVELS["outpatient"], SHIPPED_LEVELS["inpatient"])
    assert list(decision.missing) == CLINICAL
    assert decision.emergency is False
    assert decision.reasons == ()


def test_everything_unknown_in_treatment_lists_progress_facts_too() -> None:
    """In treatment, the progress facts that can change the level are missing as well."""
    decision = levelcare.decide({"current_level": "iop"})
    assert decision.status == "data-required"
    assert list(decision.missing) == [
        *CLINICAL,
        "weeks_at_current_level",
        "treatment_stage",
        "goals_met",
        "relapse_prevention_skills",
        "recent_use",
        "symptoms_trend",
    ]


def test_one_decisive_fact_is_enough() -> None:
    """Severe withdrawal alone decides inpatient, however much else is unknown."""
    decision = levelcare.decide({"withdrawal_risk": "severe"})
    assert (decision.status, decision.level) == ("complete", SHIPPED_LEVELS["inpatient"])
    assert [r.rule_id for r in decision.reasons] == ["IN-2"]


def test_irrelevant_unknowns_are_not_missing() -> None:
    """With moderate addiction known, the facts that can only add IOP criteria are not missing."""
    decision = levelcare.decide({**person(addiction_severity="moderate"), "relapse_risk": None, "support_system": None})
    # PH-7 can still fire (high relapse risk with no support), so both matter.
    assert decision.missing == ("relapse_risk", "support_system")
    decision = levelcare.decide({**person(addiction_severity="moderate"), "psychiatric_severity": None})
    assert decision.missing == ("psychiatric_severity",)
    decision = levelcare.decide(
        {**person(addiction_severity="moderate", needs_daily_monitoring=True), "relapse_risk": None}
    )
    assert (decision.status, decision.missing) == ("complete", ())


def test_progress_unknowns_when_step_down_depends_on_them() -> None:
    """In IOP with everything else ready, unknown stage is the one fact that matters."""
    decision = levelcare.decide({**patient("iop"), "treatment_stage": None})
    assert (decision.status, decision.missing) == ("data-required", ("treatment_stage",))
    assert decision.level_range == (SHIPPED_LEVELS["outpatient"], SHIPPED_LEVELS["iop"])


def test_unknown_weeks_do_not_matter_once_goals_are_met() -> None:
    """With goals met, weeks in IOP cannot change the step down."""
    decision = levelcare.decide({**patient("iop"), "weeks_at_current_level": None})
    assert (decision.status, decision.level) == ("complete", SHIPPED_LEVELS["outpatient"])


def test_data_required_reasons_cite_only_known_facts() -> None:
    """Reasons given while data is required never rest on an unknown fact."""
    decision = levelcare.decide({"addiction_severity": "moderate", "harm_risk": "none"})
    assert decision.status == "data-required"
    assert [r.rule_id for r in decision.reasons] == ["IO-1"]
    assert all(value is not None for r in decision.reasons for value in r.facts.values())
    assert [r.level.value for r in decision.ruled_out if r.level] == ["outpatient"]
