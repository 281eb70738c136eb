"""levelcare.testing: the strategies draw what they promise, and each invariant check catches its violation."""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import Phase, find, given, settings

import levelcare
from conftest import RULES_DIR, SHIPPED_LEVELS
from levelcare import Decision, Engine, InvalidAssessment
from levelcare.testing import (
    assessments,
    check_candidacy_neutral,
    check_deterministic,
    check_emergency,
    check_invariants,
    check_monotone,
    check_rejected,
    check_total,
    check_unknowns,
    invalid_assessments,
)


def seeded(tmp_path: Path, file: str, old: str, new: str) -> Engine:
    """An engine for a copy of the shipped rules with one seeded bug."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    path = target / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    return Engine.from_path(target)


def lowest_need(engine: Engine) -> dict[str, Any]:
    """Every clinical fact at its lowest need."""
    return {f.name: f.values[0] for f in engine.vocabulary.facts if f.group == "clinical"}


# --- strategies ------------------------------------------------------------------------


def bad_keys(engine: Engine, data: Mapping[Any, Any]) -> list[Any]:
    """The keys of ``data`` that make it invalid, judged from the vocabulary."""
    vocabulary = engine.vocabulary
    found = []
    for name, value in data.items():
        unknown = not isinstance(name, str) or name not in vocabulary
        if unknown or (value is not None and vocabulary[name].check(value) is not None):
            found.append(name)
    return found


@given(invalid_assessments())
def test_every_invalid_input_is_rejected_naming_each_problem(data: object) -> None:
    """Each drawn input is rejected with InvalidAssessment, one problem per mistake."""
    error = check_rejected(data)
    engine = Engine.default()
    if isinstance(data, Mapping):
        wrong = bad_keys(engine, data)
        assert wrong
        assert len(error.problems) == len(wrong)
        named = {p.fact for p in error.problems}
        assert {name for name in wrong if isinstance(name, str) and len(name) <= 40} <= named
    else:
        assert [p.fact for p in error.problems] == [""]


def _kind_of_mistake(engine: Engine, name: object, value: object) -> str | None:
    """Which kind of mistake one entry of an assessment is, judged from the vocabulary."""
    vocabulary = engine.vocabulary
    if not isinstance(name, str):
        return "a key that is not a string"
    if name not in vocabulary:
        return (
            "a misspelt fact" if difflib.get_close_matches(name, vocabulary.by_name, cutoff=0.8) else "an unknown fact"
        )
    fact = vocabulary[name]
    if value is None or fact.check(value) is None:
        return None
    if fact.kind == "boolean" and isinstance(value, str):
        return "a string for a boolean"
    if fact.kind == "integer" and isinstance(value, float):
        return "a number that is not whole"
    if fact.kind == "integer" and isinstance(value, bool):
        return "a boolean for an integer"
    if fact.kind == "integer" and isinstance(value, int):
        return "an integer out of range"
    if fact.kind == "ordinal" and isinstance(value, str):
        return "a misspelt value"
    return "a value of the wrong type"


QUICK = settings(phases=[Phase.generate], database=None, max_examples=1000)
KINDS = [
    "a misspelt fact",
    "a string for a boolean",
    "a number that is not whole",
    "a boolean for an integer",
    "an integer out of range",
    "a misspelt value",
    "a key that is not a string",
]


@pytest.mark.parametrize("kind", KINDS)
def test_the_invalid_strategy_draws_each_kind_of_mistake(kind: str) -> None:
    """Each kind of mistake the fact contract names is drawn."""
    engine = Engine.default()

    def has(data: object) -> bool:
        return isinstance(data, Mapping) and any(_kind_of_mistake(engine, n, v) == kind for n, v in data.items())

    assert has(find(invalid_assessments(), has, settings=QUICK))


def test_the_invalid_strategy_draws_inputs_that_are_not_mappings() -> None:
    """Lists, strings, numbers and None are drawn too."""
    for kind in (list, str, int, type(None)):
        found = find(invalid_assessments(), lambda d, kind=kind: type(d) is kind, settings=QUICK)
        assert type(found) is kind


@pytest.mark.parametrize("weeks", [11, 12])
def test_integers_are_drawn_at_the_thresholds_the_rules_test(weeks: int) -> None:
    """Both sides of TR-6's 12-week threshold are drawn (found from the rules, not written here)."""
    strategy = assessments(complete=True, in_treatment=True)
    found = find(strategy, lambda a: a["weeks_at_current_level"] == weeks, settings=QUICK)
    assert found["weeks_at_current_level"] == weeks


