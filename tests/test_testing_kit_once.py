"""The testing kit has one implementation of each check: the engine's checks are the callable checks on engine.decide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from levelcare import Engine
from levelcare.testing import _Subject, check_callable, check_monotone
from test_testing_kit import seeded


def test_the_engine_checks_are_the_callable_checks_on_engine_decide(tmp_path: Path) -> None:
    """A planted non-monotone rule fails check_callable(engine.decide) and check_monotone the same way.

    The callable's search shrinks to an assessment; the engine's check, given that
    assessment, reports the same step lowering the same level.
    """
    engine = seeded(
        tmp_path, "iop.toml", '{ fact = "relapse_risk", is = "high" }', '{ fact = "relapse_risk", is_not = "high" }'
    )
    with pytest.raises(AssertionError) as by_callable:
        check_callable(lambda facts: engine.decide(facts).level, engine, max_examples=200)
    lines = str(by_callable.value).splitlines()
    prefix = "invariant 'monotone in need' failed for the placement function: "
    assert lines[0].startswith(prefix)
    assert "lowered the level from iop to outpatient" in lines[0]
    facts = json.loads(next(line for line in lines if line.startswith("assessment: ")).removeprefix("assessment: "))
    with pytest.raises(AssertionError) as by_engine:
        check_monotone(facts, engine)
    first = str(by_engine.value).splitlines()[0]
    assert first.removeprefix("invariant 'monotone in need' failed: ") == lines[0].removeprefix(prefix)
    check_monotone(facts)  # the shipped rules are monotone here


def test_a_callable_and_the_engine_walk_the_same_ladders_on_complete_assessments() -> None:
    """On a complete assessment the engine's check and the callable's step the same facts through the same values."""
    engine = Engine.default()
    facts = {f.name: f.values[0] if f.kind != "integer" else f.minimum for f in engine.vocabulary.facts}
    facts["current_level"] = "iop"
    by_engine = list(_Subject(engine).ladders(facts))
    by_callable = list(_Subject(engine, None, lambda given: "iop").ladders(facts))
    assert by_engine == by_callable
    assert {"relapse_risk", "current_level", "weeks_at_current_level"} <= {name for name, _ in by_engine}
    # A partial admission may also start treatment by current_level alone; a complete admission has no progress facts.
    admission = {n: v for n, v in facts.items() if engine.vocabulary[n].group != "progress"}
    walked = {name for name, _ in _Subject(engine).ladders(admission)}
    assert "current_level" in walked
    assert "current_level" not in {name for name, _ in _Subject(engine, None, lambda given: "iop").ladders(admission)}
