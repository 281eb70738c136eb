"""Loading rule bases: the shipped one is complete; every kind of mistake is a precise RuleBaseError."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

import levelcare
from conftest import RULES_DIR

CRITERIA = [
    "EM-1",
    *[f"IN-{i}" for i in range(1, 7)],
    *[f"PH-{i}" for i in range(1, 8)],
    *[f"IO-{i}" for i in range(1, 5)],
    "OP-1",
    *[f"TR-{i}" for i in range(1, 7)],
    *[f"CF-{i}" for i in range(1, 6)],
]


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    """A private copy of the shipped rule base to break."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


def patch(folder: Path, file: str, old: str, new: str) -> None:
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(folder: Path) -> list[tuple[str, str, str]]:
    with pytest.raises(levelcare.RuleBaseError) as caught:
        levelcare.Engine.from_path(folder)
    assert isinstance(caught.value, ValueError)
    return [(p.file, p.rule_id, p.message) for p in caught.value.problems]


def test_shipped_rule_base_has_every_criterion_with_statement_and_sources() -> None:
    """Every criterion id of the specification is a rule with a one-sentence statement and sources."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(RULES_DIR.glob("*.toml")))
    ids = re.findall(r'^id = "([A-Z]+-\d+)"', text, flags=re.MULTILINE)
    assert sorted(ids) == sorted(CRITERIA)
    engine = levelcare.Engine.default()
    rb = engine._rb
    items = [
        *rb.rules,
        *rb.emergencies,
        *rb.escalations,
        *rb.transitions,
        *rb.readiness,
        *rb.bridges,
        *rb.considerations,
    ]
    for item in items:
        assert item.statement.endswith(".") and item.statement.count(". ") == 0, item.id
        assert item.sources, item.id


def _code_strings(path: Path) -> set[str]:
    """Every string constant in a module's code, leaving docstrings out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def test_src_holds_no_criterion_or_threshold() -> None:
    """Clinical content lives in rules/ only: no criterion id, fact or fact value is named in src/ code."""
    src = Path(levelcare.__file__).parent
    strings = set().union(*(_code_strings(p) for p in src.glob("*.py")))
    assert not [s for s in strings if re.search(r"\b(EM|IN|PH|IO|OP|TR|CF)-\d\b", s)]
    vocabulary = levelcare.Engine.default().vocabulary
    clinical_words = {f.name for f in vocabulary.facts if f.name != "current_level"}
    clinical_words |= {v for f in vocabulary.facts if f.kind == "ordinal" for v in f.values if isinstance(v, str)}
    # "none" is also the plain English placeholder the mechanism uses for "no level".
    clinical_words.discard("none")
    assert not strings & clinical_words


def test_rulebase_info_and_hash() -> None:
    """The decision carries the rule base's name, version and a sha256 of its content."""
    info = levelcare.decide({}).rulebase
    assert (info.name, info.version) == ("levelcare-core", "1.0.0")
    assert re.fullmatch(r"[0-9a-f]{64}", info.sha256)


def test_hash_ignores_comments_but_not_content(rules: Path) -> None:
    """Reformatting a file keeps the hash; changing a rule changes it."""
    shipped = levelcare.Engine.default().rulebase.sha256
    patch(rules, "inpatient.toml", "# Criteria", "# Reworded comment.\n# Criteria")
    assert levelcare.Engine.from_path(rules).rulebase.sha256 == shipped
    patch(rules, "inpatient.toml", 'at_least = "high"', 'at_least = "imminent"')
    assert levelcare.Engine.from_path(rules).rulebase.sha256 != shipped


def test_copied_rule_base_decides_like_the_shipped_one(rules: Path) -> None:
    """Engine.from_path on a copy gives the same decisions as the default engine."""
    engine = levelcare.Engine.from_path(str(rules))
    facts = {"withdrawal_risk": "severe"}
    assert engine.decide(facts).to_dict() == levelcare.decide(facts).to_dict()


