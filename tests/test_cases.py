"""Test vectors in the rule base: ``[[case]]`` tables, checked by the loader and run by ``levelcare check``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import attrs
import pytest

from conftest import RULES_DIR, load_examples
from levelcare import Engine, RuleBaseError, verify
from levelcare._cli import main
from levelcare._rulebase import load


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


def test_the_shipped_rule_base_carries_every_worked_example() -> None:
    cases = {c.name: c for c in load(RULES_DIR).cases}
    examples = load_examples()
    assert sorted(cases) == sorted(e["name"] for e in examples)
    for example in examples:
        case = cases[example["name"]]
        assert case.file == "cases.toml"
        assert dict(case.facts) == {k: v for k, v in example["facts"].items() if v is not None}
        expected = example["expected"]
        for key in ("level", "transition", "status", "emergency"):
            if expected[key] is None:
                assert key not in case.expect
            else:
                assert case.expect[key] == expected[key]


def test_a_case_the_rules_no_longer_meet_is_an_error_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(tmp_path)
    path = folder / "inpatient.toml"
    blocks = path.read_text(encoding="utf-8").split("[[rule]]")
    path.write_text("[[rule]]".join(b for b in blocks if 'id = "IN-2"' not in b), encoding="utf-8")
    report = verify(folder)
    failing = [f for f in report.findings if f.check == "case"]
    # Both cases that rest on IN-2 alone, and no other.
    assert [f.rule_id for f in failing] == ["severe-withdrawal", "withdrawal-only-known"]
    finding = failing[0]
    assert finding.file == "cases.toml"
    assert finding.severity.value == "error"
    assert 'expected level "inpatient", got' in finding.message
    assert finding.counterexample is not None and finding.counterexample["withdrawal_risk"] == "severe"
    assert not report.ok
    assert main(["check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "error [case] severe-withdrawal (cases.toml)" in out
    assert main(["check", str(folder), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert any(f["check"] == "case" and f["rule_id"] == "severe-withdrawal" for f in data["findings"])


def test_every_field_a_case_can_expect_is_compared(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    path = folder / "cases.toml"
    text = path.read_text(encoding="utf-8")
    old = 'expect = { level = "iop", transition = "continue", status = "complete", emergency = false }'
    assert text.count(old) == 1
    text = text.replace(old, 'expect = { transition = "step-down", emergency = true }')
    assert text.count('expect = { status = "data-required", emergency = false }') == 1
    text = text.replace('expect = { status = "data-required", emergency = false }', 'expect = { status = "complete" }')
    path.write_text(text, encoding="utf-8")
    findings = {f.rule_id: f.message for f in verify(folder).findings if f.check == "case"}
    assert set(findings) == {"iop-too-early", "harm-unknown"}
    assert 'expected transition "step-down", got "continue"' in findings["iop-too-early"]
    assert "expected emergency true, got false" in findings["iop-too-early"]
    assert 'expected status "complete", got "data-required"' in findings["harm-unknown"]


BAD_CASES = """
[[case]]
name = "typo-fact"
expect = { level = "iop" }
facts = { harm_rsk = "none" }

[[case]]
name = "typo-value"
expect = { levle = "iop", level = "iopp" }
facts = { harm_risk = "hgih" }

[[case]]
name = "typo-value"
expect = { level = "iop" }
facts = { harm_risk = "none" }

[[case]]
name = "unknown-but-levelled"
expect = { status = "data-required", level = "iop" }
facts = { harm_risk = "none" }

[[case]]
name = "not-a-table"
expect = { transition = "sideways", status = "done", emergency = "no" }
facts = "harm_risk=none"

