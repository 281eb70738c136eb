"""``levelcare diff``: the exact difference between two rule bases.

Counts are checked against brute force (every admission decided by both
engines), and every region against decisions of assessments drawn inside and
outside it.
"""

from __future__ import annotations

import collections
import itertools
import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES_DIR, RULES_DIR
from levelcare import Engine
from levelcare._cli import main
from levelcare._verify._diff import DiffError, DiffUnfinished, RuleBaseDiff, diff


def _copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copytree(RULES_DIR, target)
    return target


def _drop_rule(folder: Path, file: str, rule_id: str) -> None:
    path = folder / file
    blocks = path.read_text(encoding="utf-8").split("[[rule]]")
    kept = [b for b in blocks if f'id = "{rule_id}"' not in b]
    assert len(kept) == len(blocks) - 1
    path.write_text("[[rule]]".join(kept), encoding="utf-8")


@pytest.fixture(scope="module")
def tr6_eight_weeks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = _copy(tmp_path_factory.mktemp("tr6"), "rules")
    path = folder / "transitions.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count('{ fact = "weeks_at_current_level", at_least = 12 }') == 1
    path.write_text(text.replace("at_least = 12 }", "at_least = 8 }"), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def without_in3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = _copy(tmp_path_factory.mktemp("in3"), "rules")
    _drop_rule(folder, "inpatient.toml", "IN-3")
    return folder


def _outcome(engine: Engine, facts: dict[str, Any]) -> tuple[Any, ...]:
    decision = engine.decide(facts)
    assert decision.level is not None and decision.transition is not None
    return decision.level.id, decision.transition.value, decision.status, decision.emergency


def _side(data: dict[str, Any]) -> tuple[Any, ...]:
    return data["level"], data["transition"], data["status"], data["emergency"]


def _contains(when: dict[str, Any], facts: dict[str, Any], kinds: dict[str, str]) -> bool:
    for name, allowed in when.items():
        value = facts[name]
        if kinds[name] == "integer":
            if not any(lo <= value <= hi for lo, hi in allowed):
                return False
        elif not any(value == a and type(value) is type(a) for a in allowed):
            return False
    return True


def _random_assessment(engine: Engine, rng: random.Random, *, in_treatment: bool) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    for fact in engine.vocabulary.facts:
        if fact.group == "candidacy" or (fact.group == "progress" and not in_treatment):
            continue
        if fact.kind == "integer":
            low, high = fact.minimum or 0, fact.maximum or 0
            facts[fact.name] = rng.randint(low, min(high, 20)) if rng.random() < 0.9 else rng.randint(low, high)
        else:
            facts[fact.name] = rng.choice(fact.values)
    return facts


def _member(engine: Engine, when: dict[str, Any], rng: random.Random, *, in_treatment: bool) -> dict[str, Any]:
    facts = _random_assessment(engine, rng, in_treatment=in_treatment)
    for name, allowed in when.items():
        choice = rng.choice(allowed)
        facts[name] = rng.randint(choice[0], choice[1]) if engine.vocabulary[name].kind == "integer" else choice
    return facts


def _cells(result: RuleBaseDiff, facts: dict[str, Any], names: tuple[str, ...]) -> dict[str, int]:
    """The diff's cell of each fact's value (an integer's cell is the interval it lies in)."""
    space = result.space
    found = {}
    for name in names:
        value = facts[name]
        if name == "current_level":
            found[name] = space.currents.index(value)
        elif space.kind[name] == "integer":
            found[name] = max(i for i, start in enumerate(space.cells[name]) if start <= value)
        else:
            found[name] = next(i for i, v in enumerate(space.cells[name]) if v == value and type(v) is type(value))
    return found


def _inside(result: RuleBaseDiff, node: Any, facts: dict[str, Any], *, in_treatment: bool) -> bool:
    names = result.space.treatment_names if in_treatment else result.space.clinical
    return result.space.bdd.holds(node, _cells(result, facts, names))


def _pick(result: RuleBaseDiff, node: Any, rng: random.Random, *, in_treatment: bool) -> dict[str, Any]:
    """A random assessment inside ``node``: each fact in turn given a random cell that keeps it satisfiable."""
    space = result.space
    names = space.treatment_names if in_treatment else space.clinical
    node &= space.bdd.domain(names)
    facts: dict[str, Any] = {}
    for name in names:
        cells = space.currents if name == "current_level" else space.cells[name]
        options = [
            i for i in range(len(cells)) if space.bdd.at(node, name, i) & space.bdd.cell(name, i) != space.bdd.false
        ]
        position = rng.choice(options)
        node &= space.bdd.cell(name, position)
        if name != "current_level" and space.kind[name] == "integer":
            [(low, high)] = space.intervals(name, [cells[position]])
            facts[name] = rng.randint(low, min(high, low + 20))
        else:
            facts[name] = cells[position]
    return facts


def _check_regions(result: RuleBaseDiff, old: Engine, new: Engine, *, samples: int, seed: int) -> None:
    """Inside every printed condition (with its contexts) both engines give the change; outside them all they agree."""
    rng = random.Random(seed)
    for part, in_treatment in ((result.admissions, False), (result.in_treatment, True)):
        for change in part.changes:
            expected = (change.old.text(), change.new.text())
            for cause in change.causes:
                for condition in cause.conditions:
                    for _ in range(3):
                        facts = _pick(result, condition.node, rng, in_treatment=in_treatment)
                        got = (_outcome(old, facts), _outcome(new, facts))
                        assert got == (_side(change.old.to_dict()), _side(change.new.to_dict())), expected
        for _ in range(samples):
            facts = _random_assessment(old, rng, in_treatment=in_treatment)
            inside = [
                c
                for c in part.changes
                for cause in c.causes
                for condition in cause.conditions
                if _inside(result, condition.node, facts, in_treatment=in_treatment)
            ]
            before, after = _outcome(old, facts), _outcome(new, facts)
            if inside:
                assert len(set(inside)) == 1
                assert (before, after) == (_side(inside[0].old.to_dict()), _side(inside[0].new.to_dict()))
            else:
                assert before == after, facts


def test_a_copy_is_identical_and_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(tmp_path, "copy")
    assert main(["diff", str(RULES_DIR), str(copy)]) == 0
    out = capsys.readouterr().out
    assert "Admissions: 0 of 69,120 kinds of admission change" in out
    assert "Identical decisions everywhere." in out
    result = diff(RULES_DIR, copy)
    assert result.identical and result.admissions.changed == 0 and result.in_treatment.changed == 0
    # Integer facts count by their cells: two weeks cells (below 12, 12 or more).
    assert result.in_treatment.size == 69_120 * 4 * 2 * 3 * 2 * 2 * 3 * 3


def test_lowering_the_iop_minimum_changes_only_those_in_iop_for_8_to_11_weeks(tr6_eight_weeks: Path) -> None:
    result = diff(RULES_DIR, tr6_eight_weeks)
    assert result.admissions.changed == 0
    assert not result.vocabulary
    [change] = result.in_treatment.changes
    assert (change.old.level, change.old.transition) == ("iop", "continue")
    assert (change.new.level, change.new.transition) == ("outpatient", "step-down")
    assert change.count == result.in_treatment.changed > 0
    data = result.to_dict()["in_treatment"]["changes"][0]
    [cause] = data["causes"]
    assert cause["items"] == ["readiness TR-6"]
    for condition in cause["conditions"]:
        assert condition["when"]["current_level"] == ["iop"]
        assert condition["when"]["weeks_at_current_level"] == [[8, 11]]
        assert condition["when"]["treatment_stage"] == ["maintenance"]
        assert condition["when"]["goals_met"] == [False]
        assert "weeks_at_current_level=8..11" in condition["text"]
    # The weeks cut at 8 and 12 makes three cells in the in-treatment space.
    assert result.in_treatment.size == 69_120 * 4 * 3 * 3 * 2 * 2 * 3 * 3
    _check_regions(result, Engine.from_path(RULES_DIR), Engine.from_path(tr6_eight_weeks), samples=300, seed=6)


# Every clinical combination (slow), or every 17th: 17 is prime to their 69,120.
@pytest.mark.parametrize("stride", [pytest.param(1, marks=pytest.mark.slow), 17])
def test_the_changed_slice_matches_brute_force_in_one_situation(tr6_eight_weeks: Path, stride: int) -> None:
    """Every clinical combination, in one situation the change reaches, decided by both engines."""
    result = diff(RULES_DIR, tr6_eight_weeks)
    old, new = Engine.from_path(RULES_DIR), Engine.from_path(tr6_eight_weeks)
    situation = {
        "current_level": "iop",
        "weeks_at_current_level": 9,
        "treatment_stage": "maintenance",
        "goals_met": False,
        "relapse_prevention_skills": True,
        "recent_use": "none",
        "symptoms_trend": "improving",
    }
    clinical = [f for f in old.vocabulary.facts if f.group == "clinical"]
    changed = 0
    for values in itertools.islice(itertools.product(*(f.values for f in clinical)), 0, None, stride):
        facts = {f.name: v for f, v in zip(clinical, values, strict=True)} | situation
        changed += _outcome(old, facts) != _outcome(new, facts)
    # The diff's regions, restricted to this situation (its weeks cell is 8..11).
    space = result.space
    union = space.bdd.false
    for ch in result.in_treatment.changes:
        for cause in ch.causes:
            for condition in cause.conditions:
                union |= condition.node
    expected = 0
    for values in itertools.islice(itertools.product(*(f.values for f in clinical)), 0, None, stride):
        facts = {f.name: v for f, v in zip(clinical, values, strict=True)} | situation
        point = union
        for name, position in _cells(result, facts, tuple(facts)).items():
            point &= space.bdd.cell(name, position)
        expected += point != space.bdd.false
    assert changed == expected > 0


@pytest.mark.slow
def test_deleting_an_inpatient_criterion_counts_match_brute_force(without_in3: Path) -> None:
    result = diff(RULES_DIR, without_in3)
    old, new = Engine.from_path(RULES_DIR), Engine.from_path(without_in3)
    clinical = [f for f in old.vocabulary.facts if f.group == "clinical"]
    brute: collections.Counter[tuple[tuple[Any, ...], tuple[Any, ...]]] = collections.Counter()
    for values in itertools.product(*(f.values for f in clinical)):
        facts = {f.name: v for f, v in zip(clinical, values, strict=True)}
        before, after = _outcome(old, facts), _outcome(new, facts)
        if before != after:
            brute[before, after] += 1
    reported = {(_side(c["from"]), _side(c["to"])): c["count"] for c in result.to_dict()["admissions"]["changes"]}
    assert reported == dict(brute)
    assert result.admissions.changed == sum(brute.values()) > 0
    assert {before[0] for before, _ in brute} == {"inpatient"}
    for change in result.admissions.changes:
        assert change.items == ("rule IN-3",)
        for cause in change.causes:
            for condition in cause.conditions:
                assert ("medical_instability", (True,)) in condition.facts
    assert result.in_treatment.changed > 0
    _check_regions(result, old, new, samples=300, seed=3)


def test_deleting_an_inpatient_criterion_changes_a_sample_exactly_inside_the_regions(without_in3: Path) -> None:
    """Every 53rd admission changes exactly when it lies in a reported region, from and to as that region says."""
    result = diff(RULES_DIR, without_in3)
    old, new = Engine.from_path(RULES_DIR), Engine.from_path(without_in3)
    clinical = [f for f in old.vocabulary.facts if f.group == "clinical"]
    space = result.space
    regions = []
    for change in result.admissions.changes:
        node = space.bdd.false
        for cause in change.causes:
            for condition in cause.conditions:
                node |= condition.node
        regions.append((change, node))
    data = result.to_dict()["admissions"]["changes"]
    changed = 0
    # 53 is prime to the 69,120 combinations, so the sample is spread over all of them.
    for values in itertools.islice(itertools.product(*(f.values for f in clinical)), 0, None, 53):
        facts = {f.name: v for f, v in zip(clinical, values, strict=True)}
        before, after = _outcome(old, facts), _outcome(new, facts)
        cells = _cells(result, facts, tuple(facts)).items()
        inside = []
        for index, (_, node) in enumerate(regions):
            point = node
            for name, position in cells:
                point &= space.bdd.cell(name, position)
            if point != space.bdd.false:
                inside.append(data[index])
        if inside:
            assert len(inside) == 1
            assert (before, after) == (_side(inside[0]["from"]), _side(inside[0]["to"])), facts
            changed += 1
        else:
            assert before == after, facts
    assert changed > 0
    _check_regions(result, old, new, samples=300, seed=3)


def test_json_has_a_stable_documented_shape(tr6_eight_weeks: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(RULES_DIR), str(tr6_eight_weeks), "--json"]) == 1
    first = capsys.readouterr().out
    assert main(["diff", str(RULES_DIR), str(tr6_eight_weeks), "--json"]) == 1
    assert capsys.readouterr().out == first
    data = json.loads(first)
    assert {"admissions", "in_treatment", "identical", "vocabulary", "old", "new"} <= set(data)
    assert "population" not in data
    for part in ("admissions", "in_treatment"):
        assert isinstance(data[part]["changed"], int)
        assert isinstance(data[part]["changes"], list)
    change = data["in_treatment"]["changes"][0]
    assert set(change) == {"from", "to", "count", "causes"}
    assert set(change["causes"][0]) == {"items", "count", "contexts", "conditions"}
    assert set(change["from"]) == {"level", "transition", "status", "emergency"}
    assert sum(c["count"] for c in data["in_treatment"]["changes"]) == data["in_treatment"]["changed"]


