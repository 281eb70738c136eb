"""The one module that talks to durable-rules.

Interface: compile a list of canonical conditions once (:class:`CompiledRuleset`),
then ask which of them hold for a set of facts (:meth:`CompiledRuleset.holding`).
:func:`check_limits` lists what durable-rules could not evaluate in a list of
conditions, without starting durable.

How conditions become durable rules, and why:

* Each condition compiles to a test on one durable fact. Finite facts are sent as
  their rank in need order, so ``at_least`` is a numeric comparison inside the
  Rete network, and a range that reaches either end of a fact's domain is one
  comparison. Conditions that hold (or fail) whatever the facts are settled when
  compiling, and conditions that compile to the same test share one rule.
* Facts are sent under short field names chosen so that no two have the same
  32-bit hash: durable finds a field of a fact by that hash alone.
* durable has fixed limits (read from its C source; see the constants below):
  31 expression entries per rule (two per ``$and``/``$or``), 64 alpha nodes
  pending while one fact passes the network (so about 64 rules matching one fact
  fail), 254 fields per fact (its ids included), and it fires a rule once for
  every way through its ``$or`` branches that matches (so one rule with many
  nested branches fires thousands of times). A test beyond a per-rule limit is
  split into pieces, groups of the parts of its ``$and`` or ``$or``, each a
  durable rule of its own; the condition holds when its pieces combine as the
  test says, worked out from which pieces fired. The pieces are then placed, in
  order, into as many durable rulesets as keep every limit, modelled on the
  network durable builds; an evaluation runs them in turn and merges what fired.

How durable is driven, and why:

* durable's ``Host`` runs actions in Python and writes the whole session state
  back as JSON after every firing. We only need to know *which* rules fired, so
  we call durable's C functions directly: assert the fact, then walk the queued
  actions with ``start_action_for_state`` / ``complete_and_start_action``,
  reading the rule name off the front of each action message.
* **Each durable ruleset keeps one session.** An evaluation asserts the facts as
  a fact with an id never used before, reads every firing, checks that each one
  names that fact, and retracts the fact, which leaves the session as it was.
  If anything fails or is interrupted on the way, the session is deleted and the
  next evaluation opens a new one. Creating a session allocates and clears about
  140 KB plus 8 KB per rule, and deleting one frees it; glibc then often gave
  the top of the heap back to the operating system, so that every session had
  to fault its memory back in, or not, depending on the layout of the heap,
  which differs from one process to another with the hash seed: 12 us or 135 us
  for the same evaluation. A kept session allocates nothing per evaluation.
* durable's C core has no locks. Each compiled ruleset owns a lock held for the
  whole evaluation, which also keeps one live session per durable ruleset, far
  below durable's limit of 1,024.
* durable 2.0.28 leaves a new session's action context uninitialised and frees
  it when the session is deleted, so deleting a session in which no rule fired
  can free stray pointers and crash the process. Every session is therefore
  opened with a priming fact that fires a rule of its own (and is retracted
  again) before any real evaluation; a session in which nothing fired is never
  deleted.
* A forked child process gets a copy of every ruleset, its sessions and its
  lock. If another thread was evaluating when the process forked, that copy is
  locked for good and may hold a half-evaluated fact, so the child replaces the
  lock and deletes that ruleset's sessions before it runs anything.
* durable's C core is compiled into levelcare itself (``durable_rules_engine``
  in this package, built by setup.py from durable-rules' pinned release), with
  ``PyEval_CallObject``, which Python 3.13 removed, mapped to the call it always
  was. durable calls it only from the message, queue and idle-state callbacks
  that ``set_*_callback`` registers, and this module registers none (a test
  checks which durable functions it calls).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import Vocabulary
from ..exceptions import EngineError
from . import durable_rules_engine as _engine

# --- durable-rules 2.0.28's limits, read from its C source ------------------------------

#: Entries in one rule's expression sequence: two per ``$and`` or ``$or``, one per
#: comparison with another field (durable fails when the count reaches 32).
MAX_EXPRESSIONS = 31
#: Alpha nodes pending at once while one fact passes the network (MAX_STACK_SIZE).
MAX_STACK = 64
#: Fields of one fact (durable fails when a fact reaches MAX_OBJECT_PROPERTIES,
#: 255), less sid, id and ``_``.
MAX_FIELDS = 251
#: Children of one alpha node: durable keeps them in a 512-slot table and scans
#: them for every field of every fact, so tables are kept at most half full.
MAX_CHILDREN = 255
#: ``$or`` joins reachable from one alpha node (NEXT_LIST_LENGTH is 128).
MAX_JOINS = 127
#: Rules ending at one alpha node (BETA_LIST_LENGTH is 256).
MAX_RULES_AT_NODE = 255
#: durable fires a rule once per way through its ``$or`` branches that matches;
#: a test with more ways is split so that one evaluation fires few actions.
MAX_PATHS = 16
#: durable reads integers as C ``long long``; larger values are clamped.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1

_NAMES = itertools.count()
# Every ruleset alive in this process, for the fork handler at the end.
_LIVE: weakref.WeakSet[CompiledRuleset] = weakref.WeakSet()
# A field of every asserted fact: 1 in real facts, 2 in the priming fact, so the
# priming rule never fires on real facts.
_MARK = "_"
_PRIMING = 2

#: Context fields sent with the facts to the outcome ruleset.
CONTEXT_FIELDS = ("level", "transition", "emergency", "hours_minimum", "days_minimum")
_CONTEXT_DOMAINS: dict[str, tuple[int, int]] = {"hours_minimum": (0, 168), "days_minimum": (0, 7)}

Test: TypeAlias = dict[str, Any]
#: Which pieces must have fired for a condition to hold: a piece number, or
#: ("$and" | "$or", parts).
Formula: TypeAlias = "int | tuple[str, tuple[Formula, ...]]"


class _Settled:
    """A test settled while compiling: it holds, or fails, whatever the facts."""

    def __init__(self, value: bool) -> None:
        self.value = value


ALWAYS = _Settled(True)
NEVER = _Settled(False)


@attrs.frozen
class LimitProblem:
    """A condition that durable-rules cannot evaluate correctly, and why.

    Attributes:
        index: Position of the condition in the list given.
        name: The rule (or item) the condition belongs to.
        message: Which limit, and how to stay within it.
    """

    index: int
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


def check_limits(
    conditions: Sequence[cond.Condition],
    vocabulary: Vocabulary,
    names: Sequence[str] | None = None,
    levels: Sequence[str] = (),
) -> list[LimitProblem]:
    """Every condition of ``conditions`` that durable-rules cannot evaluate correctly.

    Any number of conditions may hold at once and a condition may be of any size:
    those limits of durable are worked around. What remains is listed here, and
    :class:`CompiledRuleset` refuses such conditions with :class:`EngineError`.

    Args:
        conditions: Canonical conditions, as a ruleset would be compiled from.
        vocabulary: The facts they read.
        names: A name for each condition (a rule id), used in the messages.
        levels: The rule base's level ids, least intensive first, for level tests.
    """
    return _Plan(conditions, vocabulary, names, levels).problems


# --- field names --------------------------------------------------------------------------


def fnv1a_32(text: str) -> int:
    """durable's hash of a field name (FNV-1a, 32 bits, over the UTF-8 bytes)."""
    value = 2166136261
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


