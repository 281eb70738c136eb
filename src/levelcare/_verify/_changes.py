"""What changed between two rule bases, item by item: rules added, removed and changed.

Every item a rule base declares has an identity that survives a change: a
criterion, emergency, escalation, transition, readiness, bridge or consideration
its id, a service its name, a programme its level, a level its id, a fact its
name, a source its id and a test vector its name. Two versions of an item are the
same when everything but the file they are in is equal; otherwise the item is
changed, and both versions are described in words (its statement, its level, its
condition as the rules reference words it, its sources), so a reviewer reads the
old and the new side by side without opening the TOML.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

from .._model import Level, Program
from .._render._reference import condition_text
from .._rulebase import RuleBase
from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import Fact

#: The kinds of item compared, in the order a review lists them.
KINDS = (
    "level",
    "fact",
    "rule",
    "emergency",
    "escalation",
    "transition",
    "readiness",
    "bridge",
    "program",
    "service",
    "consideration",
    "source",
    "case",
)
ADDED, REMOVED, CHANGED = "added", "removed", "changed"


@attrs.frozen(kw_only=True)
class ItemVersion:
    """One version of an item, in words.

    Attributes:
        file: The rule file the item is in.
        lines: The item described line by line: statement, level, condition,
            sources, and what else the kind of item has.
    """

    file: str
    lines: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "lines": list(self.lines)}


@attrs.frozen(kw_only=True)
class ItemChange:
    """An item added, removed or changed between two rule bases.

    Attributes:
        kind: Which kind of item (one of :data:`KINDS`).
        id: The item's id (or name, or level, for kinds identified that way).
        change: ``"added"``, ``"removed"`` or ``"changed"``.
        old: The old version; ``None`` when added.
        new: The new version; ``None`` when removed.
    """

    kind: str
    id: str
    change: str
    old: ItemVersion | None
    new: ItemVersion | None

    @property
    def label(self) -> str:
        """How a reviewer names the item: ``rule IN-2``, ``service family_therapy``."""
        return f"{self.kind} {self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "change": self.change,
            "old": None if self.old is None else self.old.to_dict(),
            "new": None if self.new is None else self.new.to_dict(),
        }


def item_changes(old: RuleBase, new: RuleBase) -> tuple[ItemChange, ...]:
    """Every item added, removed or changed from ``old`` to ``new``, by kind, then by id.

    Items keep the order of the new rule base (removed ones follow, in the old
    order), so a review reads like the rule files.
    """
    found: list[ItemChange] = []
    for kind in KINDS:
        before = dict(_items(kind, old))
        after = dict(_items(kind, new))
        for key in [*after, *(k for k in before if k not in after)]:
            was, now = before.get(key), after.get(key)
            if was is not None and now is not None and was[0] == now[0]:
                continue
            change = ADDED if was is None else REMOVED if now is None else CHANGED
            found.append(
                ItemChange(
                    kind=kind,
                    id=key,
                    change=change,
                    old=None if was is None else was[1],
                    new=None if now is None else now[1],
                )
            )
    return tuple(found)


def same_label_other_content(old: RuleBase, new: RuleBase) -> bool:
    """Whether the two rule bases share name and version but not content (their sha256 differs)."""
    return (old.info.name, old.info.version) == (new.info.name, new.info.version) and (
        old.info.sha256 != new.info.sha256
    )


# --- describing items ---------------------------------------------------------------

_Entry = tuple[object, ItemVersion]


def _plain(text: str) -> str:
    return text.replace("`", "")


def _when(condition: cond.Condition, rulebase: RuleBase) -> str:
    return "when " + _plain(condition_text(condition, rulebase.vocabulary, rulebase.levels.ids))


def _sources(ids: Iterable[str]) -> str:
    return "sources: " + ", ".join(ids)


def _without_file(item: Any) -> object:
    """The item's content, without the file it is in: moving an item between files changes nothing."""
    return attrs.evolve(item, file="")


def _ids(levels: Iterable[Level]) -> frozenset[str]:
    """Levels by id: a level's rank moves when another is added, and that alone changes no item."""
    return frozenset(level.id for level in levels)


