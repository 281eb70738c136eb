"""The engine: runs a rule base on durable-rules and explains the result."""

from __future__ import annotations

import datetime as _dt
import os
import threading
from collections.abc import Mapping, Sequence
from importlib.resources.abc import Traversable
from typing import Any, ClassVar

import attrs

from .._model import (
    COMPLETE,
    DATA_REQUIRED,
    Decision,
    Level,
    LevelSet,
    Program,
    Reason,
    RulebaseInfo,
    Transition,
)
from .._rulebase import Consideration, Emergency, Escalation, Rule, RuleBase, load, shipped
from .._rulebase import _conditions as cond
from .._rulebase._assessment import Assessment
from .._rulebase._vocabulary import CURRENT_LEVEL, FactValue, Vocabulary, type_name
from .._semantics import Analysis, Decider, Owner, Placement, Settled
from ..exceptions import AssessmentProblem, InvalidAssessment, RuleBaseError, RuleProblem
from ._digest import FactsDigest
from ._durable import CompiledRuleset

Facts = Mapping[str, Any] | Assessment


@attrs.frozen
class _Outcome:
    """What one evaluation of fully or partly filled facts decided, and why."""

    facts: Mapping[str, Any]
    settled: Settled
    indicated_rules: tuple[Rule, ...]
    emergencies: tuple[Emergency, ...]

    @property
    def level(self) -> Level:
        return self.settled.level

    @property
    def transition(self) -> Transition:
        return self.settled.transition


@attrs.frozen
class _HigherLevel:
    """What ``ruled_out`` says about a level above the decided one; fixed per rule base."""

    rule_id: str
    complete: str
    open: str
    facts: tuple[str, ...]
    sources: tuple[str, ...]


class _Tables:
    """Everything the transition mechanism and the reasons read that depends only on the rule base.

    Built once per engine, so a decision never rescans the rule base. Items of the
    rule base are keyed by ``id()``: hashing a frozen attrs object hashes its
    whole condition tree, and the rule base keeps every item alive.
    """

    def __init__(self, rulebase: RuleBase) -> None:
        vocabulary = rulebase.vocabulary
        self.order = {fact.name: index for index, fact in enumerate(vocabulary.facts)}
        self.wording = rulebase.wording
        self.notes = {
            kind: note
            for kind in (Transition.STEP_UP, Transition.CONTINUE)
            if (note := rulebase.transition_note(kind)) is not None
        }
        self.held_back = {
            id(sign): self.wording.say("step_down_held_back", sign=sign.statement)
            for r in rulebase.readiness
            for sign in r.signs
        }
        self.sign_facts = {
            id(sign): self.ordered(cond.facts_read(sign.when)) for r in rulebase.readiness for sign in r.signs
        }
        self.readiness_facts = {
            id(r): self.ordered(frozenset().union(*(cond.facts_read(s.when) for s in r.signs)))
            for r in rulebase.readiness
        }
        explained: list[Any] = [*rulebase.rules, *rulebase.emergencies, *rulebase.escalations]
        explained += rulebase.considerations
        self.read = {id(item): self.ordered(cond.facts_read(item.when)) for item in explained}
        criteria = rulebase.criteria
        self.higher = tuple(self._higher(level, [r for r in criteria if r.level == level]) for level in rulebase.levels)

    def ordered(self, names: frozenset[str]) -> tuple[str, ...]:
        """The vocabulary facts in ``names``, in vocabulary order."""
        return tuple(sorted((n for n in names if n in self.order), key=self.order.__getitem__))

    def _higher(self, other: Level, criteria: list[Rule]) -> _HigherLevel:
        ids = ", ".join(r.id for r in criteria)
        if not criteria:
            complete = incomplete = self.wording.say("no_criterion", level=other)
        else:
            complete = self.wording.say("none_holds", level=other, rules=ids)
            incomplete = self.wording.say("none_can_hold", level=other, rules=ids)
        sources: list[str] = []
        for rule in criteria:
            sources.extend(s for s in rule.sources if s not in sources)
        read = frozenset().union(*(cond.facts_read(r.when) for r in criteria))
        return _HigherLevel(ids or "none", complete, incomplete, self.ordered(read), tuple(sources))


