"""``levelcare diff --overrides``: would the proposed rule base have agreed with the clinicians' past choices?

The proposal treats expected severe withdrawal in PHP (IN-2 requiring php, not
inpatient); the records say clinicians placed such patients in PHP.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from conftest import EXAMPLES_DIR, RULES_DIR
from levelcare import Engine
from levelcare._cli import main
from levelcare._verify._evidence import Move, override_evidence
from levelcare.overrides import facts_digest


def example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))["facts"])


SEVERE = example("severe-withdrawal")
PEOPLE: dict[str, dict[str, Any]] = {
    "only-in2": SEVERE,  # IN-2 alone: the proposal places in PHP
    "only-in2-b": {**SEVERE, "addiction_severity": "moderate"},
    "in2-and-in3": {**SEVERE, "medical_instability": True},  # IN-3 keeps inpatient
    "accepted-in2": {**SEVERE, "support_system": "limited", "home_environment": "neutral"},
    "accepted-iop": example("moderate-working-parent"),
    "mild": example("mild-stable-worker"),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("evidence")
    old, new = tmp / "current", tmp / "proposed"
    shutil.copytree(RULES_DIR, old)
    shutil.copytree(RULES_DIR, new)
    path = new / "inpatient.toml"
    text = path.read_text(encoding="utf-8")
    rule = 'id = "IN-2"\nlevel = "inpatient"'
    assert text.count(rule) == 1
    path.write_text(text.replace(rule, 'id = "IN-2"\nlevel = "php"'), encoding="utf-8")
    records = []

    def override(person: str, facts: dict[str, Any], *options: str) -> None:
        source = tmp / f"{person}.json"
        source.write_text(json.dumps(facts), encoding="utf-8")
        out = tmp / f"override-{person}.json"
        assert main(["override", str(source), *options, "-o", str(out)]) == 0
        records.append(out)

    override("only-in2", PEOPLE["only-in2"], "--received", "php", "--reason", "clinical-judgement")
    override("only-in2-b", PEOPLE["only-in2-b"], "--received", "php", "--reason", "person-preference")
    override("in2-and-in3", PEOPLE["in2-and-in3"], "--received", "php", "--reason", "payer-decision")
    override("mild", PEOPLE["mild"], "--received", "iop", "--reason", "clinical-judgement")
    override("not-in-population", example("imminent-harm"), "--received", "php", "--reason", "person-preference")
    engine = Engine.default()

    def accepted(person: str) -> str:
        facts = PEOPLE[person]
        level = engine.decide(facts).level
        assert level is not None
        record = {
            "card": person,
            "facts_sha256": facts_digest(facts, engine),
            "indicated_level": level.id,
            "outcome": "accepted",
            "outcomeTimestamp": "2026-02-01T09:05:00Z",
            "override": None,
            "rulebase_sha256": engine.rulebase.sha256,
            "service": "levelcare-placement",
        }
        return json.dumps(record)

    export = tmp / "feedback.jsonl"
    export.write_text(accepted("accepted-in2") + "\n" + accepted("accepted-iop") + "\n", encoding="utf-8")
    records.append(export)
    population = tmp / "people.jsonl"
    population.write_text(
        "".join(json.dumps({"_id": person, **facts}) + "\n" for person, facts in PEOPLE.items()), encoding="utf-8"
    )
    return {"old": old, "new": new, "records": records, "population": population, "tmp": tmp}


def test_past_overrides_into_agreement_and_agreements_into_disagreement(setup: dict[str, Any]) -> None:
    """Two PHP placements of IN-2-only patients now agree; an accepted IN-2-only inpatient now disagrees."""
    evidence = override_evidence(setup["old"], setup["new"], setup["records"], setup["population"])
    assert (evidence.records, evidence.matched, evidence.unmatched_count) == (7, 6, 1)
    assert (evidence.overridden, evidence.into_agreement) == (4, 2)
    assert evidence.agreement_moves == (Move(old="inpatient", new="php", count=2),)
    assert (evidence.accepted, evidence.into_disagreement) == (2, 1)
    assert evidence.disagreement_moves == (Move(old="inpatient", new="php", count=1),)
    assert evidence.unmatched == ((str(setup["tmp"] / "override-not-in-population.json"), 1),)


def test_the_same_rule_base_agrees_with_every_accepted_record(setup: dict[str, Any]) -> None:
    """Against itself the old rule base turns nothing into agreement or disagreement."""
    evidence = override_evidence(setup["old"], setup["old"], setup["records"], setup["population"])
    assert (evidence.into_agreement, evidence.into_disagreement, evidence.accepted) == (0, 0, 2)


def test_diff_prints_the_evidence_and_puts_it_in_json(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """``--overrides`` adds one section to the text and an ``overrides`` object to the JSON; unmatched are named."""
    common = [str(setup["old"]), str(setup["new"]), "--population", str(setup["population"])]
    common += ["--overrides", *(str(p) for p in setup["records"])]
    assert main(["diff", *common]) == 1
    out = capsys.readouterr().out
    assert "7 records, 6 matched, 1 unmatched" in out
    assert "  4 overrides: the new rule base agrees with 2 (inpatient -> php 2), not with 2" in out
    assert "  2 accepted: the new rule base disagrees with 1 (inpatient -> php 1)" in out
    assert "override-not-in-population.json line 1" in out
    assert main(["diff", *common, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)["overrides"]
    assert (data["into_agreement"], data["into_disagreement"], data["unmatched_count"]) == (2, 1, 1)
    assert data["agreement_moves"] == [{"from": "inpatient", "to": "php", "count": 2}]


def test_overrides_need_a_population_and_unreadable_records_exit_two(
    setup: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the assessments nothing can be matched; a broken record line is reported by file and line."""
    assert main(["diff", str(setup["old"]), str(setup["new"]), "--overrides", str(setup["records"][0])]) == 2
    assert "--overrides needs --population" in capsys.readouterr().err
    broken = setup["tmp"] / "broken.jsonl"
    broken.write_text(setup["records"][-1].read_text(encoding="utf-8") + "{oops\n", encoding="utf-8")
    arguments = [str(setup["old"]), str(setup["new"]), "--population", str(setup["population"])]
    assert main(["diff", *arguments, "--overrides", str(broken)]) == 2
    captured = capsys.readouterr()
    assert f"levelcare diff: {broken}: line 3: not valid JSON" in captured.err
    assert "2 accepted: the new rule base disagrees with 1" in captured.out