def _items(kind: str, rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    describe = _DESCRIBERS[kind]
    yield from describe(rulebase)


def _levels(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for level in rulebase.levels:
        lines = (f"label: {level.label}", f"rank: {level.rank} (0 is the least intensive)", level.description)
        content = (level.id, level.label, level.rank, level.description)
        yield level.id, (content, ItemVersion(file="", lines=lines))


def _fact_lines(fact: Fact) -> tuple[str, ...]:
    if fact.finite:
        values = "values, least need first: " + ", ".join(json.dumps(v) for v in fact.values)
    else:
        values = f"whole numbers from {fact.minimum} to {fact.maximum}" + (f", need {fact.need}" if fact.need else "")
    return (f"{fact.kind} fact ({fact.group})", values, fact.meaning, _sources(fact.sources))


def _facts(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for fact in rulebase.vocabulary.facts:
        yield fact.name, (fact, ItemVersion(file="", lines=_fact_lines(fact)))


def _rules(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for rule in rulebase.rules:
        when = "otherwise: when no criterion for a more intensive level holds" if rule.otherwise else None
        lines = (
            f"requires {rule.level.label}: {rule.statement}",
            when or _when(rule.when, rulebase),
            _sources(rule.sources),
        )
        content = (rule.level.id, rule.statement, rule.sources, rule.when, rule.otherwise)
        yield rule.id, (content, ItemVersion(file=rule.file, lines=lines))


def _simple(
    items: Callable[[RuleBase], Iterable[Any]], more: Callable[[Any], tuple[str, ...]] = lambda item: ()
) -> Callable[[RuleBase], Iterator[tuple[str, _Entry]]]:
    """A describer for items with an id, a statement, a condition and sources."""

    def describe(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
        for item in items(rulebase):
            lines = (item.statement, _when(item.when, rulebase), *more(item), _sources(item.sources))
            yield item.id, (_without_file(item), ItemVersion(file=item.file, lines=lines))

    return describe


def _transitions(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for note in rulebase.transitions:
        lines = (f"{note.kind.value}: {note.statement}", _sources(note.sources))
        yield note.id, (_without_file(note), ItemVersion(file=note.file, lines=lines))


def _level_list(levels: Iterable[Any], rulebase: RuleBase) -> str:
    chosen = {level.id for level in levels}
    return ", ".join(level.label for level in rulebase.levels if level.id in chosen)


def _readiness(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for item in rulebase.readiness:
        signs = tuple(f"sign: {sign.statement} ({_when(sign.when, rulebase)})" for sign in item.signs)
        lines = (item.statement, f"from: {_level_list(item.applies_to, rulebase)}", *signs, _sources(item.sources))
        content = (item.statement, item.sources, _ids(item.applies_to), item.signs)
        yield item.id, (content, ItemVersion(file=item.file, lines=lines))


def _bridges(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for item in rulebase.bridges:
        lines = (
            item.statement,
            f"from {_level_list(item.applies_to, rulebase)}, no lower than {item.floor.label}",
            _sources(item.sources),
        )
        content = (item.statement, item.sources, _ids(item.applies_to), item.floor.id)
        yield item.id, (content, ItemVersion(file=item.file, lines=lines))


def _span(pair: tuple[int, int], unit: str) -> str:
    low, high = pair
    count = f"{low}" if low == high else f"{low} to {high}"
    return f"{count} {unit}" + ("" if high == 1 else "s")


def _program_lines(program: Program) -> tuple[str, ...]:
    lines = [
        f"{_span(program.hours_per_week, 'hour')} a week on {_span(program.days_per_week, 'day')} a week",
        f"length: {program.typical_length}",
    ]
    if program.recommended_minimum_days is not None:
        lines.append(f"recommended minimum: {program.recommended_minimum_days} days")
    return (*lines, _sources(program.sources))


def _programs(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for level in rulebase.levels:
        program = rulebase.programs.get(level.id)
        if program is not None:
            content = (
                program.hours_per_week,
                program.days_per_week,
                program.typical_length,
                program.recommended_minimum_days,
                program.sources,
            )
            yield level.id, (content, ItemVersion(file="", lines=_program_lines(program)))


def _services(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for item in rulebase.services:
        lines = (_when(item.when, rulebase), _sources(item.sources))
        yield item.name, (_without_file(item), ItemVersion(file=item.file, lines=lines))


def _source_items(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for source in rulebase.sources:
        lines = (source.title, *((f"covers: {source.covers}",) if source.covers else ()))
        yield source.id, (source, ItemVersion(file="", lines=lines))


def _cases(rulebase: RuleBase) -> Iterator[tuple[str, _Entry]]:
    for case in rulebase.cases:
        expect, facts = dict(case.expect), dict(case.facts)
        lines = (
            *((case.story,) if case.story else ()),
            "expect: " + json.dumps(expect, sort_keys=True),
            "facts: " + json.dumps(facts, sort_keys=True),
        )
        content = (case.story, json.dumps(expect, sort_keys=True), json.dumps(facts, sort_keys=True))
        yield case.name, (content, ItemVersion(file=case.file, lines=lines))


def _escalation_more(item: Any) -> tuple[str, ...]:
    count = item.levels_above_current
    return (f"at least {count} level{'s' if count != 1 else ''} above the current one",)


_DESCRIBERS: Mapping[str, Callable[[RuleBase], Iterator[tuple[str, _Entry]]]] = {
    "level": _levels,
    "fact": _facts,
    "rule": _rules,
    "emergency": _simple(lambda rb: rb.emergencies),
    "escalation": _simple(lambda rb: rb.escalations, _escalation_more),
    "transition": _transitions,
    "readiness": _readiness,
    "bridge": _bridges,
    "program": _programs,
    "service": _services,
    "consideration": _simple(lambda rb: rb.considerations),
    "source": _source_items,
    "case": _cases,
}
