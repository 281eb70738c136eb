"""Placement overrides: when the level a person receives is not the level indicated.

An override records both levels, why they differ (codes from a small list, and
free text) and what it overrides: the rule base by its sha256 and the input facts
by a digest, so the record can be matched to its decision without holding the
facts themselves.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from .._model import Decision, Level, LevelSet, facts_sha256
from .._rulebase import RuleBase
from .._text import shorten, type_name
from ..exceptions import AssessmentProblem, InvalidAssessment, InvalidOverride
from ._fhir import BASE

#: The code system of override reasons.
REASON_SYSTEM = f"{BASE}:override-reason"

#: Why the level received differs from the level indicated: code -> display.
REASONS: Mapping[str, str] = {
    "service-not-available": "The indicated level of care is not available",
    "person-preference": "The person chose another level of care",
    "payer-decision": "The payer authorised another level of care",
    "clinical-judgement": "Clinical judgement indicates another level of care",
    "other": "Another reason, given in the text",
}

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_TEXT = 2000


def reason_codings() -> list[dict[str, str]]:
    """The override reasons as FHIR Codings (as CDS Hooks ``overrideReasons`` lists them)."""
    return [{"system": REASON_SYSTEM, "code": code, "display": display} for code, display in REASONS.items()]


def _rulebase(engine: Any) -> RuleBase:
    rulebase = getattr(engine, "_rb", None)
    if not isinstance(rulebase, RuleBase):
        problem = AssessmentProblem("engine", f"expected a levelcare.Engine, got {type_name(engine)}")
        raise InvalidOverride([problem])
    return rulebase


def facts_digest(facts: object, engine: Any) -> str:
    """The sha256 of an assessment's known facts, in a canonical JSON form.

    Absent and ``None`` facts are the same unknown fact, and key order does not
    matter, so the same assessment always has the same digest.

    Raises:
        InvalidAssessment: the facts are not valid for the engine's vocabulary.
    """
    # The same digest as a decision's input_sha256, so an override matches its decision.
    return facts_sha256(_rulebase(engine).vocabulary.validate(facts))


def _check_reasons(reasons: object, text: str, problems: list[AssessmentProblem]) -> tuple[str, ...]:
    if isinstance(reasons, str) or not isinstance(reasons, Iterable):
        problems.append(AssessmentProblem("reasons", f"expected a list of reason codes, got {type_name(reasons)}"))
        return ()
    codes = tuple(reasons)
    if not codes:
        problems.append(AssessmentProblem("reasons", f"give at least one of {', '.join(REASONS)}"))
    for code in codes:
        if code not in REASONS:
            problems.append(
                AssessmentProblem("reasons", f"{shorten(code)} is not a reason; use one of {', '.join(REASONS)}")
            )
    if len(set(codes)) != len(codes):
        problems.append(AssessmentProblem("reasons", "a reason is given twice"))
    if "other" in codes and not text.strip():
        problems.append(AssessmentProblem("text", "reason 'other' needs the text to say what it is"))
    return codes


def _problems(
    indicated: object,
    received: object,
    reasons: object,
    text: object,
    hashes: Mapping[str, object],
    recorded_at: object,
    *,
    levels: bool = True,
) -> list[AssessmentProblem]:
    """Every problem with an override's fields (``levels=False``: the levels are checked already)."""
    problems: list[AssessmentProblem] = []
    if levels:
        for name, value in (("indicated", indicated), ("received", received)):
            if not isinstance(value, Level) and not (name == "received" and value is None):
                message = f"expected a Level such as engine.levels[...], got {type_name(value)}"
                problems.append(AssessmentProblem(name, message))
    if not isinstance(text, str):
        problems.append(AssessmentProblem("text", f"expected a string, got {type_name(text)}"))
    elif len(text) > _MAX_TEXT:
        problems.append(AssessmentProblem("text", f"at most {_MAX_TEXT} characters, got {len(text)}"))
    else:
        _check_reasons(reasons, text, problems)
    for name, value in hashes.items():
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            message = f"expected 64 lower-case hexadecimal digits, got {shorten(value)}"
            problems.append(AssessmentProblem(name, message))
    if recorded_at is not None and (not isinstance(recorded_at, _dt.datetime) or recorded_at.utcoffset() is None):
        message = f"expected a timezone-aware datetime, got {type_name(recorded_at)}"
        problems.append(AssessmentProblem("recorded_at", message))
    if isinstance(indicated, Level) and indicated == received:
        problems.append(AssessmentProblem("received", "is the indicated level; an override records a different level"))
    return problems


def _codes(value: Any) -> Any:
    # A list of codes becomes a tuple; anything else is left for the check to name.
    return tuple(value) if isinstance(value, list) else value


