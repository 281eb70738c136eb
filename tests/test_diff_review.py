"""``levelcare diff`` for review: the items that changed, which of them cause each change, few exact conditions.

The printed conditions are checked symbolically: each is rebuilt from the JSON
(its facts' values and its contexts, the contexts encoded from the rule bases
here, not by the diff), and their union must be the region where the two rule
bases' decisions are the pair named, as the placement mechanism gives it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES_DIR, RULES_DIR
from levelcare._cli import main
from levelcare._rulebase import RuleBase, load
from levelcare._verify._diff import RuleBaseDiff, SameLabel, _decisions, diff
from levelcare._verify._space import Node

CONTINUUM_DIR = EXAMPLES_DIR / "rulebases" / "continuum"


def _variant(tmp_path: Path, name: str, edits: dict[str, list[tuple[str, str]]], base: Path = RULES_DIR) -> Path:
    target = tmp_path / name
    shutil.copytree(base, target)
    for file, replacements in edits.items():
        path = target / file
        text = path.read_text(encoding="utf-8")
        for old, new in replacements:
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    return target


TR6 = {"transitions.toml": [("at_least = 12 }", "at_least = 8 }")]}
IN2 = {"inpatient.toml": [('id = "IN-2"\nlevel = "inpatient"', 'id = "IN-2"\nlevel = "php"')]}


@pytest.fixture(scope="module")
def tr6(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _variant(tmp_path_factory.mktemp("tr6"), "tr6", TR6)


@pytest.fixture(scope="module")
def in2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _variant(tmp_path_factory.mktemp("in2"), "in2", IN2)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _variant(tmp_path_factory.mktemp("both"), "both", TR6 | IN2)


def _all_conditions(result: RuleBaseDiff) -> list[Any]:
    return [
        c
        for part in (result.admissions, result.in_treatment)
        for change in part.changes
        for cause in change.causes
        for c in cause.conditions
    ]


# --- the items that changed ----------------------------------------------------------------


def test_a_changed_rule_is_named_first_with_its_old_and_new_wording(
    in2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(RULES_DIR), str(in2)]) == 1
    out = capsys.readouterr().out
    assert out.index("rule IN-2 changed (inpatient.toml)") < out.index("Admissions:")
    old_block = out[out.index("    old: requires inpatient") :]
    assert old_block.index("when withdrawal_risk is severe") < old_block.index("new: requires PHP")
    old, new = load(RULES_DIR), load(in2)
    assert f"sha256 {old.info.sha256}" in out and f"sha256 {new.info.sha256}" in out
    assert main(["diff", str(RULES_DIR), str(in2), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["old"]["sha256"], data["new"]["sha256"]) == (old.info.sha256, new.info.sha256)
    assert (data["new"]["name"], data["new"]["version"]) == ("levelcare-core", "1.0.0")
    [item] = data["items"]
    assert (item["kind"], item["id"], item["change"]) == ("rule", "IN-2", "changed")
    assert item["old"]["lines"][0].startswith("requires inpatient:")
    assert item["new"]["lines"][0].startswith("requires PHP:")


def test_an_identical_copy_says_no_item_changed(tmp_path: Path) -> None:
    copy = _variant(tmp_path, "copy", {})
    result = diff(RULES_DIR, copy)
    assert result.items == () and not result.warnings
    assert "No rule or other item changed." in result.render()


# --- attribution ---------------------------------------------------------------------------------


def test_the_tr6_minimum_stay_change_is_attributed_to_tr6(tr6: Path) -> None:
    result = diff(RULES_DIR, tr6)
    [change] = result.in_treatment.changes
    assert [cause.items for cause in change.causes] == [("readiness TR-6",)]
    assert "because of readiness TR-6" in result.render()


def test_the_in2_level_change_is_attributed_to_in2_everywhere(in2: Path) -> None:
    """IN-2's condition is unchanged; it decides both sides at different levels."""
    result = diff(RULES_DIR, in2)
    changes = [*result.admissions.changes, *result.in_treatment.changes]
    assert len(changes) == 3
    for change in changes:
        assert [cause.items for cause in change.causes] == [("rule IN-2",)]
        assert change.causes[0].count == change.count


