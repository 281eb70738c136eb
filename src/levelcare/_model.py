"""The public value classes: Level, LevelSet, Transition, Decision, Reason, Program, RulebaseInfo.

Values only: nothing here runs or loads a rule base. Levels are data of each rule
base; this module knows only that they are ordered.
"""

from __future__ import annotations

import datetime as _dt
import enum
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, overload

import attrs

from ._text import shorten, type_name
from .exceptions import InvalidDecisionData, UnknownLevel

#: A known fact value: a string (ordinal or level), a bool or an int.
FactValue = str | bool | int

COMPLETE = "complete"
DATA_REQUIRED = "data-required"
STATUSES = (COMPLETE, DATA_REQUIRED)


@attrs.frozen(eq=False, kw_only=True)
class Level:
    """A level of care of one rule base, ordered by intensity within it.

    A rule base declares its levels in ``[[level]]`` tables, from least to most
    intensive; ``rank`` is the position in that list. Levels compare by rank
    (``<``, ``<=``, ...), and a level is equal to another level with the same id
    and rank, and to its id as a string, so ``decision.level == "iop"`` reads
    naturally.

    A rule base's levels are ``engine.levels``, looked up by id:
    ``engine.levels["iop"]``.

    Attributes:
        id: The level's id, as rule files and ``to_dict()`` write it.
        label: Its name as a clinician writes it.
        rank: 0 for the least intensive level, upwards.
        description: One line saying what care at this level is.

    .. versionadded:: 1.0
    """

    id: str
    label: str
    rank: int
    description: str = ""

    @property
    def value(self) -> str:
        """The level's id, as rule files write it."""
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Level):
            return self.id == other.id and self.rank == other.rank
        if isinstance(other, str):
            return self.id == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __lt__(self, other: object) -> bool:
        return self.rank < other.rank if isinstance(other, Level) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.rank <= other.rank if isinstance(other, Level) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.rank > other.rank if isinstance(other, Level) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.rank >= other.rank if isinstance(other, Level) else NotImplemented

    def __repr__(self) -> str:
        return f"Level({self.id!r}, rank={self.rank})"

    def __str__(self) -> str:
        return self.id


class LevelSet(Sequence[Level]):
    """A rule base's levels, least intensive first; index by rank or by id.

    ``levels[0]`` is the least intensive level, ``levels["iop"]`` the level with
    that id. Immutable.

    .. versionadded:: 1.0
    """

    __slots__ = ("_by_id", "_levels")

    def __init__(self, levels: Iterable[Level]) -> None:
        self._levels = tuple(levels)
        self._by_id = {level.id: level for level in self._levels}

    @classmethod
    def of(cls, *ids: str) -> LevelSet:
        """Levels with these ids in this order, each labelled with its id (for tests and tools)."""
        return cls(Level(id=i, label=i, rank=rank) for rank, i in enumerate(ids))

    @overload
    def __getitem__(self, key: int) -> Level: ...
    @overload
    def __getitem__(self, key: slice) -> tuple[Level, ...]: ...
    @overload
    def __getitem__(self, key: str) -> Level: ...

    def __getitem__(self, key: int | slice | str) -> Level | tuple[Level, ...]:
        if not isinstance(key, (int, slice)):
            found = self._by_id.get(key) if isinstance(key, str) else None
            if found is None:
                msg = f"{shorten(key)} is not a level of this rule base; its levels are {', '.join(self.ids)}"
                raise UnknownLevel(msg)
            return found
        return self._levels[key]

    def get(self, key: str) -> Level | None:
        """The level with id ``key``, or None."""
        return self._by_id.get(key) if isinstance(key, str) else None

    def __len__(self) -> int:
        return len(self._levels)

    def __iter__(self) -> Iterator[Level]:
        return iter(self._levels)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Level):
            return self._by_id.get(item.id) == item
        return isinstance(item, str) and item in self._by_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LevelSet) and self._levels == other._levels

    def __hash__(self) -> int:
        return hash(self._levels)

    def __repr__(self) -> str:
        return f"LevelSet({', '.join(self.ids)})"

    @property
    def ids(self) -> tuple[str, ...]:
        """The level ids, least intensive first."""
        return tuple(self._by_id)

    @property
    def lowest(self) -> Level:
        return self._levels[0]

    @property
    def highest(self) -> Level:
        return self._levels[-1]