class Engine:
    """A rule base compiled for durable-rules, ready to decide.

    Build one with :meth:`default` or :meth:`from_path`; an engine is immutable
    and safe to share between threads (see the concurrency notes in the docs).

    .. versionadded:: 1.0
    """

    _default: ClassVar[Engine | None] = None

    def __init__(self, rulebase: RuleBase) -> None:
        self._rb = rulebase
        self._placement = Placement(rulebase)
        self._analysis = Analysis(self._placement)
        # Stage one: everything that decides the level and the transition.
        deciders = self._placement.deciders()
        self._stage_one: list[tuple[str, Any]] = [(_kind(item), item) for item, _ in deciders]
        self._levels = CompiledRuleset(
            "levels", [condition for _, condition in deciders], rulebase.vocabulary, _names(self._stage_one)
        )
        # Stage two: services and considerations, read once the level is known.
        self._stage_two: list[tuple[str, Any]] = [("service", s) for s in rulebase.services]
        self._stage_two += [("consideration", c) for c in rulebase.considerations]
        self._outcome = CompiledRuleset(
            "outcome",
            [o.when for _, o in self._stage_two],
            rulebase.vocabulary,
            _names(self._stage_two),
            rulebase.levels.ids,
        )
        self._tables = _Tables(rulebase)
        # Reasons and settled placements already built, by what they depend on (see _Memo).
        self._memo = _Memo()
        self._digest = FactsDigest(rulebase.vocabulary)

    # --- construction ------------------------------------------------------

    @classmethod
    def default(cls) -> Engine:
        """The engine for the rule base shipped inside the package (built once)."""
        engine = cls._default
        if engine is None:
            with _default_lock:
                if cls._default is None:
                    cls._default = cls(shipped())
                engine = cls._default
        return engine

    @classmethod
    def from_path(cls, path: str | os.PathLike[str] | Traversable) -> Engine:
        """An engine for the rule base in folder ``path`` (an organisation's own).

        Args:
            path: The rule base folder.

        Raises:
            RuleBaseError: listing every problem in the rule files.
        """
        if not isinstance(path, (str, os.PathLike, Traversable)):
            problem = RuleProblem(repr(path)[:40], "", f"expected a folder path, got {type_name(path)}")
            raise RuleBaseError([problem])
        location = path if isinstance(path, Traversable) else os.fspath(path)
        return cls(load(location))

    # --- properties --------------------------------------------------------

    @property
    def vocabulary(self) -> Vocabulary:
        """The facts this engine's rule base knows."""
        return self._rb.vocabulary

    @property
    def levels(self) -> LevelSet:
        """The rule base's levels, least intensive first (``engine.levels["iop"]``).

        .. versionadded:: 1.0
        """
        return self._rb.levels

    @property
    def rulebase(self) -> RulebaseInfo:
        """Name, version and sha256 of the rule base."""
        return self._rb.info

    @property
    def loaded_rulebase(self) -> RuleBase:
        """The rule base this engine decides with, as loaded.

        Its vocabulary, levels, criteria, transitions, programmes, services and
        considerations, each condition in canonical form: what the verifier, the
        testing kit and the adapters read to reason about the rules themselves.
        Immutable, like the engine. :attr:`rulebase` gives only its name,
        version and sha256.

        .. versionadded:: 1.0
        """
        return self._rb

    def __repr__(self) -> str:
        info = self._rb.info
        return f"<Engine {info.name} {info.version} sha256={info.sha256[:12]}>"

    def assessment(self, facts: object) -> Assessment:
        """Validate ``facts`` against this engine's vocabulary.

        Raises:
            InvalidAssessment: listing every problem, by fact name.
        """
        return Assessment.from_mapping(facts, engine=self)

    # --- deciding ----------------------------------------------------------

    def decide(self, facts: Facts, *, as_of: _dt.datetime | None = None) -> Decision:
        """Decide the level of care for one assessment.

        Args:
            facts: A mapping of fact names to values, or an :class:`Assessment`.
                Absent facts and ``None`` are unknown. An assessment this
                engine validated (:meth:`assessment`) is not validated again:
                validate once, decide without checking twice.
            as_of: When the assessment applies; a timezone-aware datetime. It is
                recorded in the decision and changes nothing else.

        Returns:
            The decision, with its reasons.

        Raises:
            InvalidAssessment: the facts (or ``as_of``) are not valid; every
                problem is listed.
        """
        if as_of is not None and (
            not isinstance(as_of, _dt.datetime) or as_of.tzinfo is None or as_of.utcoffset() is None
        ):
            problem = AssessmentProblem(
                "as_of",
                f"expected a timezone-aware datetime, got {type_name(as_of)}; "
                "add a tzinfo, for example datetime.now(timezone.utc)",
            )
            raise InvalidAssessment([problem])
        if isinstance(facts, Assessment) and facts.vocabulary is self._rb.vocabulary:
            known: dict[str, FactValue] = dict(facts.facts)
        else:
            data = facts.to_dict() if isinstance(facts, Assessment) else facts
            known = self._rb.vocabulary.validate(data)
        return self._decide(known, as_of)

    def decide_validated(self, known: Mapping[str, FactValue], *, as_of: _dt.datetime | None = None) -> Decision:
        """Decide facts already validated against this engine's vocabulary, without validating them again.

        For callers that validate on their own, as the batch does while reading a
        line: ``known`` must be what ``engine.vocabulary.validate`` returned (or
        ``dict(engine.assessment(...).facts)``); anything else may give a wrong
        decision. Use :meth:`decide` otherwise.

        Args:
            known: Validated facts: names of this vocabulary, values it accepts,
                no unknown (``None``) values.
            as_of: When the assessment applies; a timezone-aware datetime (not checked).

        Returns:
            The decision, exactly as :meth:`decide` gives it for the same facts.
        """
        return self._decide(dict(known), as_of)

    def _decide(self, known: dict[str, FactValue], as_of: _dt.datetime | None) -> Decision:
        current = self._rb.levels[str(known[CURRENT_LEVEL])] if CURRENT_LEVEL in known else None
        unknown = [name for name in self._analysis.relevant(current) if name not in known]
        levels = self._rb.levels
        missing: tuple[str, ...] = ()
        if unknown:
            answer = self._analysis.analyse(known, current, unknown)
            # The reasons are read from one completion at the bottom of the range:
            # every unknown at its lowest need, unless the rule base lowers the
            # level as need rises, when the analysis supplies one that reaches it.
            low = self._evaluate({**known, **self._analysis.fills(unknown)}, current)
            if low.level.rank != answer.low:
                low = self._evaluate({**known, **self._analysis.completion(known, current, answer.low)}, current)
            span = (levels[answer.low], levels[answer.high])
            missing = tuple(answer.missing)
        else:
            low = self._evaluate(known, current)
            span = (low.level, low.level)
        emergencies = tuple(e for e in low.emergencies if _settled(e.when, low.facts, known))
        if span[0] == span[1]:
            status, level, transition, missing = COMPLETE, span[0], low.transition, ()
        else:
            status, level, transition = DATA_REQUIRED, None, None
        program = self._rb.programs[(span[1] if level is None else level).id]
        reasons, decisive = self._reasons(low, known, emergencies, complete=level is not None)
        ruled_out = self._ruled_out(level, span, decisive, known, low)
        services, considerations = self._extras(known, level, transition, bool(emergencies), program)
        return Decision(
            level=level,
            transition=transition,
            status=status,
            emergency=bool(emergencies),
            level_range=span,
            missing=missing,
            reasons=reasons,
            ruled_out=ruled_out,
            considerations=considerations,
            services=services,
            program=program,
            rulebase=self._rb.info,
            as_of=as_of,
            input_sha256=self._digest(known),
        )

    def _evaluate(self, facts: Mapping[str, Any], current: Level | None) -> _Outcome:
        """Run stage one on durable and settle the level with the placement mechanism."""
        stage_one = self._stage_one
        rules: list[Rule] = []
        emergencies: list[Emergency] = []
        held: set[int] = set()
        for index in sorted(self._levels.holding(facts)):
            kind, item = stage_one[index]
            if kind == "rule":
                rules.append(item)
            elif kind == "emergency":
                emergencies.append(item)
            elif kind == "escalation":
                held.add(id(item))
            else:
                held.add(id(item[1]))
        indicated, indicated_rules = self._placement.indicated(rules)

        def holds(owner: Owner) -> bool:
            return id(owner[1] if isinstance(owner, tuple) else owner) in held

        if current is None:
            # An admission settles at the indicated level at once: nothing to remember.
            settled = self._placement.settle(indicated, None, holds)
        else:
            # Settling reads only these three; the same ones settle the same way.
            key = ("settled", indicated.rank, current.rank, frozenset(held))
            found: Settled | None = self._memo.get(key)
            if found is None:
                found = self._memo.put(key, self._placement.settle(indicated, current, holds))
            settled = found
        return _Outcome(facts, settled, indicated_rules, tuple(emergencies))

    # --- explaining --------------------------------------------------------

    def _cited(
        self,
        item: Rule | Escalation | Emergency | Consideration,
        level: Level | None,
        facts: Mapping[str, Any],
        known: Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
    ) -> Reason:
        """The reason ``item`` gives for a condition that holds under ``facts``; values from ``known``.

        A reason depends only on the item, the level, the values of the facts the
        item reads and the outcome context, so equal inputs share one immutable
        reason.
        """
        read = self._tables.read[id(item)]
        values: tuple[Any, ...] = tuple([known.get(name) for name in read])
        if facts is not known:
            values += tuple([facts.get(name) for name in read])
        key = ("cited", id(item), None if level is None else level.rank, values, _context_key(context))
        reason = self._memo.get(key)
        if reason is None:
            relied = cond.relied_on(item.when, facts, context)
            reason = self._memo.put(
                key,
                Reason(
                    rule_id=item.id,
                    level=level,
                    statement=item.statement,
                    facts=self._values(relied, known),
                    sources=item.sources,
                ),
            )
        return reason  # type: ignore[no-any-return]

    def _listed(
        self,
        tag: tuple[Any, ...],
        rule_id: str,
        level: Level | None,
        statement: str,
        names: tuple[str, ...],
        sources: tuple[str, ...],
        known: Mapping[str, Any],
    ) -> Reason:
        """A reason citing the known values of ``names``; ``tag`` names its item and statement."""
        values = tuple([known.get(name) for name in names])
        key = ("listed", tag, None if level is None else level.rank, values)
        reason = self._memo.get(key)
        if reason is None:
            reason = self._memo.put(
                key,
                Reason(
                    rule_id=rule_id,
                    level=level,
                    statement=statement,
                    facts=dict(zip(names, values, strict=True)),
                    sources=sources,
                ),
            )
        return reason  # type: ignore[no-any-return]

    def _values(self, names: set[str] | frozenset[str], known: Mapping[str, Any]) -> dict[str, Any]:
        """The values of the vocabulary facts in ``names``, in vocabulary order."""
        order = self._tables.order
        return {name: known.get(name) for name in sorted((n for n in names if n in order), key=order.__getitem__)}

    def _reasons(
        self, outcome: _Outcome, known: Mapping[str, Any], emergencies: tuple[Emergency, ...], *, complete: bool
    ) -> tuple[tuple[Reason, ...], tuple[Reason, ...]]:
        """All reasons, most decisive first, and the ones that decided the level."""
        facts = outcome.facts
        level = outcome.level
        settled = outcome.settled
        first: list[Reason] = [self._cited(e, None, facts, known) for e in emergencies]
        indicated = [
            self._cited(r, r.level, facts, known) for r in outcome.indicated_rules if not r.otherwise or complete
        ]
        escalated = [self._cited(e, level, facts, known) for e in settled.escalations]
        tables = self._tables
        unmet = [
            self._listed(
                ("unmet", id(sign)),
                readiness.id,
                level,
                tables.held_back[id(sign)],
                tables.sign_facts[id(sign)],
                readiness.sources,
                known,
            )
            for readiness, sign in settled.unmet
        ]
        ready = [
            self._listed(("ready", id(r)), r.id, level, r.statement, tables.readiness_facts[id(r)], r.sources, known)
            for r in settled.readiness
        ]
        bridge = settled.bridge
        bridged = (
            [self._listed(("bridge", id(bridge)), bridge.id, level, bridge.statement, (), bridge.sources, known)]
            if bridge
            else []
        )
        note = None
        if outcome.transition in (Transition.STEP_UP, Transition.CONTINUE) and not settled.unmet:
            transition_note = self._tables.notes.get(outcome.transition)
            if transition_note is not None:
                note = self._listed(
                    ("note", id(transition_note)),
                    transition_note.id,
                    level,
                    transition_note.statement,
                    (CURRENT_LEVEL,),
                    transition_note.sources,
                    known,
                )
        notes = [note] if note else []
        transition = outcome.transition
        if transition is Transition.ADMIT:
            decisive, rest = indicated, []
        elif settled.unmet:
            decisive, rest = unmet, indicated
        elif transition is Transition.STEP_DOWN:
            decisive, rest = (bridged, ready + indicated) if bridge else (indicated, ready)
        elif escalated:
            decisive, rest = escalated, notes + indicated
        else:
            decisive, rest = indicated, notes
        if not complete:
            # Without a decided level, keep only what the known facts settle.
            kept = [r for r in decisive + rest if r in indicated + escalated + unmet and _known(r, known)]
            return tuple(first + kept), tuple(r for r in kept if r in decisive)
        return tuple(first + decisive + rest), tuple(decisive)

    def _ruled_out(
        self,
        level: Level | None,
        span: tuple[Level, Level],
        decisive: Sequence[Reason],
        known: Mapping[str, Any],
        outcome: _Outcome,
    ) -> tuple[Reason, ...]:
        ruled_out: list[Reason] = []
        low, high = (level.rank, level.rank) if level is not None else (span[0].rank, span[1].rank)
        for other in self._rb.levels:
            rank = other.rank
            if low <= rank <= high:
                continue
            if rank < low:
                if decisive:
                    d = decisive[0]
                    key = ("below", rank, d)
                    reason = self._memo.get(key)
                    if reason is None:
                        statement = self._tables.wording.say("ruled_out_below", level=other, statement=d.statement)
                        reason = self._memo.put(
                            key,
                            Reason(
                                rule_id=d.rule_id, level=other, statement=statement, facts=d.facts, sources=d.sources
                            ),
                        )
                    ruled_out.append(reason)
                continue
            higher = self._tables.higher[rank]
            ruled_out.append(
                self._listed(
                    ("higher", rank, level is not None),
                    higher.rule_id,
                    other,
                    higher.complete if level is not None else higher.open,
                    higher.facts,
                    higher.sources,
                    known,
                )
            )
        return tuple(ruled_out)

    def _extras(
        self,
        known: Mapping[str, Any],
        level: Level | None,
        transition: Transition | None,
        emergency: bool,
        program: Program,
    ) -> tuple[tuple[str, ...], tuple[Reason, ...]]:
        context = {
            "level": None if level is None else level.id,
            "transition": None if transition is None else transition.value,
            "emergency": emergency,
            "hours_minimum": program.hours_per_week[0],
            "days_minimum": program.days_per_week[0],
        }
        holding = self._outcome.holding(known, context)
        services: list[str] = []
        considerations: list[Reason] = []
        for index in sorted(holding):
            kind, item = self._stage_two[index]
            if kind == "service":
                services.append(item.name)
            else:
                considerations.append(self._cited(item, None, known, known, context))
        return tuple(services), tuple(considerations)


