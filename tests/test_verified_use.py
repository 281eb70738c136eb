"""A rule base that does not pass ``levelcare check`` is refused where decisions are made in bulk, unless allowed.

``levelcare batch`` checks the rule base before its first line; one with errors is
refused, naming each error, and with ``--allow-unverified`` it runs with every
record (and the closing record) saying so. ``levelcare.verify(engine).raise_for_errors()``
refuses the same way. Verified rule bases give the same records as before.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import levelcare
from conftest import RULES_DIR, SHIPPED_LEVELS
from inprocess import run_levelcare
from levelcare import Decision, Engine, RuleBaseError, UnverifiedRuleBase
from levelcare._render._report import render


def _batch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "in.jsonl"
    source.write_text('{"withdrawal_risk": "severe"}\n{"harm_risk": "imminent"}\n', encoding="utf-8")
    return run_levelcare("batch", str(source), "--no-progress", *args)


def test_a_report_refuses_an_unverified_rule_base_on_request(unsound_rules: Path) -> None:
    engine = Engine.from_path(unsound_rules)
    assert engine.rulebase.unverified is False  # loading does not check
    with pytest.raises(UnverifiedRuleBase) as caught:
        levelcare.verify(engine).raise_for_errors()
    assert isinstance(caught.value, RuleBaseError)
    assert [(p.file, p.rule_id) for p in caught.value.problems] == [
        ("cases.toml", "severe-withdrawal"),
        ("cases.toml", "withdrawal-only-known"),
    ]
    assert str(caught.value).startswith("the rule base did not pass levelcare check, 2 problems:")
    report = levelcare.verify(Engine.from_path(RULES_DIR))
    assert report.raise_for_errors() is report


def test_batch_refuses_an_unverified_rule_base_and_writes_nothing(tmp_path: Path, unsound_rules: Path) -> None:
    output = tmp_path / "out.jsonl"
    result = _batch(tmp_path, "--rules", str(unsound_rules), "-o", str(output))
    assert result.returncode == 1
    assert "the rule base did not pass levelcare check, 2 problems:" in result.stderr
    assert "severe-withdrawal" in result.stderr and "--allow-unverified" in result.stderr
    assert not output.exists() and not (tmp_path / "out.jsonl.partial").exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_with_allow_unverified_every_record_says_so(tmp_path: Path, workers: str, unsound_rules: Path) -> None:
    result = _batch(tmp_path, "--rules", str(unsound_rules), "--allow-unverified", "--workers", workers)
    assert result.returncode == 0, result.stderr
    assert "warning: the rule base did not pass levelcare check" in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3  # two decisions and the closing record
    assert all(record["rulebase"]["unverified"] is True for record in records)
    decision = Decision.from_dict({k: v for k, v in records[0].items() if k != "line"}, levels=SHIPPED_LEVELS)
    assert decision.rulebase.unverified is True
    assert "UNVERIFIED: this rule base did not pass levelcare check" in render(decision)


def test_a_verified_rule_base_keeps_its_records_unmarked(tmp_path: Path) -> None:
    result = _batch(tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert all("unverified" not in record["rulebase"] for record in records)
    assert "warning" not in result.stderr