# Fields durable or the engine write into every fact or session.
_TAKEN = frozenset(fnv1a_32(name) for name in ("sid", "id", "$s", "$forward", _MARK))


def _short_names() -> Iterator[str]:
    """a, b, ..., z, aa, ab, ...: short field names whose hashes differ from each other and from durable's own."""
    taken = set(_TAKEN)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for length in itertools.count(1):
        for chars in itertools.product(letters, repeat=length):
            name = "".join(chars)
            digest = fnv1a_32(name)
            if digest not in taken:
                taken.add(digest)
                yield name


# --- compiling --------------------------------------------------------------------------


class _Plan:
    """Conditions compiled to durable tests, split into pieces and placed into durable rulesets.

    Pure Python: nothing here starts durable, so :func:`check_limits` can use it.
    """

    def __init__(
        self,
        conditions: Sequence[cond.Condition],
        vocabulary: Vocabulary,
        names: Sequence[str] | None,
        levels: Sequence[str] = (),
    ) -> None:
        self.vocabulary = vocabulary
        self.size = len(conditions)
        self.names = list(names) if names is not None else [f"condition {i + 1}" for i in range(len(conditions))]
        self.problems: list[LimitProblem] = []
        self._short = _short_names()
        #: Real field ("fact" or "context", name) -> short field name, and each short
        #: field's domain: (lowest, highest) integer, or a tuple of strings.
        self.fields: dict[tuple[str, str], str] = {}
        self.domains: dict[str, tuple[int, int] | tuple[str, ...]] = {_MARK: (1, 1)}
        self.bounds: dict[str, tuple[int, int]] = {}
        self.ranks = {
            fact.name: {(type(v), v): rank for rank, v in enumerate(fact.values)}
            for fact in vocabulary.facts
            if fact.finite
        }
        self.level_ranks = {v: rank for rank, v in enumerate(levels)}
        self.pieces: list[Test] = []
        self._piece_numbers: dict[str, int] = {}
        self.constant: list[int] = []
        self.formulas: list[tuple[int, Formula]] = []
        tests = _Tests(self)
        for index, condition in enumerate(conditions):
            before = len(self.problems)
            self._check_integers(index, condition)
            if len(self.problems) > before:
                continue
            test = cond.fold(condition, tests)
            if test is ALWAYS:
                self.constant.append(index)
            elif isinstance(test, dict):
                self.formulas.append((index, self._split(test)))
        self.chunks = self._place()

    # --- names and domains --------------------------------------------------------------

    def field(self, kind: str, name: str) -> str:
        """The short name of a fact (kind "fact") or context field, assigned on first use."""
        key = (kind, name)
        short = self.fields.get(key)
        if short is None:
            short = self.fields[key] = next(self._short)
            if kind == "context":
                if name == "transition":
                    self.domains[short] = tuple(cond.CONTEXT_DOMAINS["transition"])
                    return short
                if name == "level":
                    bounds = (0, len(self.level_ranks) - 1)
                elif name == "emergency":
                    bounds = (0, 1)
                else:
                    bounds = _CONTEXT_DOMAINS[name]
            else:
                fact = self.vocabulary[name]
                bounds = (0, len(fact.values) - 1) if fact.finite else (fact.minimum or 0, fact.maximum or 0)
            self.domains[short] = self.bounds[short] = bounds
        return short

    def numeric(self, field: str) -> tuple[int, int]:
        """The lowest and highest value of a numeric field."""
        return self.bounds[field]

    def _check_integers(self, index: int, condition: cond.Condition) -> None:
        for name in sorted(cond.facts_read(condition)):
            fact = self.vocabulary[name]
            if fact.finite:
                continue
            low, high = fact.minimum or 0, fact.maximum or 0
            if low < INT_MIN or high > INT_MAX:
                self.problems.append(
                    LimitProblem(
                        index,
                        self.names[index],
                        f"reads integer fact {name!r}, whose range {_short_number(low)}..{_short_number(high)} "
                        f"goes beyond durable-rules' 64-bit integers ({INT_MIN}..{INT_MAX}); "
                        "narrow the fact's minimum and maximum",
                    )
                )

    # --- tests to pieces ----------------------------------------------------------------

    def _split(self, test: Test) -> Formula:
        """``test`` as one piece if it keeps every per-rule limit, else as pieces combined."""
        if _Size.of(test).fits():
            return self._piece(test)
        joined = "$and" if "$and" in test else "$or"
        parts: list[Formula] = []
        group: list[Test] = []
        size = _Size.empty(joined)
        for item in test[joined]:
            item_size = _Size.of(item)
            if not item_size.fits():
                if group:
                    parts.append(self._piece(_joined(joined, group)))
                group, size = [], _Size.empty(joined)
                parts.append(self._split(item))
                continue
            grown = size.add(joined, item_size)
            if group and not grown.fits():
                parts.append(self._piece(_joined(joined, group)))
                group, grown = [], _Size.empty(joined).add(joined, item_size)
            group.append(item)
            size = grown
        if group:
            parts.append(self._piece(_joined(joined, group)))
        return parts[0] if len(parts) == 1 else (joined, tuple(parts))

    def _piece(self, test: Test) -> int:
        key = json.dumps(test, sort_keys=True)
        number = self._piece_numbers.get(key)
        if number is None:
            number = self._piece_numbers[key] = len(self.pieces)
            self.pieces.append(test)
        return number

    # --- pieces to durable rulesets -----------------------------------------------------

    def _place(self) -> list[list[int]]:
        """Pieces, in order, grouped into as many durable rulesets as keep durable's network limits."""
        chunks: list[list[int]] = []
        current: list[int] = []
        network = _Network(self.domains)
        for number, test in enumerate(self.pieces):
            network.add(test)
            if network.problem() is None:
                current.append(number)
                continue
            alone = _Network(self.domains)
            alone.add(test)
            problem = alone.problem()
            if problem is None:
                if current:
                    chunks.append(current)
                current, network = [number], alone
                continue
            # One piece alone is too much for durable: name every condition using it,
            # and go on with the others as they were.
            for index, formula in self.formulas:
                if number in _pieces_of(formula):
                    self.problems.append(LimitProblem(index, self.names[index], problem))
            network = _Network(self.domains)
            for kept in current:
                network.add(self.pieces[kept])
        if current:
            chunks.append(current)
        return chunks


