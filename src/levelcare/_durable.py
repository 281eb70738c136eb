"""The one module that talks to durable-rules.

Interface: compile a list of canonical conditions once (:class:`CompiledRuleset`),
then ask which of them hold for a set of facts (:meth:`CompiledRuleset.holding`).

How durable is driven, and why:

* Each distinct condition becomes one durable rule named ``c<number>``; the
  facts are asserted as one durable fact. Finite facts are sent as their rank in
  need order, so ``at_least`` is a numeric comparison inside the Rete network.
  Conditions that compile to the same durable test share one rule, and
  conditions that hold (or fail) whatever the facts are settled when compiling,
  so each evaluation fires as few actions as the rule base allows.
* durable's ``Host`` runs actions in Python and writes the whole session state
  back as JSON after every firing. We only need to know *which* rules fired, so
  we call durable's C functions directly: assert the fact, then walk the queued
  actions with ``start_action_for_state`` / ``complete_and_start_action``,
  reading the rule name off the front of each action message. No state is
  written back, no background timer threads are started, and no module-level
  durable globals are used.
* The fact is written as JSON from fragments prepared when compiling (one per
  fact value), and only the fields some rule reads are sent.
* Every evaluation runs in a session of its own, with a fresh session id, that
  is deleted in a ``finally`` block, also when something fails: no state of one
  evaluation can reach another, and no session outlives its call.
* durable's C core has no locks. Each ruleset owns a lock held for the whole
  evaluation, which also means at most one live session per ruleset, far below
  durable's limit of 1,024 live sessions per ruleset.
* durable 2.0.28 leaves a new session's action context uninitialised and frees
  it when the session is deleted, so deleting a session in which no rule fired
  can free stray pointers and crash the process. durable reuses the slot of the
  session deleted last, and a slot whose session ran an action is left with a
  cleared context. Each ruleset therefore runs one priming session, in which a
  rule of its own fires, before any real evaluation; with one live session at a
  time, every later session gets that primed slot.
* A forked child process gets a copy of every ruleset, its session and its lock.
  If another thread was evaluating when the process forked, that copy is locked
  for good and holds a half-evaluated fact, so the child replaces the lock and
  deletes such a session before it runs anything.
* Python 3.13 removed ``PyEval_CallObject`` from its C API, and durable's
  extension, built against 3.13's headers, still refers to it, so it cannot be
  loaded. levelcare's own small extension ``_pyeval_compat`` defines that
  function again; it is loaded with ``RTLD_GLOBAL`` before durable, so the
  dynamic linker resolves durable's reference to it. Without a declaration,
  durable's C compiler takes the function to return ``int``, so its result is
  unusable; durable calls it only from the message, queue and idle-state
  callbacks that ``set_*_callback`` registers, and this module registers none
  (a test checks which durable functions it calls).
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from . import _conditions as cond
from ._vocabulary import Vocabulary
from .exceptions import EngineError


def _provide_pyeval_callobject() -> None:
    """Load ``_pyeval_compat`` so that its symbols resolve durable's (Python 3.13+)."""
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_GLOBAL)
    try:
        from . import _pyeval_compat  # noqa: F401 - loaded for the symbol it exports
    except ImportError as error:
        msg = (
            f"levelcare's C extension _pyeval_compat, which durable-rules needs on Python "
            f"{sys.version_info.major}.{sys.version_info.minor}, is missing ({error}); "
            "reinstall levelcare with a C compiler present: pip install --force-reinstall levelcare"
        )
        raise ImportError(msg) from error
    finally:
        sys.setdlopenflags(flags)


if sys.version_info >= (3, 13):
    _provide_pyeval_callobject()

import durable_rules_engine as _engine  # noqa: E402 - after the C API it needs is in place

_NAMES = itertools.count()
# Every ruleset alive in this process, for the fork handler at the end.
_LIVE: weakref.WeakSet[CompiledRuleset] = weakref.WeakSet()
# A field of every asserted fact: 1 in real facts, 2 in the priming fact, so the
# priming rule never fires on real facts. While compiling, NEVER and ALWAYS
# stand for tests settled without the facts; they never reach durable.
_ALWAYS = "_"
NEVER: dict[str, Any] = {_ALWAYS: 0}
ALWAYS: dict[str, Any] = {_ALWAYS: 1}
_PRIMING = 2

#: Context fields sent with the facts to the outcome ruleset.
CONTEXT_FIELDS = {
    "level": "_level",
    "transition": "_transition",
    "emergency": "_emergency",
    "hours_minimum": "_hours_minimum",
    "days_minimum": "_days_minimum",
}