def test_two_rules_changed_at_once_each_region_goes_to_its_own_rule(both: Path, tr6: Path, in2: Path) -> None:
    """Where both decisions step up, TR-6's changed sign cannot move the decision and is not blamed."""
    result = diff(RULES_DIR, both)
    by_pair = {
        (c.old.level, c.old.transition, c.new.level, c.new.transition): c.items
        for part in (result.admissions, result.in_treatment)
        for c in part.changes
    }
    assert by_pair == {
        ("inpatient", "admit", "php", "admit"): ("rule IN-2",),
        ("inpatient", "step-up", "php", "continue"): ("rule IN-2",),
        ("inpatient", "step-up", "php", "step-up"): ("rule IN-2",),
        ("iop", "continue", "outpatient", "step-down"): ("readiness TR-6",),
    }
    # TR-6's region is the same as when TR-6 changes alone.
    [alone] = diff(RULES_DIR, tr6).in_treatment.changes
    assert _counts(result)[("iop", "outpatient")] == alone.count
    assert diff(RULES_DIR, in2).admissions.changed == result.admissions.changed


def _counts(result: RuleBaseDiff) -> dict[tuple[str | None, str | None], int]:
    found: dict[tuple[str | None, str | None], int] = {}
    for c in result.in_treatment.changes:
        key = (c.old.level, c.new.level)
        found[key] = found.get(key, 0) + c.count
    return found


def test_a_change_only_in_words_is_responsible_for_nothing(tmp_path: Path) -> None:
    worded = _variant(
        tmp_path,
        "worded",
        {"inpatient.toml": [("Expected severe withdrawal needs", "Severe expected withdrawal needs")]},
    )
    result = diff(RULES_DIR, worded)
    assert [i.label for i in result.items] == ["rule IN-2"]
    assert result.admissions.changed == result.in_treatment.changed == 0


# --- the conditions are exact and few ------------------------------------------------------------


def _context_node(result: RuleBaseDiff, data: dict[str, Any], old: RuleBase, new: RuleBase) -> Node:
    """A context's assessments, encoded here from its JSON and the rule bases."""
    bdd = result.space.bdd
    sides = {"old": [old], "new": [new], "both": [old, new]}[data["rulebase"]]
    nodes = []
    for rulebase in sides:
        kind = data["kind"]
        node = bdd.false
        if kind in ("no-criterion", "some-criterion"):
            floor = rulebase.levels[data["level"]]
            for rule in rulebase.criteria:
                if rule.level >= floor and not (kind == "no-criterion" and rule.id in data["besides"]):
                    node |= bdd.encode(rule.when)
            node = ~node if kind == "no-criterion" else node
        elif kind == "readiness-met":
            node = bdd.true
            for sign in next(r for r in rulebase.readiness if r.id == data["readiness"]).signs:
                node &= bdd.encode(sign.when)
        elif kind == "no-escalation":
            for item in rulebase.escalations:
                node |= bdd.encode(item.when)
            node = ~node
        else:
            assert kind == "no-emergency"
            for item in rulebase.emergencies:
                node |= bdd.encode(item.when)
            node = ~node
        nodes.append(node)
    assert all(n == nodes[0] for n in nodes)
    return nodes[0]


def _condition_node(result: RuleBaseDiff, when: dict[str, Any]) -> Node:
    """A printed condition's facts as a diagram, from its JSON."""
    space = result.space
    sets = {}
    for name, allowed in when.items():
        if name == "current_level":
            sets[name] = [space.currents.index(v) for v in allowed]
        elif space.kind[name] == "integer":
            sets[name] = [
                i for i, start in enumerate(space.cells[name]) if any(lo <= start <= hi for lo, hi in allowed)
            ]
        else:
            sets[name] = [
                i for i, v in enumerate(space.cells[name]) if any(v == a and type(v) is type(a) for a in allowed)
            ]
    return space.bdd.cube(sets)


