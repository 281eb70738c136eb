"""The condition language of rule files, in canonical form.

A condition in a rule file is a small tree::

    { all = [ ... ] }   { any = [ ... ] }   { not = { ... } }
    { fact = "harm_risk", is = "high" }          # also is_not, one_of
    { fact = "harm_risk", at_least = "high" }    # need order for ordinals,
    { fact = "weeks_at_current_level", at_most = 11 }   # numeric for integers
    { fact = "hours_available_per_week", below_program_minimum = "hours" }
    { level = "iop" }  { transition = "continue" }  { emergency = true }

The last four forms only appear in services and considerations, which are read
after the level is decided. Parsing turns every tree into negation-free canonical
form: each atom carries the exact set of values (or integer intervals) it accepts,
so ``not`` is pushed into the atoms and never reaches the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .._model import Transition
from ._vocabulary import Fact, FactValue, Vocabulary, closest, shorten, type_name

CONTEXT_NAMES = ("level", "transition", "emergency")
# The values of the context a service or consideration may test; the level's
# values are the rule base's own level ids.
CONTEXT_DOMAINS: dict[str, tuple[Any, ...]] = {
    "transition": tuple(t.value for t in Transition),
    "emergency": (False, True),
}


def context_domain(name: str, levels: tuple[str, ...]) -> tuple[Any, ...]:
    """The values context atom ``name`` may take in a rule base with these level ids."""
    return levels if name == "level" else CONTEXT_DOMAINS[name]
PROGRAM_MINIMUMS = ("hours", "days")
_FACT_OPERATORS = ("is", "is_not", "one_of", "at_least", "at_most", "below_program_minimum")


@attrs.frozen
class ValueAtom:
    """A finite fact takes one of ``allowed``."""

    fact: str
    allowed: frozenset[FactValue]


@attrs.frozen
class RangeAtom:
    """An integer fact lies in one of ``intervals`` (inclusive bounds)."""

    fact: str
    intervals: tuple[tuple[int, int], ...]


@attrs.frozen
class ProgramAtom:
    """An integer fact is below (or, negated, at least) the level's programme minimum."""

    fact: str
    which: str
    below: bool = True


@attrs.frozen
class ContextAtom:
    """The decided level, transition or emergency flag is one of ``allowed``."""

    name: str
    allowed: frozenset[Any]


@attrs.frozen
class All:
    items: tuple[Condition, ...]


@attrs.frozen
class Any_:
    items: tuple[Condition, ...]


Atom = ValueAtom | RangeAtom | ProgramAtom | ContextAtom
Condition = Atom | All | Any_
TRUE: Condition = All(())
FALSE: Condition = Any_(())


