"""Properties that must hold for every assessment."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import levelcare
from conftest import SHIPPED_LEVELS
from levelcare.testing import assessments

ENGINE = levelcare.Engine.default()
VOCABULARY = ENGINE.vocabulary
NEED_FACTS = [f for f in VOCABULARY.facts if f.group in ("clinical", "progress") and f.kind != "integer"]
CANDIDACY = [f for f in VOCABULARY.facts if f.group == "candidacy"]
WEEKS = VOCABULARY["weeks_at_current_level"]


def _level(facts: dict[str, Any]) -> levelcare.Level:
    decision = ENGINE.decide(facts)
    assert decision.level is not None
    return decision.level


@given(data=st.data(), facts=assessments(complete=True))
def test_monotone_in_every_need_ordered_fact(data: st.DataObject, facts: dict[str, Any]) -> None:
    """Raising one need-ordered fact by one step, others fixed, never lowers the level."""
    fact = data.draw(st.sampled_from(NEED_FACTS), label="fact")
    rank = fact.rank(facts[fact.name])
    if rank + 1 < len(fact.values):
        raised = {**facts, fact.name: fact.values[rank + 1]}
        assert _level(raised) >= _level(facts), fact.name


@given(facts=assessments(complete=True), fewer=st.integers(min_value=1, max_value=520))
def test_fewer_weeks_never_lower_the_level(facts: dict[str, Any], fewer: int) -> None:
    """Fewer weeks at the current level never gives a lower level."""
    weeks = max(WEEKS.minimum or 0, facts[WEEKS.name] - fewer)
    assert _level({**facts, WEEKS.name: weeks}) >= _level(facts)


@given(assessments(complete=True), st.data())
def test_candidacy_facts_change_nothing_but_considerations_and_services(
    facts: dict[str, Any], data: st.DataObject
) -> None:
    """Changing work, caregiving, availability, motivation, family or medication keeps the decision."""
    other = data.draw(assessments(complete=True), label="other candidacy facts")
    changed = {**facts, **{f.name: other[f.name] for f in CANDIDACY}}
    before, after = ENGINE.decide(facts).to_dict(), ENGINE.decide(changed).to_dict()
    # The input digest records every fact given; it is not part of the decision.
    for key in ("considerations", "services", "input_sha256"):
        before.pop(key)
        after.pop(key)
    assert before == after


@given(assessments(complete=True), st.data())
def test_candidacy_neutral_with_unknowns(facts: dict[str, Any], data: st.DataObject) -> None:
    """Even with unknown facts, candidacy facts never change level, transition, status or missing."""
    partial = data.draw(assessments(), label="partial")
    candidacy = {f.name: facts[f.name] for f in CANDIDACY}
    a = ENGINE.decide({**partial, **candidacy})
    b = ENGINE.decide({**partial, **{f.name: None for f in CANDIDACY}})
    assert (a.level, a.transition, a.status, a.level_range, a.missing) == (
        b.level,
        b.transition,
        b.status,
        b.level_range,
        b.missing,
    )


@given(assessments())
def test_to_dict_is_deterministic_and_round_trips(facts: dict[str, Any]) -> None:
    """The same input gives byte-identical JSON, and from_dict rebuilds an equal decision."""
    first = ENGINE.decide(facts)
    second = ENGINE.decide(dict(reversed(list(facts.items()))))
    text = json.dumps(first.to_dict(), sort_keys=True)
    assert text == json.dumps(second.to_dict(), sort_keys=True)
    rebuilt = levelcare.Decision.from_dict(json.loads(text), levels=SHIPPED_LEVELS)
    assert rebuilt == first
    assert json.dumps(rebuilt.to_dict(), sort_keys=True) == text


@given(assessments())
def test_level_lies_in_range_and_emergency_means_inpatient(facts: dict[str, Any]) -> None:
    """The level is within level_range; an emergency is always inpatient care."""
    decision = ENGINE.decide(facts)
    low, high = decision.level_range
    if decision.level is not None:
        assert low <= decision.level <= high
    if decision.emergency:
        assert decision.level is SHIPPED_LEVELS["inpatient"]


@given(facts=assessments(complete=True, in_treatment=True))
def test_monotone_in_current_level(facts: dict[str, Any]) -> None:
    """Being at a more intensive level now never gives a lower recommendation."""
    levels = ENGINE.levels
    rank = levels[facts["current_level"]].rank
    if rank + 1 < len(levels):
        assert _level({**facts, "current_level": levels[rank + 1].value}) >= _level(facts)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=60),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=30), children, max_size=4),
    max_leaves=12,
)
NAMES = st.sampled_from([f.name for f in VOCABULARY.facts]) | st.text(max_size=30)


@given(st.one_of(JSON, st.dictionaries(NAMES, JSON, max_size=8)))
def test_any_json_value_gives_a_decision_or_invalid_assessment(value: Any) -> None:
    """Arbitrary JSON never escapes as anything but a Decision or InvalidAssessment."""
    try:
        decision = ENGINE.decide(value)
    except levelcare.InvalidAssessment as error:
        assert error.problems
        assert all(len(p.fact) <= 40 for p in error.problems)
    else:
        assert isinstance(decision, levelcare.Decision)


@given(assessments(), st.dictionaries(st.text(min_size=1, max_size=20), JSON, min_size=1, max_size=3))
def test_a_failed_call_leaves_no_trace(facts: dict[str, Any], junk: dict[str, Any]) -> None:
    """After an invalid input, the next decision is exactly what it would have been."""
    expected = json.dumps(ENGINE.decide(facts).to_dict(), sort_keys=True)
    bad = {**facts, **{f"zz_{k}": v for k, v in junk.items()}}
    with contextlib.suppress(levelcare.InvalidAssessment):
        ENGINE.decide(bad)
    assert json.dumps(ENGINE.decide(facts).to_dict(), sort_keys=True) == expected
