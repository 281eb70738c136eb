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
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..exceptions import RuleBaseError
from ._cases import load_cases
from ._declarations import _load_header, _load_levels, _load_sources, _load_vocabulary, _load_wording
from ._items import RuleBase
from ._reading import (
    _SINGLE_TABLES,
    _TABLES,
    _check_keys,
    _Collector,
    _too_deep_to_read,
    _within_nesting,
    is_rule_file,
)
from ._structure import _check_structure, _ItemLoader
from ._vocabulary import MAX_SHOWN, shorten


@functools.cache
def shipped() -> RuleBase:
    """The rule base shipped inside the package, loaded once (not compiled).

    The one source of the shipped defaults: ``Engine.default()``, and so
    ``levelcare.decide``, reads it here.
    """
    return load(default_location())


def default_location() -> Traversable:
    """The rule base shipped inside the package (or, in a source checkout, ``rules/``)."""
    packaged = resources.files("levelcare").joinpath("rules")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "rules"


_UNREAD = "the rule base is checked further once every file reads"


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
    files = sorted((f for f in folder.iterdir() if is_rule_file(f)), key=lambda f: f.name)
    if not files:
        problems.add(str(location), "", "the folder holds no *.toml rule files")
        raise RuleBaseError(problems.problems)

    tables: dict[str, list[tuple[str, dict[str, Any]]]] = {name: [] for name in _TABLES}
    singles: dict[str, list[tuple[str, dict[str, Any]]]] = {name: [] for name in _SINGLE_TABLES}
    content: dict[str, list[Any]] = {name: [] for name in [*_SINGLE_TABLES, *_TABLES]}
    unreadable = 0
    for file in files:
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            problems.add(file.name, "", f"not valid TOML: {error}; {_UNREAD}")
            unreadable += 1
            continue
        except RecursionError:
            problems.add(file.name, "", f"{_too_deep_to_read(file.read_text(encoding='utf-8-sig'))}; {_UNREAD}")
            unreadable += 1
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
                hint = problems.closest(key, [*_SINGLE_TABLES, *_TABLES])
                suggestion = f"; did you mean {hint!r}?" if hint else ""
                name = key if len(key) <= MAX_SHOWN else shorten(key)
                problems.add(file.name, name, f"unknown table {shorten(key)}{suggestion}")
    if unreadable:
        # What the unreadable files hold is unknown: checks across files (one
        # fallback rule, every fact a rule names declared) would report problems
        # that are only the missing content.
        raise RuleBaseError(problems.problems)

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
