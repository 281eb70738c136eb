"""The generated references and diagram say what the rule base says."""

from __future__ import annotations

import doctest
import itertools
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conftest import RULES_DIR, SHIPPED_LEVELS
from levelcare._render._reference import condition_text, level_moves, levels_svg, rules_markdown, vocabulary_markdown
from levelcare._rulebase import RuleBase, default_location, load
from levelcare._rulebase import _conditions as cond
from levelcare._rulebase._vocabulary import Fact

RULEBASE = load(default_location())
VOCABULARY = RULEBASE.vocabulary
EVERY_FACT = [f.name for f in VOCABULARY.facts]
SVG = "{http://www.w3.org/2000/svg}"


def parsed(data: dict[str, Any]) -> cond.Condition:
    return cond.parse(data, VOCABULARY, context=True, facts=EVERY_FACT, levels=RULEBASE.levels.ids)


# --- conditions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"fact": "harm_risk", "is": "high"}, "`harm_risk` is `high`"),
        ({"fact": "harm_risk", "at_least": "high"}, "`harm_risk` is `high` or `imminent`"),
        ({"fact": "harm_risk", "at_least": "moderate"}, "`harm_risk` is at least `moderate`"),
        ({"fact": "harm_risk", "at_most": "moderate"}, "`harm_risk` is at most `moderate`"),
        ({"fact": "harm_risk", "is_not": "low"}, "`harm_risk` is not `low`"),
        (
            {"fact": "harm_risk", "one_of": ["none", "moderate", "imminent"]},
            "`harm_risk` is `none`, `moderate` or `imminent`",
        ),
        ({"fact": "medical_instability", "is": False}, "`medical_instability` is `false`"),
        ({"fact": "weeks_at_current_level", "at_least": 12}, "`weeks_at_current_level` is at least 12"),
        ({"fact": "weeks_at_current_level", "at_most": 11}, "`weeks_at_current_level` is at most 11"),
        ({"fact": "weeks_at_current_level", "is": 4}, "`weeks_at_current_level` is 4"),
        ({"fact": "weeks_at_current_level", "is_not": 4}, "`weeks_at_current_level` is at most 3 or is at least 5"),
        (
            {"fact": "hours_available_per_week", "below_program_minimum": "hours"},
            "`hours_available_per_week` is below the level's programme minimum of hours a week",
        ),
        (
            {"not": {"fact": "days_available_per_week", "below_program_minimum": "days"}},
            "`days_available_per_week` is at least the level's programme minimum of days a week",
        ),
        ({"level": ["iop", "outpatient"]}, "the decided level is `outpatient` or `iop`"),
        ({"transition": "continue"}, "the transition is `continue`"),
        ({"emergency": True}, "an emergency applies"),
        ({"not": {"emergency": True}}, "no emergency applies"),
        (
            {
                "all": [
                    {"fact": "addiction_severity", "is": "severe"},
                    {"any": [{"fact": "home_environment", "is": "unsafe"}, {"fact": "support_system", "is": "none"}]},
                ]
            },
            "`addiction_severity` is `severe` and (`home_environment` is `unsafe` or `support_system` is `none`)",
        ),
        (
            {"not": {"all": [{"fact": "recent_use", "is": "relapse"}, {"fact": "symptoms_trend", "is": "worsening"}]}},
            "`recent_use` is `none` or `lapse` or `symptoms_trend` is `improving` or `stable`",
        ),
    ],
)
def test_condition_text(data: dict[str, Any], text: str) -> None:
    assert condition_text(parsed(data), VOCABULARY, RULEBASE.levels.ids) == text


def test_constant_conditions() -> None:
    assert condition_text(cond.TRUE, VOCABULARY) == "always"
    assert condition_text(cond.FALSE, VOCABULARY) == "never"


def _read_values(phrase: str, fact: Fact) -> set[Any]:
    """What a rendered set of values means, read back the way a clinician would."""
    shown = {("true" if v is True else "false" if v is False else str(v)): v for v in fact.values}
    order = list(fact.values)
    if phrase == "is known":
        return set(order)
    names = re.findall(r"`([^`]+)`", phrase)
    values = [shown[name] for name in names]
    if phrase.startswith("is not "):
        return {v for v in order if v != values[0]}
    if phrase.startswith("is at least "):
        return set(order[order.index(values[0]) :])
    if phrase.startswith("is at most "):
        return set(order[: order.index(values[0]) + 1])
    assert re.fullmatch(r"is `[^`]+`((, `[^`]+`)* or `[^`]+`)?", phrase), phrase
    return set(values)


@pytest.mark.parametrize("fact", [f for f in VOCABULARY.facts if f.finite], ids=lambda f: f.name)
def test_every_set_of_values_reads_back_as_itself(fact: Fact) -> None:
    """Exhaustively: each non-empty set of a finite fact's values renders to a phrase meaning exactly that set."""
    for size in range(1, len(fact.values) + 1):
        for subset in itertools.combinations(fact.values, size):
            text = condition_text(cond.ValueAtom(fact.name, frozenset(subset)), VOCABULARY)
            prefix = f"`{fact.name}` "
            assert text.startswith(prefix)
            assert _read_values(text[len(prefix) :], fact) == set(subset), text