BROKEN = [
    (
        "unknown fact",
        "inpatient.toml",
        'fact = "harm_risk", at_least',
        'fact = "harm_rsk", at_least',
        ("inpatient.toml", "IN-1", "unknown fact 'harm_rsk'; did you mean 'harm_risk'?"),
    ),
    (
        "misspelt value",
        "inpatient.toml",
        'at_least = "high"',
        'at_least = "hihg"',
        ("inpatient.toml", "IN-1", "got string 'hihg'; did you mean 'high'?"),
    ),
    (
        "duplicate id",
        "inpatient.toml",
        'id = "IN-2"',
        'id = "IN-1"',
        ("inpatient.toml", "IN-1", "duplicate rule id (also in inpatient.toml)"),
    ),
    (
        "unknown level",
        "php.toml",
        'id = "PH-1"\nlevel = "php"',
        'id = "PH-1"\nlevel = "residential"',
        ("php.toml", "PH-1", "level 'residential' is not a declared [[level]]"),
    ),
    (
        "unknown source",
        "iop.toml",
        'sources = ["iop-role", "metro-iop"]',
        'sources = ["iop-role", "metro-ipo"]',
        ("iop.toml", "IO-2", "unknown source 'metro-ipo'; did you mean 'metro-iop'?"),
    ),
    (
        "missing statement",
        "iop.toml",
        'statement = "A high risk of continued use needs the structure of several sessions a week."\n',
        "",
        ("iop.toml", "IO-3", "[[rule]] is missing 'statement'"),
    ),
    (
        "misspelt key",
        "iop.toml",
        'statement = "A high risk',
        'statment = "A high risk',
        ("iop.toml", "IO-3", "unknown key 'statment' in [[rule]]; did you mean 'statement'?"),
    ),
    (
        "two operators",
        "php.toml",
        '{ fact = "needs_daily_monitoring", is = true }',
        '{ fact = "needs_daily_monitoring", is = true, is_not = false }',
        ("php.toml", "PH-1", "a fact test takes exactly one of"),
    ),
    (
        "unknown operator",
        "php.toml",
        '{ fact = "needs_daily_monitoring", is = true }',
        '{ fact = "needs_daily_monitoring", equals = true }',
        ("php.toml", "PH-1", "unknown operator 'equals'; did you mean"),
    ),
    (
        "empty all",
        "inpatient.toml",
        'when.all = [\n  { fact = "psychiatric_severity", is = "severe" },\n  { fact = "home_environment", is = "unsafe" },\n]',
        "when.all = []",
        ("inpatient.toml", "IN-6", "when.all: expected a non-empty list of conditions"),
    ),
    (
        "candidacy fact in a level rule",
        "iop.toml",
        '{ fact = "relapse_risk", is = "high" }',
        '{ fact = "motivation", is = "low" }',
        ("iop.toml", "IO-3", "this kind of rule may not read candidacy fact 'motivation'"),
    ),
    (
        "level test in a level rule",
        "iop.toml",
        '{ fact = "relapse_risk", is = "high" }',
        '{ level = "iop" }',
        ("iop.toml", "IO-3", "'level' can only be tested in services and considerations"),
    ),
    (
        "wrong type for a boolean",
        "inpatient.toml",
        'is = true }\n\n[[rule]]\nid = "IN-4"',
        'is = "true" }\n\n[[rule]]\nid = "IN-4"',
        ("inpatient.toml", "IN-3", "medical_instability: expected true or false, got string 'true'"),
    ),
    (
        "fact named like session state",
        "vocabulary.toml",
        'name = "caregiver"',
        'name = "sid"',
        ("vocabulary.toml", "sid", "'sid' is reserved for the engine's own session state; choose another fact name"),
    ),
    (
        "bridge floor above its levels",
        "transitions.toml",
        'floor = "iop"',
        'floor = "inpatient"',
        ("transitions.toml", "TR-5", "floor 'inpatient' must be below every level in from"),
    ),
    (
        "integer threshold out of range",
        "transitions.toml",
        "at_least = 12",
        "at_least = 600",
        ("transitions.toml", "TR-6 sign 2", "expected an integer from 0 to 520, got 600"),
    ),
    (
        "unknown table",
        "iop.toml",
        '[[rule]]\nid = "IO-1"',
        '[[rules]]\nid = "IO-1"',
        ("iop.toml", "rules", "unknown table 'rules'; did you mean 'rule'?"),
    ),
    (
        "no fallback rule",
        "outpatient.toml",
        "otherwise = true",
        'when = { fact = "harm_risk", is = "none" }',
        ("(all files)", "", "exactly one [[rule]] needs otherwise = true"),
    ),
    # Levels are declared in levels.toml; every other mention is checked against them.
    (
        "undeclared bridge floor",
        "transitions.toml",
        'floor = "iop"',
        'floor = "intensive"',
        (
            "transitions.toml",
            "TR-5",
            "floor 'intensive' is not a declared [[level]]; use one of 'outpatient', 'iop', 'php', 'inpatient'; did you mean 'inpatient'?",
        ),
    ),
    (
        "undeclared readiness level",
        "transitions.toml",
        'from = ["iop"]',
        'from = ["IOP"]',
        ("transitions.toml", "TR-6", "from 'IOP' is not a declared [[level]]"),
    ),
    (
        "undeclared programme level",
        "programs.toml",
        'level = "php"',
        'level = "day"',
        ("programs.toml", "day", "level 'day' is not a declared [[level]]"),
    ),
    (
        "undeclared level in a service",
        "services.toml",
        '{ level = ["iop", "outpatient"] }',
        '{ level = ["iop", "op"] }',
        ("services.toml", "sober_living_referral", "level: 'op' is not one of 'outpatient', 'iop', 'php', 'inpatient'"),
    ),
    (
        "current_level out of step with the levels",
        "vocabulary.toml",
        'values = ["outpatient", "iop", "php", "inpatient"]',
        'values = ["outpatient", "php", "iop", "inpatient"]',
        (
            "vocabulary.toml",
            "current_level",
            "a level fact lists exactly the declared [[level]] ids, 'outpatient', 'iop', 'php', 'inpatient', in that order",
        ),
    ),
    ("duplicate level id", "levels.toml", 'id = "php"', 'id = "iop"', ("levels.toml", "iop", "duplicate level id")),
    (
        "level id not a short name",
        "levels.toml",
        'id = "php"',
        'id = "Partial Hospital"',
        (
            "levels.toml",
            "Partial Hospital",
            "a level id is a short lower-case name such as 'iop', got 'Partial Hospital'",
        ),
    ),
    (
        "level without a description",
        "levels.toml",
        'description = "Care around the clock in a residential or hospital setting."\n',
        "",
        ("levels.toml", "inpatient", "[[level]] is missing 'description'"),
    ),
    (
        "unknown field in a wording template",
        "rulebase.toml",
        "holds ({rules}).",
        "holds ({rule_ids}).",
        ("rulebase.toml", "wording", "none_holds uses {rule_ids}; it may use {Level}, {level}, {rules}"),
    ),
    (
        "wording template missing",
        "rulebase.toml",
        'no_criterion = "No criterion in this rule base requires {level}."\n',
        "",
        ("rulebase.toml", "wording", "[wording] is missing 'no_criterion'"),
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_each_mistake_is_named_with_file_and_rule(
    rules: Path, file: str, old: str, new: str, expected: tuple[str, str, str]
) -> None:
    """The loader names the file, the rule and what is wrong."""
    patch(rules, file, old, new)
    found = problems(rules)
    assert any(f == expected[0] and r == expected[1] and expected[2] in m for f, r, m in found), found


def test_a_rule_base_needs_two_levels_and_its_wording(rules: Path) -> None:
    """Without levels.toml and [wording] the loader says what to declare, and nothing names a level."""
    (rules / "levels.toml").unlink()
    text = (rules / "rulebase.toml").read_text(encoding="utf-8")
    (rules / "rulebase.toml").write_text(text[: text.index("[wording]")], encoding="utf-8")
    found = problems(rules)
    assert ("levels", "", "a rule base declares at least two [[level]] tables, least intensive first; found 0") in found
    assert any(r == "wording" and "exactly one [wording] table is needed" in m for _, r, m in found), found


def test_every_problem_is_reported_at_once(rules: Path) -> None:
    """Three independent mistakes in three files give one error with three problems."""
    patch(rules, "inpatient.toml", 'fact = "harm_risk", at_least', 'fact = "harm_rsk", at_least')
    patch(rules, "iop.toml", 'sources = ["iop-role", "metro-iop"]', 'sources = ["iop-role", "metro-ipo"]')
    patch(rules, "php.toml", 'id = "PH-1"\nlevel = "php"', 'id = "PH-1"\nlevel = "residential"')
    assert [(f, r) for f, r, _ in problems(rules)] == [
        ("inpatient.toml", "IN-1"),
        ("iop.toml", "IO-2"),
        ("php.toml", "PH-1"),
    ]


def test_invalid_toml_names_the_file(rules: Path) -> None:
    """A file that is not TOML is reported with the parser's position."""
    (rules / "broken.toml").write_text("[[rule]\nid = 1\n", encoding="utf-8")
    found = problems(rules)
    assert found[0][0] == "broken.toml"
    assert "not valid TOML" in found[0][2]


def test_missing_programme_is_reported(rules: Path) -> None:
    """Every level needs a programme."""
    patch(rules, "programs.toml", '[[program]]\nlevel = "php"', '[[program]]\nlevel = "iop"')
    found = problems(rules)
    assert any("a second [[program]] for 'iop'" in m for _, _, m in found)
    assert any("no [[program]] for 'php'" in m for _, _, m in found)


def test_a_wrong_current_level_is_one_problem(rules: Path) -> None:
    """A current_level that does not list the levels is reported once, not again as missing."""
    patch(
        rules, "vocabulary.toml", 'values = ["outpatient", "iop", "php", "inpatient"]', 'values = ["outpatient", "iop"]'
    )
    # The test vectors that name a current level cannot be read either; they say so in cases.toml.
    found = [p for p in problems(rules) if p[0] != "cases.toml"]
    assert [(f, r) for f, r, _ in found] == [("vocabulary.toml", "current_level")]
    assert "lists exactly the declared [[level]] ids" in found[0][2]


def test_transitions_without_current_level_are_reported(rules: Path) -> None:
    text = (rules / "vocabulary.toml").read_text(encoding="utf-8")
    start = text.index('[[fact]]\nname = "current_level"')
    end = text.index("[[fact]]", start + 1)
    (rules / "vocabulary.toml").write_text(text[:start] + text[end:], encoding="utf-8")
    found = problems(rules)
    assert ("vocabulary", "current_level", "transition rules need a 'current_level' fact of kind 'level'") in found


@pytest.mark.parametrize("where", ["/no/such/folder", 42])
def test_bad_location(where: object, tmp_path: Path) -> None:
    """A missing folder or a non-path is a RuleBaseError, not an OSError or TypeError."""
    with pytest.raises(levelcare.RuleBaseError):
        levelcare.Engine.from_path(where)  # type: ignore[arg-type]


def test_empty_folder(tmp_path: Path) -> None:
    """A folder without rule files says so."""
    assert problems(tmp_path) == [(str(tmp_path), "", "the folder holds no *.toml rule files")]


def test_a_file_that_does_not_read_stops_the_checks_that_need_every_file(rules: Path) -> None:
    """A syntax error in the file with the fallback rule is reported alone, not as a missing ``otherwise``.

    Reported as well: every other file's own problems found while reading; the syntax
    error says that nothing more was checked.
    """
    text = (rules / "outpatient.toml").read_text(encoding="utf-8")
    assert "otherwise = true" in text
    (rules / "outpatient.toml").write_text(text.replace("[[rule]]", "[[rule]", 1), encoding="utf-8")
    (rules / "extra.toml").write_text('[[rul]]\nid = "X-1"\n', encoding="utf-8")
    found = problems(rules)
    messages = [m for _, _, m in found]
    assert [f for f, _, _ in found[:2]] == ["extra.toml", "outpatient.toml"]
    assert "unknown table 'rul'" in messages[0]
    assert messages[1].startswith("not valid TOML")
    assert messages[1].endswith("; the rule base is checked further once every file reads")
    assert len(found) == 2
    assert not any("otherwise" in m for m in messages)


@pytest.mark.parametrize(
    ("written", "meant"),
    [("greater_than", "at_least"), ("less_than", "at_most"), ("gte", "at_least"), ("equals", "is"), ("in", "one_of")],
)
def test_an_operator_of_another_rule_language_is_answered_with_the_one_that_means_the_same(
    rules: Path, written: str, meant: str
) -> None:
    """``greater_than`` is spelt most like ``at_most``, but means ``at_least``: the suggestion follows the meaning."""
    patch(rules, "inpatient.toml", 'fact = "harm_risk", at_least', f'fact = "harm_risk", {written}')
    [(file, rule_id, message)] = problems(rules)
    assert (file, rule_id) == ("inpatient.toml", "IN-1")
    assert f"unknown operator '{written}'; did you mean '{meant}'?" in message
    if meant in ("at_least", "at_most"):
        assert message.endswith("(at_least and at_most include the value itself)")