class _Tests:
    """Conditions as durable tests, or settled where a part decides the whole."""

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan

    def value(self, atom: cond.ValueAtom) -> Test | _Settled:
        ranks = self.plan.ranks[atom.fact]
        field = self.plan.field("fact", atom.fact)
        return _membership(field, sorted(ranks[(type(v), v)] for v in atom.allowed), self.plan.numeric(field))

    def range(self, atom: cond.RangeAtom) -> Test | _Settled:
        field = self.plan.field("fact", atom.fact)
        return _range(field, atom.intervals, self.plan.numeric(field))

    def program(self, atom: cond.ProgramAtom) -> Test | _Settled:
        operator = "$lt" if atom.below else "$gte"
        reference = self.plan.field("context", f"{atom.which}_minimum")
        return {operator: {self.plan.field("fact", atom.fact): {"$m": reference}}}

    def context(self, atom: cond.ContextAtom) -> Test | _Settled:
        field = self.plan.field("context", atom.name)
        if atom.name == "level":
            ranks = self.plan.level_ranks
            return _membership(field, sorted(ranks[v] for v in atom.allowed), self.plan.numeric(field))
        if atom.name == "emergency":
            return _membership(field, sorted(int(v) for v in atom.allowed), self.plan.numeric(field))
        options: list[Test] = [{field: v} for v in sorted(atom.allowed)]
        if not options:
            return NEVER
        return options[0] if len(options) == 1 else {"$or": options}

    def all(self, items: Iterator[Test | _Settled]) -> Test | _Settled:
        return _joined_tests("$and", items)

    def any(self, items: Iterator[Test | _Settled]) -> Test | _Settled:
        return _joined_tests("$or", items)