def _read_range(phrase: str, low: int, high: int) -> set[int]:
    found: set[int] = set()
    for part in re.split(r", | or ", phrase):
        if m := re.fullmatch(r"is at most (\d+)", part):
            found |= set(range(low, int(m[1]) + 1))
        elif m := re.fullmatch(r"is at least (\d+)", part):
            found |= set(range(int(m[1]), high + 1))
        elif m := re.fullmatch(r"is from (\d+) to (\d+)", part):
            found |= set(range(int(m[1]), int(m[2]) + 1))
        elif m := re.fullmatch(r"is (\d+)", part):
            found.add(int(m[1]))
        else:
            pytest.fail(f"unreadable range phrase {phrase!r}")
    return found


def test_every_set_of_days_reads_back_as_itself() -> None:
    """Exhaustively over a small integer fact: every set of numbers renders to a phrase meaning that set."""
    fact = VOCABULARY["days_available_per_week"]
    low, high = fact.minimum or 0, fact.maximum or 0
    numbers = range(low, high + 1)
    for mask in range(1, 1 << len(numbers)):
        subset = {n for i, n in enumerate(numbers) if mask >> i & 1}
        atom = cond.RangeAtom(fact.name, cond.normalise((n, n) for n in subset))
        text = condition_text(atom, VOCABULARY)
        assert _read_range(text.removeprefix(f"`{fact.name}` "), low, high) == subset, text


# --- the Markdown references ---------------------------------------------------------------


def _headings(markdown: str) -> list[tuple[int, str]]:
    return [(len(m[1]), m[2]) for m in re.finditer(r"(?m)^(#+) (.*)$", markdown)]


def _plain(markdown: str) -> str:
    """Markdown with backslash escapes removed, for comparing with rule-file text."""
    return re.sub(r"\\(.)", r"\1", markdown)


def test_rules_reference_has_every_rule_with_statement_condition_and_sources() -> None:
    text = rules_markdown(RULEBASE)
    plain = _plain(text)
    for rule in RULEBASE.rules:
        assert f"### {rule.id}\n" in text
        assert rule.statement in plain
        if not rule.otherwise:
            assert f"- **When:** {condition_text(rule.when, VOCABULARY)}\n" in text
        assert f"- **Sources:** {', '.join(f'`{s}`' for s in rule.sources)}\n" in text
    for item in (*RULEBASE.emergencies, *RULEBASE.escalations, *RULEBASE.considerations):
        assert item.statement in plain
        assert condition_text(item.when, VOCABULARY, RULEBASE.levels.ids) in text
    for note in (*RULEBASE.transitions, *RULEBASE.readiness, *RULEBASE.bridges):
        assert f"### {note.id}: " in text
        assert note.statement in plain
    for readiness in RULEBASE.readiness:
        for sign in readiness.signs:
            assert f"{sign.statement} ({condition_text(sign.when, VOCABULARY)})" in plain
    for service in RULEBASE.services:
        assert f"| `{service.name}` | {condition_text(service.when, VOCABULARY, RULEBASE.levels.ids)} |" in text
    for source in RULEBASE.sources:
        assert f"| `{source.id}` | {source.title} |" in plain


def test_rules_reference_groups_rules_by_level_most_intensive_first() -> None:
    headings = [title for depth, title in _headings(rules_markdown(RULEBASE)) if depth == 2]
    level_sections = [h for h in headings if re.search(r"\(`(\w+)`\)$", h)]
    assert [re.search(r"\(`(\w+)`\)$", h)[1] for h in level_sections] == [
        lvl.value for lvl in reversed(RULEBASE.levels)
    ]  # type: ignore[index]
    text = rules_markdown(RULEBASE)
    for rule in RULEBASE.rules:
        section = text.rindex("\n## ", 0, text.index(f"### {rule.id}\n"))
        assert text[section:].startswith(
            f"\n## {rule.level.label[0].upper()}{rule.level.label[1:]} (`{rule.level.value}`)"
        )


@pytest.mark.parametrize("render", [rules_markdown, vocabulary_markdown], ids=["rules", "vocabulary"])
def test_markdown_is_well_formed(render: Any) -> None:
    """One top heading, no skipped heading levels, and every table row as wide as its header."""
    text = render(RULEBASE)
    depths = [depth for depth, _ in _headings(text)]
    assert depths[0] == 1
    assert depths.count(1) == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(depths))
    tables: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    tables = [table for table in tables if table]
    assert tables
    for table in tables:
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(widths) == 1, table