@attrs.frozen(kw_only=True)
class PlacementOverride:
    """The level of care a person received, when it is not the level indicated.

    Build one with :meth:`create` (from a decision) or :meth:`from_dict` (from a
    record); both check the levels against the engine's rule base.

    Attributes:
        indicated: The level the decision recommended.
        received: The level the person received; ``None`` when not recorded (as
            in CDS Hooks feedback, which names no level).
        reasons: Codes from :data:`REASONS`, at least one.
        text: Free text; required with the reason ``other``.
        rulebase_sha256: The sha256 of the rule base that decided.
        facts_sha256: :func:`facts_digest` of the facts it decided on.
        recorded_at: When the override was recorded, if said.

    Raises:
        InvalidOverride: listing every problem, by field.

    .. versionadded:: 1.0
    """

    indicated: Level
    received: Level | None
    reasons: tuple[str, ...] = attrs.field(converter=_codes)
    text: str = ""
    rulebase_sha256: str
    facts_sha256: str
    recorded_at: _dt.datetime | None = None

    def __attrs_post_init__(self) -> None:
        hashes = {"rulebase_sha256": self.rulebase_sha256, "facts_sha256": self.facts_sha256}
        problems = _problems(self.indicated, self.received, self.reasons, self.text, hashes, self.recorded_at)
        if problems:
            raise InvalidOverride(problems)

    @property
    def reason_displays(self) -> tuple[str, ...]:
        """The display text of each reason code."""
        return tuple(REASONS[code] for code in self.reasons)

    @classmethod
    def create(
        cls,
        engine: Any,
        *,
        decision: Decision,
        facts: object,
        received: str | Level | None,
        reasons: Iterable[str],
        text: str = "",
        recorded_at: _dt.datetime | None = None,
    ) -> PlacementOverride:
        """An override of ``decision``, which ``engine`` made from ``facts``.

        Raises:
            InvalidOverride: listing every problem: a decision that is not
                complete or not of this engine's rule base, facts that do not give
                this decision, a received level the rule base does not declare, an
                unknown reason code, ...
        """
        rulebase = _rulebase(engine)
        problems: list[AssessmentProblem] = []
        indicated = decision.level if isinstance(decision, Decision) else None
        if not isinstance(decision, Decision):
            problems.append(AssessmentProblem("decision", f"expected a levelcare.Decision, got {type_name(decision)}"))
        elif decision.rulebase != rulebase.info:
            problems.append(AssessmentProblem("decision", "was made by another rule base than this engine's"))
        elif indicated is None:
            missing = ", ".join(decision.missing)
            problems.append(AssessmentProblem("decision", f"indicates no level until more is known ({missing})"))
        digest = ""
        try:
            digest = facts_digest(facts, engine)
            if indicated is not None and engine.decide(facts).level != indicated:
                problems.append(
                    AssessmentProblem("facts", "do not give this decision's level; pass the facts it decided on")
                )
        except InvalidAssessment as error:
            problems.extend(
                AssessmentProblem(f"facts.{p.fact}" if p.fact else "facts", p.message) for p in error.problems
            )
        level = _level("received", received, rulebase.levels, problems)
        codes: Any = tuple(reasons) if isinstance(reasons, Iterable) and not isinstance(reasons, str) else reasons
        problems += _problems(indicated, level, codes, text, {}, recorded_at, levels=False)
        if problems:
            raise InvalidOverride(problems)
        return cls(
            indicated=indicated,  # type: ignore[arg-type]
            received=level,
            reasons=codes,
            text=text,
            rulebase_sha256=rulebase.info.sha256,
            facts_sha256=digest,
            recorded_at=recorded_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record; :meth:`from_dict` reads it back."""
        return {
            "indicated_level": self.indicated.id,
            "received_level": None if self.received is None else self.received.id,
            "reasons": [{"system": REASON_SYSTEM, "code": c, "display": REASONS[c]} for c in self.reasons],
            "text": self.text,
            "rulebase_sha256": self.rulebase_sha256,
            "facts_sha256": self.facts_sha256,
            "recorded_at": None if self.recorded_at is None else self.recorded_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: object, engine: Any) -> PlacementOverride:
        """Read a record written by :meth:`to_dict`, for ``engine``'s rule base.

        Raises:
            InvalidOverride: listing every problem, by field, including levels
                the rule base does not declare and a record of another rule base.
        """
        rulebase = _rulebase(engine)
        if not isinstance(data, Mapping):
            raise InvalidOverride([AssessmentProblem("", f"expected an object, got {type_name(data)}")])
        problems: list[AssessmentProblem] = []
        known = {
            "indicated_level",
            "received_level",
            "reasons",
            "text",
            "rulebase_sha256",
            "facts_sha256",
            "recorded_at",
        }
        problems += [AssessmentProblem(shorten(k), "unknown field") for k in data if k not in known]
        indicated = _level("indicated_level", data.get("indicated_level"), rulebase.levels, problems, required=True)
        received = _level("received_level", data.get("received_level"), rulebase.levels, problems)
        reasons = data.get("reasons")
        codes: list[Any] = []
        if not isinstance(reasons, list):
            problems.append(AssessmentProblem("reasons", f"expected a list, got {type_name(reasons)}"))
        else:
            codes = [r.get("code") if isinstance(r, Mapping) else r for r in reasons]
        sha = data.get("rulebase_sha256")
        if isinstance(sha, str) and _SHA256.fullmatch(sha) and sha != rulebase.info.sha256:
            problems.append(
                AssessmentProblem(
                    "rulebase_sha256", "is not this engine's rule base; read it with the engine that decided"
                )
            )
        when_text = data.get("recorded_at")
        when: _dt.datetime | None = None
        if when_text is not None:
            try:
                when = _dt.datetime.fromisoformat(when_text) if isinstance(when_text, str) else None
            except ValueError:
                when = None
            if when is None or when.utcoffset() is None:
                message = f"not an ISO 8601 date and time with its offset: {shorten(when_text)}"
                problems.append(AssessmentProblem("recorded_at", message))
        text = data.get("text", "")
        hashes = {"rulebase_sha256": sha, "facts_sha256": data.get("facts_sha256")}
        problems += _problems(indicated, received, codes, text, hashes, None, levels=False)
        if problems:
            raise InvalidOverride(problems)
        return cls(
            indicated=indicated,  # type: ignore[arg-type]
            received=received,
            reasons=tuple(codes),
            text=text,
            rulebase_sha256=sha,  # type: ignore[arg-type]
            facts_sha256=data.get("facts_sha256"),  # type: ignore[arg-type]
            recorded_at=when,
        )


def _level(
    field: str, value: object, levels: LevelSet, problems: list[AssessmentProblem], *, required: bool = False
) -> Level | None:
    if value is None and not required:
        return None
    if isinstance(value, Level):
        value = value.id if value in levels else f"{value.id} (of another rule base)"
    found = levels.get(value) if isinstance(value, str) else None
    if found is None:
        problems.append(
            AssessmentProblem(
                field, f"{shorten(value)} is not a level of this rule base; use one of {', '.join(levels.ids)}"
            )
        )
    return found


def nearest_available(
    decision: Decision,
    available: Iterable[str | Level],
    engine: Any,
    *,
    facts: object,
    recorded_at: _dt.datetime | None = None,
) -> PlacementOverride | None:
    """The placement when the indicated level is not available: the nearest more intensive one.

    Care is never placed below the level indicated: when the indicated level is
    not available, the least intensive available level above it is chosen and
    the override records the reason ``service-not-available``.

    Args:
        decision: A complete decision of ``engine``.
        available: The level ids (or levels) that can be offered.
        engine: The engine that decided.
        facts: The facts it decided on (for the override's digest).
        recorded_at: When the override is recorded, if it should say.

    Returns:
        None when the indicated level is available (nothing to override), else
        the override.

    Raises:
        InvalidOverride: an unknown level among ``available``, a decision without
            a level, or no available level at or above the indicated one.
    """
    rulebase = _rulebase(engine)
    problems: list[AssessmentProblem] = []
    if isinstance(available, (str, bytes)) or not isinstance(available, Iterable):
        problems.append(AssessmentProblem("available", f"expected a list of levels, got {type_name(available)}"))
        offered: list[Level] = []
    else:
        found = [_level("available", value, rulebase.levels, problems, required=True) for value in available]
        offered = [level for level in found if level is not None]
    if problems:
        raise InvalidOverride(problems)
    if not isinstance(decision, Decision) or decision.level is None:
        message = (
            f"expected a levelcare.Decision, got {type_name(decision)}"
            if not isinstance(decision, Decision)
            else f"indicates no level until more is known ({', '.join(decision.missing)})"
        )
        raise InvalidOverride([AssessmentProblem("decision", message)])
    indicated = decision.level
    if indicated in offered:
        return None
    above = sorted(level for level in offered if level > indicated)
    if not above:
        shown = ", ".join(level.id for level in sorted(offered)) or "none"
        problem = AssessmentProblem(
            "available",
            f"no level at or above {indicated.id} is available (available: {shown}); care is never placed below the level indicated",
        )
        raise InvalidOverride([problem])
    received = above[0]
    return PlacementOverride.create(
        engine,
        decision=decision,
        facts=facts,
        received=received,
        reasons=["service-not-available"],
        text=f"{indicated.label} is not available; {received.label} is the nearest more intensive level that is.",
        recorded_at=recorded_at,
    )