def _joined_tests(joined: str, items: Iterator[Test | _Settled]) -> Test | _Settled:
    """Parts joined by ``$and`` or ``$or``, drawn only until one settles the whole."""
    # In an "all", a part that always holds can be left out and one that never
    # holds settles the whole; in an "any" the other way round. Stopping there
    # also keeps the parts after it from taking field names.
    neutral, absorbing = (ALWAYS, NEVER) if joined == "$and" else (NEVER, ALWAYS)
    parts: list[Test] = []
    for part in items:
        if part is absorbing:
            return absorbing
        if isinstance(part, dict):
            parts.append(part)
    if not parts:
        return neutral
    return parts[0] if len(parts) == 1 else {joined: parts}


def _short_number(value: int) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _joined(joined: str, tests: list[Test]) -> Test:
    return tests[0] if len(tests) == 1 else {joined: list(tests)}


def _pieces_of(formula: Formula) -> set[int]:
    if isinstance(formula, int):
        return {formula}
    return set().union(*(_pieces_of(part) for part in formula[1]))


def _holds(formula: Formula, fired: set[int] | frozenset[int]) -> bool:
    if isinstance(formula, int):
        return formula in fired
    joined, parts = formula
    if joined == "$and":
        return all(_holds(part, fired) for part in parts)
    return any(_holds(part, fired) for part in parts)


def _membership(field: str, ranks: list[int], domain: tuple[int, int]) -> Test | _Settled:
    """A test that ``field`` is one of ``ranks`` (sorted)."""
    runs: list[tuple[int, int]] = []
    for rank in ranks:
        if runs and rank == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], rank)
        else:
            runs.append((rank, rank))
    return _range(field, tuple(runs), domain)


def _range(field: str, intervals: tuple[tuple[int, int], ...], domain: tuple[int, int]) -> Test | _Settled:
    """A test that ``field`` lies in one of ``intervals``; an end of the domain needs no comparison."""
    low, high = domain
    parts: list[Test] = []
    for start, end in intervals:
        start, end = max(start, low), min(end, high)
        if start > end:
            continue
        if start == end:
            parts.append({field: start})
        elif start == low:
            # Also a range over the whole domain: the fact must still be known.
            parts.append({"$lte": {field: end}} if end < high else {"$gte": {field: low}})
        elif end == high:
            parts.append({"$gte": {field: start}})
        else:
            parts.append({"$and": [{"$gte": {field: start}}, {"$lte": {field: end}}]})
    if not parts:
        return NEVER
    return parts[0] if len(parts) == 1 else {"$or": parts}


