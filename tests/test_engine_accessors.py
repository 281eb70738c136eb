"""What an engine tells about the rule base it runs: the loaded rule base, and deciding validated facts once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import levelcare
from levelcare import Engine
from levelcare._rulebase import RuleBase

CONTINUUM = Path(__file__).resolve().parent.parent / "examples" / "rulebases" / "continuum"


def test_the_loaded_rule_base_is_the_one_the_engine_was_built_from() -> None:
    """engine.loaded_rulebase is the RuleBase itself; engine.rulebase stays its name, version and sha256."""
    engine = Engine.from_path(CONTINUUM)
    loaded = engine.loaded_rulebase
    assert isinstance(loaded, RuleBase)
    assert loaded.info == engine.rulebase
    assert loaded.vocabulary is engine.vocabulary
    assert loaded.levels is engine.levels
    assert Path(str(loaded.location)).resolve() == CONTINUUM
    assert Engine(loaded).loaded_rulebase is loaded
    assert Engine.default().loaded_rulebase.info.name == "levelcare-core"


def test_the_loaded_rule_base_cannot_be_replaced() -> None:
    """The accessor is read-only: an engine keeps deciding with the rule base it compiled."""
    engine = Engine.default()
    with pytest.raises(AttributeError):
        engine.loaded_rulebase = Engine.from_path(CONTINUUM).loaded_rulebase  # type: ignore[misc]


def test_an_assessment_the_engine_validated_is_not_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """decide(engine.assessment(facts)) validates once and gives the same decision as decide(facts)."""
    engine = Engine.default()
    facts = {"harm_risk": "high", "withdrawal_risk": "none"}
    assessment = engine.assessment(facts)
    calls: list[Any] = []
    vocabulary = type(engine.vocabulary)
    original = vocabulary.validate

    def counting(self: Any, data: object) -> Any:
        calls.append(data)
        return original(self, data)

    monkeypatch.setattr(vocabulary, "validate", counting)
    decided = engine.decide(assessment)
    assert calls == []
    assert decided == engine.decide(facts)
    assert len(calls) == 1
    assert isinstance(decided, levelcare.Decision)