class Transition(enum.Enum):
    """How the recommended level relates to the level the person is in now.

    .. versionadded:: 1.0
    """

    ADMIT = "admit"
    CONTINUE = "continue"
    STEP_DOWN = "step-down"
    STEP_UP = "step-up"


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@functools.cache
def installed_version() -> str:
    """The version of levelcare that is running (``"unknown"`` in an uninstalled checkout)."""
    # Imported here: reading package metadata costs more than the rest of this module's
    # imports, and a process that only decides (a batch worker) never asks for it.
    from importlib import metadata

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
        unverified: Whether the engine was told to run a rule base that did not
            pass ``levelcare check`` (``levelcare batch --allow-unverified``, say);
            every decision it makes then says so.

    .. versionadded:: 1.0
    """

    name: str
    version: str
    sha256: str
    unverified: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``unverified`` appears only when true, so verified records are unchanged."""
        data: dict[str, Any] = {"name": self.name, "version": self.version, "sha256": self.sha256}
        if self.unverified:
            data["unverified"] = True
        return data


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
            sorted, no spaces, UTF-8; unknown facts left out); ``decide()``
            records it.
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
    def from_dict(cls, data: Mapping[str, Any], *, levels: LevelSet) -> Decision:
        """Rebuild a decision from :meth:`to_dict` output.

        Args:
            data: What :meth:`to_dict` gave.
            levels: The levels of the rule base that decided (``engine.levels``).

        Raises:
            InvalidDecisionData: naming the first field that cannot be read, or
                listing every way in which the fields contradict each other (a
                complete decision with no level, a level outside ``level_range``,
                a data-required decision with a level, ...).
        """
        if not isinstance(levels, LevelSet):
            msg = f"levels: expected a LevelSet such as engine.levels, got {type_name(levels)}"
            raise InvalidDecisionData(msg)
        return cls._read(data, levels)

    @classmethod
    def _read(cls, data: Mapping[str, Any], levels: LevelSet) -> Decision:
        reader = _Reader(data, "decision", levels)
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
            level_range=(_level(span[0], "level_range", levels), _level(span[1], "level_range", levels)),
            missing=tuple(reader.strings("missing")),
            reasons=tuple(_reason(r, "reasons", levels) for r in reader.get("reasons", list)),
            ruled_out=tuple(_reason(r, "ruled_out", levels) for r in reader.get("ruled_out", list)),
            considerations=tuple(_reason(r, "considerations", levels) for r in reader.get("considerations", list)),
            services=tuple(reader.strings("services")),
            program=_program(reader.get("program", Mapping), levels),
            rulebase=_rulebase(reader.get("rulebase", Mapping)),
            as_of=as_of,
            input_sha256=reader.get("input_sha256", (str, type(None)), default=None),
            levelcare_version=reader.get("levelcare_version", (str, type(None)), default=None),
        )
        problems = _inconsistencies(decision)
        if problems:
            raise InvalidDecisionData(*problems)
        return decision


_NOT_A_LEVEL = "is not a level"


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
    if d.program.level != programme:
        problems.append(
            f"program.level: expected {programme.value!r}, the decision's level, got {d.program.level.value!r}"
        )
    for where, digest in (("decision.input_sha256", d.input_sha256), ("rulebase.sha256", d.rulebase.sha256)):
        if digest is not None and not _SHA256.fullmatch(digest):
            problems.append(f"{where}: expected 64 lowercase hexadecimal digits, got {shorten(digest)}")
    if d.as_of is not None and d.as_of.utcoffset() is None:
        problems.append(
            f"decision.as_of: expected a date and time with a UTC offset, got {shorten(d.as_of.isoformat())}"
        )
    return problems


class _Reader:
    def __init__(self, data: object, where: str, levels: LevelSet) -> None:
        if not isinstance(data, Mapping):
            msg = f"{where}: expected an object, got {type_name(data)}"
            raise InvalidDecisionData(msg)
        self.data = data
        self.where = where
        self.levels = levels

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
        return None if value is None else _level(value, f"{self.where}.{key}", self.levels)

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


def _level(value: object, where: str, levels: LevelSet) -> Level:
    found = levels.get(value) if isinstance(value, str) else None
    if found is None:
        msg = f"{where}: {shorten(value)} {_NOT_A_LEVEL}; expected one of {', '.join(levels.ids)}"
        raise InvalidDecisionData(msg)
    return found


def _reason(data: object, where: str, levels: LevelSet) -> Reason:
    reader = _Reader(data, where, levels)
    facts = reader.get("facts", Mapping)
    return Reason(
        rule_id=reader.get("rule_id", str),
        level=reader.level("level", optional=True),
        statement=reader.get("statement", str),
        facts=dict(facts),
        sources=tuple(reader.strings("sources")),
    )


def _program(data: Mapping[str, Any], levels: LevelSet) -> Program:
    reader = _Reader(data, "program", levels)
    return Program(
        level=reader.level("level"),  # type: ignore[arg-type]
        hours_per_week=reader.pair("hours_per_week"),
        days_per_week=reader.pair("days_per_week"),
        typical_length=reader.get("typical_length", str),
        recommended_minimum_days=reader.get("recommended_minimum_days", (int, type(None))),
        sources=tuple(reader.strings("sources")),
    )


def _rulebase(data: Mapping[str, Any]) -> RulebaseInfo:
    reader = _Reader(data, "rulebase", LevelSet(()))
    return RulebaseInfo(
        name=reader.get("name", str),
        version=reader.get("version", str),
        sha256=reader.get("sha256", str),
        unverified=reader.get("unverified", bool, default=False),
    )
