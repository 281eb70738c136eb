"""levelcare.testing.check_callable: black-box invariants of any placement function."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest

from levelcare import Engine
from levelcare.testing import check_callable

ENGINE = Engine.default()
HARM = ("none", "low", "moderate", "high", "imminent")


def engine_placement(facts: Mapping[str, Any]) -> Any:
    """The engine itself, as a black box: monotone, deterministic, candidacy-neutral."""
    return ENGINE.decide(facts).level


def simple_placement(facts: Mapping[str, Any]) -> str:
    """A hand-written rule of thumb that keeps every invariant."""
    if HARM.index(facts["harm_risk"]) >= 3 or facts["medical_instability"]:
        return "inpatient"
    if facts["needs_daily_monitoring"]:
        return "php"
    if facts["addiction_severity"] != "mild":
        return "iop"
    return "outpatient"


def _assessment(message: str) -> dict[str, Any]:
    line = next(line for line in message.splitlines() if line.startswith("assessment: "))
    data: dict[str, Any] = json.loads(line.removeprefix("assessment: "))
    return data


def test_the_engine_and_a_correct_rule_of_thumb_pass() -> None:
    check_callable(engine_placement, ENGINE, max_examples=25)
    check_callable(simple_placement, ENGINE, max_examples=50)
    # The vocabulary alone is enough: its current_level fact gives the level order.
    check_callable(simple_placement, ENGINE.vocabulary, max_examples=50)


def test_a_placement_that_lowers_the_level_as_support_weakens_is_caught_and_shrunk() -> None:
    def broken(facts: Mapping[str, Any]) -> str:
        return "iop" if facts["support_system"] == "strong" else simple_placement(facts)

    with pytest.raises(AssertionError) as caught:
        check_callable(broken, ENGINE, max_examples=200)
    message = str(caught.value)
    assert "invariant 'monotone in need' failed for the placement function" in message
    assert 'raising support_system from "strong" to "limited"' in message
    assert "lowered the level from iop to outpatient" in message
    assert 'changed: support_system "strong" -> "limited"' in message
    facts = _assessment(message)
    # Shrunk: every fact but the one that matters sits at its first value.
    assert facts["harm_risk"] == "none" and facts["addiction_severity"] == "mild"
    assert broken(facts) == "iop"
    assert broken({**facts, "support_system": "limited"}) == "outpatient"


def test_a_placement_that_reads_a_candidacy_fact_is_caught() -> None:
    def broken(facts: Mapping[str, Any]) -> str:
        return "iop" if facts.get("caregiver") else simple_placement(facts)

    with pytest.raises(AssertionError) as caught:
        check_callable(broken, ENGINE, max_examples=200)
    message = str(caught.value)
    assert "invariant 'candidacy-neutral' failed" in message
    assert re.search(r"changed: caregiver (false -> true|true -> false)", message)


def test_a_placement_that_answers_differently_each_time_is_caught() -> None:
    calls = {"n": 0}

    def broken(facts: Mapping[str, Any]) -> str:
        calls["n"] += 1
        return "iop" if calls["n"] % 2 else "outpatient"

    with pytest.raises(AssertionError, match="invariant 'deterministic' failed"):
        check_callable(broken, ENGINE, max_examples=20)


def test_a_placement_that_returns_no_level_or_raises_is_caught() -> None:
    with pytest.raises(AssertionError, match="returned 'detox', not one of the levels outpatient, iop, php"):
        check_callable(lambda facts: "detox", ENGINE, max_examples=5)

    def crashes(facts: Mapping[str, Any]) -> str:
        return str(facts["no_such_fact"])

    with pytest.raises(AssertionError, match="the placement function raised KeyError"):
        check_callable(crashes, ENGINE, max_examples=5)


def test_in_treatment_facts_reach_the_placement() -> None:
    """Assessments include people in treatment: a placement that ignores weeks in IOP wrongly is caught."""

    def broken(facts: Mapping[str, Any]) -> str:
        # More weeks means less need; stepping up with more weeks breaks monotonicity.
        if facts.get("current_level") == "iop" and facts["weeks_at_current_level"] >= 12:
            return "php"
        return simple_placement(facts)

    with pytest.raises(AssertionError) as caught:
        check_callable(broken, ENGINE, max_examples=300)
    message = str(caught.value)
    assert "monotone in need" in message and "weeks_at_current_level" in message


def test_bad_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="max_examples must be a whole number of at least 1"):
        check_callable(simple_placement, ENGINE, max_examples=0)
    with pytest.raises(TypeError, match="placement must be a function"):
        check_callable("iop", ENGINE)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected an Engine or a Vocabulary"):
        check_callable(simple_placement, "rules/")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="give the level order"):
        check_callable(simple_placement, ENGINE.vocabulary, levels=["only"])
