"""``levelcare overrides summary``: override records and CDS Hooks feedback read back, per level and per rule.

The override records are written by ``levelcare override``; the feedback records
have the fields of the CDS Hooks service's JSON Lines export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES_DIR
from levelcare import Engine
from levelcare._cli import main
from levelcare.overrides import REASON_SYSTEM, PlacementOverride, ReasonCount, Tally, facts_digest, summarise

EHR_SYSTEM = "http://ehr.example.org/fhir/CodeSystem/override-reason"
LONG_COMMENT = "Family asked for a day programme so that the children can stay at home with their father"


def example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))["facts"])


#: Assessments by id: three severe withdrawals (IN-2; one also IN-3), and one each of outpatient and PHP.
PEOPLE: dict[str, dict[str, Any]] = {
    "p1": example("severe-withdrawal"),
    "p2": {**example("severe-withdrawal"), "medical_instability": True},
    "p3": {**example("severe-withdrawal"), "support_system": "limited", "home_environment": "neutral"},
    "p4": example("mild-stable-worker"),
    "p5": example("daily-monitoring"),
    "p6": example("moderate-working-parent"),
}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


def override(tmp: Path, person: str, *options: str) -> Path:
    """An override record written by ``levelcare override``."""
    facts = tmp / f"{person}.json"
    facts.write_text(json.dumps(PEOPLE[person]), encoding="utf-8")
    out = tmp / f"override-{person}.json"
    assert main(["override", str(facts), *options, "-o", str(out)]) == 0
    return out


def feedback(engine: Engine, person: str, outcome: str, **more: Any) -> dict[str, Any]:
    """A feedback record with the fields of the service's export."""
    facts = PEOPLE[person]
    decision = engine.decide(facts)
    assert decision.level is not None
    return {
        "card": f"card-{person}",
        "facts_sha256": facts_digest(facts, engine),
        "indicated_level": decision.level.id,
        "outcome": outcome,
        "outcomeTimestamp": "2026-02-01T09:05:00Z",
        "override": None,
        "rulebase_sha256": engine.rulebase.sha256,
        "service": "levelcare-placement",
        **more,
    }


