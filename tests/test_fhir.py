"""levelcare.fhir: the Questionnaire, QuestionnaireResponse, CodeSystem and GuidanceResponse.

Every resource is checked by building its fhir.resources model (R5, and R4B for
R4) and round-tripped through JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given

from conftest import EXAMPLES_DIR
from inprocess import run_levelcare
from levelcare import Engine, InvalidAssessment, fhir
from levelcare.testing import assessments

VERSIONS = ("R5", "R4")


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


@pytest.fixture(scope="module")
def renamed(renamed_engine: Engine) -> Engine:
    return renamed_engine


def round_trip(resource: dict[str, Any], version: str) -> Any:
    """Build the model, write it as JSON, read it back: the same resource both times."""
    model = fhir.to_model(resource, version)
    text = model.model_dump_json(by_alias=True, exclude_none=True)
    again = fhir.to_model(json.loads(text), version)
    assert again.model_dump_json(by_alias=True, exclude_none=True) == text
    assert json.loads(text) == json.loads(json.dumps(resource))
    return model


def example_facts(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))["facts"])


def fill(form: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """Answer a Questionnaire as a form filler would: pick the answerOption whose code is the value."""
    items = []
    for item in form["item"]:
        entry: dict[str, Any] = {"linkId": item["linkId"]}
        value = facts.get(item["linkId"])
        if value is not None:
            if item["type"] in ("coding", "choice"):
                (coding,) = [o["valueCoding"] for o in item["answerOption"] if o["valueCoding"]["code"] == value]
                entry["answer"] = [{"valueCoding": coding}]
            else:
                entry["answer"] = [{f"value{item['type'].capitalize()}": value}]
        items.append(entry)
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": form["url"], "item": items}


# --- Questionnaire ----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_questionnaire_has_one_optional_item_per_fact(engine: Engine, version: str) -> None:
    form = fhir.questionnaire(engine, version)
    model = round_trip(form, version)
    assert [item.linkId for item in model.item] == [f.name for f in engine.vocabulary.facts]
    assert all(item["required"] is False for item in form["item"])
    assert form["version"] == engine.rulebase.version
    assert form["url"].endswith(engine.rulebase.name)
    assert form["extension"] == [{"url": fhir.SHA256_EXTENSION, "valueString": engine.rulebase.sha256}]
    by_link = {item["linkId"]: item for item in form["item"]}
    for fact in engine.vocabulary.facts:
        item = by_link[fact.name]
        assert item["text"] == fact.meaning
        if fact.kind == "boolean":
            assert item["type"] == "boolean"
        elif fact.kind == "integer":
            assert item["type"] == "integer"
            assert [e["valueInteger"] for e in item["extension"]] == [fact.minimum, fact.maximum]
        else:
            assert item["type"] == ("coding" if version == "R5" else "choice")
            assert [o["valueCoding"]["code"] for o in item["answerOption"]] == list(fact.values)


def test_level_answers_come_from_the_rule_base(renamed: Engine) -> None:
    form = fhir.questionnaire(renamed)
    (item,) = [i for i in form["item"] if i["linkId"] == "current_level"]
    codings = [o["valueCoding"] for o in item["answerOption"]]
    assert [c["code"] for c in codings] == list(renamed.levels.ids)
    assert "day-hospital" in renamed.levels.ids
    assert [c["display"] for c in codings] == [level.label for level in renamed.levels]
    round_trip(form, "R5")


@pytest.mark.parametrize("version", VERSIONS)
def test_code_system_lists_the_levels_by_rank(renamed: Engine, version: str) -> None:
    system = fhir.code_system(renamed)
    round_trip(system, version)
    assert system["url"] == fhir.levels_system(renamed.rulebase)
    assert [c["code"] for c in system["concept"]] == list(renamed.levels.ids)
    assert [c["property"][0]["valueInteger"] for c in system["concept"]] == [lv.rank for lv in renamed.levels]
    assert system["count"] == len(renamed.levels)


def test_unknown_version_and_engine_are_clear_errors(engine: Engine) -> None:
    with pytest.raises(fhir.FhirError, match=r"version: expected one of R5, R4, R4B, got 'R3'"):
        fhir.questionnaire(engine, "R3")
    with pytest.raises(fhir.FhirError, match=r"engine: expected a levelcare.Engine, got string"):
        fhir.code_system("engine")


# --- QuestionnaireResponse -> facts ------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_an_example_filled_in_decides_as_the_command_line_does(engine: Engine, version: str) -> None:
    facts = example_facts("moderate-working-parent")
    response = fill(fhir.questionnaire(engine, version), facts)
    round_trip(response, version)
    read = fhir.assessment_from_response(fhir.to_model(response, version), engine)
    assert read == engine.vocabulary.validate(facts)
    printed = run_levelcare("decide", "--json", str(EXAMPLES_DIR / "moderate-working-parent.json"))
    assert printed.returncode == 0, printed.stderr
    assert engine.decide(read).to_dict() == json.loads(printed.stdout)


def test_response_for_answers_every_known_fact(engine: Engine) -> None:
    facts = example_facts("iop-graduating")
    response = fhir.response_for(facts, engine)
    round_trip(response, "R5")
    assert fhir.assessment_from_response(response, engine) == engine.vocabulary.validate(facts)
    assert len(response["item"]) == len(engine.vocabulary.facts)


def test_unanswered_items_and_groups(engine: Engine) -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "questionnaire": fhir.questionnaire_url(engine.rulebase),
        "item": [
            {"linkId": "clinical", "item": [{"linkId": "harm_risk", "answer": [{"valueString": "low"}]}]},
            {"linkId": "withdrawal_risk"},
            {"linkId": "addiction_severity", "answer": []},
            {"linkId": "weeks_at_current_level", "answer": [{"valueInteger": 4}]},
        ],
    }
    # An empty answer list is not conforming FHIR JSON, but it is read as unanswered.
    fhir.to_model(response)
    assert fhir.assessment_from_response(response, engine) == {"harm_risk": "low", "weeks_at_current_level": 4}


def test_every_problem_is_reported_at_once(engine: Engine) -> None:
    levels = fhir.levels_system(engine.rulebase)
    response = {
        "resourceType": "QuestionnaireResponse",
        "status": "entered-in-error",
        "questionnaire": "urn:other:questionnaire|2",
        "item": [
            {"linkId": "harm_risc", "answer": [{"valueString": "low"}]},
            {"linkId": "medical_instability", "answer": [{"valueString": "yes"}]},
            {"linkId": "addiction_severity", "answer": [{"valueCoding": {"code": "moderat"}}]},
            {"linkId": "weeks_at_current_level", "answer": [{"valueInteger": 9999}]},
            {"linkId": "relapse_risk", "answer": [{"valueString": "low"}, {"valueString": "high"}]},
            {"linkId": "current_level", "answer": [{"valueCoding": {"system": "urn:x", "code": "iop"}}]},
            {"linkId": "current_level", "answer": [{"valueCoding": {"system": levels, "code": "iop"}}]},
            {"linkId": "caregiver", "answer": [{"valueBoolean": True, "valueString": "x"}]},
            {"linkId": "goals_met", "answer": [{"valueCoding": {"code": "true"}}]},
            {"linkId": "motivation", "answer": [{"valueInteger": 3}]},
            {"linkId": 7},
            "item",
        ],
    }
    with pytest.raises(InvalidAssessment) as caught:
        fhir.assessment_from_response(response, engine)
    found = {(p.fact, p.message) for p in caught.value.problems}
    assert found == {
        ("status", "the response was entered in error; use a valid one"),
        (
            "questionnaire",
            (
                "answers 'urn:other:questionnaire|2', not this rule base's questionnaire "
                f"{fhir.questionnaire_url(engine.rulebase)!r}"
            ),
        ),
        ("harm_risc", "unknown linkId; did you mean 'harm_risk'?"),
        ("medical_instability", "expected valueBoolean (true or false), got valueString"),
        (
            "addiction_severity",
            "expected one of 'mild', 'moderate', 'severe', got string 'moderat'; did you mean 'moderate'?",
        ),
        ("weeks_at_current_level", "expected an integer from 0 to 520, got 9999"),
        ("relapse_risk", "2 answers; a fact has one value"),
        ("current_level", f"coding system 'urn:x' is not {levels!r}"),
        ("current_level", "answered twice; give each fact once"),
        ("caregiver", "expected one valueBoolean, got 2 values"),
        ("goals_met", "expected valueBoolean (true or false), got valueCoding"),
        ("motivation", "expected valueCoding (one of 'high', 'moderate', 'low'), got valueInteger"),
        ("item[10]", "linkId: expected a string, got integer"),
        ("item[11]", "expected an item object, got string"),
    }


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"resourceType": "Patient"}, "expected a QuestionnaireResponse, got a 'Patient' resource"),
        ([], "expected a QuestionnaireResponse, got array"),
        ({"resourceType": "QuestionnaireResponse", "item": {}}, "item: expected a list of items, got object"),
        (
            {"resourceType": "QuestionnaireResponse", "item": [{"linkId": "harm_risk", "answer": "low"}]},
            "harm_risk: answer: expected a list, got string",
        ),
        (
            {"resourceType": "QuestionnaireResponse", "item": [{"linkId": "harm_risk", "answer": ["low"]}]},
            "harm_risk: answer: expected an object, got string",
        ),
        (
            {"resourceType": "QuestionnaireResponse", "item": [{"linkId": "x" * 60}]},
            "'xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx'" + ": unknown linkId",
        ),
    ],
)
def test_malformed_responses(engine: Engine, response: Any, message: str) -> None:
    with pytest.raises(InvalidAssessment) as caught:
        fhir.assessment_from_response(response, engine)
    assert message in str(caught.value)


# --- GuidanceResponse -------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_complete_decision(engine: Engine, version: str) -> None:
    decision = engine.decide(example_facts("moderate-working-parent"))
    assert decision.level is not None
    answer = fhir.guidance_response(decision, engine, version, subject="Patient/p1", request_id="r-1")
    model = round_trip(answer, version)
    assert model.status == "success"
    assert answer["moduleCanonical"] == f"{fhir.module_url(engine.rulebase)}|{engine.rulebase.version}"
    assert "dataRequirement" not in answer
    (output,) = answer["contained"]
    parameters = {p["name"]: p for p in output["parameter"]}
    assert parameters["level"]["valueCoding"] == fhir.level_coding(decision.level, engine.rulebase)
    assert parameters["level"]["valueCoding"]["system"] == fhir.code_system(engine)["url"]
    assert parameters["transition"]["valueCode"] == "admit"
    reasons = answer["reason"] if version == "R5" else answer["reasonCode"]
    concepts = [r["concept"] for r in reasons] if version == "R5" else reasons
    assert [c["coding"][0]["code"] for c in concepts] == [r.rule_id for r in decision.reasons]
    first = next(p for p in output["parameter"] if p["name"] == "reason")
    sources = [part["valueRelatedArtifact"]["label"] for part in first["part"] if part["name"] == "source"]
    assert tuple(sources) == decision.reasons[0].sources
    ruled_out = [p for p in output["parameter"] if p["name"] == "ruled-out"]
    assert len(ruled_out) == len(decision.ruled_out)
    assert all(note["text"].split(" ", 1)[0] in ("Reason", "Ruled", "Consideration") for note in answer["note"])
    assert "Sources: jc-iop (Intensive outpatient programme" in answer["note"][0]["text"]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_decision_that_needs_data(engine: Engine, version: str) -> None:
    decision = engine.decide({"harm_risk": "none", "addiction_severity": "moderate"})
    assert not decision.complete
    answer = fhir.guidance_response(decision, engine, version)
    model = round_trip(answer, version)
    assert model.status == "data-required"
    wanted = [r["mustSupport"][0] for r in answer["dataRequirement"]]
    assert wanted == [f"item.where(linkId='{fact}').answer" for fact in decision.missing]
    names = [p["name"] for p in answer["contained"][0]["parameter"]]
    assert "level" not in names
    assert names.count("missing") == len(decision.missing)


def test_guidance_response_refuses_mismatched_input(engine: Engine, renamed: Engine) -> None:
    decision = renamed.decide({"harm_risk": "imminent"})
    renamed_answer = fhir.guidance_response(decision, renamed)
    assert renamed_answer["contained"][0]["parameter"][1]["valueCoding"]["code"] == decision.level.id  # type: ignore[union-attr]
    same_name = decision.rulebase.name == engine.rulebase.name
    assert same_name and decision.rulebase.sha256 != engine.rulebase.sha256
    with pytest.raises(fhir.FhirError, match="decision: made by rule base levelcare-core"):
        fhir.guidance_response(decision, engine)
    with pytest.raises(fhir.FhirError, match=r"decision: expected a levelcare.Decision, got object"):
        fhir.guidance_response({}, engine)  # type: ignore[arg-type]


def test_to_model_rejects_what_is_not_fhir() -> None:
    with pytest.raises(fhir.FhirError, match="resourceType: 'Questionaire' is not a FHIR R5 resource type"):
        fhir.to_model({"resourceType": "Questionaire"})
    with pytest.raises(fhir.FhirError, match="GuidanceResponse does not conform to FHIR R4"):
        fhir.to_model({"resourceType": "GuidanceResponse", "status": "success", "reason": []}, "R4")
    with pytest.raises(fhir.FhirError) as caught:
        fhir.to_model({"resourceType": "CodeSystem", "status": "active", "content": "complete", "count": "x" * 100})
    assert "x" * 41 not in str(caught.value)
    assert "CodeSystem does not conform to FHIR R5: count:" in str(caught.value)


def test_the_models_need_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fhir.resources.R4B", None)
    with pytest.raises(fhir.FhirError, match=r'pip install "levelcare\[fhir\]"'):
        fhir.to_model({"resourceType": "CodeSystem"}, "R4")


def test_examples_round_trip(engine: Engine) -> None:
    for path in sorted(Path(EXAMPLES_DIR).glob("*.json")):
        facts = json.loads(path.read_text(encoding="utf-8"))["facts"]
        response = fill(fhir.questionnaire(engine), facts)
        decision = engine.decide(fhir.assessment_from_response(response, engine))
        assert decision == engine.decide(facts), path.name


@given(facts=assessments())
def test_any_assessment_survives_the_questionnaire(facts: dict[str, Any]) -> None:
    engine = Engine.default()
    for version in VERSIONS:
        response = fill(fhir.questionnaire(engine, version), facts)
        read = fhir.assessment_from_response(response, engine)
        assert read == engine.vocabulary.validate(facts)
        assert fhir.assessment_from_response(fhir.response_for(facts, engine, version), engine) == read