# --- every invariant on the shipped rules ---------------------------------------------


@pytest.mark.parametrize("examples", [pytest.param(40, marks=pytest.mark.slow), 8])
def test_the_shipped_rules_satisfy_every_invariant(examples: int) -> None:
    """check_invariants passes on the shipped rule base."""
    check_invariants(Engine.default(), max_examples=examples)


def test_check_invariants_rejects_a_bad_example_count() -> None:
    """max_examples must be a positive whole number."""
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_examples must be a whole number of at least 1"):
            check_invariants(max_examples=bad)  # type: ignore[arg-type]


# --- seeded bugs in copies of the shipped rules ------------------------------------------


def test_invariants_catch_in1_narrowed_to_at_most_high(tmp_path: Path) -> None:
    """IN-1 with at_most: imminent harm no longer requires inpatient, and an emergency comes with PHP."""
    engine = seeded(tmp_path, "inpatient.toml", 'at_least = "high"', 'at_most = "high"')
    with pytest.raises(AssertionError) as caught:
        check_invariants(engine, max_examples=100)
    message = str(caught.value)
    assert "invariant " in message
    assert "assessment: {" in message and '"harm_risk": "imminent"' in message
    assert "decision for the assessment: {" in message


# The invariants before monotonicity pass on this rule base, each after trying
# every example; the quick run tries fewer.
# The quick run's seeded bug is the one above.
@pytest.mark.slow
@pytest.mark.parametrize("examples", [100])
def test_invariants_catch_a_rule_written_with_is_not(tmp_path: Path, examples: int) -> None:
    """IO-3 written with is_not holds at moderate relapse risk and not at high: the smallest case is shown."""
    engine = seeded(
        tmp_path, "iop.toml", '{ fact = "relapse_risk", is = "high" }', '{ fact = "relapse_risk", is_not = "high" }'
    )
    with pytest.raises(AssertionError) as caught:
        check_invariants(engine, max_examples=examples)
    message = str(caught.value)
    assert message.startswith('invariant \'monotone in need\' failed: raising relapse_risk from "moderate" to "high"')
    assert 'assessment: {"relapse_risk": "moderate"}' in message
    assert 'the raised assessment: {"relapse_risk": "high"}' in message
    assert "decision for the raised assessment: {" in message


def test_check_monotone_names_both_decisions(tmp_path: Path) -> None:
    """Called on a counterexample, the check shows both levels."""
    engine = seeded(
        tmp_path, "iop.toml", '{ fact = "relapse_risk", is = "high" }', '{ fact = "relapse_risk", is_not = "high" }'
    )
    facts = {**lowest_need(engine), "relapse_risk": "moderate"}
    with pytest.raises(AssertionError, match="lowered the level from iop to outpatient"):
        check_monotone(facts, engine)
    check_monotone(facts)  # the shipped rules are monotone here


def test_check_monotone_walks_fewer_weeks_as_more_need(tmp_path: Path) -> None:
    """TR-6 with at_most 12 weeks: going from 13 weeks to 12 lowers the level, and is caught."""
    engine = seeded(tmp_path, "transitions.toml", "at_least = 12", "at_most = 12")
    facts = {
        **lowest_need(engine),
        "current_level": "iop",
        "weeks_at_current_level": 13,
        "treatment_stage": "maintenance",
        "goals_met": False,
        "relapse_prevention_skills": True,
        "recent_use": "none",
        "symptoms_trend": "stable",
    }
    with pytest.raises(AssertionError, match="raising weeks_at_current_level from 13 to 12 in need"):
        check_monotone(facts, engine)
    check_monotone(facts)


def test_check_emergency_catches_an_emergency_below_inpatient(tmp_path: Path) -> None:
    """EM-1 from moderate harm: an emergency decided at PHP."""
    engine = seeded(tmp_path, "emergency.toml", 'is = "imminent"', 'at_least = "moderate"')
    facts = {**lowest_need(engine), "harm_risk": "moderate"}
    with pytest.raises(AssertionError, match="an emergency, but the level is php rather than inpatient"):
        check_emergency(facts, engine)
    check_emergency(facts)


# --- each check against an engine that breaks it on purpose -------------------------------


