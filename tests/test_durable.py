"""The durable-rules layer: compiled rulesets say exactly which conditions hold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import levelcare
from levelcare._engine import _durable
from levelcare._rulebase import _conditions as cond
from levelcare.testing import assessments

DURABLE = _durable._engine
ENGINE = levelcare.Engine.default()
VOCABULARY = ENGINE.vocabulary
STAGE_ONE = list(ENGINE._placement.deciding_conditions())
STAGE_TWO = [item.when for _, item in ENGINE._stage_two]

HIGH = cond.ValueAtom("harm_risk", frozenset({"high", "imminent"}))
SEVERE = cond.ValueAtom("withdrawal_risk", frozenset({"severe"}))


def python_holding(conditions: list[cond.Condition], facts: dict[str, Any], context: Any = None) -> frozenset[int]:
    return frozenset(i for i, c in enumerate(conditions) if cond.holds(c, facts, context))


contexts = st.fixed_dictionaries(
    {
        "level": st.sampled_from([None, "outpatient", "iop", "php", "inpatient"]),
        "transition": st.sampled_from([None, "admit", "continue", "step-down", "step-up"]),
        "emergency": st.booleans(),
        "hours_minimum": st.integers(min_value=0, max_value=40),
        "days_minimum": st.integers(min_value=0, max_value=7),
    }
)


@given(facts=assessments(), context=contexts)
def test_shipped_rulesets_agree_with_the_python_evaluation(facts: dict[str, Any], context: dict[str, Any]) -> None:
    """For any assessment, durable finds exactly the stage-one and stage-two conditions that hold."""
    known = VOCABULARY.validate(facts)
    assert ENGINE._levels.holding(known) == python_holding(STAGE_ONE, known)
    assert ENGINE._outcome.holding(known, context) == python_holding(STAGE_TWO, known, context)


CONSTANTS: list[cond.Condition] = [
    cond.TRUE,
    cond.FALSE,
    cond.All((cond.TRUE, HIGH)),
    cond.Any_((cond.FALSE, HIGH)),
    cond.All((cond.FALSE, HIGH)),
    cond.Any_((cond.TRUE, HIGH)),
    cond.ContextAtom("transition", frozenset()),
    HIGH,
    cond.Any_((HIGH, SEVERE)),
]


@pytest.mark.parametrize(
    "facts",
    [
        {},
        {"harm_risk": "none"},
        {"harm_risk": "high"},
        {"withdrawal_risk": "severe"},
        {"harm_risk": "imminent", "withdrawal_risk": "severe"},
    ],
)
def test_constant_parts_are_settled_when_compiling(facts: dict[str, Any]) -> None:
    """Conditions with always-true or never-true parts give the same answers as in Python."""
    ruleset = _durable.CompiledRuleset("constants", CONSTANTS, VOCABULARY)
    assert ruleset.holding(facts) == python_holding(CONSTANTS, facts)


def test_identical_tests_share_one_durable_rule() -> None:
    """Three conditions that compile to the same test, and two constants, need one durable rule."""
    conditions = [HIGH, cond.All((cond.TRUE, HIGH)), cond.Any_((cond.FALSE, HIGH)), cond.TRUE, cond.FALSE]
    ruleset = _durable.CompiledRuleset("shared", conditions, VOCABULARY)
    assert list(ruleset._members) == [(0, 1, 2)]
    assert ruleset.holding({"harm_risk": "high"}) == frozenset({0, 1, 2, 3})
    assert ruleset.holding({"harm_risk": "low"}) == frozenset({3})


def test_a_ruleset_of_constants_needs_no_durable_ruleset() -> None:
    """When every condition is settled when compiling, durable is never asked."""
    ruleset = _durable.CompiledRuleset("settled", [cond.TRUE, cond.FALSE, cond.All(())], VOCABULARY)
    assert ruleset._chunks == ()
    assert ruleset.holding({"harm_risk": "high"}) == frozenset({0, 2})


def test_durable_refusing_the_ruleset_is_an_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ruleset durable cannot compile raises EngineError naming it."""

    def refuse(name: str, definition: str) -> int:
        raise DURABLE.error("injected: cannot compile")

    monkeypatch.setattr(DURABLE, "create_ruleset", refuse)
    with pytest.raises(levelcare.EngineError, match="could not compile ruleset 'refused'"):
        _durable.CompiledRuleset("refused", [HIGH], VOCABULARY)


def test_durable_failing_the_priming_session_is_an_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """durable failing while a ruleset starts raises EngineError naming the ruleset."""

    def fail(handle: int, offset: int) -> Any:
        raise DURABLE.error("injected: cannot start")

    monkeypatch.setattr(DURABLE, "start_action_for_state", fail)
    with pytest.raises(levelcare.EngineError, match="failed to start ruleset 'unstarted'"):
        _durable.CompiledRuleset("unstarted", [HIGH], VOCABULARY)


def test_no_action_in_the_priming_session_is_an_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """If durable runs no action for the priming fact, the ruleset is refused rather than left unprimed."""
    monkeypatch.setattr(DURABLE, "start_action_for_state", lambda handle, offset: None)
    with pytest.raises(levelcare.EngineError, match="ran no action when starting ruleset 'unprimed'"):
        _durable.CompiledRuleset("unprimed", [HIGH], VOCABULARY)


def test_integer_fragments_beyond_the_prepared_range_are_written_on_demand() -> None:
    """A wide integer range keeps 4,097 fragments in memory and writes the rest when asked."""
    fragments = _durable._Numbers('"n"', 0, 1_000_000)
    assert len(fragments) == 4097
    assert fragments[12] == '"n":12'
    assert fragments[999_999] == '"n":999999'
    assert len(fragments) == 4097