def _assert_exact(result: RuleBaseDiff, old_dir: Path, new_dir: Path) -> None:
    old, new = load(old_dir), load(new_dir)
    space = result.space
    data = result.to_dict()
    for key, currents, names in (
        ("admissions", None, space.clinical),
        ("in_treatment", space.currents, space.treatment_names),
    ):
        if key == "in_treatment" and not currents:
            continue
        olds, news = _decisions(old, space, currents), _decisions(new, space, currents)
        part = result.admissions if key == "admissions" else result.in_treatment
        assert len(part.changes) == len(data[key]["changes"])
        for change, shown in zip(part.changes, data[key]["changes"], strict=True):
            region = olds[change.old] & news[change.new] & space.bdd.domain(names)
            union = space.bdd.false
            total = 0
            for cause in shown["causes"]:
                within = space.bdd.true
                for context in cause["contexts"]:
                    within &= _context_node(result, context, old, new)
                described = space.bdd.false
                for condition in cause["conditions"]:
                    described |= _condition_node(result, condition["when"]) & within & space.bdd.domain(names)
                assert space.bdd.count(described, names) == cause["count"]
                assert union & described == space.bdd.false  # the parts do not overlap
                union |= described
                total += cause["count"]
            assert union == region, (shown["from"], shown["to"])
            assert total == change.count == space.bdd.count(region, names)


def test_the_printed_conditions_are_exactly_each_region(tr6: Path, in2: Path, both: Path, tmp_path: Path) -> None:
    narrowed = _variant(
        tmp_path,
        "narrowed",
        {
            "criteria.toml": [
                (
                    '{ fact = "addiction_severity", at_least = "moderate" },\n  { fact = "living_situation", is = "none" },',
                    '{ fact = "addiction_severity", is = "severe" },\n  { fact = "living_situation", is = "none" },',
                )
            ]
        },
        base=CONTINUUM_DIR,
    )
    for old_dir, new_dir in ((RULES_DIR, tr6), (RULES_DIR, in2), (RULES_DIR, both), (CONTINUUM_DIR, narrowed)):
        result = diff(old_dir, new_dir)
        assert result.admissions.changed or result.in_treatment.changed
        _assert_exact(result, old_dir, new_dir)