[[case]]
name = "Bad Name"
expect = {}
facts = {}
colour = "red"
"""


def test_every_problem_in_the_cases_is_reported_with_file_and_case(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    (folder / "cases.toml").write_text(BAD_CASES, encoding="utf-8")
    with pytest.raises(RuleBaseError) as caught:
        load(folder)
    problems = [(p.file, p.rule_id, p.message) for p in caught.value.problems]
    assert {file for file, _, _ in problems} == {"cases.toml"}
    text = "\n".join(f"{r}: {m}" for _, r, m in problems)
    assert "typo-fact: facts: harm_rsk: unknown fact; did you mean 'harm_risk'?" in text
    assert "typo-value: facts: harm_risk: expected one of" in text and "did you mean 'high'?" in text
    assert "typo-value: unknown key 'levle' in expect; did you mean 'level'?" in text
    assert "typo-value: expect.level 'iopp' is not a declared level" in text
    assert "typo-value: duplicate case name (also in cases.toml)" in text
    assert "unknown-but-levelled: a data-required decision has no level or transition" in text
    assert "not-a-table: facts must be a table of fact names to values, got str" in text
    assert "not-a-table: expect.transition must be one of" in text
    assert "not-a-table: expect.status must be one of" in text
    assert "not-a-table: expect.emergency must be true or false" in text
    assert "[[case]]: a case name is lower-case letters" in text
    assert "Bad Name: unknown key 'colour' in [[case]]" in text
    # The report of ``levelcare check`` lists the same problems as load findings.
    report = verify(folder)
    assert not report.ok
    assert sum(f.file == "cases.toml" for f in report.findings) == len(problems)


def test_a_case_the_engine_cannot_decide_is_reported_not_raised() -> None:
    """A rule base with a gap (a reachable level without a programme) fails its cases by name."""
    rulebase = Engine.default()._rb
    programs = {level: p for level, p in rulebase.programs.items() if level != "php"}
    report = verify(Engine(attrs.evolve(rulebase, programs=programs)))
    failing = {f.rule_id: f.message for f in report.findings if f.check == "case"}
    assert set(failing) == {"daily-monitoring", "iop-relapse-worsening"}
    assert all("no decision: KeyError" in message for message in failing.values())


# A case that pins everything a clinician reads in the decision for
# examples/moderate-working-parent.json, as the README shows it.
PINNED_CASE = """
[[case]]
name = "pinned-working-parent"
story = "Moderate disorder, working parent, supportive home."
expect.level = "iop"
expect.transition = "admit"
expect.status = "complete"
expect.emergency = false
expect.reasons = ["IO-1"]
expect.ruled_out = { outpatient = ["IO-1"], php = {php}, inpatient = {inpatient} }
expect.missing = []
expect.range = ["iop", "iop"]
expect.services = ["individual_therapy", "group_therapy", "relapse_prevention", "family_therapy", "medication_management"]
expect.considerations = ["CF-1"]
expect.program = { level = "iop", hours_per_week = [9, 19], days_per_week = [3, 5] }

[case.facts]
harm_risk = "none"
withdrawal_risk = "none"
medical_instability = false
needs_24h_supervision = false
needs_daily_monitoring = false
addiction_severity = "moderate"
psychiatric_severity = "none"
relapse_risk = "low"
home_environment = "supportive"
support_system = "strong"
employed_or_in_school = true
caregiver = true
medication_indicated = true
family_involved = true
hours_available_per_week = 10
days_available_per_week = 3
"""
PHP_IDS = '["PH-1", "PH-2", "PH-3", "PH-4", "PH-5", "PH-6", "PH-7"]'
INPATIENT_IDS = '["IN-6", "IN-5", "IN-4", "IN-3", "IN-2", "IN-1"]'


def _with_pinned_case(tmp_path: Path, **replace: str) -> Path:
    folder = _copy(tmp_path)
    text = PINNED_CASE.replace("{php}", PHP_IDS).replace("{inpatient}", INPATIENT_IDS)
    for old, new in replace.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    with (folder / "cases.toml").open("a", encoding="utf-8") as stream:
        stream.write(text)
    return folder


def test_a_case_can_pin_reasons_ruled_out_levels_missing_facts_range_services_considerations_and_programme(
    tmp_path: Path,
) -> None:
    report = verify(_with_pinned_case(tmp_path))
    assert [f.message for f in report.findings] == []
    assert (report.cases, report.cases_passed) == (15, 15)
    assert "Test vectors: 15 of 15 cases pass." in report.render()


# Each row: what the case is edited to expect, and the "expected ..., got ..." the check must print.
WRONG_EXPECTATIONS = [
    (
        'expect.reasons = ["IO-1"]',
        'expect.reasons = ["IO-1", "IO-2"]',
        'expected reasons ["IO-1", "IO-2"], got ["IO-1"]',
    ),
    ('outpatient = ["IO-1"]', 'outpatient = ["OP-1"]', 'expected ruled_out {"outpatient": ["OP-1"]'),
    ("expect.missing = []", 'expect.missing = ["relapse_risk"]', 'expected missing ["relapse_risk"], got []'),
    (
        'expect.range = ["iop", "iop"]',
        'expect.range = ["iop", "php"]',
        'expected range ["iop", "php"], got ["iop", "iop"]',
    ),
    (
        '"family_therapy", ',
        "",
        'expected services ["individual_therapy", "group_therapy", "relapse_prevention", "medication_management"], got',
    ),
    (
        'expect.considerations = ["CF-1"]',
        'expect.considerations = ["CF-1", "CF-3"]',
        'expected considerations ["CF-1", "CF-3"], got ["CF-1"]',
    ),
    (
        "hours_per_week = [9, 19]",
        "hours_per_week = [9, 20]",
        'expected program {"level": "iop", "hours_per_week": [9, 20], "days_per_week": [3, 5]}, got {"level": "iop", "hours_per_week": [9, 19], "days_per_week": [3, 5]}',
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "message"), WRONG_EXPECTATIONS, ids=[r[0].split(" ")[0] for r in WRONG_EXPECTATIONS]
)
def test_each_pinned_part_of_a_case_fails_with_expected_against_actual(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    report = verify(_with_pinned_case(tmp_path, **{old: new}))
    failing = [f for f in report.findings if f.check == "case"]
    assert [f.rule_id for f in failing] == ["pinned-working-parent"]
    assert message in failing[0].message
    assert (report.cases, report.cases_passed) == (15, 14)
    assert "Test vectors: 14 of 15 cases pass." in report.render()


def test_names_in_a_pinned_list_are_compared_in_any_order_and_ruled_out_per_level(tmp_path: Path) -> None:
    folder = _with_pinned_case(tmp_path)
    text = (folder / "cases.toml").read_text(encoding="utf-8")
    text = text.replace(PHP_IDS, '["PH-7", "PH-6", "PH-5", "PH-4", "PH-3", "PH-2", "PH-1"]')
    (folder / "cases.toml").write_text(text, encoding="utf-8")
    assert verify(folder).cases_passed == 15
    # Leaving a ruled-out level out of the table is a difference: the table lists every one.
    text = text.replace(", inpatient = " + INPATIENT_IDS, "")
    (folder / "cases.toml").write_text(text, encoding="utf-8")
    failing = [f.message for f in verify(folder).findings if f.check == "case"]
    assert len(failing) == 1 and "expected ruled_out" in failing[0] and '"inpatient": [' in failing[0]


BAD_PINS = """
[[case]]
name = "bad-pins"
expect.reasons = "IO-1"
expect.missing = ["relapse_rsk", "relapse_rsk"]
expect.range = ["inpatient", "iop"]
expect.services = [1, 2]
expect.considerations = ["CF-1", "CF-1"]
expect.ruled_out = { iopp = ["IO-1"], php = "PH-1" }
expect.program = { hours = [9, 19], days_per_week = [5, 3], recommended_minimum_days = 0 }
facts = { harm_risk = "none" }