@attrs.frozen
class _Size:
    """What one durable rule's test costs against the per-rule limits."""

    expressions: int
    paths: int
    fields: frozenset[str]

    @classmethod
    def empty(cls, joined: str) -> _Size:
        # An empty "$and" is one way through, an empty "$or" none; both cost 2 entries.
        return cls(2, 1 if joined == "$and" else 0, frozenset())

    @classmethod
    def of(cls, test: Test) -> _Size:
        for joined in ("$and", "$or"):
            items = test.get(joined)
            if items is not None:
                size = cls.empty(joined)
                for item in items:
                    size = size.add(joined, cls.of(item))
                return size
        _, field, value = _atom(test)
        if isinstance(value, dict):
            return cls(1, 1, frozenset({field, value["$m"]}))
        return cls(0, 1, frozenset({field}))

    def add(self, joined: str, other: _Size) -> _Size:
        paths = self.paths * other.paths if joined == "$and" else self.paths + other.paths
        return _Size(self.expressions + other.expressions, paths, self.fields | other.fields)

    def fits(self) -> bool:
        return self.expressions <= MAX_EXPRESSIONS and self.paths <= MAX_PATHS and len(self.fields) <= MAX_FIELDS


def _atom(test: Test) -> tuple[str, str, Any]:
    """(operator, field, value) of a comparison: ``{field: v}`` or ``{"$gte": {field: v}}``."""
    ((key, value),) = test.items()
    if key.startswith("$"):
        ((field, compared),) = value.items()
        return key, field, compared
    return "$eq", key, value


class _Node:
    """An alpha node of the network durable builds for a ruleset (see ``_Network``)."""

    __slots__ = ("children", "joins", "matched", "rules")

    def __init__(self) -> None:
        self.children: dict[tuple[str, str, Any], _Node] = {}
        self.joins: list[_Node] = []
        self.rules = 0
        self.matched: int | None = None


class _Network:
    """A model of durable's alpha network, to keep a ruleset within durable's limits.

    As durable builds it: a comparison is a child of the node before it, shared
    with an identical comparison under the same node; ``$and`` chains its parts;
    ``$or`` hangs its branches on the node before it and ends them all in a new
    join node. While a fact passes the network, durable pushes every child of the
    current node that matches the fact (and every join and every comparison with
    another field, unchecked) onto a stack of 64 entries.
    """

    def __init__(self, domains: Mapping[str, Any]) -> None:
        self.domains = domains
        self.root = _Node()
        self.fields: set[str] = {_MARK}
        self.nodes = 1

    def add(self, test: Test) -> None:
        self._alpha(test, self.root).rules += 1
        self.fields |= _Size.of(test).fields

    def _alpha(self, test: Test, parent: _Node) -> _Node:
        items = test.get("$and")
        if items is not None:
            node = parent
            for item in items:
                node = self._alpha(item, node)
            return node
        items = test.get("$or")
        if items is not None:
            join = _Node()
            self.nodes += 1
            for item in items:
                end = self._alpha(item, parent)
                end.joins.append(join)
                end.matched = None
            return join
        operator, field, value = _atom(test)
        key = (field, operator, json.dumps(value) if isinstance(value, dict) else value)
        child = parent.children.get(key)
        if child is None:
            child = parent.children[key] = _Node()
            parent.matched = None
            self.nodes += 1
        return child

    def problem(self) -> str | None:
        """Which of durable's limits this network exceeds, or None."""
        if len(self.fields) - 1 > MAX_FIELDS:
            return f"reads {len(self.fields) - 1} fields at once, more than durable-rules' {MAX_FIELDS} per fact"
        depth: dict[int, int] = {}
        pending: list[tuple[_Node, bool]] = [(self.root, False)]
        while pending:
            node, ready = pending.pop()
            if id(node) in depth:
                continue
            below = [*node.children.values(), *node.joins]
            if not ready:
                if len(node.children) > MAX_CHILDREN:
                    return f"needs {len(node.children)} comparisons after one node, more than {MAX_CHILDREN}"
                if len(node.joins) > MAX_JOINS:
                    return f"ends {len(node.joins)} 'any' branches at one node, more than {MAX_JOINS}"
                if node.rules > MAX_RULES_AT_NODE:
                    return f"ends {node.rules} rules at one node, more than {MAX_RULES_AT_NODE}"
                pending.append((node, True))
                pending.extend((child, False) for child in below if id(child) not in depth)
                continue
            deepest = max((depth[id(child)] for child in below), default=0)
            # Popping a node frees its slot before its matching children are pushed.
            depth[id(node)] = self._matched(node) + max(0, deepest - 1)
        stack = depth[id(self.root)]
        if stack > MAX_STACK:
            return f"can leave {stack} alpha nodes pending at once, more than durable-rules' stack of {MAX_STACK}"
        return None

    def _matched(self, node: _Node) -> int:
        """How many children of ``node`` one fact can match at once, at most."""
        if node.matched is not None:
            return node.matched
        count = len(node.joins)
        by_field: dict[str, list[tuple[str, Any]]] = {}
        for field, operator, value in node.children:
            if isinstance(value, str) and value.startswith("{"):
                count += 1  # compared with another field: always pushed
            else:
                by_field.setdefault(field, []).append((operator, value))
        for field, comparisons in by_field.items():
            count += _overlap(comparisons, self.domains[field])
        node.matched = count
        return count