def _kind(item: Decider) -> str:
    """How stage one files a decider when it holds (a readiness sign's condition holds when it is not met)."""
    if isinstance(item, Rule):
        return "rule"
    if isinstance(item, Emergency):
        return "emergency"
    return "escalation" if isinstance(item, Escalation) else "unmet"


def _names(items: Sequence[tuple[str, Any]]) -> list[str]:
    """How errors of the rules engine name each item: its id, or a service's name."""
    return [f"{o[0].id} (a readiness sign)" if k == "unmet" else o.name if k == "service" else o.id for k, o in items]


def _context_key(context: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    return None if context is None else tuple(context.values())


class _Memo:
    """Values the engine has built, by everything they depend on; a bounded cache.

    The keys hold ids of rule-base items (kept alive by the engine's rule base),
    level ranks and validated fact values. The values are immutable. Once it
    holds ``limit`` entries it starts again empty, so memory stays bounded
    whatever the population. Lookups and stores are single dict operations:
    threads that race build equal values.
    """

    limit: ClassVar[int] = 8192

    def __init__(self) -> None:
        self._entries: dict[Any, Any] = {}
        self.get = self._entries.get

    def put(self, key: Any, value: Any) -> Any:
        entries = self._entries
        if len(entries) >= self.limit:
            entries.clear()
        entries[key] = value
        return value

    def __len__(self) -> int:
        return len(self._entries)


def _settled(condition: cond.Condition, facts: Mapping[str, Any], known: Mapping[str, Any]) -> bool:
    """Whether a condition that holds under ``facts`` holds on the known facts alone."""
    return cond.relied_on(condition, facts) <= set(known)


def _known(reason: Reason, known: Mapping[str, Any]) -> bool:
    return all(name in known for name in reason.facts)


# Held while the default engine is built, so that two threads build it once.
_default_lock = threading.Lock()


def _reset_default_lock_in_child() -> None:
    # A child forked while another thread was building the default engine would
    # inherit that lock held forever; the child builds its own engine if needed.
    global _default_lock
    _default_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_default_lock_in_child)


def decide(facts: Facts, *, as_of: _dt.datetime | None = None) -> Decision:
    """Decide the level of care with the shipped rule base.

    Same as ``Engine.default().decide(facts, as_of=as_of)``; the default engine is
    built on first use.

    .. versionadded:: 1.0
    """
    return Engine.default().decide(facts, as_of=as_of)
