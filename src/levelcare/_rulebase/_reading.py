"""Reading rule files: which files count, the tables they may hold, their size limits, and the collector of problems."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.resources.abc import Traversable
from typing import Any

from .._text import Problems
from ..exceptions import RuleProblem
from ._vocabulary import shorten

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Field names the engine itself uses inside a session; a fact with one of these
# names would let a rule match the engine's own state.
RESERVED_NAMES = frozenset({"sid", "id"})

_TABLES: dict[str, tuple[set[str], set[str]]] = {
    # table: (required keys, optional keys)
    "level": ({"id", "label", "description"}, set()),
    "source": ({"id", "title"}, {"covers"}),
    "fact": ({"name", "group", "kind", "meaning", "sources"}, {"values", "minimum", "maximum", "need", "aliases"}),
    "rule": ({"id", "level", "statement", "sources"}, {"when", "otherwise"}),
    "emergency": ({"id", "statement", "sources", "when"}, set()),
    "escalation": ({"id", "statement", "sources", "when", "levels_above_current"}, set()),
    "transition": ({"id", "kind", "statement", "sources"}, set()),
    "readiness": ({"id", "statement", "sources", "signs"}, {"from"}),
    "bridge": ({"id", "statement", "sources", "from", "floor"}, set()),
    "program": (
        {"level", "hours_per_week", "days_per_week", "typical_length", "sources"},
        {"recommended_minimum_days"},
    ),
    "service": ({"name", "sources"}, {"when"}),
    "consideration": ({"id", "statement", "sources", "when"}, set()),
    "case": ({"name", "facts", "expect"}, {"story"}),
}
_RULEBASE_KEYS = ({"name", "version"}, {"description"})
_SINGLE_TABLES = ("rulebase", "wording")
_LEVEL_ID = re.compile(r"^[a-z][a-z0-9_-]*$")


#: The longest rule id: ids are quoted in every message and report.
MAX_ID_LENGTH = 32
#: The deepest nesting of tables and lists in one item: room for conditions some
#: fifteen all/any/not levels deep, far below where reading them could exhaust
#: Python's stack.
MAX_NESTING = 32


def is_rule_file(file: Traversable) -> bool:
    """A ``*.toml`` file that is not hidden."""
    return file.name.endswith(".toml") and not file.name.startswith(".") and file.is_file()


def nesting_depth(value: object) -> int:
    """How deeply tables and lists nest in ``value`` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if depth <= MAX_NESTING:  # no need to look deeper than the limit
            stack.extend((child, depth) for child in children)
    return deepest


def _within_nesting(problems: _Collector, file: str, table: str, item: object) -> bool:
    """Whether ``item`` nests no deeper than the limit; if not, the problem is added."""
    if nesting_depth(item) <= MAX_NESTING:
        return True
    label = item_label(table, item) if isinstance(item, Mapping) else f"[[{table}]]"
    problems.add(
        file,
        label,
        f"nested more than {MAX_NESTING} levels of tables and lists deep; "
        "write the condition flatter, as all or any of simpler conditions",
    )
    return False


def _too_deep_to_read(text: str) -> str:
    """The problem with a file nested too deeply for the TOML reader, with the line where it gets too deep."""
    depth, line, index, size = 0, 1, 0, len(text)
    while index < size:
        char = text[index]
        if char == "\n":
            line += 1
        elif char == "#":
            end = text.find("\n", index)
            index = size if end < 0 else end
            continue
        elif char in "\"'":
            quote = text[index : index + 3] if text.startswith(char * 3, index) else char
            index += len(quote)
            while index < size and not text.startswith(quote, index):
                if text[index] == "\\" and char == '"':
                    index += 1
                elif text[index] == "\n":
                    line += 1
                index += 1
            index += len(quote)
            continue
        elif char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return (
                    f"nested more than {MAX_NESTING} levels of tables and lists deep, from line {line}; "
                    "write the condition flatter, as all or any of simpler conditions"
                )
        elif char in "]}":
            depth -= 1
        index += 1
    return f"nested too deeply to read; at most {MAX_NESTING} levels of tables and lists are allowed"


class _Collector:
    """The problems of a rule base, as :class:`Problems` bounds them."""

    def __init__(self) -> None:
        self._found = Problems(lambda text: RuleProblem("", "", text))

    @property
    def problems(self) -> tuple[RuleProblem, ...]:
        """The problems to report: the first ones found, then how many more there were."""
        return self._found.reported()

    def add(self, file: str, rule_id: str, message: str) -> None:
        self._found.append(RuleProblem(file, rule_id, message))

    def closest(self, name: str, candidates: Any) -> str | None:
        """The suggestion for a problem about to be added (None when it would only be counted)."""
        return self._found.closest(name, candidates)


def _check_keys(
    problems: _Collector, file: str, table: str, item: Mapping[str, Any], required: set[str], optional: set[str]
) -> None:
    # [rulebase] and [wording] are single tables; the others are arrays of tables.
    single = table in _SINGLE_TABLES
    label = table if single else item_label(table, item)
    header = f"[{table}]" if single else f"[[{table}]]"
    for key in sorted(required - set(item)):
        if table == "rule" and key == "when":
            continue
        problems.add(file, label, f"{header} is missing {key!r}")
    for key in sorted(set(item) - required - optional):
        hint = problems.closest(key, required | optional)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        problems.add(file, label, f"unknown key {shorten(key)} in {header}{suggestion}")


def item_label(table: str, item: Mapping[str, Any]) -> str:
    for key in ("id", "name", "level"):
        value = item.get(key)
        if isinstance(value, str) and value:
            return value if len(value) <= 40 else shorten(value)
    return f"[[{table}]]"


def _check_sources(problems: _Collector, file: str, label: str, value: object, known: set[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.add(file, label, "sources must be a non-empty list of source ids")
        return ()
    for sid in value:
        if sid not in known:
            hint = problems.closest(sid, known)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            problems.add(file, label, f"unknown source {shorten(sid)}{suggestion}")
    return tuple(value)
