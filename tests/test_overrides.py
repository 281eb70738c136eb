"""levelcare.overrides: placement override records, nearest_available, and `levelcare override`."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES_DIR
from inprocess import run_levelcare
from levelcare import Engine, InvalidOverride
from levelcare.overrides import REASONS, PlacementOverride, facts_digest, nearest_available, reason_codings

EXAMPLE = EXAMPLES_DIR / "moderate-working-parent.json"
TOP = Engine.default().levels.highest.id
WHEN = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


@pytest.fixture(scope="module")
def facts() -> dict[str, Any]:
    return dict(json.loads(EXAMPLE.read_text(encoding="utf-8"))["facts"])


def problems(error: pytest.ExceptionInfo[InvalidOverride]) -> set[tuple[str, str]]:
    return {(p.fact, p.message) for p in error.value.problems}


def test_an_override_is_linked_to_its_decision_and_round_trips(engine: Engine, facts: dict[str, Any]) -> None:
    decision = engine.decide(facts)
    assert decision.level is not None
    above = engine.levels[decision.level.rank + 1]
    record = PlacementOverride.create(
        engine,
        decision=decision,
        facts=facts,
        received=above.id,
        reasons=["payer-decision", "other"],
        text="Authorised for the level above",
        recorded_at=WHEN,
    )
    assert record.indicated == decision.level
    assert record.received == above
    assert record.rulebase_sha256 == engine.rulebase.sha256
    assert record.facts_sha256 == facts_digest(facts, engine)
    assert record.reason_displays == (REASONS["payer-decision"], REASONS["other"])
    data = json.loads(json.dumps(record.to_dict()))
    assert data["indicated_level"] == decision.level.id
    assert data["reasons"][0] == {
        "system": "urn:levelcare:override-reason",
        "code": "payer-decision",
        "display": REASONS["payer-decision"],
    }
    assert PlacementOverride.from_dict(data, engine) == record


def test_the_facts_digest_ignores_order_and_unknowns(engine: Engine, facts: dict[str, Any]) -> None:
    reordered = dict(reversed(list(facts.items())))
    assert facts_digest(reordered, engine) == facts_digest({**facts, "motivation": None}, engine)
    assert facts_digest(facts, engine) != facts_digest({**facts, "caregiver": False}, engine)
    assert len(facts_digest(facts, engine)) == 64


def test_the_facts_digest_is_the_decisions_input_sha256(engine: Engine, facts: dict[str, Any]) -> None:
    """An override record and a decision of the same facts carry the same digest, so they can be matched."""
    assert facts_digest(facts, engine) == engine.decide(facts).input_sha256


def test_reason_codings_list_every_reason() -> None:
    codings = reason_codings()
    assert [c["code"] for c in codings] == list(REASONS)
    assert [c["code"] for c in codings] == [
        "service-not-available",
        "person-preference",
        "payer-decision",
        "clinical-judgement",
        "other",
    ]
    assert all(c["display"] for c in codings)


def test_create_reports_every_problem(engine: Engine, facts: dict[str, Any]) -> None:
    decision = engine.decide(facts)
    with pytest.raises(InvalidOverride) as caught:
        PlacementOverride.create(
            engine,
            decision=decision,
            facts={**facts, "addiction_severity": "severe", "harm_risc": "low"},
            received="detox",
            reasons=["other", "budget", "other"],
        )
    found = problems(caught)
    levels = ", ".join(engine.levels.ids)
    assert found == {
        ("facts.harm_risc", "unknown fact; did you mean 'harm_risk'?"),
        ("received", f"'detox' is not a level of this rule base; use one of {levels}"),
        ("reasons", f"'budget' is not a reason; use one of {', '.join(REASONS)}"),
        ("reasons", "a reason is given twice"),
        ("text", "reason 'other' needs the text to say what it is"),
    }
    with pytest.raises(InvalidOverride) as caught:
        PlacementOverride.create(
            engine,
            decision=decision,
            facts={**facts, "harm_risk": "imminent"},
            received=decision.level,
            reasons=[],
        )
    assert problems(caught) == {
        ("facts", "do not give this decision's level; pass the facts it decided on"),
        ("reasons", f"give at least one of {', '.join(REASONS)}"),
        ("received", "is the indicated level; an override records a different level"),
    }


def test_create_needs_a_complete_decision_of_the_engine(
    engine: Engine, renamed_engine: Engine, facts: dict[str, Any]
) -> None:
    partial = engine.decide({"harm_risk": "none"})
    with pytest.raises(InvalidOverride, match=r"decision: indicates no level until more is known \(withdrawal_risk"):
        PlacementOverride.create(engine, decision=partial, facts={}, received=None, reasons=["other"], text="x")
    other = renamed_engine.decide(facts)
    with pytest.raises(InvalidOverride, match="decision: was made by another rule base than this engine's"):
        PlacementOverride.create(engine, decision=other, facts=facts, received=None, reasons=["other"], text="x")
    with pytest.raises(InvalidOverride, match=r"decision: expected a levelcare.Decision, got object"):
        PlacementOverride.create(engine, decision={}, facts=facts, received=None, reasons=["other"], text="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidOverride, match=r"engine: expected a levelcare.Engine, got string"):
        PlacementOverride.create("engine", decision=other, facts=facts, received=None, reasons=["other"])


def test_the_received_level_must_be_of_the_rule_base(renamed_engine: Engine, facts: dict[str, Any]) -> None:
    decision = renamed_engine.decide(facts)
    with pytest.raises(InvalidOverride, match="received: 'php' is not a level of this rule base"):
        PlacementOverride.create(
            renamed_engine, decision=decision, facts=facts, received="php", reasons=["clinical-judgement"]
        )
    record = PlacementOverride.create(
        renamed_engine, decision=decision, facts=facts, received="day-hospital", reasons=["clinical-judgement"]
    )
    assert record.received == renamed_engine.levels["day-hospital"]
    with pytest.raises(InvalidOverride, match=r"received_level: 'day-hospital' is not a level of this rule base"):
        PlacementOverride.from_dict(record.to_dict(), Engine.default())


def test_the_constructor_checks_its_fields(engine: Engine) -> None:
    level = engine.levels[0]
    with pytest.raises(InvalidOverride) as caught:
        PlacementOverride(
            indicated="iop",  # type: ignore[arg-type]
            received=level,
            reasons=("person-preference",),
            text="x" * 2001,
            rulebase_sha256="abc",
            facts_sha256="F" * 64,
            recorded_at=dt.datetime(2026, 1, 1),  # noqa: DTZ001 - a naive time, refused
        )
    assert problems(caught) == {
        ("indicated", "expected a Level such as engine.levels[...], got string"),
        ("text", "at most 2000 characters, got 2001"),
        ("rulebase_sha256", "expected 64 lower-case hexadecimal digits, got 'abc'"),
        (
            "facts_sha256",
            "expected 64 lower-case hexadecimal digits, got " + "'FFFFFFFFFFFFFFFFF...FFFFFFFFFFFFFFFFFF'",
        ),
        ("recorded_at", "expected a timezone-aware datetime, got datetime"),
    }
    with pytest.raises(InvalidOverride, match="text: expected a string, got integer"):
        PlacementOverride(
            indicated=level, received=None, reasons=["other"], text=5, rulebase_sha256="a" * 64, facts_sha256="b" * 64
        )  # type: ignore[arg-type]
    with pytest.raises(InvalidOverride, match="reasons: expected a list of reason codes, got string"):
        PlacementOverride(
            indicated=level, received=None, reasons="other", text="", rulebase_sha256="a" * 64, facts_sha256="b" * 64
        )  # type: ignore[arg-type]


def test_from_dict_reports_every_problem(engine: Engine) -> None:
    data = {
        "indicated_level": "detox",
        "received_level": 3,
        "reasons": "other",
        "text": "",
        "rulebase_sha256": "0" * 64,
        "facts_sha256": "nope",
        "recorded_at": "yesterday",
        "colour": "red",
    }
    with pytest.raises(InvalidOverride) as caught:
        PlacementOverride.from_dict(data, engine)
    levels = ", ".join(engine.levels.ids)
    assert problems(caught) == {
        ("'colour'", "unknown field"),
        ("indicated_level", f"'detox' is not a level of this rule base; use one of {levels}"),
        ("received_level", f"3 is not a level of this rule base; use one of {levels}"),
        ("reasons", "expected a list, got string"),
        ("rulebase_sha256", "is not this engine's rule base; read it with the engine that decided"),
        ("recorded_at", "not an ISO 8601 date and time with its offset: 'yesterday'"),
        ("facts_sha256", "expected 64 lower-case hexadecimal digits, got 'nope'"),
        ("reasons", f"give at least one of {', '.join(REASONS)}"),
    }
    with pytest.raises(InvalidOverride, match="expected an object, got array"):
        PlacementOverride.from_dict([], engine)


# --- nearest_available ----------------------------------------------------------------


def test_nearest_available_picks_the_nearest_more_intensive_level(
    renamed_engine: Engine, facts: dict[str, Any]
) -> None:
    engine = renamed_engine
    decision = engine.decide(facts)
    assert decision.level is not None
    indicated = decision.level
    above = [level.id for level in engine.levels if level > indicated]
    below = [level.id for level in engine.levels if level < indicated]
    assert nearest_available(decision, [*below, indicated.id], engine, facts=facts) is None
    record = nearest_available(decision, [*below, *reversed(above)], engine, facts=facts, recorded_at=WHEN)
    assert record is not None
    assert record.received == engine.levels[above[0]]
    assert record.reasons == ("service-not-available",)
    assert (
        record.text
        == f"{indicated.label} is not available; {engine.levels[above[0]].label} is the nearest more intensive level that is."
    )
    assert record.recorded_at == WHEN
    assert record.facts_sha256 == facts_digest(facts, engine)


def test_nearest_available_never_places_below_the_indicated_level(engine: Engine, facts: dict[str, Any]) -> None:
    decision = engine.decide(facts)
    assert decision.level is not None
    below = [level for level in engine.levels if level < decision.level]
    with pytest.raises(InvalidOverride, match=f"available: no level at or above {decision.level.id} is available"):
        nearest_available(decision, below, engine, facts=facts)
    with pytest.raises(InvalidOverride, match="available: 'day-hospital' is not a level of this rule base"):
        nearest_available(decision, ["day-hospital"], engine, facts=facts)
    with pytest.raises(InvalidOverride, match="available: expected a list of levels, got string"):
        nearest_available(decision, TOP, engine, facts=facts)
    partial = engine.decide({"harm_risk": "none"})
    with pytest.raises(InvalidOverride, match="decision: indicates no level until more is known"):
        nearest_available(partial, list(engine.levels), engine, facts={"harm_risk": "none"})


# --- the command line -------------------------------------------------------------------


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_levelcare("override", *args, stdin=stdin)


def test_override_command_writes_a_record(engine: Engine, facts: dict[str, Any], tmp_path: Path) -> None:
    decision = engine.decide(facts)
    assert decision.level is not None
    above = engine.levels[decision.level.rank + 1].id
    target = tmp_path / "override.json"
    done = run(
        str(EXAMPLE), "--received", above, "--reason", "person-preference", "--text", "Prefers days", "-o", str(target)
    )
    assert (done.returncode, done.stderr) == (0, "")
    record = PlacementOverride.from_dict(json.loads(target.read_text(encoding="utf-8")), engine)
    assert (record.indicated, record.received, record.reasons) == (
        decision.level,
        engine.levels[above],
        ("person-preference",),
    )
    assert record.facts_sha256 == facts_digest(facts, engine)
    assert record.recorded_at is not None and record.recorded_at.utcoffset() == dt.timedelta(0)


def test_override_command_with_available_levels(engine: Engine, facts: dict[str, Any]) -> None:
    decision = engine.decide(facts)
    assert decision.level is not None
    top = engine.levels.highest.id
    done = run("-", "--available", f"{engine.levels.lowest.id}, {top}", stdin=json.dumps(facts))
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert (record["received_level"], record["reasons"][0]["code"]) == (top, "service-not-available")
    same = run(str(EXAMPLE), "--available", decision.level.id)
    assert (same.returncode, same.stdout) == (0, "")
    assert same.stderr == f"levelcare: {decision.level.id} is available: nothing to override\n"


def test_override_command_errors(engine: Engine, tmp_path: Path) -> None:
    bad = run(str(EXAMPLE), "--received", "detox", "--reason", "other")
    assert bad.returncode == 2
    levels = ", ".join(engine.levels.ids)
    assert bad.stderr.splitlines() == [
        f"levelcare: invalid input: override: received: 'detox' is not a level of this rule base; use one of {levels}",
        "levelcare: invalid input: override: text: reason 'other' needs the text to say what it is",
    ]
    both = run(str(EXAMPLE), "--available", TOP, "--reason", "other")
    assert both.returncode == 2
    assert "--reason: --available records service-not-available itself" in both.stderr
    partial = run(str(EXAMPLES_DIR / "harm-unknown.json"), "--received", TOP, "--reason", "other")
    assert partial.returncode == 3
    assert "no level is indicated until more is known: harm_risk" in partial.stderr
    invalid = run("-", "--received", TOP, "--reason", "payer-decision", stdin='{"harm_risk": 3}')
    assert invalid.returncode == 2
    assert "invalid input: standard input: harm_risk: expected one of" in invalid.stderr
    unwritable = run(
        str(EXAMPLE), "--received", TOP, "--reason", "payer-decision", "-o", str(tmp_path / "no" / "x.json")
    )
    assert unwritable.returncode == 1
    assert "cannot write" in unwritable.stderr
    unknown_reason = run(str(EXAMPLE), "--received", TOP, "--reason", "budget")
    assert unknown_reason.returncode == 2
    assert "invalid choice: 'budget'" in unknown_reason.stderr