def _population(path: Path, extra: list[str]) -> Path:
    lines = [
        json.dumps(json.loads(p.read_text(encoding="utf-8"))["facts"]) for p in sorted(EXAMPLES_DIR.glob("*.json"))
    ]
    path.write_text("\n".join(lines + extra) + "\n", encoding="utf-8")
    return path


def test_population_table_counts_real_records(
    tmp_path: Path, without_in3: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = Engine.from_path(RULES_DIR), Engine.from_path(without_in3)
    unstable = {
        "harm_risk": "none", "withdrawal_risk": "none", "medical_instability": True,
        "needs_24h_supervision": False, "needs_daily_monitoring": False, "addiction_severity": "mild",
        "psychiatric_severity": "none", "relapse_risk": "low", "home_environment": "supportive",
        "support_system": "strong",
    }  # fmt: skip
    path = _population(tmp_path / "people.jsonl", [json.dumps(unstable)])
    assert main(["diff", str(RULES_DIR), str(without_in3), "--population", str(path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)["population"]
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert data["records"] == len(records)
    expected: collections.Counter[tuple[str | None, str | None]] = collections.Counter()
    for facts in records:
        a, b = old.decide(facts), new.decide(facts)
        expected[(a.level.id if a.level else None, b.level.id if b.level else None)] += 1
    expected[("data-required", "data-required")] = expected.pop((None, None))
    found: collections.Counter[tuple[str | None, str | None]] = collections.Counter()
    for row in data["rows"]:
        found[(row["from"]["level"], row["to"]["level"])] += row["count"]
    assert found == expected
    changed = [r for r in data["rows"] if r["changed"]]
    assert [(r["from"]["level"], r["to"]["level"], r["changed"], r["records"]) for r in changed] == [
        ("inpatient", "outpatient", 1, [{"line": len(records), "_id": None}])
    ]
    assert data["changed"] == 1
    unchanged = max((r for r in data["rows"] if r["from"]["level"] == "iop"), key=lambda r: r["count"])
    assert unchanged["changed"] == 0 and len(unchanged["records"]) == unchanged["count"]
    assert main(["diff", str(RULES_DIR), str(without_in3), "--population", str(path)]) == 1
    out = capsys.readouterr().out
    assert "Population (" in out and "1 of 15 records change" in out
    assert re.search(r"inpatient +outpatient +1 +1  line 15", out)


def test_population_with_a_bad_line_exits_two_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _population(tmp_path / "people.jsonl", ['{"harm_risk": "hgih"}', "not json"])
    assert main(["diff", str(RULES_DIR), str(RULES_DIR), "--population", str(path)]) == 2
    captured = capsys.readouterr()
    assert "line 15: invalid for the old rule base: harm_risk" in captured.err
    assert "did you mean 'high'?" in captured.err
    assert "line 16: not valid JSON" in captured.err
    assert main(["diff", str(RULES_DIR), str(RULES_DIR), "--population", str(path), "--json"]) == 2
    data = json.loads(capsys.readouterr().out)["population"]
    assert [line["line"] for line in data["invalid"]] == [15, 16]
    [row] = [r for r in data["rows"] if r["from"]["level"] == "invalid"]
    assert (row["to"]["level"], row["count"], row["changed"]) == ("invalid", 2, 0)
    assert [r["line"] for r in row["records"]] == [15, 16]
    assert main(["diff", str(RULES_DIR), str(RULES_DIR), "--population", str(tmp_path / "absent.jsonl")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_a_rule_base_that_does_not_load_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = _copy(tmp_path, "broken")
    path = broken / "inpatient.toml"
    path.write_text(path.read_text(encoding="utf-8").replace('level = "inpatient"', 'level = "inpatinet"', 1))
    assert main(["diff", str(RULES_DIR), str(broken)]) == 2
    err = capsys.readouterr().err
    assert "new rule base" in err and "inpatient.toml" in err and "did you mean 'inpatient'?" in err
    assert main(["diff", str(tmp_path / "nowhere"), str(broken)]) == 2
    err = capsys.readouterr().err
    assert "old rule base" in err and "new rule base" in err


def _add_fact(folder: Path, text: str) -> None:
    path = folder / "vocabulary.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + text, encoding="utf-8")


def test_a_fact_only_in_one_rule_base_is_named_and_the_space_is_the_union(tmp_path: Path) -> None:
    new = _copy(tmp_path, "new")
    _add_fact(
        new,
        '[[fact]]\nname = "housing_loss"\ngroup = "clinical"\nkind = "boolean"\nvalues = [false, true]\n'
        'meaning = "Recently lost housing."\nsources = ["tip47"]\n',
    )
    result = diff(RULES_DIR, new)
    assert result.vocabulary == ("clinical fact 'housing_loss' is only in the new rule base",)
    assert result.admissions.size == 2 * 69_120
    assert result.admissions.changed == 0 and result.in_treatment.changed == 0
    assert not result.identical
    assert "Vocabulary differences:" in result.render()


def test_values_only_one_rule_base_accepts_are_named(tmp_path: Path) -> None:
    new = _copy(tmp_path, "new")
    path = new / "vocabulary.toml"
    text = path.read_text(encoding="utf-8")
    assert text.count('values = ["strong", "limited", "none"]') == 1
    path.write_text(text.replace('values = ["strong", "limited", "none"]', 'values = ["strong", "limited"]'))
    # A case with support_system = "none" would no longer load; this proposal drops the value.
    (new / "cases.toml").unlink()
    for file in new.glob("*.toml"):
        content = file.read_text(encoding="utf-8")
        content = content.replace(
            '{ fact = "support_system", is = "none" }', '{ fact = "support_system", is = "limited" }'
        )
        content = content.replace(
            '{ fact = "support_system", is_not = "none" }', '{ fact = "support_system", is = "strong" }'
        )
        file.write_text(content, encoding="utf-8")
    result = diff(RULES_DIR, new)
    assert "support_system: only old accepts none; compared over the values both accept" in result.vocabulary
    assert result.admissions.size == 69_120 // 3 * 2
    assert result.admissions.changed > 0


def test_a_fact_in_different_groups_cannot_be_compared(tmp_path: Path) -> None:
    old, new = _copy(tmp_path, "old"), _copy(tmp_path, "new")
    fact = '[[fact]]\nname = "housing_loss"\ngroup = "{}"\nkind = "boolean"\nvalues = [false, true]\n'
    fact += 'meaning = "Recently lost housing."\nsources = ["tip47"]\n'
    _add_fact(old, fact.format("clinical"))
    _add_fact(new, fact.format("candidacy"))
    with pytest.raises(DiffError, match="'housing_loss' is clinical in the old rule base and candidacy"):
        diff(old, new)


def test_a_diff_not_finished_within_its_budget_is_unverified_and_exits_four(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Out of time is reported as unverified (exit 4), never as a comparison."""
    assert main(["diff", str(RULES_DIR), str(RULES_DIR), "--budget", "0.001"]) == 4
    captured = capsys.readouterr()
    assert "unverified: not finished within the time budget of 0.001 s" in captured.err
    assert "--budget SECONDS" in captured.err
    assert "Identical decisions everywhere." not in captured.out
    assert main(["diff", str(RULES_DIR), str(RULES_DIR), "--budget", "0.001", "--json"]) == 4
    data = json.loads(capsys.readouterr().out)
    assert data["identical"] is None and "time budget" in data["unverified"]
    with pytest.raises(DiffUnfinished, match=r"time budget of 0\.001 s"):
        diff(RULES_DIR, RULES_DIR, budget=0.001)


_EXTRA_FACTS = 25
CONTINUUM_DIR = EXAMPLES_DIR / "rulebases" / "continuum"


def _continuum_pair(folder: Path, *, extra: int) -> tuple[Path, Path]:
    """The continuum example with ``extra`` boolean clinical facts, and the same without criterion WDU-3.

    The extra facts feed one criterion for intensive-outpatient, the second
    level; every cell that dropping WDU-3 changes is decided at day-treatment or
    above on both sides, so the extra facts can never reach a changed cell.
    """
    old, new = folder / "old", folder / "new"
    for target in (old, new):
        shutil.copytree(CONTINUUM_DIR, target)
        if not extra:
            continue
        facts = "".join(
            f'\n[[fact]]\nname = "added_need_{i:02d}"\ngroup = "clinical"\nkind = "boolean"\n'
            f'values = [false, true]\nmeaning = "An added need that calls for the intensive programme at most."\n'
            f'sources = ["iop-role"]\n'
            for i in range(extra)
        )
        path = target / "vocabulary.toml"
        path.write_text(path.read_text(encoding="utf-8") + facts, encoding="utf-8")
        items = ", ".join(f'{{ fact = "added_need_{i:02d}", is = true }}' for i in range(extra))
        rule = (
            '\n[[rule]]\nid = "INT-ADDED"\nlevel = "intensive-outpatient"\n'
            'statement = "Any added need calls for the intensive programme."\n'
            f'sources = ["iop-role"]\nwhen.any = [{items}]\n'
        )
        path = target / "criteria.toml"
        path.write_text(path.read_text(encoding="utf-8") + rule, encoding="utf-8")
    _drop_rule(new, "criteria.toml", "WDU-3")
    return old, new


def test_a_rule_base_25_boolean_facts_wider_than_the_continuum_is_compared_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Spaces of 10**13 admissions and 9 x 10**15 in treatment: exact integer counts, each the narrow one's times 2**25, within the budget."""
    narrow = diff(*_continuum_pair(tmp_path / "narrow", extra=0))
    old, new = _continuum_pair(tmp_path / "wide", extra=_EXTRA_FACTS)
    assert main(["diff", str(old), str(new), "--budget", "120"]) == 1
    out = capsys.readouterr().out
    assert "Admissions: 217,432,719,360 of 10,436,770,529,280 kinds of admission change" in out
    wide = diff(old, new, budget=120)
    factor = 2**_EXTRA_FACTS
    assert narrow.admissions.changed == 6_480
    assert narrow.in_treatment.changed == 3_628_800
    assert wide.admissions.changed == 217_432_719_360 == 6_480 * factor
    assert wide.in_treatment.changed == 121_762_322_841_600 == 3_628_800 * factor
    assert wide.admissions.size == narrow.admissions.size * factor
    assert wide.in_treatment.size == narrow.in_treatment.size * factor
    for wide_part, narrow_part in ((wide.admissions, narrow.admissions), (wide.in_treatment, narrow.in_treatment)):
        assert [(c.old, c.new, c.count) for c in wide_part.changes] == [
            (c.old, c.new, c.count * factor) for c in narrow_part.changes
        ]
        # The added facts are free in every changed region, so no condition names them.
        for wide_change, narrow_change in zip(wide_part.changes, narrow_part.changes, strict=True):
            wides = [c for cause in wide_change.causes for c in cause.conditions]
            narrows = [c for cause in narrow_change.causes for c in cause.conditions]
            assert [c.text(wide.space) for c in wides] == [c.text(narrow.space) for c in narrows]
            assert [c.count for c in wides] == [c.count * factor for c in narrows]