def _overlap(comparisons: list[tuple[str, Any]], domain: Any) -> int:
    """The most of ``comparisons`` on one field that a single value of ``domain`` passes."""
    if domain and isinstance(domain[0], str):
        counts: dict[Any, int] = {}
        for _, value in comparisons:
            counts[value] = counts.get(value, 0) + 1
        return max(counts.values(), default=0)
    low, high = domain
    events: list[tuple[int, int]] = []
    for operator, value in comparisons:
        start, end = {
            "$eq": (value, value),
            "$gte": (value, high),
            "$gt": (value + 1, high),
            "$lte": (low, value),
            "$lt": (low, value - 1),
        }[operator]
        start, end = max(start, low), min(end, high)
        if start <= end:
            events += [(start, 1), (end + 1, -1)]
    best = running = 0
    for _, step in sorted(events):
        running += step
        best = max(best, running)
    return best


# --- durable rulesets -------------------------------------------------------------------


class _Session:
    """The id of a durable ruleset's live session, shared with its finalizer."""

    def __init__(self) -> None:
        self.sid: str | None = None


def _release(handle: int, session: _Session) -> None:
    """Delete a durable ruleset, and its session first (durable would leak the session's memory)."""
    if session.sid is not None:
        _delete(handle, session.sid)
        session.sid = None
    _engine.delete_ruleset(handle)


