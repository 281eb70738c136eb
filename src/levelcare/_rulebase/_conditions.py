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

Every reading of a condition -- evaluation, durable tests, decision diagrams,
words -- walks the tree with :func:`fold`. A reader supplies an
:class:`Algebra`: what each kind of atom means to it, and how ``all`` and
``any`` combine the meanings of their parts. ``fold`` does the walking::

    class Size:  # how many atoms a condition has
        def value(self, atom: Atom) -> int:
            return 1

        range = program = context = value

        def all(self, items: Iterator[int]) -> int:
            return sum(items)

        any = all

    fold(condition, Size())

The parts reach ``all`` and ``any`` as a lazy iterator: a part is folded only
when the combinator draws it, so a combinator that stops early (an ``all`` that
met a false part) leaves the remaining parts unvisited, and one that draws every
part visits each node exactly once. ``fold(condition, algebra, memo={})`` reuses
the meaning of a subtree equal to one already folded, for readers whose
conditions share parts (the same rule in several thresholds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from itertools import chain
from typing import Any, Protocol, TypeVar

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
# Operators other rule languages spell differently, and what they mean here: a
# suggestion by spelling alone would offer at_most for greater_than.
_OPERATOR_MEANINGS = {
    **dict.fromkeys(("greater_than", "gt", "gte", "ge", "greater_or_equal", "min", "minimum", "above"), "at_least"),
    **dict.fromkeys(("less_than", "lt", "lte", "le", "less_or_equal", "max", "maximum", "below"), "at_most"),
    **dict.fromkeys(("equals", "equal", "eq", "value"), "is"),
    **dict.fromkeys(("not_equal", "not_equals", "ne", "neq", "isnt"), "is_not"),
    **dict.fromkeys(("in", "any_of", "among"), "one_of"),
}
_BOUNDED = frozenset({"at_least", "at_most"})
_BOUNDS_NOTE = "at_least and at_most include the value itself"
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


T = TypeVar("T")


class Algebra(Protocol[T]):
    """What a condition means to one reader: a meaning for each atom, and how groups combine.

    :func:`fold` calls exactly one method per node it visits. ``all`` and ``any``
    receive the meanings of their parts lazily, in order; an empty group is
    ``TRUE`` (``all``) or ``FALSE`` (``any``), and its iterator yields nothing.
    """

    def value(self, atom: ValueAtom) -> T:
        """The meaning of a finite fact's test."""
        ...

    def range(self, atom: RangeAtom) -> T:
        """The meaning of an integer fact's test."""
        ...

    def program(self, atom: ProgramAtom) -> T:
        """The meaning of a test against the level's programme minimum."""
        ...

    def context(self, atom: ContextAtom) -> T:
        """The meaning of a test of the decided level, transition or emergency flag."""
        ...

    def all(self, items: Iterator[T]) -> T:
        """The meaning of a conjunction, from its parts' meanings."""
        ...

    def any(self, items: Iterator[T]) -> T:
        """The meaning of a disjunction, from its parts' meanings."""
        ...


def fold(condition: Condition, algebra: Algebra[T], *, memo: MutableMapping[Condition, T] | None = None) -> T:
    """The meaning of ``condition`` under ``algebra``: the one walk of the condition tree.

    Args:
        condition: A canonical condition.
        algebra: What atoms mean and how ``all`` and ``any`` combine.
        memo: If given, meanings of subtrees already folded, by the subtree (equal
            subtrees share one meaning); read and filled in by this call.

    Returns:
        What ``algebra`` makes of the condition.
    """
    if memo is not None and condition in memo:
        return memo[condition]
    result: T
    if isinstance(condition, All):
        result = algebra.all(fold(item, algebra, memo=memo) for item in condition.items)
    elif isinstance(condition, Any_):
        result = algebra.any(fold(item, algebra, memo=memo) for item in condition.items)
    elif isinstance(condition, ValueAtom):
        result = algebra.value(condition)
    elif isinstance(condition, RangeAtom):
        result = algebra.range(condition)
    elif isinstance(condition, ProgramAtom):
        result = algebra.program(condition)
    else:
        result = algebra.context(condition)
    if memo is not None:
        memo[condition] = result
    return result


class Rebuild:
    """The algebra that rebuilds a condition as it is; override a leaf to rewrite it.

    A subclass that replaces, say, :meth:`context` yields the condition with every
    context atom rewritten and everything else kept.
    """

    def value(self, atom: ValueAtom) -> Condition:
        return atom

    def range(self, atom: RangeAtom) -> Condition:
        return atom

    def program(self, atom: ProgramAtom) -> Condition:
        return atom

    def context(self, atom: ContextAtom) -> Condition:
        return atom

    def all(self, items: Iterator[Condition]) -> Condition:
        return All(tuple(items))

    def any(self, items: Iterator[Condition]) -> Condition:
        return Any_(tuple(items))


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
        return negate(inner, vocabulary, levels)
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
        name = str(unknown_keys[0])
        meant = _OPERATOR_MEANINGS.get(name.lower().replace("-", "_"))
        if meant is not None:
            suggestion = (
                f"; did you mean {meant!r}? ({_BOUNDS_NOTE})" if meant in _BOUNDED else f"; did you mean {meant!r}?"
            )
        else:
            hint = suggest(name, _FACT_OPERATORS)
            suggestion = f"; did you mean {hint!r}?" if hint else ""
        problems.append(f"{path}: unknown operator {shorten(unknown_keys[0])}{suggestion}")
        return FALSE
    if len(operators) != 1:
        problems.append(f"{path}: a fact test takes exactly one of {', '.join(_FACT_OPERATORS)}; found {operators}")
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
    return RangeAtom(fact.name, normalise(intervals))


def normalise(intervals: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(i for i in intervals if i[0] <= i[1]):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return tuple(merged)


# --- transformation -----------------------------------------------------------


@attrs.frozen
class _Negation:
    """``not``, pushed into the atoms: each atom accepts what it did not, ``all`` and ``any`` swap."""

    vocabulary: Vocabulary
    levels: tuple[str, ...]

    def value(self, atom: ValueAtom) -> Condition:
        fact = self.vocabulary[atom.fact]
        return ValueAtom(atom.fact, frozenset(v for v in fact.values if v not in atom.allowed))

    def range(self, atom: RangeAtom) -> Condition:
        fact = self.vocabulary[atom.fact]
        gaps: list[tuple[int, int]] = []
        cursor = fact.minimum or 0
        for lo, hi in atom.intervals:
            gaps.append((cursor, lo - 1))
            cursor = hi + 1
        gaps.append((cursor, fact.maximum or 0))
        return RangeAtom(atom.fact, normalise(gaps))

    def program(self, atom: ProgramAtom) -> Condition:
        return ProgramAtom(atom.fact, atom.which, not atom.below)

    def context(self, atom: ContextAtom) -> Condition:
        domain = context_domain(atom.name, self.levels)
        return ContextAtom(atom.name, frozenset(d for d in domain if d not in atom.allowed))

    def all(self, items: Iterator[Condition]) -> Condition:
        return Any_(tuple(items))

    def any(self, items: Iterator[Condition]) -> Condition:
        return All(tuple(items))


def negate(condition: Condition, vocabulary: Vocabulary, levels: tuple[str, ...] = ()) -> Condition:
    """The canonical form of ``not condition``.

    Args:
        condition: A canonical condition.
        vocabulary: The facts it reads.
        levels: The rule base's level ids, the values a ``{ level = ... }`` test
            chooses from.
    """
    return fold(condition, _Negation(vocabulary, levels))


class _Atoms:
    """Every atom, depth first."""

    def value(self, atom: Atom) -> tuple[Atom, ...]:
        return (atom,)

    range = program = context = value

    def all(self, items: Iterator[tuple[Atom, ...]]) -> tuple[Atom, ...]:
        return tuple(chain.from_iterable(items))

    def any(self, items: Iterator[tuple[Atom, ...]]) -> tuple[Atom, ...]:
        return tuple(chain.from_iterable(items))


class _FactsRead:
    """The names of the facts read."""

    def value(self, atom: ValueAtom | RangeAtom | ProgramAtom) -> frozenset[str]:
        return frozenset((atom.fact,))

    range = program = value

    def context(self, atom: ContextAtom) -> frozenset[str]:
        return frozenset()

    def all(self, items: Iterator[frozenset[str]]) -> frozenset[str]:
        return frozenset().union(*items)

    def any(self, items: Iterator[frozenset[str]]) -> frozenset[str]:
        return frozenset().union(*items)


def atoms(condition: Condition) -> Iterable[Atom]:
    """Every atom of a condition, depth first."""
    return fold(condition, _Atoms())


def facts_read(condition: Condition) -> frozenset[str]:
    """Names of the facts a condition reads."""
    return fold(condition, _FactsRead())


# --- evaluation (used to explain firings and to analyse unknown facts) ---------


def atom_holds(atom: Atom, facts: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
    """Whether one atom holds; an atom on an unknown fact, or an unknown context value, never holds."""
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


@attrs.frozen
class Evaluation:
    """The algebra of truth under given facts and outcome context; ``all`` and ``any`` stop early.

    Attributes:
        facts: Fact values by name; a missing fact is unknown.
        outcome: The outcome context (``level``, ``transition``, ``emergency``,
            ``hours_minimum``, ``days_minimum``), empty before a level is decided.
    """

    facts: Mapping[str, Any]
    outcome: Mapping[str, Any]

    def value(self, atom: Atom) -> bool:
        return atom_holds(atom, self.facts, self.outcome)

    range = program = context = value

    def all(self, items: Iterator[bool]) -> bool:
        return all(items)

    def any(self, items: Iterator[bool]) -> bool:
        return any(items)


def holds(condition: Condition, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> bool:
    """Whether ``condition`` holds; an atom on an unknown fact never holds."""
    return fold(condition, Evaluation(facts, context or {}))


@attrs.frozen
class _Reliance:
    """Whether each part holds, with the facts of the parts of it that hold."""

    truth: Evaluation

    def value(self, atom: ValueAtom | RangeAtom | ProgramAtom) -> tuple[bool, frozenset[str]]:
        return self.truth.value(atom), frozenset((atom.fact,))

    range = program = value

    def context(self, atom: ContextAtom) -> tuple[bool, frozenset[str]]:
        return self.truth.value(atom), frozenset()

    def all(self, items: Iterator[tuple[bool, frozenset[str]]]) -> tuple[bool, frozenset[str]]:
        parts = list(items)
        return all(ok for ok, _ in parts), frozenset().union(*(found for _, found in parts))

    def any(self, items: Iterator[tuple[bool, frozenset[str]]]) -> tuple[bool, frozenset[str]]:
        parts = list(items)
        return any(ok for ok, _ in parts), frozenset().union(*(found for ok, found in parts if ok))


def relied_on(condition: Condition, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> set[str]:
    """The facts of the parts of a holding condition that hold.

    For ``any`` only the branches that hold count, so a reason cites the facts
    that made the rule fire rather than every fact the rule could read.
    """
    _, found = fold(condition, _Reliance(Evaluation(facts, context or {})))
    return set(found)
