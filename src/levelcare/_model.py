"""The public value classes: Assessment, Decision, Reason, Program, RulebaseInfo."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import re
from collections.abc import Mapping
from importlib import metadata
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from ._levels import Level, Transition
from ._vocabulary import FactValue, Vocabulary, shorten, type_name
from .exceptions import InvalidDecisionData

if TYPE_CHECKING:
    from ._engine import Engine

COMPLETE = "complete"
DATA_REQUIRED = "data-required"
STATUSES = (COMPLETE, DATA_REQUIRED)


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@functools.cache
def installed_version() -> str:
    """The version of levelcare that is running (``"unknown"`` in an uninstalled checkout)."""
    try:
        return metadata.version("levelcare")
    except metadata.PackageNotFoundError:  # pragma: no cover - only in an uninstalled checkout
        return "unknown"


def facts_sha256(facts: Mapping[str, FactValue]) -> str:
    """The sha256 of validated facts: canonical JSON (keys sorted, no spaces, UTF-8).

    Unknown facts are not part of validated facts, so ``{"harm_risk": null}`` and
    ``{}`` are the same assessment and have the same digest.
    """
    canonical = json.dumps(dict(facts), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


#: The keys of ``Decision.to_dict()`` that record how a decision was made rather
#: than what was decided.
AUDIT_KEYS = ("input_sha256", "levelcare_version")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@attrs.frozen
class RulebaseInfo:
    """Which rule base decided: its name, version and sha256.

    The hash covers the canonical content of every rule file, so two rule bases
    with the same hash give the same decisions.

    Attributes:
        name: The rule base's name, from its ``[rulebase]`` table.
        version: Its version, from the same table.
        sha256: The hash of its content, as 64 hexadecimal digits.

    .. versionadded:: 1.0
    """

    name: str
    version: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


@attrs.frozen(kw_only=True)
class Program:
    """What a level of care looks like in practice.

    Attributes:
        level: The level this programme belongs to.
        hours_per_week: Lowest and highest weekly hours of treatment.
        days_per_week: Lowest and highest days a week of attendance.
        typical_length: How long people usually stay, in words.
        recommended_minimum_days: A recommended minimum stay, where there is one.
        sources: Source ids.

    .. versionadded:: 1.0
    """

    level: Level
    hours_per_week: tuple[int, int]
    days_per_week: tuple[int, int]
    typical_length: str
    recommended_minimum_days: int | None = None
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level.value,
            "hours_per_week": list(self.hours_per_week),
            "days_per_week": list(self.days_per_week),
            "typical_length": self.typical_length,
            "recommended_minimum_days": self.recommended_minimum_days,
            "sources": list(self.sources),
        }


@attrs.frozen(kw_only=True)
class Reason:
    """One rule's part in a decision.

    Attributes:
        rule_id: The rule's id, such as ``"IN-2"``. In ``ruled_out``, a level that no
            criterion required names all of that level's criteria, comma-separated.
        level: The level the rule requires; in ``ruled_out``, the level ruled out;
            ``None`` for rules that require no level (emergency, considerations).
        statement: One sentence a clinician can read.
        facts: The fact values the rule relied on (``None`` where unknown).
        sources: Source ids.

    .. versionadded:: 1.0
    """

    rule_id: str
    level: Level | None
    statement: str
    facts: Mapping[str, FactValue | None] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "level": None if self.level is None else self.level.value,
            "statement": self.statement,
            "facts": dict(self.facts),
            "sources": list(self.sources),
        }


@attrs.frozen(kw_only=True)
class Decision:
    """The recommended level of care, with everything a clinician needs to check it.

    ``level`` is ``None`` exactly when ``status`` is ``"data-required"``: the
    unknown facts in ``missing`` could move the level anywhere in ``level_range``.

    Attributes:
        level: The recommended level now; ``None`` when more facts are needed.
        transition: How ``level`` relates to the current level (``ADMIT`` when
            the person is not in treatment); ``None`` when ``level`` is.
        status: ``"complete"`` or ``"data-required"``.
        emergency: Whether an immediate crisis response is needed.
        level_range: The lowest and highest level the unknown facts allow.
        missing: The unknown facts that can change the level, in vocabulary order.
        reasons: The rules that decided the level and the transition, most
            decisive first.
        ruled_out: For every other level, the reason it was excluded.
        considerations: Candidacy factors and barriers; they never change the level.
        services: Recommended service components.
        program: What care at ``level`` (or at the top of ``level_range``) involves.
        rulebase: Name, version and sha256 of the rule base that decided.
        as_of: When the assessment applies, if the caller said.
        input_sha256: The sha256 of the validated facts as canonical JSON (keys
            sorted, no spaces, UTF-8; unknown facts left out), when the caller
            recorded it; the command line always does.
        levelcare_version: The version of levelcare that decided.

    .. versionadded:: 1.0
    """

    level: Level | None
    transition: Transition | None
    status: str
    emergency: bool
    level_range: tuple[Level, Level]
    missing: tuple[str, ...]
    reasons: tuple[Reason, ...]
    ruled_out: tuple[Reason, ...]
    considerations: tuple[Reason, ...]
    services: tuple[str, ...]
    program: Program
    rulebase: RulebaseInfo
    as_of: _dt.datetime | None = None
    input_sha256: str | None = None
    levelcare_version: str | None = attrs.field(factory=installed_version)

    @property
    def complete(self) -> bool:
        """Whether the level is decided (``status == "complete"``)."""
        return self.status == COMPLETE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; the same decision always gives the same dict."""
        return {
            "level": None if self.level is None else self.level.value,
            "transition": None if self.transition is None else self.transition.value,
            "status": self.status,
            "emergency": self.emergency,
            "level_range": [self.level_range[0].value, self.level_range[1].value],
            "missing": list(self.missing),
            "reasons": [r.to_dict() for r in self.reasons],
            "ruled_out": [r.to_dict() for r in self.ruled_out],
            "considerations": [r.to_dict() for r in self.considerations],
            "services": list(self.services),
            "program": self.program.to_dict(),
            "rulebase": self.rulebase.to_dict(),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "input_sha256": self.input_sha256,
            "levelcare_version": self.levelcare_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        """Rebuild a decision from :meth:`to_dict` output.

        Raises:
            InvalidDecisionData: naming the first field that cannot be read, or
                listing every way in which the fields contradict each other (a
                complete decision with no level, a level outside ``level_range``,
                a data-required decision with a level, ...).
        """
        reader = _Reader(data, "decision")
        level = reader.level("level", optional=True)
        transition_value = reader.get("transition", (str, type(None)))
        try:
            transition = None if transition_value is None else Transition(transition_value)
        except ValueError:
            reader.fail("transition", f"unknown transition {shorten(transition_value)}")
        status = reader.get("status", str)
        if status not in STATUSES:
            reader.fail("status", f"expected one of {STATUSES}, got {shorten(status)}")
        span = reader.get("level_range", list)
        if len(span) != 2:
            reader.fail("level_range", "expected [lowest, highest]")
        as_of_text = reader.get("as_of", (str, type(None)), default=None)
        try:
            as_of = None if as_of_text is None else _dt.datetime.fromisoformat(as_of_text)
        except ValueError:
            reader.fail("as_of", f"not an ISO 8601 date and time: {shorten(as_of_text)}")
        decision = cls(
            level=level,
            transition=transition,
            status=status,
            emergency=reader.get("emergency", bool),
            level_range=(_level(span[0], "level_range"), _level(span[1], "level_range")),
            missing=tuple(reader.strings("missing")),
            reasons=tuple(_reason(r, "reasons") for r in reader.get("reasons", list)),
            ruled_out=tuple(_reason(r, "ruled_out") for r in reader.get("ruled_out", list)),
            considerations=tuple(_reason(r, "considerations") for r in reader.get("considerations", list)),
            services=tuple(reader.strings("services")),
            program=_program(reader.get("program", Mapping)),
            rulebase=_rulebase(reader.get("rulebase", Mapping)),
            as_of=as_of,
            input_sha256=reader.get("input_sha256", (str, type(None)), default=None),
            levelcare_version=reader.get("levelcare_version", (str, type(None)), default=None),
        )
        problems = _inconsistencies(decision)
        if problems:
            raise InvalidDecisionData(*problems)
        return decision


def _inconsistencies(d: Decision) -> list[str]:
    """Every way in which a decision's fields contradict each other."""
    problems: list[str] = []
    low, high = d.level_range
    span = f"[{low.value!r}, {high.value!r}]"
    if low > high:
        problems.append(f"decision.level_range: the lowest level is above the highest, {span}")
    if d.status == COMPLETE:
        if d.level is None:
            problems.append("decision.level: a complete decision names its level, got null")
        elif not low <= d.level <= high:
            problems.append(f"decision.level: {d.level.value!r} lies outside level_range {span}")
        if low != high:
            problems.append(f"decision.level_range: a complete decision allows one level, got {span}")
        if d.transition is None:
            problems.append("decision.transition: a complete decision names its transition, got null")
        if d.missing:
            problems.append(f"decision.missing: a complete decision needs no more facts, got {len(d.missing)}")
    else:
        if d.level is not None:
            problems.append(f"decision.level: a data-required decision has no level yet, got {d.level.value!r}")
        if d.transition is not None:
            problems.append(
                f"decision.transition: a data-required decision has no transition yet, got {d.transition.value!r}"
            )
        if low == high:
            problems.append(f"decision.level_range: a data-required decision allows more than one level, got {span}")
        if not d.missing:
            problems.append("decision.missing: a data-required decision names the facts it needs, got none")
    programme = d.level if d.level is not None else high
    if d.program.level is not programme:
        problems.append(f"program.level: expected {programme.value!r}, the decision's level, got {d.program.level.value!r}")
    for where, digest in (("decision.input_sha256", d.input_sha256), ("rulebase.sha256", d.rulebase.sha256)):
        if digest is not None and not _SHA256.fullmatch(digest):
            problems.append(f"{where}: expected 64 lowercase hexadecimal digits, got {shorten(digest)}")
    if d.as_of is not None and d.as_of.utcoffset() is None:
        problems.append(f"decision.as_of: expected a date and time with a UTC offset, got {shorten(d.as_of.isoformat())}")
    return problems


class _Reader:
    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            msg = f"{where}: expected an object, got {type_name(data)}"
            raise InvalidDecisionData(msg)
        self.data = data
        self.where = where

    def fail(self, key: str, message: str) -> Any:
        msg = f"{self.where}.{key}: {message}"
        raise InvalidDecisionData(msg)

    _MISSING = object()

    def get(self, key: str, kind: Any, default: Any = _MISSING) -> Any:
        if key not in self.data:
            if default is not self._MISSING:
                return default
            return self.fail(key, "missing")
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if bool not in kinds and isinstance(value, bool) and int in kinds:
            return self.fail(key, f"expected a number, got {type_name(value)}")
        if not isinstance(value, kinds):
            return self.fail(key, f"unexpected {type_name(value)}")
        return value

    def level(self, key: str, *, optional: bool = False) -> Level | None:
        value = self.get(key, (str, type(None)) if optional else str)
        return None if value is None else _level(value, f"{self.where}.{key}")

    def strings(self, key: str) -> list[str]:
        values = self.get(key, list)
        if not all(isinstance(v, str) for v in values):
            self.fail(key, "expected a list of strings")
        return [str(v) for v in values]

    def pair(self, key: str) -> tuple[int, int]:
        values = self.get(key, list)
        if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            self.fail(key, "expected [lowest, highest] whole numbers")
        return (values[0], values[1])


def _level(value: object, where: str) -> Level:
    try:
        return Level(value)
    except ValueError:
        msg = f"{where}: {shorten(value)} is not a level"
        raise InvalidDecisionData(msg) from None


def _reason(data: object, where: str) -> Reason:
    reader = _Reader(data, where)
    facts = reader.get("facts", Mapping)
    return Reason(
        rule_id=reader.get("rule_id", str),
        level=reader.level("level", optional=True),
        statement=reader.get("statement", str),
        facts=dict(facts),
        sources=tuple(reader.strings("sources")),
    )


def _program(data: Mapping[str, Any]) -> Program:
    reader = _Reader(data, "program")
    return Program(
        level=reader.level("level"),  # type: ignore[arg-type]
        hours_per_week=reader.pair("hours_per_week"),
        days_per_week=reader.pair("days_per_week"),
        typical_length=reader.get("typical_length", str),
        recommended_minimum_days=reader.get("recommended_minimum_days", (int, type(None))),
        sources=tuple(reader.strings("sources")),
    )


def _rulebase(data: Mapping[str, Any]) -> RulebaseInfo:
    reader = _Reader(data, "rulebase")
    return RulebaseInfo(name=reader.get("name", str), version=reader.get("version", str), sha256=reader.get("sha256", str))


@attrs.frozen(init=False)
class Assessment:
    """A validated assessment: the known facts about one person.

    Build one from a mapping or keyword arguments; every problem is reported at
    once. Facts that are absent or ``None`` are unknown and are never guessed::

        Assessment({"harm_risk": "none"}, addiction_severity="moderate")

    Validation uses the shipped vocabulary; use :meth:`Engine.assessment` for an
    organisation's own rule base.

    Attributes:
        facts: The known facts, in vocabulary order (read-only).

    Raises:
        InvalidAssessment: listing every problem, by fact name.

    .. versionadded:: 1.0
    """

    facts: Mapping[str, FactValue] = attrs.field(hash=False)
    _vocabulary: Vocabulary = attrs.field(eq=False, repr=False, hash=False)

    def __init__(self, facts: Mapping[str, Any] | None = None, /, **more: Any) -> None:
        from ._engine import Engine  # the default engine is built on first use

        data: Any = {} if facts is None else facts
        if more:
            data = {**data, **more} if isinstance(data, Mapping) else data
        vocabulary = Engine.default().vocabulary
        self.__attrs_init__(MappingProxyType(vocabulary.validate(data)), vocabulary)

    @classmethod
    def _validated(cls, data: object, vocabulary: Vocabulary) -> Assessment:
        self = cls.__new__(cls)
        self.__attrs_init__(MappingProxyType(vocabulary.validate(data)), vocabulary)
        return self

    @classmethod
    def from_mapping(cls, data: object, *, engine: Engine | None = None) -> Assessment:
        """Validate ``data`` against ``engine``'s vocabulary (the shipped one by default)."""
        from ._engine import Engine

        return cls._validated(data, (engine or Engine.default()).vocabulary)

    def __getitem__(self, name: str) -> FactValue:
        return self.facts[name]

    def get(self, name: str) -> FactValue | None:
        """The fact's value, or None when it is unknown."""
        return self.facts.get(name)

    def to_dict(self) -> dict[str, FactValue]:
        """The known facts as a plain dict, in vocabulary order."""
        return dict(self.facts)