class ConditionError(Exception):
    """Problems in one condition; the loader adds the file and rule id."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


# --- parsing ------------------------------------------------------------------


def parse(
    data: object,
    vocabulary: Vocabulary,
    *,
    context: bool,
    facts: Iterable[str],
    levels: tuple[str, ...] = (),
    suggest: Callable[[str, Any], str | None] = closest,
) -> Condition:
    """Canonical form of a condition from a rule file.

    Args:
        data: The condition as read from TOML.
        vocabulary: The rule base's facts.
        context: Whether level, transition, emergency and programme atoms are allowed.
        facts: Names of the facts this kind of rule may read.
        levels: The rule base's level ids, which ``{ level = ... }`` may name.
        suggest: Finds the name an unknown one most likely means (the rule base's
            collector of problems, which looks only while it still lists them).

    Raises:
        ConditionError: listing every problem in the condition.
    """
    problems: list[str] = []
    readable = frozenset(facts)
    result = _parse(data, vocabulary, context, readable, problems, "when", levels, suggest)
    if problems:
        raise ConditionError(problems)
    return result


def _parse(
    data: object,
    vocabulary: Vocabulary,
    context: bool,
    readable: frozenset[str],
    problems: list[str],
    path: str,
    levels: tuple[str, ...],
    suggest: Callable[[str, Any], str | None],
) -> Condition:
    if not isinstance(data, Mapping):
        problems.append(f"{path}: a condition is a table, got {type_name(data)}")
        return FALSE
    keys = set(data)
    for group in ("all", "any"):
        if group in keys:
            if keys != {group}:
                problems.append(f"{path}: '{group}' stands alone in its table, found {sorted(keys)}")
                return FALSE
            items = data[group]
            if not isinstance(items, list) or not items:
                problems.append(f"{path}.{group}: expected a non-empty list of conditions")
                return FALSE
            parsed = tuple(
                _parse(item, vocabulary, context, readable, problems, f"{path}.{group}[{i}]", levels, suggest)
                for i, item in enumerate(items)
            )
            return All(parsed) if group == "all" else Any_(parsed)
    if "not" in keys:
        if keys != {"not"}:
            problems.append(f"{path}: 'not' stands alone in its table, found {sorted(keys)}")
            return FALSE
        inner = _parse(data["not"], vocabulary, context, readable, problems, f"{path}.not", levels, suggest)
        return negate(inner, vocabulary)
    for name in CONTEXT_NAMES:
        if name in keys:
            if not context:
                problems.append(
                    f"{path}: '{name}' can only be tested in services and considerations, "
                    f"which are read after the level is decided"
                )
                return FALSE
            if keys != {name}:
                problems.append(f"{path}: '{name}' stands alone in its table, found {sorted(keys)}")
                return FALSE
            return _parse_context(name, data[name], problems, path, levels)
    if "fact" in keys:
        return _parse_fact(data, vocabulary, context, readable, problems, path, suggest)
    problems.append(
        f"{path}: expected one of all, any, not, fact"
        + (", level, transition, emergency" if context else "")
        + f"; found {sorted(str(k) for k in keys)}"
    )
    return FALSE


def _parse_context(name: str, value: object, problems: list[str], path: str, levels: tuple[str, ...]) -> Condition:
    domain = context_domain(name, levels)
    values = value if isinstance(value, list) else [value]
    allowed = set()
    for v in values:
        if not any(v == d and type(v) is type(d) for d in domain):
            options = ", ".join(repr(d) for d in domain)
            problems.append(f"{path}.{name}: {shorten(v)} is not one of {options}")
        else:
            allowed.add(v)
    return ContextAtom(name, frozenset(allowed))


def _parse_fact(
    data: Mapping[str, Any],
    vocabulary: Vocabulary,
    context: bool,
    readable: frozenset[str],
    problems: list[str],
    path: str,
    suggest: Callable[[str, Any], str | None],
) -> Condition:
    name = data["fact"]
    operators = [k for k in data if k != "fact"]
    unknown_keys = [k for k in operators if k not in _FACT_OPERATORS]
    if unknown_keys:
        hint = suggest(str(unknown_keys[0]), _FACT_OPERATORS)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        problems.append(f"{path}: unknown operator {shorten(unknown_keys[0])}{suggestion}")
        return FALSE
    if len(operators) != 1:
        problems.append(
            f"{path}: a fact test takes exactly one of {', '.join(_FACT_OPERATORS)}; found {operators}"
        )
        return FALSE
    if not isinstance(name, str) or name not in vocabulary:
        hint = suggest(str(name), vocabulary.by_name)
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        problems.append(f"{path}: unknown fact {shorten(name)}{suggestion}")
        return FALSE
    fact = vocabulary[name]
    if name not in readable:
        problems.append(f"{path}: this kind of rule may not read {fact.group} fact {name!r}")
        return FALSE
    operator = operators[0]
    value = data[operator]
    if operator == "below_program_minimum":
        if not context:
            problems.append(f"{path}: below_program_minimum is only for services and considerations")
            return FALSE
        if fact.kind != "integer":
            problems.append(f"{path}: below_program_minimum needs an integer fact, {name!r} is {fact.kind}")
            return FALSE
        if value not in PROGRAM_MINIMUMS:
            problems.append(f"{path}: below_program_minimum is 'hours' or 'days', got {shorten(value)}")
            return FALSE
        return ProgramAtom(name, value)
    if fact.kind == "integer":
        return _integer_atom(fact, operator, value, problems, path)
    return _value_atom(fact, operator, value, problems, path)


def _check_value(fact: Fact, value: object, problems: list[str], path: str) -> bool:
    message = fact.check(value)
    if message is not None:
        problems.append(f"{path}: {fact.name}: {message}")
        return False
    return True


def _value_atom(fact: Fact, operator: str, value: object, problems: list[str], path: str) -> Condition:
    if operator == "one_of":
        if not isinstance(value, list) or not value:
            problems.append(f"{path}: one_of takes a non-empty list of values")
            return FALSE
        # A list, not a generator: every value is checked so every problem is reported.
        if not all([_check_value(fact, v, problems, path) for v in value]):  # noqa: C419
            return FALSE
        return ValueAtom(fact.name, frozenset(value))
    if not _check_value(fact, value, problems, path):
        return FALSE
    rank = fact.rank(value)  # type: ignore[arg-type]
    if operator == "is":
        allowed = [value]
    elif operator == "is_not":
        allowed = [v for v in fact.values if v != value or type(v) is not type(value)]
    elif operator == "at_least":
        allowed = list(fact.values[rank:])
    else:
        allowed = list(fact.values[: rank + 1])
    return ValueAtom(fact.name, frozenset(allowed))  # type: ignore[arg-type]


def _integer_atom(fact: Fact, operator: str, value: object, problems: list[str], path: str) -> Condition:
    low, high = fact.minimum or 0, fact.maximum or 0
    if operator == "one_of" and (not isinstance(value, list) or not value):
        problems.append(f"{path}: one_of takes a non-empty list of values")
        return FALSE
    values: list[Any] = value if isinstance(value, list) else [value]
    # A list, not a generator: every value is checked so every problem is reported.
    if not all([_check_value(fact, v, problems, path) for v in values]):  # noqa: C419
        return FALSE
    number: int = values[0]
    if operator == "one_of":
        intervals = [(v, v) for v in sorted(set(values))]
    elif operator == "is":
        intervals = [(number, number)]
    elif operator == "is_not":
        intervals = [(low, number - 1), (number + 1, high)]
    elif operator == "at_least":
        intervals = [(number, high)]
    else:
        intervals = [(low, number)]
    return RangeAtom(fact.name, _normalise(intervals))


def _normalise(intervals: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(i for i in intervals if i[0] <= i[1]):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


# --- transformation -----------------------------------------------------------


def negate(condition: Condition, vocabulary: Vocabulary) -> Condition:
    """The canonical form of ``not condition``."""
    if isinstance(condition, All):
        return Any_(tuple(negate(c, vocabulary) for c in condition.items))
    if isinstance(condition, Any_):
        return All(tuple(negate(c, vocabulary) for c in condition.items))
    if isinstance(condition, ValueAtom):
        fact = vocabulary[condition.fact]
        return ValueAtom(condition.fact, frozenset(v for v in fact.values if v not in condition.allowed))
    if isinstance(condition, RangeAtom):
        fact = vocabulary[condition.fact]
        gaps: list[tuple[int, int]] = []
        cursor = fact.minimum or 0
        for lo, hi in condition.intervals:
            gaps.append((cursor, lo - 1))
            cursor = hi + 1
        gaps.append((cursor, fact.maximum or 0))
        return RangeAtom(condition.fact, _normalise(gaps))
    if isinstance(condition, ProgramAtom):
        return ProgramAtom(condition.fact, condition.which, not condition.below)
    domain = CONTEXT_DOMAINS[condition.name]
    return ContextAtom(condition.name, frozenset(d for d in domain if d not in condition.allowed))


def atoms(condition: Condition) -> Iterable[Atom]:
    """Every atom of a condition, depth first."""
    if isinstance(condition, (All, Any_)):
        for item in condition.items:
            yield from atoms(item)
    else:
        yield condition


def facts_read(condition: Condition) -> frozenset[str]:
    """Names of the facts a condition reads."""
    return frozenset(a.fact for a in atoms(condition) if not isinstance(a, ContextAtom))


# --- evaluation (used to explain firings and to analyse unknown facts) ---------


def atom_holds(atom: Atom, facts: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    if isinstance(atom, ContextAtom):
        value = context.get(atom.name)
        return value is not None and value in atom.allowed
    value = facts.get(atom.fact)
    if value is None:
        return False
    if isinstance(atom, ValueAtom):
        return value in atom.allowed
    if isinstance(atom, RangeAtom):
        return any(lo <= value <= hi for lo, hi in atom.intervals)
    minimum = context.get(f"{atom.which}_minimum")
    if minimum is None:
        return False
    return bool(value < minimum) if atom.below else bool(value >= minimum)


def holds(condition: Condition, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> bool:
    """Whether ``condition`` holds; an atom on an unknown fact never holds."""
    ctx = context or {}
    if isinstance(condition, All):
        return all(holds(c, facts, ctx) for c in condition.items)
    if isinstance(condition, Any_):
        return any(holds(c, facts, ctx) for c in condition.items)
    return atom_holds(condition, facts, ctx)


def relied_on(condition: Condition, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> set[str]:
    """The facts of the parts of a holding condition that hold.

    For ``any`` only the branches that hold count, so a reason cites the facts
    that made the rule fire rather than every fact the rule could read.
    """
    ctx = context or {}
    if isinstance(condition, All):
        found: set[str] = set()
        for item in condition.items:
            found |= relied_on(item, facts, ctx)
        return found
    if isinstance(condition, Any_):
        found = set()
        for item in condition.items:
            if holds(item, facts, ctx):
                found |= relied_on(item, facts, ctx)
        return found
    if isinstance(condition, ContextAtom):
        return set()
    return {condition.fact}
