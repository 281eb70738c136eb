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
