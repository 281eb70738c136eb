"""The level walkthroughs in docs/writing-your-rules.md show real output.

Each walkthrough starts from a fresh copy of the shipped rules, applies the
edits the page describes, step by step, and runs the commands the page shows.
Every ``text`` block of the page's "Change the levels" section that starts with
``$ `` is one of those commands and what it printed; this test runs them again,
in order, and compares (the rule base's hash may differ as the rules change).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLES_DIR, ROOT, RULES_DIR

PAGE = ROOT / "docs" / "writing-your-rules.md"
SECTION = "## Change the levels"
_BLOCK = re.compile(r"```text\n\$ (?P<command>[^\n]*)\n(?P<output>.*?)```", re.DOTALL)
_HASH = re.compile(r"\b[0-9a-f]{64}\b")

Edit = Callable[[Path], None]


def replace(file: str, old: str, new: str) -> Edit:
    """Replace ``old``, which must occur exactly once in ``file``, with ``new``."""

    def apply(rules: Path) -> None:
        path = rules / file
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{file}: {old!r} occurs {text.count(old)} times"
        path.write_text(text.replace(old, new), encoding="utf-8")

    return apply


def drop_table(file: str, header: str, key: str) -> Edit:
    """Delete the one ``header`` table of ``file`` whose first line is ``key``."""
    pattern = re.compile(rf"(?ms)^{re.escape(header)}\n{re.escape(key)}\n.*?(?=^\[|\Z)")

    def apply(rules: Path) -> None:
        path = rules / file
        text = path.read_text(encoding="utf-8")
        assert len(pattern.findall(text)) == 1, f"{file}: {key}"
        path.write_text(pattern.sub("", text), encoding="utf-8")

    return apply


def delete(file: str) -> Edit:
    def apply(rules: Path) -> None:
        (rules / file).unlink()

    return apply


def append(file: str, text: str) -> Edit:
    def apply(rules: Path) -> None:
        path = rules / file
        path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")

    return apply


def replace_everywhere(old: str, new: str) -> Edit:
    """What ``sed -i 's/OLD/NEW/g' my-rules/*.toml`` does."""

    def apply(rules: Path) -> None:
        for path in sorted(rules.glob("*.toml")):
            path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")

    return apply


def level_criteria(file: str, ids: tuple[str, ...], old: str, new: str) -> list[Edit]:
    return [replace(file, f'id = "{i}"\nlevel = "{old}"', f'id = "{i}"\nlevel = "{new}"') for i in ids]


# --- the walkthroughs, as the page describes them -----------------------------------------

RESIDENTIAL_LEVEL = """[[level]]
id = "residential"
label = "residential"
description = "Living in a staffed treatment setting day and night, without hospital-level medical care."

"""
RESIDENTIAL_PROGRAM = """[[program]]
level = "residential"
hours_per_week = [168, 168]
days_per_week = [7, 7]
typical_length = "Several weeks, until the person can keep safe and abstinent while living at home."
sources = ["iop-role", "glendale-iop"]

"""
PHP_LEVEL = """[[level]]
id = "php"
label = "PHP"
description = "Partial hospitalization: treatment and clinical monitoring through most of the day, home at night."

"""
DAILY_OVERSIGHT = """
# Needs that call for daily clinical oversight. This service has no day
# programme, so they call for inpatient care.

[[rule]]
id = "IN-7"
level = "inpatient"
statement = "Someone who must be clinically watched through most of each day needs inpatient care, as there is no day programme."
sources = ["jc-iop"]
when = { fact = "needs_daily_monitoring", is = true }

[[rule]]
id = "IN-8"
level = "inpatient"
statement = "Moderate or worse expected withdrawal needs clinical oversight every day, which only inpatient care gives here."
sources = ["tip47"]
when = { fact = "withdrawal_risk", at_least = "moderate" }

[[rule]]
id = "IN-9"
level = "inpatient"
statement = "A moderate risk of harm needs contact with clinicians every day, which only inpatient care gives here."
sources = ["jc-iop", "tip47"]
when = { fact = "harm_risk", at_least = "moderate" }

[[rule]]
id = "IN-10"
level = "inpatient"
statement = "Severe co-occurring mental-health symptoms need treatment through the day, which only inpatient care gives here."
sources = ["jc-iop", "tip47"]
when = { fact = "psychiatric_severity", is = "severe" }
"""

SHIPPED_VALUES = 'values = ["outpatient", "iop", "php", "inpatient"]'
TR5_FROM = '''from = ["inpatient", "php"]
floor = "iop"
statement = "Someone stepping down from inpatient care or PHP goes no lower than IOP, which bridges the return home."'''

# (walkthrough, the edits of each step; each step ends with the commands the page shows)
WALKTHROUGHS: list[tuple[str, list[list[Edit]]]] = [
    (
        "add residential",
        [
            [replace("levels.toml", '[[level]]\nid = "inpatient"', RESIDENTIAL_LEVEL + '[[level]]\nid = "inpatient"')],
            [
                replace(
                    "vocabulary.toml",
                    SHIPPED_VALUES,
                    'values = ["outpatient", "iop", "php", "residential", "inpatient"]',
                ),
                replace(
                    "programs.toml",
                    '[[program]]\nlevel = "inpatient"',
                    RESIDENTIAL_PROGRAM + '[[program]]\nlevel = "inpatient"',
                ),
            ],
            [
                replace(
                    "transitions.toml",
                    TR5_FROM,
                    '''from = ["inpatient", "residential", "php"]
floor = "iop"
statement = "Someone stepping down from inpatient, residential or PHP care goes no lower than IOP, which bridges the return home."''',
                ),
                *level_criteria("inpatient.toml", ("IN-4", "IN-5", "IN-6"), "inpatient", "residential"),
            ],
        ],
    ),
    (
        "drop PHP",
        [
            [replace("levels.toml", PHP_LEVEL, "")],
            [
                replace("vocabulary.toml", SHIPPED_VALUES, 'values = ["outpatient", "iop", "inpatient"]'),
                delete("php.toml"),
                append("inpatient.toml", DAILY_OVERSIGHT),
                replace(
                    "transitions.toml",
                    TR5_FROM,
                    '''from = ["inpatient"]
floor = "iop"
statement = "Someone stepping down from inpatient care goes no lower than IOP, which bridges the return home."''',
                ),
                drop_table("programs.toml", "[[program]]", 'level = "php"'),
                drop_table("considerations.toml", "[[consideration]]", 'id = "CF-2"'),
            ],
        ],
    ),
    (
        "rename IOP",
        [
            [replace("levels.toml", 'id = "iop"', 'id = "intensive"')],
            [
                replace_everywhere('"iop"', '"intensive"'),
                replace("levels.toml", 'label = "IOP"', 'label = "intensive outpatient"'),
            ],
        ],
    ),
]


def _fresh_copy(folder: Path) -> Path:
    """The page's starting point: a copy of the shipped rules under its own name, without their test vectors."""
    rules = folder / "my-rules"
    shutil.copytree(RULES_DIR, rules)
    (rules / "cases.toml").unlink()
    replace(
        "rulebase.toml",
        'name = "levelcare-core"\nversion = "1.0.0"',
        'name = "riverside-clinic"\nversion = "2025.1"',
    )(rules)
    return rules


def _blocks() -> list[tuple[str, str]]:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    return [(m["command"], m["output"]) for m in _BLOCK.finditer(section)]


def _run(command: str, cwd: Path) -> str:
    python = shlex.quote(sys.executable)
    shell = re.sub(r"(^|\| )levelcare ", lambda m: f"{m[1]}{python} -m levelcare ", command)
    result = subprocess.run(["bash", "-c", shell], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    return result.stdout + result.stderr


def _mask(text: str) -> str:
    return _HASH.sub("<sha256>", text)


def test_the_page_shows_each_step_of_each_walkthrough() -> None:
    """Every step ends with at least one command shown on the page, and there are no extra blocks."""
    commands = [command for command, _ in _blocks()]
    assert len(commands) >= sum(len(steps) for _, steps in WALKTHROUGHS)
    assert sum(c == "levelcare check my-rules" for c in commands) == sum(len(steps) for _, steps in WALKTHROUGHS)


# The first walkthrough in the quick run; every one in the slow run.
@pytest.mark.parametrize(
    "index",
    [pytest.param(i, marks=[pytest.mark.slow] if i else []) for i in range(len(WALKTHROUGHS))],
    ids=[name for name, _ in WALKTHROUGHS],
)
def test_walkthrough_output_is_real(index: int, tmp_path: Path) -> None:
    """Apply each step's edits, then run the page's commands up to the next check: each prints what is shown."""
    (tmp_path / "examples").symlink_to(EXAMPLES_DIR, target_is_directory=True)
    rules = _fresh_copy(tmp_path)
    # The page's blocks for this walkthrough: each step's commands begin with a check.
    blocks = _blocks()
    checks = [i for i, (command, _) in enumerate(blocks) if command == "levelcare check my-rules"]
    first_step = sum(len(steps) for _, steps in WALKTHROUGHS[:index])
    _, steps = WALKTHROUGHS[index]
    for number, edits in enumerate(steps):
        for edit in edits:
            edit(rules)
        start = checks[first_step + number]
        stop = checks[first_step + number + 1] if first_step + number + 1 < len(checks) else len(blocks)
        for command, shown in blocks[start:stop]:
            assert _mask(_run(command, tmp_path)) == _mask(shown), f"step {number + 1}: $ {command}"


_KEYS_ROW = re.compile(r"^\| `\[\[(?P<table>[a-z]+)\]\]` \|[^|]*\| (?P<keys>[^|]*) \|$", re.MULTILINE)


def test_the_page_lists_every_key_of_every_table_as_the_loader_reads_it() -> None:
    """The table of rule-file tables gives each table's required keys, and its optional ones in italics."""
    from levelcare._rulebase._reading import _TABLES

    rows = {m["table"]: m["keys"] for m in _KEYS_ROW.finditer(PAGE.read_text(encoding="utf-8"))}
    assert set(rows) == set(_TABLES)
    for table, (required, optional) in _TABLES.items():
        keys = [key.strip() for key in rows[table].split(",")]
        shown_required = {k.strip("`") for k in keys if k.startswith("`")}
        shown_optional = {k.strip("*`") for k in keys if k.startswith("*")}
        assert (shown_required, shown_optional) == (required, optional), table
