"""The public value classes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import levelcare
from conftest import SHIPPED_LEVELS
from levelcare import Level, Transition


def test_levels_compare_by_intensity() -> None:
    """Levels order by intensity, not by name, and are looked up by id in their rule base's levels."""
    levels = levelcare.Engine.default().levels
    outpatient, iop, php, inpatient = (levels[i] for i in ("outpatient", "iop", "php", "inpatient"))
    assert outpatient < iop < php < inpatient
    assert max(levels) is inpatient
    assert sorted([php, outpatient, inpatient, iop]) == list(levels)
    assert [level.value for level in levels] == ["outpatient", "iop", "php", "inpatient"]
    with pytest.raises(TypeError):
        _ = iop < "php"  # type: ignore[operator]


def test_level_has_no_enum_spellings() -> None:
    """``Level`` is a value class of no one rule base: it neither looks a level up nor lists levels."""
    with pytest.raises(TypeError):
        Level("iop")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        list(Level)  # type: ignore[call-overload]
    with pytest.raises(AttributeError):
        _ = Level.IOP  # type: ignore[attr-defined]


def test_importing_levelcare_loads_no_rule_base() -> None:
    """The shipped rule base is read when first used, not when levelcare is imported."""
    code = (
        "import levelcare, levelcare._rulebase as rb; "
        "assert rb.shipped.cache_info().currsize == 0, 'loaded on import'; "
        "assert levelcare.Engine.default().levels['iop'].id == 'iop'; "
        "assert rb.shipped.cache_info().currsize == 1"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_transition_values() -> None:
    """Transition values are the public strings."""
    assert [t.value for t in Transition] == ["admit", "continue", "step-down", "step-up"]


def test_public_api_names() -> None:
    """The package exports exactly its public API, sorted."""
    assert levelcare.__all__ == sorted(levelcare.__all__)
    for name in (
        "decide",
        "Engine",
        "Decision",
        "Reason",
        "Program",
        "Level",
        "Transition",
        "Assessment",
        "LevelCareError",
        "InvalidAssessment",
        "RuleBaseError",
        "RulebaseInfo",
    ):
        assert name in levelcare.__all__
    assert issubclass(levelcare.InvalidAssessment, levelcare.LevelCareError)
    assert issubclass(levelcare.RuleBaseError, ValueError)


def test_decision_is_frozen() -> None:
    """Decisions cannot be changed after they are made."""
    decision = levelcare.decide({"withdrawal_risk": "severe"})
    with pytest.raises(AttributeError):
        decision.level = decision.level_range[0]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d.pop("status"), "decision.status: missing"),
        (lambda d: d.update(level="residential"), "'residential' is not a level"),
        (lambda d: d.update(level_range=["iop"]), "expected [lowest, highest]"),
        (lambda d: d["reasons"].append("IN-1"), "reasons: expected an object"),
        (lambda d: d.update(emergency="no"), "decision.emergency: unexpected string"),
        (lambda d: d["program"].update(hours_per_week=[9]), "program.hours_per_week"),
    ],
)
def test_from_dict_rejects_malformed_data(change: object, fragment: str) -> None:
    """from_dict names what it cannot read, as InvalidDecisionData."""
    data = json.loads(json.dumps(levelcare.decide({"withdrawal_risk": "severe"}).to_dict()))
    change(data)  # type: ignore[operator]
    with pytest.raises(levelcare.InvalidDecisionData) as caught:
        levelcare.Decision.from_dict(data, levels=SHIPPED_LEVELS)
    assert fragment in str(caught.value)


def test_ruled_out_statements_spell_level_names_as_clinicians_do() -> None:
    """A lower level ruled out reads 'IOP is ruled out', not 'Iop'."""
    decision = levelcare.decide({"withdrawal_risk": "severe"})
    statements = [
        r.statement for r in decision.ruled_out if r.level is not None and r.level < SHIPPED_LEVELS["inpatient"]
    ]
    assert [s.split(" is ruled out")[0] for s in statements] == ["Outpatient", "IOP", "PHP"]


def test_a_decision_is_read_with_the_levels_of_the_rule_base_that_made_it() -> None:
    data = levelcare.decide({"withdrawal_risk": "severe"}).to_dict()
    data["level_range"] = ["detox", "inpatient"]
    with pytest.raises(levelcare.InvalidDecisionData) as caught:
        levelcare.Decision.from_dict(data, levels=SHIPPED_LEVELS)
    assert caught.value.problems[0] == (
        "level_range: 'detox' is not a level; expected one of outpatient, iop, php, inpatient"
    )
    with pytest.raises(levelcare.InvalidDecisionData) as wrong:
        levelcare.Decision.from_dict(data, levels=["outpatient", "inpatient"])  # type: ignore[arg-type]
    assert wrong.value.problems == ("levels: expected a LevelSet such as engine.levels, got array",)