class _Chunk:
    """One durable ruleset: some pieces, the fields they read, and a session kept between evaluations."""

    def __init__(self, label: str, plan: _Plan, pieces: list[int]) -> None:
        self.label = label
        # Rule names are numbers of one width (the priming rule's is the last), so
        # that a firing's rule name is a slice of its message: {"07":{"m":...}}.
        width = len(str(len(pieces)))
        names = [f"{rule:0{width}d}" for rule in range(len(pieces) + 1)]
        self.by_name = dict(zip(names, pieces, strict=False))
        self.name_end = 2 + width
        definition = {name: {"all": [{"m": plan.pieces[number]}]} for name, number in zip(names, pieces, strict=False)}
        definition[names[-1]] = {"all": [{"m": {_MARK: _PRIMING}}]}
        read = set().union(*(_Size.of(plan.pieces[number]).fields for number in pieces))
        self.fragments = tuple(self._fragments(plan, read).items())
        self.context = tuple(self._context(plan, read).items())
        self._ids = itertools.count()
        self._sessions = itertools.count()
        self.session = _Session()
        try:
            # durable removes 'run' from the definition it is given; we pass a
            # fresh JSON string, so nothing of ours is mutated.
            self.handle: int = _engine.create_ruleset(f"levelcare-{label}-{next(_NAMES)}", json.dumps(definition))
        except _engine.error as error:
            msg = f"durable-rules could not compile ruleset {label!r}: {error}"
            raise EngineError(msg) from error
        self._finalizer = weakref.finalize(self, _release, self.handle, self.session)
        self.open()

    @staticmethod
    def _fragments(plan: _Plan, read: set[str]) -> dict[str, Mapping[Any, str]]:
        """JSON ``"field":value`` fragments for every value of every fact a rule of this chunk reads.

        Keyed by the validated value itself: a fact's values all have one type.
        """
        fragments: dict[str, Mapping[Any, str]] = {}
        for fact in plan.vocabulary.facts:
            short = plan.fields.get(("fact", fact.name))
            if short is None or short not in read:
                continue
            key = json.dumps(short)
            ranks = plan.ranks.get(fact.name)
            if ranks is None:
                fragments[fact.name] = _Numbers(key, fact.minimum or 0, fact.maximum or 0)
            else:
                fragments[fact.name] = {value: f"{key}:{rank}" for (_, value), rank in ranks.items()}
        return fragments

    @staticmethod
    def _context(plan: _Plan, read: set[str]) -> dict[str, Mapping[Any, str]]:
        """JSON fragments for every value of the outcome context fields a rule of this chunk reads."""
        out: dict[str, Mapping[Any, str]] = {}
        for name in CONTEXT_FIELDS:
            short = plan.fields.get(("context", name))
            if short is None or short not in read:
                continue
            key = json.dumps(short)
            if name == "level":
                out[name] = {value: f"{key}:{rank}" for value, rank in plan.level_ranks.items()}
            elif name == "transition":
                out[name] = {value: f"{key}:{json.dumps(value)}" for value in cond.CONTEXT_DOMAINS["transition"]}
            elif name == "emergency":
                out[name] = {False: f"{key}:0", True: f"{key}:1"}
            else:
                low, high = _CONTEXT_DOMAINS[name]
                out[name] = _Numbers(key, low, high)
        return out

    def encode(self, facts: Mapping[str, Any], context: Mapping[str, Any] | None) -> str:
        """The durable fact for validated ``facts`` (and the outcome context) as JSON.

        Only the fields this chunk's rules read are written, and the closing
        brace is left off: the session and fact ids follow.
        """
        parts = ['{"_":1']
        for name, fragments in self.fragments:
            value = facts.get(name)
            if value is not None:
                parts.append(fragments[value])
        if context:
            for key, fragments in self.context:
                value = context.get(key)
                if value is not None:
                    parts.append(fragments[value])
        return ",".join(parts)

    def open(self) -> str:
        """Open and prime a new session (see the module notes); its id.

        Raises:
            EngineError: durable failed, or ran no action for the priming fact.
        """
        handle = self.handle
        sid = f"s{next(self._sessions)}"
        priming = f'{{"{_MARK}":{_PRIMING},"sid":"{sid}","id":"p"}}'
        fired = False
        try:
            result, offset = _engine.assert_fact(handle, priming)
            step: object = _engine.start_action_for_state(handle, offset) if result == 0 else None
            while step is not None:
                fired = True
                step = _engine.complete_and_start_action(handle, offset)
            if fired:
                _engine.retract_fact(handle, priming)
        except (_engine.error, MemoryError) as error:
            if fired:
                _delete(handle, sid)
            msg = f"durable-rules failed to start ruleset {self.label!r}: {error}"
            raise EngineError(msg) from error
        except BaseException:
            if fired:
                _delete(handle, sid)
            raise
        if not fired:
            # A session in which nothing fired is left alone: deleting it could
            # free stray pointers.
            msg = f"durable-rules ran no action when starting ruleset {self.label!r}"
            raise EngineError(msg)
        self.session.sid = sid
        return sid

    def drop(self) -> None:
        """Delete the session, so that the next evaluation opens a new one."""
        sid, self.session.sid = self.session.sid, None
        if sid is not None:
            _delete(self.handle, sid)

    def run(self, body: str, fired: list[int]) -> None:
        """Assert ``body`` (from :meth:`encode`), add the pieces that fired to ``fired``, retract it.

        Called with the ruleset's lock held.

        Raises:
            EngineError: durable failed; the session is deleted first.
        """
        handle = self.handle
        engine = _engine
        try:
            sid = self.session.sid or self.open()
            ids = f'"sid":"{sid}","id":"{next(self._ids)}"}}'
            result, offset = engine.assert_fact(handle, body + "," + ids)
            # Every firing carries the fact it fired for: {"07":{"m":<fact>}}.
            self._collect(result, offset, ids + "}}", fired)
            # durable finds the fact to retract by its id alone.
            engine.retract_fact(handle, "{" + ids)
        except (_engine.error, MemoryError) as error:
            # durable reports running out of sessions as MemoryError.
            self.drop()
            msg = f"durable-rules failed while evaluating the facts: {error}"
            raise EngineError(msg) from error
        except BaseException:
            # Whatever failed, the session may hold the fact: the next evaluation opens a new one.
            self.drop()
            raise

    def _collect(self, result: int, offset: int, ending: str, fired: list[int]) -> None:
        """Add the pieces that fired for the fact just asserted (``result``, ``offset``) to ``fired``.

        Args:
            result: durable's result code for the assertion.
            offset: the state offset it returned, to take the actions from.
            ending: how every firing for this fact ends (its session and id).
            fired: where the pieces' indices go.

        Raises:
            EngineError: durable refused the fact, or reported a firing for another fact.
        """
        if result == 0:
            handle = self.handle
            by_name = self.by_name
            end = self.name_end
            step = _engine.start_action_for_state(handle, offset)
            message = step[1] if step is not None else None
            complete = _engine.complete_and_start_action
            append = fired.append
            while message is not None:
                # Rule names have one width, so the name is a slice; the payload is never parsed.
                piece = by_name.get(message[2:end])
                if piece is None or not message.endswith(ending):
                    msg = "durable-rules reported a firing for a fact of another evaluation"
                    raise EngineError(msg)
                append(piece)
                message = complete(handle, offset)
        elif result != 1:
            # 1: no rule matched; anything else is durable refusing the fact.
            msg = f"durable-rules did not take the facts (result code {result})"
            raise EngineError(msg)