def test_the_tr6_and_in2_changes_print_one_short_condition_each(
    tr6: Path, in2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before, TR-6 printed 1 condition of 17 facts, IN-2 12 conditions of 87 facts in all."""
    result = diff(RULES_DIR, tr6)
    [condition] = _all_conditions(result)
    assert [name for name, _ in condition.facts] == [
        "current_level",
        "weeks_at_current_level",
        "treatment_stage",
        "goals_met",
    ]
    result = diff(RULES_DIR, in2)
    conditions = _all_conditions(result)
    assert len(conditions) == 3
    assert sum(len(c.facts) for c in conditions) <= 5
    assert main(["diff", str(RULES_DIR), str(in2)]) == 1
    out = capsys.readouterr().out
    assert (
        "where no criterion for inpatient or above holds besides IN-2, and:\n    withdrawal_risk=severe  (2,052)" in out
    )


def test_counts_are_said_to_be_kinds_of_assessment_not_people(tr6: Path) -> None:
    text = diff(RULES_DIR, tr6).render()
    assert "Counts are kinds of assessment (combinations of fact values" in text and "not people" in text
    assert "256 of 89,579,520 kinds of in-treatment assessment change" in text


# --- the population --------------------------------------------------------------------------------


def _records(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def _example_facts() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8"))["facts"] for p in sorted(EXAMPLES_DIR.glob("*.json"))]


def test_population_rows_list_record_ids_and_json_lists_them_all(
    tmp_path: Path, in2: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    severe = next(f for f in _example_facts() if f.get("withdrawal_risk") == "severe" and "current_level" not in f)
    records = [{**severe, "_id": f"p-{n}"} for n in range(8)] + [severe]
    path = _records(tmp_path / "people.jsonl", records)
    assert main(["diff", str(RULES_DIR), str(in2), "--population", str(path), "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)["population"]["rows"]
    [row] = rows
    assert (row["from"], row["to"]) == (
        {"level": "inpatient", "transition": "admit"},
        {"level": "php", "transition": "admit"},
    )
    assert row["records"] == [{"line": n + 1, "_id": f"p-{n}"} for n in range(8)] + [{"line": 9, "_id": None}]
    assert main(["diff", str(RULES_DIR), str(in2), "--population", str(path)]) == 1
    out = capsys.readouterr().out
    assert re.search(r"inpatient +php +9 +9  p-0, p-1, p-2, p-3, p-4 and 4 more \(see --json\)", out)


def test_population_ids_in_a_worked_example_and_a_bad_id_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = _example_facts()[0]
    path = _records(tmp_path / "people.jsonl", [{"facts": facts, "_id": 7}, {**facts, "_id": ["x"]}])
    assert main(["diff", str(RULES_DIR), str(RULES_DIR), "--population", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    rows = json.loads(captured.out)["population"]["rows"]
    assert [r["records"] for r in rows if r["from"]["level"] != "invalid"] == [[{"line": 1, "_id": 7}]]
    assert "line 2: _id: the record id is a string" in captured.err


def test_long_level_ids_keep_the_population_columns_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``intensive-outpatient continue`` is wider than any fixed column: widths follow the content."""
    vocabulary = load(CONTINUUM_DIR).vocabulary
    least = {f.name: f.values[0] if f.finite else f.minimum for f in vocabulary.facts if f.group != "candidacy"}
    progress = {f.name for f in vocabulary.group("progress")}
    admission = {k: v for k, v in least.items() if k not in progress} | {"addiction_severity": "moderate"}
    staying = least | {"addiction_severity": "moderate", "current_level": "intensive-outpatient"}
    path = _records(tmp_path / "people.jsonl", [admission, staying])
    assert main(["diff", str(CONTINUUM_DIR), str(CONTINUUM_DIR), "--population", str(path)]) == 0
    out = capsys.readouterr().out
    header, *rows = out[out.index("  old decision") :].split("\n\n")[0].splitlines()
    assert [re.split(r" {2,}", row.strip())[:2] for row in rows] == [
        ["intensive-outpatient", "intensive-outpatient"],
        ["intensive-outpatient continue", "intensive-outpatient continue"],
    ]
    # Each column starts under its heading, two spaces at least after the widest value before it.
    new_column = header.index("new decision")
    for row in rows:
        assert len(re.split(r" {2,}", row.strip())) == 5, row
        assert row[new_column:].startswith("intensive-outpatient") and row[new_column - 2 : new_column] == "  "
        assert row.index("  1  ") + 2 < header.index("changed") + len("changed")


# --- name and version ------------------------------------------------------------------------------


def test_a_changed_rule_base_that_kept_its_name_and_version_is_flagged_and_strict_refuses_it(
    tr6: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diff", str(RULES_DIR), str(tr6)]) == 1
    captured = capsys.readouterr()
    assert "Warning: the rule bases share name and version (levelcare-core 1.0.0) but not content" in captured.out
    assert "levelcare diff: warning:" in captured.err and "--strict makes this an error" in captured.err
    assert main(["diff", str(RULES_DIR), str(tr6), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["same_label_other_content"] is True and len(data["warnings"]) == 1
    assert main(["diff", str(RULES_DIR), str(tr6), "--strict"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "levelcare diff: the rule bases share name and version (levelcare-core 1.0.0)" in captured.err
    with pytest.raises(SameLabel, match="give the new one another version"):
        diff(RULES_DIR, tr6, strict=True)
    bumped = _variant(tmp_path, "bumped", TR6 | {"rulebase.toml": [('version = "1.0.0"', 'version = "1.1.0"')]})
    assert main(["diff", str(RULES_DIR), str(bumped), "--strict"]) == 1
    captured = capsys.readouterr()
    assert "Warning" not in captured.out and "warning" not in captured.err
    assert not diff(RULES_DIR, bumped).same_label
