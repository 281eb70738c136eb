"""Loading a rule base from a folder of TOML files.

Every ``*.toml`` file in the folder is read, in name order, except hidden ones
(``.name.toml``, as editors and sync tools leave behind); a UTF-8 byte order mark
is allowed. Each file may hold any of the tables below. The loader checks everything before anything runs and reports
every problem at once as a :class:`~levelcare.RuleBaseError` naming the file and
the rule.

``[rulebase]`` name, version, description
``[wording]`` the templates of the sentences the engine writes itself
``[[level]]`` id, label, description: the levels, least intensive first
``[[source]]`` id, title, covers
``[[fact]]`` the vocabulary (see ``vocabulary.toml``)
``[[rule]]`` id, level, statement, sources, and ``when`` or ``otherwise = true``
``[[emergency]]`` id, statement, sources, when
``[[escalation]]`` id, statement, sources, levels_above_current, when
``[[transition]]`` id, kind (step-up or continue), statement, sources
``[[readiness]]`` id, statement, sources, optional from, signs
``[[bridge]]`` id, statement, sources, from, floor
``[[program]]`` level, hours_per_week, days_per_week, typical_length, sources
``[[service]]`` name, sources, optional when
``[[consideration]]`` id, statement, sources, when
``[[case]]`` name, facts, expect, optional story: a test vector (see ``_cases``)
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import string
import tomllib
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import attrs

from .._model import Level, LevelSet, Program, RulebaseInfo, Transition, _register_shipped
from ..exceptions import RuleBaseError, RuleProblem
from . import _conditions as cond
from ._cases import Case, load_cases
from ._vocabulary import (
    CURRENT_LEVEL,
    GROUPS,
    KINDS,
    NEEDS,
    Fact,
    Vocabulary,
    closest,
    shorten,
    type_name,
)

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
    "program": ({"level", "hours_per_week", "days_per_week", "typical_length", "sources"}, {"recommended_minimum_days"}),
    "service": ({"name", "sources"}, {"when"}),
    "consideration": ({"id", "statement", "sources", "when"}, set()),
    "case": ({"name", "facts", "expect"}, {"story"}),
}
_RULEBASE_KEYS = ({"name", "version"}, {"description"})
_SINGLE_TABLES = ("rulebase", "wording")
#: The sentences the engine writes itself, and the fields each template may use.
WORDING_FIELDS: dict[str, frozenset[str]] = {
    "ruled_out_below": frozenset({"level", "Level", "statement"}),
    "none_holds": frozenset({"level", "Level", "rules"}),
    "none_can_hold": frozenset({"level", "Level", "rules"}),
    "no_criterion": frozenset({"level", "Level"}),
    "step_down_held_back": frozenset({"sign"}),
}
_LEVEL_ID = re.compile(r"^[a-z][a-z0-9_-]*$")


@attrs.frozen
class Wording:
    """The rule base's templates for the sentences the engine writes itself.

    Each is a ``str.format`` template; ``{level}`` is a level's label and
    ``{Level}`` the same with a capital first letter.
    """

    ruled_out_below: str
    none_holds: str
    none_can_hold: str
    no_criterion: str
    step_down_held_back: str

    def say(self, key: str, *, level: Level | None = None, **fields: str) -> str:
        template: str = getattr(self, key)
        if level is not None:
            fields = {"level": level.label, "Level": level.label[:1].upper() + level.label[1:], **fields}
        return template.format(**fields)
#: The longest rule id: ids are quoted in every message and report.
MAX_ID_LENGTH = 32
#: The deepest nesting of tables and lists in one item: room for conditions some
#: fifteen all/any/not levels deep, far below where reading them could exhaust
#: Python's stack.
MAX_NESTING = 32


def _is_rule_file(file: Traversable) -> bool:
    """A ``*.toml`` file that is not hidden."""
    return file.name.endswith(".toml") and not file.name.startswith(".") and file.is_file()


def _nesting(value: object) -> int:
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
    if _nesting(item) <= MAX_NESTING:
        return True
    label = _label(table, item) if isinstance(item, Mapping) else f"[[{table}]]"
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


@attrs.frozen
class Source:
    id: str
    title: str
    covers: str = ""


@attrs.frozen
class Rule:
    """A criterion that requires a level (``otherwise``: the level when none holds)."""

    id: str
    level: Level
    statement: str
    sources: tuple[str, ...]
    when: cond.Condition
    file: str
    otherwise: bool = False


@attrs.frozen
class Emergency:
    id: str
    statement: str
    sources: tuple[str, ...]
    when: cond.Condition
    file: str


@attrs.frozen
class Escalation:
    id: str
    statement: str
    sources: tuple[str, ...]
    when: cond.Condition
    levels_above_current: int
    file: str


@attrs.frozen
class TransitionNote:
    id: str
    kind: Transition
    statement: str
    sources: tuple[str, ...]
    file: str


@attrs.frozen
class Sign:
    statement: str
    when: cond.Condition
    unmet: cond.Condition


@attrs.frozen
class Readiness:
    """Signs that must all hold before a step down from the levels in ``applies_to``."""

    id: str
    statement: str
    sources: tuple[str, ...]
    applies_to: frozenset[Level]
    signs: tuple[Sign, ...]
    file: str


@attrs.frozen
class Bridge:
    id: str
    statement: str
    sources: tuple[str, ...]
    applies_to: frozenset[Level]
    floor: Level
    file: str


@attrs.frozen
class Service:
    name: str
    sources: tuple[str, ...]
    when: cond.Condition
    file: str


@attrs.frozen
class Consideration:
    id: str
    statement: str
    sources: tuple[str, ...]
    when: cond.Condition
    file: str


@attrs.frozen
class RuleBase:
    """A loaded, checked rule base. Immutable; shared by every decision."""

    info: RulebaseInfo
    description: str
    levels: LevelSet
    wording: Wording
    vocabulary: Vocabulary
    sources: tuple[Source, ...]
    rules: tuple[Rule, ...]
    emergencies: tuple[Emergency, ...]
    escalations: tuple[Escalation, ...]
    transitions: tuple[TransitionNote, ...]
    readiness: tuple[Readiness, ...]
    bridges: tuple[Bridge, ...]
    programs: Mapping[str, Program]
    services: tuple[Service, ...]
    considerations: tuple[Consideration, ...]
    location: str
    #: Expected decisions the rule base carries (``[[case]]``), run by ``levelcare check``.
    cases: tuple[Case, ...] = ()

    @property
    def fallback(self) -> Rule:
        return next(r for r in self.rules if r.otherwise)

    @property
    def criteria(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if not r.otherwise)

    def transition_note(self, kind: Transition) -> TransitionNote | None:
        return next((t for t in self.transitions if t.kind is kind), None)


@functools.cache
def shipped() -> RuleBase:
    """The rule base shipped inside the package, loaded once (not compiled)."""
    return load(default_location())


def _shipped_levels() -> LevelSet:
    return shipped().levels


_register_shipped(_shipped_levels)


def default_location() -> Traversable:
    """The rule base shipped inside the package (or, in a source checkout, ``rules/``)."""
    packaged = resources.files("levelcare").joinpath("rules")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "rules"


class _Collector:
    def __init__(self) -> None:
        self.problems: list[RuleProblem] = []

    def add(self, file: str, rule_id: str, message: str) -> None:
        self.problems.append(RuleProblem(file, rule_id, message))


def load(location: Traversable | str | Path) -> RuleBase:
    """Read and check every rule file in ``location``.

    Raises:
        RuleBaseError: listing every problem, each with its file and rule id.
    """
    folder: Traversable = Path(location) if isinstance(location, (str, Path)) else location
    problems = _Collector()
    if not folder.is_dir():
        problems.add(str(location), "", "no such rule base folder")
        raise RuleBaseError(problems.problems)
    files = sorted((f for f in folder.iterdir() if _is_rule_file(f)), key=lambda f: f.name)
    if not files:
        problems.add(str(location), "", "the folder holds no *.toml rule files")
        raise RuleBaseError(problems.problems)

    tables: dict[str, list[tuple[str, dict[str, Any]]]] = {name: [] for name in _TABLES}
    singles: dict[str, list[tuple[str, dict[str, Any]]]] = {name: [] for name in _SINGLE_TABLES}
    content: dict[str, list[Any]] = {name: [] for name in [*_SINGLE_TABLES, *_TABLES]}
    for file in files:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            problems.add(file.name, "", f"not valid TOML: {error}")
            continue
        except RecursionError:
            problems.add(file.name, "", _too_deep_to_read(file.read_text(encoding="utf-8-sig")))
            continue
        for key, value in data.items():
            if key in _SINGLE_TABLES:
                if isinstance(value, dict):
                    singles[key].append((file.name, value))
                    content[key].append(value)
                else:
                    problems.add(file.name, key, f"[{key}] must be a table")
            elif key in _TABLES:
                if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                    problems.add(file.name, key, f"write [[{key}]] tables, not a single value")
                    continue
                shallow = [item for item in value if _within_nesting(problems, file.name, key, item)]
                tables[key].extend((file.name, item) for item in shallow)
                content[key].extend(value)
            else:
                hint = closest(key, [*_SINGLE_TABLES, *_TABLES])
                problems.add(file.name, key, f"unknown table {key!r}; did you mean {hint!r}?")

    for name, (required, optional) in _TABLES.items():
        for file_name, item in tables[name]:
            _check_keys(problems, file_name, name, item, required, optional)

    info, description = _load_header(problems, singles["rulebase"], content)
    wording = _load_wording(problems, singles["wording"])
    levels = _load_levels(problems, tables["level"])
    sources = _load_sources(problems, tables["source"])
    source_ids = {s.id for s in sources}
    vocabulary = _load_vocabulary(problems, tables["fact"], source_ids, levels)
    loader = _ItemLoader(problems, vocabulary, source_ids, levels)
    rules = tuple(r for r in (loader.rule(f, t) for f, t in tables["rule"]) if r)
    emergencies = tuple(r for r in (loader.emergency(f, t) for f, t in tables["emergency"]) if r)
    escalations = tuple(r for r in (loader.escalation(f, t) for f, t in tables["escalation"]) if r)
    transitions = tuple(r for r in (loader.transition(f, t) for f, t in tables["transition"]) if r)
    readiness = tuple(r for r in (loader.readiness(f, t) for f, t in tables["readiness"]) if r)
    bridges = tuple(r for r in (loader.bridge(f, t) for f, t in tables["bridge"]) if r)
    programs = loader.programs(tables["program"])
    services = tuple(r for r in (loader.service(f, t) for f, t in tables["service"]) if r)
    considerations = tuple(r for r in (loader.consideration(f, t) for f, t in tables["consideration"]) if r)
    cases = load_cases(problems, tables["case"], vocabulary, levels)
    loader.check_ids(tables)
    _check_structure(problems, levels, rules, transitions, escalations, readiness, bridges, vocabulary, tables)

    if problems.problems or wording is None:
        raise RuleBaseError(problems.problems)
    return RuleBase(
        info=info,
        description=description,
        levels=levels,
        wording=wording,
        vocabulary=vocabulary,
        sources=sources,
        rules=rules,
        emergencies=emergencies,
        escalations=escalations,
        transitions=transitions,
        readiness=readiness,
        bridges=bridges,
        programs=programs,
        services=services,
        considerations=considerations,
        location=str(location),
        cases=cases,
    )


def _check_keys(
    problems: _Collector, file: str, table: str, item: Mapping[str, Any], required: set[str], optional: set[str]
) -> None:
    # [rulebase] and [wording] are single tables; the others are arrays of tables.
    single = table in _SINGLE_TABLES
    label = table if single else _label(table, item)
    header = f"[{table}]" if single else f"[[{table}]]"
    for key in sorted(required - set(item)):
        if table == "rule" and key == "when":
            continue
        problems.add(file, label, f"{header} is missing {key!r}")
    for key in sorted(set(item) - required - optional):
        hint = closest(key, required | optional)
        problems.add(file, label, f"unknown key {key!r} in {header}; did you mean {hint!r}?")


def _label(table: str, item: Mapping[str, Any]) -> str:
    for key in ("id", "name", "level"):
        value = item.get(key)
        if isinstance(value, str) and value:
            return value if len(value) <= 40 else shorten(value)
    return f"[[{table}]]"


def _load_header(
    problems: _Collector, headers: list[tuple[str, dict[str, Any]]], content: dict[str, list[Any]]
) -> tuple[RulebaseInfo, str]:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    if len(headers) != 1:
        where = ", ".join(f for f, _ in headers) or "rulebase.toml"
        problems.add(where, "rulebase", f"exactly one [rulebase] table is needed, found {len(headers)}")
        return RulebaseInfo(name="", version="", sha256=digest), ""
    file, header = headers[0]
    required, optional = _RULEBASE_KEYS
    _check_keys(problems, file, "rulebase", header, required, optional)
    name, version = header.get("name"), header.get("version")
    for key, value in (("name", name), ("version", version)):
        if key in header and (not isinstance(value, str) or not value.strip()):
            problems.add(file, "rulebase", f"{key} must be a non-empty string")
    description = header.get("description", "")
    return RulebaseInfo(name=str(name or ""), version=str(version or ""), sha256=digest), str(description)


def _load_wording(problems: _Collector, found: list[tuple[str, dict[str, Any]]]) -> Wording | None:
    if len(found) != 1:
        where = ", ".join(f for f, _ in found) or "rulebase.toml"
        keys = ", ".join(WORDING_FIELDS)
        problems.add(where, "wording", f"exactly one [wording] table is needed ({keys}), found {len(found)}")
        return None
    file, table = found[0]
    _check_keys(problems, file, "wording", table, set(WORDING_FIELDS), set())
    ok = set(table) == set(WORDING_FIELDS)
    for key, allowed in WORDING_FIELDS.items():
        template = table.get(key)
        if key not in table:
            continue
        if not isinstance(template, str) or not template.strip():
            problems.add(file, "wording", f"{key} must be a non-empty sentence")
            ok = False
            continue
        try:
            used = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
        except ValueError as error:
            problems.add(file, "wording", f"{key} is not a valid template ({error}); write {{{{ for a literal brace")
            ok = False
            continue
        wrong = sorted(used - allowed)
        if wrong:
            fields = ", ".join("{" + f + "}" for f in sorted(allowed))
            problems.add(file, "wording", f"{key} uses {{{shorten(wrong[0])[1:-1]}}}; it may use {fields}")
            ok = False
    return Wording(**{k: str(table[k]).strip() for k in WORDING_FIELDS}) if ok else None


def _load_levels(problems: _Collector, items: list[tuple[str, dict[str, Any]]]) -> LevelSet:
    levels: list[Level] = []
    seen: set[str] = set()
    for file, item in items:
        lid, label, description = item.get("id"), item.get("label"), item.get("description")
        where = _label("level", item)
        if not isinstance(lid, str) or not _LEVEL_ID.match(lid):
            problems.add(file, where, f"a level id is a short lower-case name such as 'iop', got {shorten(lid)}")
            continue
        if lid in seen:
            problems.add(file, lid, "duplicate level id")
            continue
        seen.add(lid)
        if not isinstance(label, str) or not label.strip():
            problems.add(file, lid, "label must be a non-empty string")
            continue
        if not isinstance(description, str) or not description.strip():
            problems.add(file, lid, "description must be a one-line sentence")
            continue
        levels.append(Level(id=lid, label=label.strip(), rank=len(levels), description=description.strip()))
    if len(items) < 2:
        problems.add(
            "levels",
            "",
            f"a rule base declares at least two [[level]] tables, least intensive first; found {len(items)}",
        )
    return LevelSet(levels)


def _load_sources(problems: _Collector, items: list[tuple[str, dict[str, Any]]]) -> tuple[Source, ...]:
    seen: set[str] = set()
    sources = []
    for file, item in items:
        sid, title = item.get("id"), item.get("title")
        if not isinstance(sid, str) or not _ID.match(sid):
            problems.add(file, _label("source", item), f"source id must be a short name, got {shorten(sid)}")
            continue
        if sid in seen:
            problems.add(file, sid, "duplicate source id")
            continue
        seen.add(sid)
        if not isinstance(title, str) or not title.strip():
            problems.add(file, sid, "source title must be a non-empty string")
            continue
        sources.append(Source(sid, title, str(item.get("covers", ""))))
    return tuple(sources)


def _check_sources(problems: _Collector, file: str, label: str, value: object, known: set[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        problems.add(file, label, "sources must be a non-empty list of source ids")
        return ()
    for sid in value:
        if sid not in known:
            hint = closest(sid, known)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            problems.add(file, label, f"unknown source {sid!r}{suggestion}")
    return tuple(value)


def _load_vocabulary(
    problems: _Collector, items: list[tuple[str, dict[str, Any]]], source_ids: set[str], levels: LevelSet
) -> Vocabulary:
    facts: list[Fact] = []
    seen: set[str] = set()
    for file, item in items:
        name = item.get("name")
        label = _label("fact", item)
        if not isinstance(name, str) or not _NAME.match(name):
            problems.add(file, label, f"fact name must be snake_case, got {shorten(name)}")
            continue
        if name in RESERVED_NAMES:
            problems.add(
                file, name, f"{name!r} is reserved for the engine's own session state; choose another fact name"
            )
            continue
        if name in seen:
            problems.add(file, name, "duplicate fact name")
            continue
        seen.add(name)
        group, kind = item.get("group"), item.get("kind")
        ok = True
        if group not in GROUPS:
            problems.add(file, name, f"group must be one of {', '.join(GROUPS)}, got {shorten(group)}")
            ok = False
        if kind not in KINDS:
            problems.add(file, name, f"kind must be one of {', '.join(KINDS)}, got {shorten(kind)}")
            ok = False
        meaning = item.get("meaning")
        if not isinstance(meaning, str) or not meaning.strip():
            problems.add(file, name, "meaning must be a non-empty string")
            ok = False
        sources = _check_sources(problems, file, name, item.get("sources"), source_ids)
        values, minimum, maximum, need = _fact_domain(problems, file, name, item, kind, group, levels)
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) and _NAME.match(a) for a in aliases):
            problems.add(file, name, "aliases must be a list of snake_case names")
            ok = False
        if ok and (values or kind == "integer"):
            facts.append(
                Fact(
                    name=name,
                    group=str(group),
                    kind=str(kind),
                    meaning=str(meaning),
                    sources=sources,
                    values=values,
                    minimum=minimum,
                    maximum=maximum,
                    need=need,
                    aliases=tuple(aliases),
                )
            )
    taken = {f.name for f in facts}
    for fact in facts:
        for alias in fact.aliases:
            if alias in taken:
                problems.add("vocabulary", fact.name, f"alias {alias!r} is already a fact name")
    return Vocabulary(tuple(facts))


def _fact_domain(
    problems: _Collector,
    file: str,
    name: str,
    item: Mapping[str, Any],
    kind: object,
    group: object,
    levels: LevelSet,
) -> tuple[tuple[Any, ...], int | None, int | None, str | None]:
    values = item.get("values")
    if kind == "integer":
        minimum, maximum, need = item.get("minimum"), item.get("maximum"), item.get("need")
        bad = [
            k for k, v in (("minimum", minimum), ("maximum", maximum)) if not isinstance(v, int) or isinstance(v, bool)
        ]
        for key in bad:
            problems.add(file, name, f"an integer fact needs an integer {key}")
        if not bad and minimum > maximum:  # type: ignore[operator]
            problems.add(file, name, f"minimum {minimum} is above maximum {maximum}")
        if values is not None:
            problems.add(file, name, "an integer fact has minimum and maximum, not values")
        if need is None and group in ("clinical", "progress"):
            problems.add(file, name, "a clinical or progress integer needs need = 'increasing' or 'decreasing'")
        elif need is not None and need not in NEEDS:
            problems.add(file, name, f"need must be 'increasing' or 'decreasing', got {shorten(need)}")
        return (), minimum if not bad else None, maximum if not bad else None, need if need in NEEDS else None
    for key in ("minimum", "maximum", "need"):
        if key in item:
            problems.add(file, name, f"{key!r} is only for integer facts")
    if not isinstance(values, list) or not values:
        problems.add(file, name, "values must be a non-empty list, lowest need first")
        return (), None, None, None
    if kind == "boolean":
        if sorted(values) != [False, True] or not all(isinstance(v, bool) for v in values):
            problems.add(file, name, "a boolean fact lists values [false, true] or [true, false], lowest need first")
            return (), None, None, None
    elif kind == "level":
        if name != CURRENT_LEVEL:
            problems.add(file, name, f"only {CURRENT_LEVEL!r} may be of kind 'level'")
        if values != list(levels.ids):
            expected = ", ".join(repr(i) for i in levels.ids)
            problems.add(file, name, f"a level fact lists exactly the declared [[level]] ids, {expected}, in that order")
            return (), None, None, None
    else:
        if not all(isinstance(v, str) and _NAME.match(v) for v in values):
            problems.add(file, name, "ordinal values must be snake_case strings")
            return (), None, None, None
        if len(set(values)) != len(values):
            problems.add(file, name, "ordinal values must not repeat")
            return (), None, None, None
    if name == CURRENT_LEVEL and kind != "level":
        problems.add(file, name, f"{CURRENT_LEVEL!r} must be of kind 'level'")
    return tuple(values), None, None, None


class _ItemLoader:
    def __init__(self, problems: _Collector, vocabulary: Vocabulary, source_ids: set[str], levels: LevelSet) -> None:
        self.problems = problems
        self.levels = levels
        self.vocabulary = vocabulary
        self.source_ids = source_ids
        clinical = [f.name for f in vocabulary.group("clinical")]
        progress = [f.name for f in vocabulary.group("progress") if f.name != CURRENT_LEVEL]
        self.level_facts = clinical
        self.transition_facts = clinical + progress
        self.every_fact = [f.name for f in vocabulary.facts]

    def _common(self, file: str, table: str, item: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]] | None:
        label = _label(table, item)
        rid = item.get("id")
        ok = True
        if not isinstance(rid, str) or not _ID.match(rid):
            self.problems.add(file, label, f"id must be a short name of letters, digits, dots and dashes such as 'XY-1', got {shorten(rid)}")
            ok = False
        elif len(rid) > MAX_ID_LENGTH:
            self.problems.add(file, label, f"id is {len(rid)} characters long; at most {MAX_ID_LENGTH} are allowed")
            ok = False
        statement = item.get("statement")
        if not isinstance(statement, str) or not statement.strip():
            self.problems.add(file, label, "statement must be a non-empty sentence in the rule base's own words")
            ok = False
        sources = _check_sources(self.problems, file, label, item.get("sources"), self.source_ids)
        if not ok or not sources:
            return None
        return str(rid), str(statement).strip(), sources

    def _when(self, file: str, label: str, data: object, *, context: bool, facts: list[str]) -> cond.Condition | None:
        try:
            return cond.parse(data, self.vocabulary, context=context, facts=facts, levels=self.levels.ids)
        except cond.ConditionError as error:
            for message in error.problems:
                self.problems.add(file, label, message)
            return None

    def _level(self, file: str, label: str, value: object, key: str = "level") -> Level | None:
        found = self.levels.get(value) if isinstance(value, str) else None
        if found is None:
            options = ", ".join(repr(i) for i in self.levels.ids)
            hint = closest(value, self.levels.ids) if isinstance(value, str) else None
            suggestion = f"; did you mean {hint!r}?" if hint else ""
            self.problems.add(
                file, label, f"{key} {shorten(value)} is not a declared [[level]]; use one of {options}{suggestion}"
            )
        return found

    def _levels(self, file: str, label: str, value: object) -> frozenset[Level] | None:
        if not isinstance(value, list) or not value:
            self.problems.add(file, label, "from must be a non-empty list of levels")
            return None
        found = [self._level(file, label, v, "from") for v in value]
        if any(level is None for level in found):
            return None
        return frozenset(level for level in found if level is not None)

    def rule(self, file: str, item: Mapping[str, Any]) -> Rule | None:
        common = self._common(file, "rule", item)
        level = self._level(file, _label("rule", item), item.get("level"))
        otherwise = item.get("otherwise", False)
        label = _label("rule", item)
        if not isinstance(otherwise, bool):
            self.problems.add(file, label, "otherwise must be true or false")
            return None
        if otherwise and "when" in item:
            self.problems.add(file, label, "a rule has either 'when' or 'otherwise = true', not both")
            return None
        if not otherwise and "when" not in item:
            self.problems.add(file, label, "[[rule]] is missing 'when' (or 'otherwise = true' for the fallback rule)")
            return None
        when = cond.TRUE if otherwise else self._when(file, label, item["when"], context=False, facts=self.level_facts)
        if common is None or level is None or when is None:
            return None
        return Rule(common[0], level, common[1], common[2], when, file, otherwise)

    def emergency(self, file: str, item: Mapping[str, Any]) -> Emergency | None:
        common = self._common(file, "emergency", item)
        when = self._when(file, _label("emergency", item), item.get("when"), context=False, facts=self.level_facts)
        if common is None or when is None:
            return None
        return Emergency(common[0], common[1], common[2], when, file)

    def escalation(self, file: str, item: Mapping[str, Any]) -> Escalation | None:
        common = self._common(file, "escalation", item)
        label = _label("escalation", item)
        when = self._when(file, label, item.get("when"), context=False, facts=self.transition_facts)
        steps = item.get("levels_above_current")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            self.problems.add(file, label, f"levels_above_current must be a whole number of at least 1, got {shorten(steps)}")
            return None
        if common is None or when is None:
            return None
        return Escalation(common[0], common[1], common[2], when, steps, file)

    def transition(self, file: str, item: Mapping[str, Any]) -> TransitionNote | None:
        common = self._common(file, "transition", item)
        kind = item.get("kind")
        allowed = (Transition.STEP_UP.value, Transition.CONTINUE.value)
        if kind not in allowed:
            self.problems.add(
                file,
                _label("transition", item),
                f"kind must be 'step-up' or 'continue' (a step down is explained by [[readiness]]), got {shorten(kind)}",
            )
            return None
        if common is None:
            return None
        return TransitionNote(common[0], Transition(kind), common[1], common[2], file)

    def readiness(self, file: str, item: Mapping[str, Any]) -> Readiness | None:
        common = self._common(file, "readiness", item)
        label = _label("readiness", item)
        applies = frozenset(self.levels[1:]) if "from" not in item else self._levels(file, label, item["from"])
        signs_data = item.get("signs")
        if not isinstance(signs_data, list) or not signs_data:
            self.problems.add(file, label, "signs must be a non-empty list of { statement, when } tables")
            return None
        signs = []
        for index, sign in enumerate(signs_data):
            where = f"{label} sign {index + 1}"
            if not isinstance(sign, dict) or set(sign) != {"statement", "when"}:
                found = sorted(sign) if isinstance(sign, dict) else type_name(sign)
                self.problems.add(file, where, f"a sign is a table with exactly statement and when, found {found}")
                continue
            statement = sign["statement"]
            if not isinstance(statement, str) or not statement.strip():
                self.problems.add(file, where, "statement must be a non-empty sentence")
                continue
            when = self._when(file, where, sign["when"], context=False, facts=self.transition_facts)
            if when is not None:
                signs.append(Sign(statement.strip(), when, cond.negate(when, self.vocabulary)))
        if common is None or applies is None or len(signs) != len(signs_data):
            return None
        return Readiness(common[0], common[1], common[2], applies, tuple(signs), file)

    def bridge(self, file: str, item: Mapping[str, Any]) -> Bridge | None:
        common = self._common(file, "bridge", item)
        label = _label("bridge", item)
        applies = self._levels(file, label, item.get("from"))
        floor = self._level(file, label, item.get("floor"), "floor")
        if applies is not None and floor is not None and any(level <= floor for level in applies):
            self.problems.add(file, label, f"floor {floor.id!r} must be below every level in from")
            return None
        if common is None or applies is None or floor is None:
            return None
        return Bridge(common[0], common[1], common[2], applies, floor, file)

    def programs(self, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Program]:
        found: dict[str, Program] = {}
        for file, item in items:
            label = _label("program", item)
            level = self._level(file, label, item.get("level"))
            sources = _check_sources(self.problems, file, label, item.get("sources"), self.source_ids)
            hours = self._pair(file, label, item.get("hours_per_week"), "hours_per_week", 168)
            days = self._pair(file, label, item.get("days_per_week"), "days_per_week", 7)
            length = item.get("typical_length")
            minimum = item.get("recommended_minimum_days")
            if not isinstance(length, str) or not length.strip():
                self.problems.add(file, label, "typical_length must be a non-empty string")
                continue
            if minimum is not None and (not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1):
                self.problems.add(file, label, "recommended_minimum_days must be a positive whole number")
                continue
            if level is None or hours is None or days is None or not sources:
                continue
            if level.id in found:
                self.problems.add(file, label, f"a second [[program]] for {level.id!r}")
                continue
            found[level.id] = Program(
                level=level,
                hours_per_week=hours,
                days_per_week=days,
                typical_length=length.strip(),
                recommended_minimum_days=minimum,
                sources=sources,
            )
        for level in self.levels:
            if level.id not in found and not any(_label("program", i) == level.id for _, i in items):
                self.problems.add("programs", level.id, f"no [[program]] for {level.id!r}")
        return {level.id: found[level.id] for level in self.levels if level.id in found}

    def _pair(self, file: str, label: str, value: object, key: str, top: int) -> tuple[int, int] | None:
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or not 0 <= value[0] <= value[1] <= top
        ):
            self.problems.add(file, label, f"{key} must be [minimum, maximum], whole numbers from 0 to {top}")
            return None
        return (value[0], value[1])

    def service(self, file: str, item: Mapping[str, Any]) -> Service | None:
        name = item.get("name")
        label = _label("service", item)
        if not isinstance(name, str) or not _NAME.match(name):
            self.problems.add(file, label, f"service name must be snake_case, got {shorten(name)}")
            return None
        sources = _check_sources(self.problems, file, label, item.get("sources"), self.source_ids)
        when = cond.TRUE if "when" not in item else self._when(file, label, item["when"], context=True, facts=self.every_fact)
        if when is None or not sources:
            return None
        return Service(name, sources, when, file)

    def consideration(self, file: str, item: Mapping[str, Any]) -> Consideration | None:
        common = self._common(file, "consideration", item)
        when = self._when(file, _label("consideration", item), item.get("when"), context=True, facts=self.every_fact)
        if common is None or when is None:
            return None
        return Consideration(common[0], common[1], common[2], when, file)

    def check_ids(self, tables: dict[str, list[tuple[str, dict[str, Any]]]]) -> None:
        seen: dict[str, str] = {}
        for table in ("rule", "emergency", "escalation", "transition", "readiness", "bridge", "consideration"):
            for file, item in tables[table]:
                rid = item.get("id")
                if not isinstance(rid, str):
                    continue
                if rid in seen:
                    self.problems.add(file, rid, f"duplicate rule id (also in {seen[rid]})")
                else:
                    seen[rid] = file
        names: set[str] = set()
        for file, item in tables["service"]:
            name = item.get("name")
            if isinstance(name, str):
                if name in names:
                    self.problems.add(file, name, "duplicate service name")
                names.add(name)


def _check_structure(
    problems: _Collector,
    levels: LevelSet,
    rules: tuple[Rule, ...],
    transitions: tuple[TransitionNote, ...],
    escalations: tuple[Escalation, ...],
    readiness: tuple[Readiness, ...],
    bridges: tuple[Bridge, ...],
    vocabulary: Vocabulary,
    tables: dict[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    fallbacks = [r for r in rules if r.otherwise]
    declared = [i for _, i in tables["rule"] if i.get("otherwise") is True]
    if len(declared) != 1:
        where = ", ".join(sorted({r.file for r in fallbacks})) or "(all files)"
        problems.add(
            where, "", f"exactly one [[rule]] needs otherwise = true (the level when no criterion holds), found {len(declared)}"
        )
    for rule in fallbacks:
        if levels and rule.level != levels.lowest:
            problems.add(rule.file, rule.id, f"the otherwise rule must be at the lowest level, {levels.lowest.id!r}")
    kinds: dict[Transition, str] = {}
    for note in transitions:
        if note.kind in kinds:
            problems.add(note.file, note.id, f"a second [[transition]] of kind {note.kind.value!r} (first: {kinds[note.kind]})")
        kinds[note.kind] = note.id
    seen: dict[Level, str] = {}
    for bridge in bridges:
        for level in bridge.applies_to:
            if level in seen:
                problems.add(bridge.file, bridge.id, f"{level.id!r} already has a bridge ({seen[level]})")
            seen[level] = bridge.id
    in_treatment = bool(escalations or readiness or bridges or transitions)
    # A current_level fact that is declared but wrong has its own problem already.
    declared_current = any(item.get("name") == CURRENT_LEVEL for _, item in tables["fact"])
    if in_treatment and CURRENT_LEVEL not in vocabulary and not declared_current:
        problems.add("vocabulary", CURRENT_LEVEL, f"transition rules need a {CURRENT_LEVEL!r} fact of kind 'level'")