class CompiledRuleset:
    """A list of conditions compiled into one durable ruleset."""

    def __init__(self, label: str, conditions: Sequence[cond.Condition], vocabulary: Vocabulary) -> None:
        self._vocabulary = vocabulary
        self._ranks = {
            fact.name: {(type(v), v): rank for rank, v in enumerate(fact.values)}
            for fact in vocabulary.facts
            if fact.finite
        }
        self._level_ranks = {v: rank for rank, v in enumerate(cond.CONTEXT_DOMAINS["level"])}
        self.size = len(conditions)
        # Conditions settled without the facts, and one durable rule per distinct
        # compiled test, each standing for every condition that compiled to it.
        constant: list[int] = []
        members: list[list[int]] = []
        rules: dict[str, int] = {}
        tests: list[dict[str, Any]] = []
        for index, condition in enumerate(conditions):
            test = self._compile(condition)
            if test == ALWAYS:
                constant.append(index)
                continue
            if test == NEVER:
                continue
            key = json.dumps(test, sort_keys=True)
            number = rules.get(key)
            if number is None:
                number = rules[key] = len(tests)
                tests.append(test)
                members.append([])
            members[number].append(index)
        self._constant = frozenset(constant)
        self._members = tuple(tuple(m) for m in members)
        self._fragments = self._prepare_fragments(conditions)
        self._context = self._prepare_context()
        self._lock = threading.Lock()
        self._sessions = itertools.count()
        # The id of the session being evaluated, if any (see _after_fork).
        self._live: str | None = None
        self._handle: int | None = None
        if not tests:
            return
        definition = {f"c{number}": {"all": [{"m": test}]} for number, test in enumerate(tests)}
        definition[f"c{len(tests)}"] = {"all": [{"m": {_ALWAYS: _PRIMING}}]}
        name = f"levelcare-{label}-{next(_NAMES)}"
        try:
            # durable removes 'run' from the definition it is given; we pass a
            # fresh JSON string, so nothing of ours is mutated.
            self._handle = _engine.create_ruleset(name, json.dumps(definition))
        except _engine.error as error:
            msg = f"durable-rules could not compile ruleset {label!r}: {error}"
            raise EngineError(msg) from error
        self._finalizer = weakref.finalize(self, _engine.delete_ruleset, self._handle)
        self._prime(self._handle, label)
        _LIVE.add(self)

    # --- compilation -------------------------------------------------------

    def _compile(self, condition: cond.Condition) -> dict[str, Any]:
        if isinstance(condition, cond.All):
            if not condition.items:
                return ALWAYS
            parts = [self._compile(c) for c in condition.items]
            if NEVER in parts:
                return NEVER
            parts = [p for p in parts if p != ALWAYS]
            if not parts:
                return ALWAYS
            return parts[0] if len(parts) == 1 else {"$and": parts}
        if isinstance(condition, cond.Any_):
            if not condition.items:
                return NEVER
            parts = [self._compile(c) for c in condition.items]
            if ALWAYS in parts:
                return ALWAYS
            parts = [p for p in parts if p != NEVER]
            if not parts:
                return NEVER
            return parts[0] if len(parts) == 1 else {"$or": parts}
        if isinstance(condition, cond.ValueAtom):
            ranks = self._ranks[condition.fact]
            return _membership(condition.fact, sorted(ranks[(type(v), v)] for v in condition.allowed))
        if isinstance(condition, cond.RangeAtom):
            return _intervals(condition.fact, condition.intervals)
        if isinstance(condition, cond.ProgramAtom):
            operator = "$lt" if condition.below else "$gte"
            reference = CONTEXT_FIELDS[f"{condition.which}_minimum"]
            return {operator: {condition.fact: {"$m": reference}}}
        field = CONTEXT_FIELDS[condition.name]
        if condition.name == "level":
            return _membership(field, sorted(self._level_ranks[v] for v in condition.allowed))
        if condition.name == "emergency":
            return _membership(field, sorted(int(v) for v in condition.allowed))
        options = [{field: v} for v in sorted(condition.allowed)]
        if not options:
            return NEVER
        return options[0] if len(options) == 1 else {"$or": options}

    def _prepare_fragments(self, conditions: Sequence[cond.Condition]) -> dict[str, Mapping[Any, str]]:
        """JSON ``"name":value`` fragments for every value of every fact a rule reads.

        Keyed by the validated value itself: a fact's values all have one type.
        """
        read = set().union(*(cond.facts_read(c) for c in conditions)) if conditions else set()
        fragments: dict[str, Mapping[Any, str]] = {}
        for fact in self._vocabulary.facts:
            if fact.name not in read:
                continue
            key = json.dumps(fact.name)
            ranks = self._ranks.get(fact.name)
            if ranks is None:
                fragments[fact.name] = _Numbers(key, fact.minimum or 0, fact.maximum or 0)
            else:
                fragments[fact.name] = {value: f"{key}:{rank}" for (_, value), rank in ranks.items()}
        return fragments

    def _prepare_context(self) -> dict[str, Mapping[Any, str]]:
        """JSON fragments for every value of the outcome context."""
        names = {key: json.dumps(field) for key, field in CONTEXT_FIELDS.items()}
        return {
            "level": {value: f"{names['level']}:{rank}" for value, rank in self._level_ranks.items()},
            "transition": {
                value: f"{names['transition']}:{json.dumps(value)}" for value in cond.CONTEXT_DOMAINS["transition"]
            },
            "emergency": {False: f"{names['emergency']}:0", True: f"{names['emergency']}:1"},
            "hours_minimum": _Numbers(names["hours_minimum"], 0, 168),
            "days_minimum": _Numbers(names["days_minimum"], 0, 7),
        }

    def encode(self, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> str:
        """The durable fact for validated ``facts`` (and the outcome context) as JSON.

        Only the fields some rule of this ruleset reads are written, and the
        closing brace is left off: the session id follows.
        """
        fragments = self._fragments
        parts = ['{"_":1']
        parts += [fragments[name][value] for name, value in facts.items() if name in fragments]
        if context:
            known = self._context
            parts += [known[key][value] for key, value in context.items() if value is not None]
        return ",".join(parts)

    def _prime(self, handle: int, label: str) -> None:
        """Run one session in which the priming rule fires (see the module notes).

        Raises:
            EngineError: durable failed, or ran no action for the priming fact.
        """
        with self._lock:
            sid = f"p{next(self._sessions)}"
            fired = False
            try:
                result, offset = _engine.assert_fact(handle, json.dumps({_ALWAYS: _PRIMING, "sid": sid, "id": "facts"}))
                step: object = _engine.start_action_for_state(handle, offset) if result == 0 else None
                while step is not None:
                    fired = True
                    step = _engine.complete_and_start_action(handle, offset)
            except (_engine.error, MemoryError) as error:
                msg = f"durable-rules failed to start ruleset {label!r}: {error}"
                raise EngineError(msg) from error
            finally:
                # A session in which nothing fired is left alone: deleting it
                # could free stray pointers, and the ruleset is dropped anyway.
                if fired:
                    _delete(handle, sid)
            if not fired:
                msg = f"durable-rules ran no action when starting ruleset {label!r}"
                raise EngineError(msg)

    # --- evaluation --------------------------------------------------------

    def holding(self, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> frozenset[int]:
        """Indices of the conditions that hold for ``facts``.

        Raises:
            EngineError: durable failed; the session is deleted first.
        """
        handle = self._handle
        if handle is None:
            return self._constant
        text = self.encode(facts, context)
        members = self._members
        fired: list[int] = list(self._constant)
        with self._lock:
            sid = str(next(self._sessions))
            self._live = sid
            try:
                result, offset = _engine.assert_fact(handle, f'{text},"sid":"{sid}","id":"facts"}}')
                if result == 0:
                    step = _engine.start_action_for_state(handle, offset)
                    message = step[1] if step is not None else None
                    while message is not None:
                        # Messages look like {"c12":{"m":{...}}}: the rule name is
                        # all we need, so the payload is never parsed.
                        fired.extend(members[int(message[3 : message.index('"', 3)])])
                        message = _engine.complete_and_start_action(handle, offset)
                elif result != 1:
                    # 1: no rule matched; anything else is durable refusing the fact.
                    msg = f"durable-rules did not take the facts (result code {result})"
                    raise EngineError(msg)
            except (_engine.error, MemoryError) as error:
                # durable reports running out of sessions as MemoryError.
                msg = f"durable-rules failed while evaluating the facts: {error}"
                raise EngineError(msg) from error
            finally:
                self._live = None
                _delete(handle, sid)
        return frozenset(fired)

    def _after_fork(self) -> None:
        """In a forked child: drop an evaluation that another thread left half done."""
        if self._lock.locked():
            self._lock = threading.Lock()
            live, self._live = self._live, None
            if self._handle is not None and live is not None:
                _delete(self._handle, live)


def _after_fork_in_child() -> None:
    """Make every ruleset of this (forked) process usable; see the module notes."""
    for ruleset in list(_LIVE):
        ruleset._after_fork()


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
    # A plain try costs nothing when nothing is raised; this runs once per evaluation.
    try:  # noqa: SIM105
        _engine.delete_state(handle, sid)
    except _engine.error:
        # The session was never created (nothing asserted yet, or durable
        # failed before creating it).
        pass


def _membership(field: str, ranks: list[int]) -> dict[str, Any]:
    """A durable test that ``field`` is one of ``ranks`` (sorted)."""
    if not ranks:
        return NEVER
    runs: list[tuple[int, int]] = []
    for rank in ranks:
        if runs and rank == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], rank)
        else:
            runs.append((rank, rank))
    return _intervals(field, tuple(runs))


def _intervals(field: str, intervals: tuple[tuple[int, int], ...]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    for low, high in intervals:
        if low == high:
            parts.append({field: low})
        else:
            parts.append({"$and": [{"$gte": {field: low}}, {"$lte": {field: high}}]})
    if not parts:
        return NEVER
    return parts[0] if len(parts) == 1 else {"$or": parts}
