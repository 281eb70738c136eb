"""The one module that talks to durable-rules.

Interface: compile a list of canonical conditions once (:class:`CompiledRuleset`),
then ask which of them hold for a set of facts (:meth:`CompiledRuleset.holding`).

How durable is driven, and why:

* Each condition becomes one durable rule named ``c<index>``; the facts are
  asserted as one durable fact. Finite facts are sent as their rank in need
  order, so ``at_least`` is a numeric comparison inside the Rete network.
* durable's ``Host`` runs actions in Python and writes the whole session state
  back as JSON after every firing. We only need to know *which* rules fired, so
  we call durable's C functions directly: assert the fact, then walk the queued
  actions with ``start_action_for_state`` / ``complete_and_start_action``,
  reading the rule name off the front of each action message. No state is
  written back, no background timer threads are started, and no module-level
  durable globals are used.
* Every evaluation runs in a fresh session id that is deleted in a ``finally``
  block, also when something fails, so no session outlives its call.
* durable 2.0.28 leaves a new session's action context uninitialised until an
  action starts, and ``delete_state`` frees that context: deleting a session in
  which no rule fired frees garbage pointers and crashes the process, depending
  on heap layout. Every ruleset therefore ends with a sentinel rule that matches
  every fact, so each session passes through durable's start/complete action
  cycle, which leaves the context cleared before the session is deleted.
* durable's C core has no locks. Each ruleset owns a lock held for the whole
  evaluation, which also means at most one live session per ruleset, far below
  durable's limit of 1,024.
"""

from __future__ import annotations

import itertools
import json
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import durable_rules_engine as _engine

from . import _conditions as cond
from ._vocabulary import Vocabulary
from .exceptions import EngineError

_NAMES = itertools.count()
# A field present in every asserted fact, so that constant conditions have
# something to match.
_ALWAYS = "_"
NEVER: dict[str, Any] = {_ALWAYS: 0}
ALWAYS: dict[str, Any] = {_ALWAYS: 1}

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
        definition = {
            f"c{index}": {"all": [{"m": self._compile(condition)}]} for index, condition in enumerate(conditions)
        }
        self.size = len(conditions)
        # The sentinel: see the module docstring.
        definition[f"c{self.size}"] = {"all": [{"m": ALWAYS}]}
        self._lock = threading.Lock()
        self._sessions = itertools.count()
        name = f"levelcare-{label}-{next(_NAMES)}"
        try:
            # durable removes 'run' from the definition it is given; we pass a
            # fresh JSON string, so nothing of ours is mutated.
            self._handle = _engine.create_ruleset(name, json.dumps(definition))
        except _engine.error as error:
            msg = f"durable-rules could not compile ruleset {label!r}: {error}"
            raise EngineError(msg) from error
        self._finalizer = weakref.finalize(self, _engine.delete_ruleset, self._handle)

    # --- compilation -------------------------------------------------------

    def _compile(self, condition: cond.Condition) -> dict[str, Any]:
        if isinstance(condition, cond.All):
            if not condition.items:
                return ALWAYS
            parts = [self._compile(c) for c in condition.items]
            return parts[0] if len(parts) == 1 else {"$and": parts}
        if isinstance(condition, cond.Any_):
            if not condition.items:
                return NEVER
            parts = [self._compile(c) for c in condition.items]
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

    def encode(self, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The durable fact for validated ``facts`` (and the outcome context)."""
        payload: dict[str, Any] = {_ALWAYS: 1}
        for name, value in facts.items():
            ranks = self._ranks.get(name)
            payload[name] = value if ranks is None else ranks[(type(value), value)]
        if context:
            for key, value in context.items():
                if value is None:
                    continue
                if key == "level":
                    value = self._level_ranks[value]
                elif key == "emergency":
                    value = int(value)
                payload[CONTEXT_FIELDS[key]] = value
        return payload

    # --- evaluation --------------------------------------------------------

    def holding(self, facts: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> frozenset[int]:
        """Indices of the conditions that hold for ``facts``.

        Raises:
            EngineError: durable failed; the session is deleted first.
        """
        payload = self.encode(facts, context)
        fired: set[int] = set()
        with self._lock:
            sid = str(next(self._sessions))
            payload["sid"] = sid
            payload["id"] = "facts"
            try:
                result, offset = _engine.assert_fact(self._handle, json.dumps(payload))
                if result != 0:
                    # The sentinel matches every fact, so this means durable lost it.
                    msg = f"durable-rules did not handle the facts (result code {result})"
                    raise EngineError(msg)
                step = _engine.start_action_for_state(self._handle, offset)
                message = step[1] if step is not None else None
                while message is not None:
                    # Messages look like {"c12":{"m":{...}}}: the rule name is
                    # all we need, so the payload is never parsed.
                    fired.add(int(message[3 : message.index('"', 3)]))
                    message = _engine.complete_and_start_action(self._handle, offset)
            except _engine.error as error:
                msg = f"durable-rules failed while evaluating the facts: {error}"
                raise EngineError(msg) from error
            finally:
                try:
                    _engine.delete_state(self._handle, sid)
                except _engine.error:  # pragma: no cover - only if durable lost the session itself
                    pass
        fired.discard(self.size)
        return frozenset(fired)


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
