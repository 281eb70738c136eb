"""The JSON Schema of an assessment agrees with the vocabulary it is generated from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import RULES_DIR, load_examples
from levelcare import Engine, InvalidAssessment
from levelcare._render._schema import DIALECT, assessment_schema
from levelcare._rulebase import load
from levelcare.testing import assessments

jsonschema = pytest.importorskip("jsonschema")

ENGINE = Engine.default()
VOCABULARY = ENGINE.vocabulary
SCHEMA = assessment_schema(VOCABULARY, ENGINE.rulebase)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
EXAMPLES = load_examples()


def schema_accepts(data: object) -> bool:
    return bool(VALIDATOR.is_valid(data))


def levelcare_accepts(data: object) -> bool:
    try:
        VOCABULARY.validate(data)
    except InvalidAssessment:
        return False
    return True


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    assert SCHEMA["$schema"] == DIALECT == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    # Also as JSON text, the form the command prints.
    jsonschema.Draft202012Validator.check_schema(json.loads(json.dumps(SCHEMA)))


def test_every_fact_is_a_property_with_its_meaning_and_nothing_else_is_allowed() -> None:
    assert list(SCHEMA["properties"]) == [fact.name for fact in VOCABULARY.facts]
    for fact in VOCABULARY.facts:
        assert SCHEMA["properties"][fact.name]["description"] == fact.meaning
    assert SCHEMA["additionalProperties"] is False
    assert "required" not in SCHEMA
    assert ENGINE.rulebase.sha256 in SCHEMA["$comment"]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
def test_every_example_is_valid(example: dict[str, Any]) -> None:
    VALIDATOR.validate(example["facts"])


def test_null_and_absence_mean_unknown_for_every_fact() -> None:
    VALIDATOR.validate({})
    VALIDATOR.validate({fact.name: None for fact in VOCABULARY.facts})


INVALID = {
    "unknown-fact": {"harm_rsk": "none"},
    "value-not-allowed": {"harm_risk": "extreme"},
    "boolean-as-string": {"medical_instability": "true"},
    "integer-as-boolean": {"weeks_at_current_level": True},
    "integer-out-of-range": {"days_available_per_week": 8},
    "negative-integer": {"weeks_at_current_level": -1},
    "fraction": {"hours_available_per_week": 3.5},
    "level-not-a-level": {"current_level": "residential"},
    "not-an-object": [{"harm_risk": "none"}],
}


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_assessments_are_rejected_by_both(name: str) -> None:
    data = INVALID[name]
    assert not schema_accepts(data)
    assert not levelcare_accepts(data)


@given(assessments())
def test_every_valid_assessment_is_valid_under_the_schema(facts: dict[str, Any]) -> None:
    VALIDATOR.validate(facts)


_every_value = sorted({v for f in VOCABULARY.facts if f.finite for v in f.values if isinstance(v, str)})
_json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=600),
    st.sampled_from(_every_value),
    st.text(max_size=10),
    # JSON Schema counts 12.0 as an integer and levelcare does not; that is the
    # one documented difference, so only fractions are drawn.
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()),
    st.lists(st.integers(), max_size=2),
)


@given(st.dictionaries(st.sampled_from([f.name for f in VOCABULARY.facts] + ["harm_rsk", "notes"]), _json_values))
def test_the_schema_and_levelcare_agree_on_any_json_object(data: dict[str, Any]) -> None:
    assert schema_accepts(data) == levelcare_accepts(data)


def test_an_organisations_extra_fact_appears_in_its_schema(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    with (folder / "vocabulary.toml").open("a", encoding="utf-8") as stream:
        stream.write(
            '\n[[fact]]\nname = "housing_program"\ngroup = "candidacy"\nkind = "boolean"\n'
            'values = [false, true]\nmeaning = "Enrolled in a housing programme."\nsources = ["jc-iop"]\n'
        )
    rulebase = load(folder)
    schema = assessment_schema(rulebase.vocabulary, rulebase.info)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["housing_program"] == {
        "description": "Enrolled in a housing programme.",
        "type": ["boolean", "null"],
    }
    assert jsonschema.Draft202012Validator(schema).is_valid({"housing_program": True})
    assert not VALIDATOR.is_valid({"housing_program": True})
