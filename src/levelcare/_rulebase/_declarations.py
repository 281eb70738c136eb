"""The declarations of a rule base: its header, wording, levels, sources and fact vocabulary."""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping
from typing import Any

from .._model import Level, LevelSet, RulebaseInfo
from ._items import WORDING_FIELDS, Source, Wording
from ._reading import (
    _ID,
    _LEVEL_ID,
    _NAME,
    _RULEBASE_KEYS,
    RESERVED_NAMES,
    _check_keys,
    _check_sources,
    _Collector,
    item_label,
)
from ._vocabulary import (
    CURRENT_LEVEL,
    GROUPS,
    KINDS,
    NEEDS,
    Fact,
    Vocabulary,
    shorten,
)


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
        where = item_label("level", item)
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
            problems.add(file, item_label("source", item), f"source id must be a short name, got {shorten(sid)}")
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


def _load_vocabulary(
    problems: _Collector, items: list[tuple[str, dict[str, Any]]], source_ids: set[str], levels: LevelSet
) -> Vocabulary:
    facts: list[Fact] = []
    seen: set[str] = set()
    for file, item in items:
        name = item.get("name")
        label = item_label("fact", item)
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
            problems.add(
                file, name, f"a level fact lists exactly the declared [[level]] ids, {expected}, in that order"
            )
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