class _Faulty(Engine):
    """The shipped rule base, with one kind of wrong answer added."""

    def __init__(self, fault: str) -> None:
        super().__init__(Engine.default()._rb)
        self.fault = fault
        self.calls = itertools.count()

    def decide(self, facts: Any, *, as_of: dt.datetime | None = None) -> Decision:
        decision = super().decide(facts, as_of=as_of)
        data = facts.to_dict() if isinstance(facts, levelcare.Assessment) else facts
        if (
            self.fault == "candidacy"
            and data.get("caregiver") is True
            and decision.level is SHIPPED_LEVELS["outpatient"]
        ):
            return attrs.evolve(
                decision, level=SHIPPED_LEVELS["iop"], level_range=(SHIPPED_LEVELS["iop"], SHIPPED_LEVELS["iop"])
            )
        if self.fault == "clock":
            return attrs.evolve(decision, as_of=dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(next(self.calls)))
        if self.fault == "no-missing" and not decision.complete:
            return attrs.evolve(decision, missing=())
        if self.fault == "wide-range" and decision.complete:
            return attrs.evolve(decision, level_range=(SHIPPED_LEVELS["outpatient"], SHIPPED_LEVELS["inpatient"]))
        return decision


def test_check_candidacy_neutral_catches_a_level_that_depends_on_caregiving() -> None:
    engine = _Faulty("candidacy")
    facts = {**lowest_need(engine), "caregiver": False}
    with pytest.raises(AssertionError) as caught:
        check_candidacy_neutral(facts, engine)
    message = str(caught.value)
    assert "invariant 'candidacy-neutral' failed: changing candidacy facts changed level, level_range" in message
    assert '"caregiver": true' in message
    check_candidacy_neutral(facts)


def test_check_deterministic_catches_output_that_changes_between_calls() -> None:
    with pytest.raises(
        AssertionError,
        match="invariant 'deterministic' failed: deciding the same assessment again gave different output in as_of",
    ):
        check_deterministic(lowest_need(Engine.default()), _Faulty("clock"))
    check_deterministic(lowest_need(Engine.default()))


def test_check_total_catches_data_required_without_missing_facts() -> None:
    with pytest.raises(AssertionError, match="a data-required answer with no missing facts"):
        check_total({"harm_risk": "none"}, _Faulty("no-missing"))
    check_total({"harm_risk": "none"})


def test_check_unknowns_catches_a_complete_decision_with_a_wide_range() -> None:
    with pytest.raises(AssertionError, match="status 'complete' with level_range outpatient to inpatient"):
        check_unknowns(lowest_need(Engine.default()), _Faulty("wide-range"))
    check_unknowns(lowest_need(Engine.default()))


class _Lenient(Engine):
    """Accepts anything, or fails with the wrong error."""

    def __init__(self, error: type[Exception] | None) -> None:
        super().__init__(Engine.default()._rb)
        self.error = error

    def decide(self, facts: Any, *, as_of: dt.datetime | None = None) -> Decision:
        if self.error is not None:
            raise self.error("boom")
        return super().decide({}, as_of=as_of)


def test_check_rejected_catches_accepted_input_and_the_wrong_error() -> None:
    with pytest.raises(AssertionError, match="failed: accepted with"):
        check_rejected({"harm_rsk": "high"}, _Lenient(None))
    with pytest.raises(AssertionError, match="raised KeyError instead of InvalidAssessment"):
        check_rejected({"harm_rsk": "high"}, _Lenient(KeyError))
    assert isinstance(check_rejected({"harm_rsk": "high"}), InvalidAssessment)


def test_checks_reject_an_invalid_assessment_as_input() -> None:
    """The checks take valid assessments; an invalid one is an InvalidAssessment, not a failed invariant."""
    with pytest.raises(InvalidAssessment):
        check_monotone({"harm_rsk": "high"})


def test_the_testing_kit_without_hypothesis_says_which_extra_to_install() -> None:
    """``import levelcare.testing`` where Hypothesis is missing names the extra, not only the module."""
    code = (
        "import sys\n"
        "sys.modules['hypothesis'] = None  # as if it were not installed\n"
        "try:\n"
        "    import levelcare.testing\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error.name, '|', error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == (
        'hypothesis | levelcare.testing needs Hypothesis; install it with: pip install "levelcare[testing]"'
    )