[[case]]
name = "bad-shapes"
expect.range = "iop"
expect.ruled_out = ["php"]
expect.program = {}
expect.missing = ["relapse_rsk"]
facts = { harm_risk = "none" }
"""


def test_every_problem_in_pinned_expectations_is_reported(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    with (folder / "cases.toml").open("a", encoding="utf-8") as stream:
        stream.write(BAD_PINS)
    with pytest.raises(RuleBaseError) as caught:
        load(folder)
    text = "\n".join(f"{p.rule_id}: {p.message}" for p in caught.value.problems)
    assert "bad-pins: expect.reasons must be a list of names, got 'IO-1'" in text
    assert "bad-pins: expect.missing names an entry twice" in text
    assert "bad-pins: expect.range must be [low, high], least intensive first" in text
    assert "bad-pins: expect.services must be a list of names" in text
    assert "bad-pins: expect.considerations names an entry twice" in text
    assert "bad-pins: expect.ruled_out level 'iopp' is not a declared level" in text and "did you mean 'iop'?" in text
    assert "bad-pins: expect.ruled_out.php must be a list of names, got 'PH-1'" in text
    assert "bad-pins: unknown key 'hours' in expect.program; did you mean 'hours_per_week'?" in text
    assert "bad-pins: expect.program.days_per_week must be [low, high]" in text
    assert "bad-pins: expect.program.recommended_minimum_days must be a whole number of days, got 0" in text
    assert "bad-shapes: expect.range must be [low, high], two level ids, got 'iop'" in text
    assert "bad-shapes: expect.ruled_out must be a table of level ids to rule ids" in text
    assert "bad-shapes: expect.program must be a table with at least one of" in text
    assert "bad-shapes: expect.missing names 'relapse_rsk', which is not a fact; did you mean 'relapse_risk'?" in text


def test_check_case_prints_one_named_case_in_full_and_exits_by_its_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _with_pinned_case(tmp_path)
    assert main(["check", str(folder), "--case", "pinned-working-parent"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Case pinned-working-parent (cases.toml)\n  Moderate disorder, working parent")
    assert "Result: passes" in out
    assert "Level: iop (IOP)   Transition: admit" in out and "CF-1: IOP can be scheduled" in out
    bad = _with_pinned_case(tmp_path / "bad", **{'expect.considerations = ["CF-1"]': "expect.considerations = []"})
    assert main(["check", str(bad), "--case", "pinned-working-parent", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False
    assert data["mismatches"] == ['expected considerations [], got ["CF-1"]']
    assert data["decision"]["level"] == "iop"
    assert main(["check", str(folder), "--case", "pinned-working-parnet"]) == 2
    err = capsys.readouterr().err
    assert "no case named 'pinned-working-parnet' among its 15 cases; did you mean 'pinned-working-parent'?" in err