class CompiledRuleset:
    """A list of conditions compiled into one or more durable rulesets.

    Raises:
        EngineError: durable cannot evaluate some condition (every such
            condition is named, see :func:`check_limits`), or failed to start.
    """

    def __init__(
        self,
        label: str,
        conditions: Sequence[cond.Condition],
        vocabulary: Vocabulary,
        names: Sequence[str] | None = None,
        levels: Sequence[str] = (),
    ) -> None:
        plan = _Plan(conditions, vocabulary, names, levels)
        if plan.problems:
            lines = "\n".join(f"- {problem}" for problem in plan.problems)
            msg = f"durable-rules cannot evaluate {len(plan.problems)} condition(s) of ruleset {label!r}:\n{lines}"
            raise EngineError(msg)
        self.size = plan.size
        self._constant = frozenset(plan.constant)
        members: list[list[int]] = [[] for _ in plan.pieces]
        composite: list[tuple[int, Formula]] = []
        for index, formula in plan.formulas:
            if isinstance(formula, int):
                members[formula].append(index)
            else:
                composite.append((index, formula))
        self._members = tuple(tuple(m) for m in members)
        self._composite = tuple(composite)
        self._lock = threading.Lock()
        self._chunks = tuple(
            _Chunk(label if len(plan.chunks) == 1 else f"{label}.{n}", plan, pieces)
            for n, pieces in enumerate(plan.chunks)
        )
        _LIVE.add(self)

    def holding(self, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> frozenset[int]:
        """Indices of the conditions that hold for validated ``facts``.

        Raises:
            EngineError: durable failed; the session it failed in is deleted first.
        """
        chunks = self._chunks
        fired: list[int] = []
        if len(chunks) == 1:
            (chunk,) = chunks
            body = chunk.encode(facts, context)
            with self._lock:
                chunk.run(body, fired)
        elif not chunks:
            return self._constant
        else:
            bodies = [chunk.encode(facts, context) for chunk in chunks]
            with self._lock:
                for chunk, body in zip(chunks, bodies, strict=True):
                    chunk.run(body, fired)
        members = self._members
        found = list(self._constant)
        for piece in fired:
            found.extend(members[piece])
        if self._composite:
            pieces = set(fired)
            found.extend(index for index, formula in self._composite if _holds(formula, pieces))
        return frozenset(found)

    def after_fork(self) -> None:
        """In a forked child: drop an evaluation that another thread left half done."""
        if self._lock.locked():
            self._lock = threading.Lock()
            # Any of the sessions may hold a half-evaluated fact; the next
            # evaluation opens new ones.
            for chunk in self._chunks:
                chunk.drop()


def _after_fork_in_child() -> None:
    """Make every ruleset of this (forked) process usable; see the module notes."""
    for ruleset in list(_LIVE):
        ruleset.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Numbers(dict[int, str]):
    """``"name":n`` fragments of an integer field: prepared for ``low``..``high``, written on demand beyond."""

    def __init__(self, key: str, low: int, high: int) -> None:
        # Wide ranges are written per value rather than held in memory.
        super().__init__((n, f"{key}:{n}") for n in range(low, min(high, low + 4096) + 1))
        self._key = key

    def __missing__(self, value: int) -> str:
        return f"{self._key}:{value}"


def _delete(handle: int, sid: str) -> None:
    """Delete session ``sid`` of ruleset ``handle`` if it exists."""
    try:  # noqa: SIM105 - the comment below says why the error is expected
        _engine.delete_state(handle, sid)
    except _engine.error:
        # The session was never created (nothing asserted yet, or durable
        # failed before creating it).
        pass
