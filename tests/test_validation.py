"""Input validation: every problem named by fact, all at once, nothing guessed."""

from __future__ import annotations

from typing import Any

import pytest

import levelcare
from cases import person


def _problems(facts: Any) -> dict[str, str]:
    with pytest.raises(levelcare.InvalidAssessment) as caught:
        levelcare.decide(facts)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, levelcare.LevelCareError)
    return {p.fact: p.message for p in caught.value.problems}


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("harm_rsk", "harm_risk"),
        ("suicide_risk", "harm_risk"),
        ("withdrawl_risk", "withdrawal_risk"),
        ("Harm_Risk", "harm_risk"),
    ],
)
def test_unknown_fact_names_the_key_and_suggests_the_closest(key: str, suggestion: str) -> None:
    """A typo is an error naming the key, with the closest known name suggested."""
    problems = _problems({key: "low"})
    assert problems == {key: f"unknown fact; did you mean {suggestion!r}?"}


@pytest.mark.parametrize(
    ("fact", "value", "fragment"),
    [
        ("medical_instability", "true", "expected true or false, got string 'true'"),
        ("medical_instability", 1, "expected true or false, got integer 1"),
        ("weeks_at_current_level", 3.5, "expected an integer from 0 to 520, got number 3.5"),
        ("weeks_at_current_level", True, "expected an integer from 0 to 520, got boolean True"),
        ("weeks_at_current_level", 521, "expected an integer from 0 to 520, got 521"),
        ("days_available_per_week", -1, "expected an integer from 0 to 7, got -1"),
        (
            "harm_risk",
            "hihg",
            "one of 'none', 'low', 'moderate', 'high', 'imminent', got string 'hihg'; did you mean 'high'?",
        ),
        ("harm_risk", 3, "got integer 3"),
        ("current_level", "residential", "one of 'outpatient', 'iop', 'php', 'inpatient'"),
        ("addiction_severity", ["mild"], "got array"),
    ],
)
def test_wrong_value_names_fact_type_and_allowed_values(fact: str, value: Any, fragment: str) -> None:
    """A wrong type or value names the fact, the value's type and what is allowed."""
    problems = _problems({fact: value})
    assert list(problems) == [fact]
    assert fragment in problems[fact]


def test_every_problem_is_reported_at_once() -> None:
    """Three problems in one assessment give one exception with three problems."""
    problems = _problems(
        {"harm_rsk": "low", "medical_instability": "yes", "weeks_at_current_level": 999, "relapse_risk": "low"}
    )
    assert sorted(problems) == ["harm_rsk", "medical_instability", "weeks_at_current_level"]


def test_message_never_echoes_long_free_text() -> None:
    """A long value or key is cut in the message, never echoed whole."""
    long = "x" * 500
    with pytest.raises(levelcare.InvalidAssessment) as caught:
        levelcare.decide({"harm_risk": long, long: 1})
    assert long not in str(caught.value)
    assert all(len(p.fact) <= 40 for p in caught.value.problems)
    assert "x" * 41 not in str(caught.value)


@pytest.mark.parametrize("value", [None, [], "harm_risk=low", 42, ("harm_risk", "low")])
def test_non_mapping_is_invalid_assessment(value: Any) -> None:
    """Anything but a mapping is reported as an invalid assessment, not a TypeError."""
    problems = _problems(value)
    assert "must be a mapping" in problems[""]


def test_non_string_keys_are_reported() -> None:
    """Keys must be strings."""
    problems = _problems({1: "low", "harm_risk": "low"})
    assert list(problems) == ["1"]


def test_none_and_absent_both_mean_unknown() -> None:
    """None is the same as leaving the fact out; it is never replaced by a default."""
    absent = levelcare.decide({"addiction_severity": "moderate"})
    none = levelcare.decide({"addiction_severity": "moderate", "harm_risk": None})
    assert absent.to_dict() == none.to_dict()
    assert "harm_risk" in none.missing


def test_assessment_object_is_accepted_and_immutable() -> None:
    """An Assessment can be passed to decide, keeps only known facts and cannot be changed."""
    assessment = levelcare.Assessment({"harm_risk": "none"}, addiction_severity="moderate", caregiver=None)
    assert assessment.to_dict() == {"harm_risk": "none", "addiction_severity": "moderate"}
    assert assessment["harm_risk"] == "none"
    assert assessment.get("caregiver") is None
    with pytest.raises(TypeError):
        assessment.facts["harm_risk"] = "high"  # type: ignore[index]
    assert levelcare.decide(assessment).to_dict() == levelcare.decide(assessment.to_dict()).to_dict()


def test_assessment_validates_like_decide() -> None:
    """Building an Assessment reports the same problems as decide."""
    with pytest.raises(levelcare.InvalidAssessment) as caught:
        levelcare.Assessment(harm_rsk="low")
    assert [p.fact for p in caught.value.problems] == ["harm_rsk"]


def test_as_of_is_recorded_and_must_be_timezone_aware() -> None:
    """as_of is carried into the decision; a naive datetime or a string is refused with a fix."""
    import datetime as dt

    when = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    decision = levelcare.decide(person(), as_of=when)
    assert decision.as_of == when
    assert decision.to_dict()["as_of"] == "2026-11-02T09:30:00+00:00"
    for bad in (dt.datetime(2026, 11, 2, 9, 30), "2026-11-02"):  # noqa: DTZ001 - a naive datetime is the input under test
        with pytest.raises(levelcare.InvalidAssessment) as caught:
            levelcare.decide(person(), as_of=bad)  # type: ignore[arg-type]
        assert caught.value.problems[0].fact == "as_of"
        assert "timezone-aware" in caught.value.problems[0].message