@pytest.fixture(scope="module")
def files(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("practice")
    p1 = override(tmp, "p1", "--received", "php", "--reason", "clinical-judgement")
    p2 = override(tmp, "p2", "--received", "php", "--reason", "payer-decision", "--text", "Authorised for PHP only")
    p5 = override(tmp, "p5", "--available", "outpatient,iop,inpatient")
    coded = PlacementOverride.create(
        engine,
        decision=engine.decide(PEOPLE["p4"]),
        facts=PEOPLE["p4"],
        received="iop",
        reasons=["clinical-judgement"],
        text="Relapsed twice on outpatient care",
    ).to_dict()
    lines = [
        json.dumps(feedback(engine, "p3", "accepted")),
        json.dumps(feedback(engine, "p4", "overridden", override=coded, stored_at="2026-02-01T09:05:01Z")),
        json.dumps(feedback(engine, "p1", "overridden", overrideReason={"userComment": LONG_COMMENT})),
        json.dumps(
            feedback(engine, "p6", "overridden", overrideReason={"reason": {"system": EHR_SYSTEM, "code": "bed"}})
        ),
        '{"outcome": "accepted", "indicated_level": "iop", "card": "x"',
        json.dumps({"hello": "world"}),
        json.dumps({**feedback(engine, "p6", "accepted"), "indicated_level": "detox"}),
        "",
        json.dumps(feedback(engine, "p6", "accepted")),
    ]
    export = tmp / "feedback.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    population = tmp / "people.jsonl"
    population.write_text(
        "".join(json.dumps({"_id": person, **facts}) + "\n" for person, facts in PEOPLE.items() if person != "p5"),
        encoding="utf-8",
    )
    return {"p1": p1, "p2": p2, "p5": p5, "feedback": export, "population": population}


def by_key(tallies: tuple[Tally, ...]) -> dict[str, Tally]:
    return {tally.key: tally for tally in tallies}


def test_counts_per_level_from_override_records_and_feedback(engine: Engine, files: dict[str, Path]) -> None:
    """Accepted, overridden, above and below, and the reasons, per level indicated, from both kinds of record."""
    summary = summarise([files["p1"], files["p2"], files["p5"], files["feedback"]], engine)
    assert (summary.overrides, summary.feedback) == (3, 5)
    levels = by_key(summary.levels)
    assert list(levels) == ["outpatient", "iop", "php", "inpatient"]  # the rule base's order
    inpatient = levels["inpatient"]
    assert (inpatient.accepted, inpatient.overridden) == (1, 3)
    assert (inpatient.above, inpatient.below, inpatient.not_recorded) == (0, 2, 1)
    assert inpatient.received == (("php", 2),)
    assert inpatient.reasons == (
        ReasonCount(system=REASON_SYSTEM, code="clinical-judgement", count=1),
        ReasonCount(system=REASON_SYSTEM, code="payer-decision", count=1),
    )
    assert (inpatient.no_reason, inpatient.comments) == (1, 2)
    outpatient = levels["outpatient"]
    assert (outpatient.accepted, outpatient.overridden, outpatient.above, outpatient.below) == (0, 1, 1, 0)
    assert outpatient.received == (("iop", 1),)
    php = levels["php"]  # --available: the nearest more intensive level, service-not-available
    assert (php.overridden, php.above, php.received) == (1, 1, (("inpatient", 1),))
    assert php.reasons == (ReasonCount(system=REASON_SYSTEM, code="service-not-available", count=1),)
    iop = levels["iop"]  # the EHR's own coding, and no level received
    assert (iop.accepted, iop.overridden, iop.not_recorded) == (1, 1, 1)
    assert iop.reasons == (ReasonCount(system=EHR_SYSTEM, code="bed", count=1),)


def test_every_unreadable_line_is_reported_by_file_and_line(engine: Engine, files: dict[str, Path]) -> None:
    """A broken line, a record of neither kind and an unknown level are each reported; the rest are counted."""
    summary = summarise([files["feedback"]], engine)
    source = str(files["feedback"])
    assert [(u.source, u.line) for u in summary.unreadable] == [(source, 5), (source, 6), (source, 7)]
    first, second, third = (u.message for u in summary.unreadable)
    assert first.startswith("not valid JSON: ")
    assert second.startswith("neither an override record")
    assert third.startswith("indicated_level: 'detox' is not a level of this rule base")
    assert summary.unreadable_count == 3
    assert summary.feedback == 5  # line 9, after the blank line and the bad ones, is read too


def test_comments_are_counted_and_echoed_at_most_40_characters(
    engine: Engine, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Free text is never printed in full, in text or in JSON."""
    summary = summarise([files["feedback"]], engine)
    inpatient = by_key(summary.levels)["inpatient"]
    assert inpatient.comments == 1
    ((opening, count),) = inpatient.comment_openings
    assert (opening, count) == (LONG_COMMENT[:37] + "...", 1)
    for arguments in ([], ["--json"]):
        assert main(["overrides", "summary", str(files["feedback"]), *arguments]) == 2
        out = capsys.readouterr().out
        assert LONG_COMMENT[:37] in out
        assert LONG_COMMENT[:41] not in out


def test_per_rule_counts_need_the_assessments(engine: Engine, files: dict[str, Path]) -> None:
    """With a population, each record counts under the rules of its decision; one with no assessment is unmatched."""
    paths = [files["p1"], files["p2"], files["p5"], files["feedback"]]
    assert summarise(paths, engine).rules == ()
    summary = summarise(paths, engine, population=files["population"])
    rules = by_key(summary.rules)
    assert (rules["IN-2"].accepted, rules["IN-2"].overridden, rules["IN-2"].below) == (1, 3, 2)
    assert (rules["IN-3"].overridden, rules["IN-3"].below) == (1, 1)
    assert (rules["OP-1"].overridden, rules["OP-1"].above) == (1, 1)
    assert "PH-1" not in rules  # p5 is not in the population
    assert (summary.attributed, summary.unmatched) == (7, 1)
    assert summary.unmatched_records == ((str(files["p5"]), 1),)


def test_the_command_prints_text_and_json_and_exits_two_on_unreadable_lines(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Text names each level and reason; --json is the typed value's dict; unreadable lines go to standard error."""
    common = [str(files["p1"]), str(files["feedback"]), "--population", str(files["population"])]
    assert main(["overrides", "summary", *common]) == 2
    captured = capsys.readouterr()
    assert "  inpatient: 3 records, 1 accepted, 2 overridden" in captured.out
    assert "    received: 0 above; 1 below; 1 not saying (php 1)" in captured.out
    assert f"bed ({EHR_SYSTEM[:37]}...) 1" in captured.out
    assert "  IN-2: 3 records, 1 accepted, 2 overridden" in captured.out
    assert f"levelcare: invalid input: {files['feedback']}: line 6: neither an override record" in captured.err
    assert main(["overrides", "summary", *common, "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["records"] == {"overrides": 1, "feedback": 5}
    assert data["levels"]["inpatient"]["below"] == 1
    assert data["rules"]["IN-2"]["overridden"] == 2
    assert [u["line"] for u in data["unreadable"]] == [5, 6, 7]
    assert main(["overrides", "summary", str(files["p1"])]) == 0
    capsys.readouterr()


def test_json_arrays_and_broken_json_documents(engine: Engine, tmp_path: Path, files: dict[str, Path]) -> None:
    """A JSON array is read item by item; a broken multi-line document is one unreadable record at its line."""
    record = json.loads(files["p1"].read_text(encoding="utf-8"))
    array = tmp_path / "array.json"
    array.write_text(json.dumps([record, record, 7], indent=2), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(record, indent=2).replace('"php"', "php"), encoding="utf-8")
    summary = summarise([array, broken], engine)
    assert summary.overrides == 2
    assert [(Path(u.source).name, u.line) for u in summary.unreadable] == [("array.json", 3), ("broken.json", 3)]
    assert summary.unreadable[0].message == "expected a JSON object (an override or feedback record), got integer"


def test_an_organisations_rule_base_reads_its_own_levels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--rules gives the level order; a level the shipped rule base lacks is unreadable without it."""
    rules = EXAMPLES_DIR / "rulebases" / "continuum"
    engine = Engine.from_path(rules)
    low, high = engine.levels[0], engine.levels[-1]
    record = {"indicated_level": high.id, "received_level": low.id, "reasons": ["person-preference"], "text": ""}
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert main(["overrides", "summary", str(path), "--rules", str(rules), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["levels"][high.id]["below"], data["levels"][high.id]["received"]) == (1, {low.id: 1})
    status = main(["overrides", "summary", str(path)])
    assert status == (2 if high.id not in Engine.default().levels.ids else 0)


def test_a_missing_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["overrides", "summary", str(tmp_path / "none.jsonl")]) == 1
    assert "none.jsonl: cannot read the file: No such file or directory" in capsys.readouterr().err


def test_codes_and_comments_are_echoed_without_control_characters(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A code or comment holding terminal escapes is printed escaped, never raw."""
    record = feedback(
        engine,
        "p6",
        "overridden",
        overrideReason={"reason": {"system": EHR_SYSTEM, "code": "\x1b[2Jbed"}, "userComment": "\x1b]0;x\x07hi"},
    )
    path = tmp_path / "feedback.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    assert main(["overrides", "summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2Jbed" in out