def test_vocabulary_reference_lists_every_fact_in_its_group() -> None:
    text = vocabulary_markdown(RULEBASE)
    plain = _plain(text)
    for fact in VOCABULARY.facts:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{fact.name}` |"))
        assert _plain(row).count(fact.meaning) == 1
        if fact.kind == "integer":
            assert f"whole number {fact.minimum} to {fact.maximum}" in row
        else:
            assert " ".join(f"`{str(v).lower() if isinstance(v, bool) else v}`" for v in fact.values) in row
    assert plain.index("## Clinical need") < plain.index("## Progress in treatment") < plain.index("## Candidacy")


# --- the diagram --------------------------------------------------------------------------------


def _rule_base_without_bridges(tmp_path: Path) -> RuleBase:
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    for path in folder.glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        # Each [[bridge]] table runs to the next table header or the end of the file.
        stripped = re.sub(r"(?ms)^\[\[bridge\]\].*?(?=^\[|\Z)", "", text)
        path.write_text(stripped, encoding="utf-8")
    rulebase = load(folder)
    assert not rulebase.bridges
    return rulebase


def test_step_downs_respect_bridge_floors() -> None:
    ups, downs = level_moves(RULEBASE)
    assert RULEBASE.bridges, "the shipped rule base has a bridge"
    for current, target in downs:
        assert target < current
        for bridge in RULEBASE.bridges:
            if current in bridge.applies_to:
                assert target >= bridge.floor
    floored = {(c, t) for b in RULEBASE.bridges for c in b.applies_to for t in RULEBASE.levels if t < b.floor}
    assert floored
    assert not floored & set(downs)
    assert all(target > current for current, target in ups)


def test_without_a_bridge_every_lower_level_can_be_stepped_down_to(tmp_path: Path) -> None:
    _, downs = level_moves(_rule_base_without_bridges(tmp_path))
    assert set(downs) == {(c, t) for c in RULEBASE.levels for t in RULEBASE.levels if t < c}
    assert (SHIPPED_LEVELS["php"], SHIPPED_LEVELS["outpatient"]) in downs


def test_diagram_is_svg_with_a_box_per_level_and_an_arc_per_move(tmp_path: Path) -> None:
    for rulebase in (RULEBASE, _rule_base_without_bridges(tmp_path)):
        root = ET.fromstring(levels_svg(rulebase))
        assert root.tag == f"{SVG}svg"
        texts = [t.text for t in root.iter(f"{SVG}text")]
        for level in RULEBASE.levels:
            assert level.label in texts
        ups, downs = level_moves(rulebase)
        arcs = [p for p in root.iter(f"{SVG}path") if "marker-end" in p.attrib]
        assert len([a for a in arcs if a.attrib["marker-end"] == "url(#arrow-up)"]) == len(ups)
        assert len([a for a in arcs if a.attrib["marker-end"] == "url(#arrow-down)"]) == len(downs)
        desc = root.find(f"{SVG}desc")
        assert desc is not None and desc.text is not None
        for current, target in downs:
            assert f"step-down from {current.value} to {target.value}" in desc.text
        for bridge in rulebase.bridges:
            assert any(bridge.id in (t or "") for t in texts)


# --- the documentation shows real output -----------------------------------------------------

DOCS = RULES_DIR.parent / "docs"
# Pages whose console examples are pasted output of the levelcare command. Each
# example runs in a shell of its own; those of the longest pages only in the slow run.
CONSOLE_PAGES = ["quickstart.md", "concepts.md", "cli.md", "writing-your-rules.md", "policy-teams.md"]
SLOW_CONSOLE_PAGES = {"cli.md", "policy-teams.md"}
_CONSOLE = re.compile(r"```console\n\$ (?P<command>[^\n]*)\n(?P<output>.*?)```", re.DOTALL)
_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def _console_examples() -> list[tuple[str, str, str]]:
    found = []
    for page in CONSOLE_PAGES:
        for match in _CONSOLE.finditer((DOCS / page).read_text(encoding="utf-8")):
            found.append((page, match["command"], match["output"]))
    return found


def _console_params() -> list[Any]:
    return [
        pytest.param(*example, marks=[pytest.mark.slow] if example[0] in SLOW_CONSOLE_PAGES else [])
        for example in _console_examples()
    ]


@pytest.mark.parametrize(("page", "command", "output"), _console_params(), ids=lambda v: str(v)[:48])
def test_console_examples_in_the_docs_are_real_output(page: str, command: str, output: str) -> None:
    """Each pasted example still prints exactly that; the rule base's hash may differ as rules change."""
    python = shlex.quote(sys.executable)
    shell = re.sub(r"(^|\| |&& )levelcare ", lambda m: f"{m[1]}{python} -m levelcare ", command)
    result = subprocess.run(
        ["bash", "-c", shell], cwd=DOCS.parent, capture_output=True, text=True, timeout=120, check=False
    )
    assert _HASH.sub("<sha256>", result.stdout) == _HASH.sub("<sha256>", output), f"{page}: $ {command}"


def test_the_docs_have_console_examples() -> None:
    assert len(_console_examples()) >= 7


def test_python_examples_in_the_quick_start_run() -> None:
    failures, attempted = doctest.testfile(
        str(DOCS / "quickstart.md"), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert attempted >= 5
    assert failures == 0
