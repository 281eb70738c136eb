"""What clinicians did with the decisions: override records and CDS Hooks feedback, read back.

Two kinds of record say whether a clinician kept the level indicated:

- a placement override (:meth:`PlacementOverride.to_dict`, as ``levelcare override``
  writes it): ``indicated_level``, ``received_level``, ``reasons``, ``text``,
  ``rulebase_sha256``, ``facts_sha256``;
- a feedback record of the CDS Hooks service's JSON Lines export: ``outcome``
  (``accepted`` or ``overridden``), ``indicated_level``, ``rulebase_sha256``,
  ``facts_sha256`` and ``override`` (an override record, or ``null``). A record that
  also carries the CDS Hooks ``overrideReason`` as the EHR sent it (an EHR's own
  coding, or a comment alone) is read too.

Each record's kind is told by its fields; other fields are ignored, so a newer
export still reads. A file is one JSON record, a JSON array of records, or JSON
Lines. A record that cannot be read is reported by file and line and never stops
the others.

:func:`summarise` counts them per indicated level and, with the assessments behind
them (a population file, matched by the facts' digest), per rule of the decision.
"""

from __future__ import annotations

import collections
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .. import _batch
from .._model import FactValue, Level, LevelSet, facts_sha256
from .._text import MAX_SHOWN, shorten, type_name
from ..exceptions import AssessmentProblem
from ._overrides import REASON_SYSTEM

#: The most unreadable lines a summary keeps to report; the rest are counted.
MAX_REPORTED = 1000
#: The most reason codes and comment openings a tally lists; the rest are counted.
MAX_LISTED = 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_OUTCOMES = ("accepted", "overridden")


def shown(text: str) -> str:
    """A user's text as it may be echoed: control characters escaped, at most 40 characters."""
    clean = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: MAX_SHOWN * 2])
    return clean if len(clean) <= MAX_SHOWN else clean[: MAX_SHOWN - 3] + "..."


@attrs.frozen(kw_only=True)
class Unreadable:
    """A record that cannot be read.

    Attributes:
        source: The file.
        line: Its line (of a JSON array: the item, counted from 1).
        message: What is wrong, naming the field.
    """

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}: line {self.line}: {self.message}"


@attrs.frozen(kw_only=True)
class PracticeRecord:
    """One clinician's outcome of one decision, from an override record or a feedback record.

    Attributes:
        source: The file it was read from.
        line: Its line in the file.
        kind: ``"override"`` or ``"feedback"``.
        outcome: ``"accepted"`` or ``"overridden"``.
        indicated: The level the decision indicated; ``None`` when it indicated none.
        received: The level the person received, when the record says.
        reasons: The reasons given, as ``(system, code)`` pairs.
        comment: The free text given ("" for none).
        rulebase_sha256: The sha256 of the rule base that decided, when usable.
        facts_sha256: The digest of the facts it decided on, when usable.
    """

    source: str
    line: int
    kind: str
    outcome: str
    indicated: Level | None
    received: Level | None
    reasons: tuple[tuple[str, str], ...]
    comment: str
    rulebase_sha256: str | None
    facts_sha256: str | None


@attrs.frozen(kw_only=True)
class Practice:
    """The records read from some files.

    Attributes:
        sources: The files, in the order read.
        records: Every readable record, in file and line order.
        unreadable: The first :data:`MAX_REPORTED` records that could not be read.
        unreadable_count: How many could not be read in all.
    """

    sources: tuple[str, ...]
    records: tuple[PracticeRecord, ...]
    unreadable: tuple[Unreadable, ...]
    unreadable_count: int


class _Bad(Exception):
    """One record's problems, each naming its field."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))


def _loads(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _Bad([f"not valid JSON: {error.msg} at column {error.colno}"]) from None
    except RecursionError:
        raise _Bad(["not usable JSON: nested too deeply"]) from None
    except ValueError as error:  # an integer longer than Python reads
        raise _Bad([f"not usable JSON: {shorten(str(error))}"]) from None


def _level(field: str, value: object, levels: LevelSet, problems: list[str], *, optional: bool) -> Level | None:
    if value is None and optional:
        return None
    found = levels.get(value) if isinstance(value, str) else None
    if found is None:
        problems.append(
            f"{field}: {shorten(value)} is not a level of this rule base (use one of {', '.join(levels.ids)}; "
            "give --rules DIR for the rule base that decided)"
        )
    return found


def _sha(value: object) -> str | None:
    return value if isinstance(value, str) and _SHA256.fullmatch(value) else None


def _reason(value: object, field: str, problems: list[str]) -> tuple[str, str] | None:
    """A reason as ``(system, code)``: a Coding, or a bare code of levelcare's own list."""
    if isinstance(value, str):
        return (REASON_SYSTEM, value)
    if isinstance(value, Mapping):
        code, system = value.get("code"), value.get("system", REASON_SYSTEM)
        if isinstance(code, str) and code and isinstance(system, str | None):
            return (system or "", code)
    problems.append(f"{field}: expected a reason code or a Coding with a code, got {shorten(value)}")
    return None


def _reasons(value: object, field: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        problems.append(f"{field}: expected a list of reasons, got {type_name(value)}")
        return ()
    found = (_reason(item, f"{field}[{index}]", problems) for index, item in enumerate(value))
    return tuple(reason for reason in found if reason is not None)


def _text(value: object, field: str, problems: list[str]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(f"{field}: expected text, got {type_name(value)}")
        return ""
    return value.strip()


def _record(data: object, levels: LevelSet, source: str, line: int) -> PracticeRecord:
    """One record, its kind told by its fields.

    Raises:
        _Bad: listing every problem, by field.
    """
    if not isinstance(data, Mapping):
        raise _Bad([f"expected a JSON object (an override or feedback record), got {type_name(data)}"])
    problems: list[str] = []
    if "outcome" in data:
        kind, outcome = "feedback", data.get("outcome")
        if outcome not in _OUTCOMES:
            problems.append(f"outcome: expected 'accepted' or 'overridden', got {shorten(outcome)}")
        indicated = _level("indicated_level", data.get("indicated_level"), levels, problems, optional=True)
        override = data.get("override")
        received: Level | None = None
        reasons: tuple[tuple[str, str], ...] = ()
        comment = ""
        if isinstance(override, Mapping):
            received = _level(
                "override.received_level", override.get("received_level"), levels, problems, optional=True
            )
            reasons = _reasons(override.get("reasons", []), "override.reasons", problems)
            comment = _text(override.get("text"), "override.text", problems)
        elif override is not None:
            problems.append(f"override: expected an override record or null, got {type_name(override)}")
        sent = data.get("overrideReason")
        if isinstance(sent, Mapping):
            # The reason as the EHR sent it: its own coding, or a comment alone.
            coding = sent.get("reason")
            if coding is not None and not reasons:
                reason = _reason(coding, "overrideReason.reason", problems)
                reasons = () if reason is None else (reason,)
            comment = comment or _text(sent.get("userComment"), "overrideReason.userComment", problems)
        elif sent is not None:
            problems.append(f"overrideReason: expected an object, got {type_name(sent)}")
        if outcome == "accepted" and (reasons or received is not None):
            problems.append("outcome: an accepted record gives no override")
    elif {"indicated_level", "received_level", "reasons"} <= set(data):
        kind, outcome = "override", "overridden"
        indicated = _level("indicated_level", data.get("indicated_level"), levels, problems, optional=False)
        received = _level("received_level", data.get("received_level"), levels, problems, optional=True)
        reasons = _reasons(data.get("reasons"), "reasons", problems)
        comment = _text(data.get("text"), "text", problems)
    else:
        kinds = (
            "neither an override record (indicated_level, received_level, reasons) "
            "nor a feedback record (outcome, indicated_level)"
        )
        raise _Bad([kinds])
    if problems:
        raise _Bad(problems)
    return PracticeRecord(
        source=source,
        line=line,
        kind=kind,
        outcome=str(outcome),
        indicated=indicated,
        received=received,
        reasons=reasons,
        comment=comment,
        rulebase_sha256=_sha(data.get("rulebase_sha256")),
        facts_sha256=_sha(data.get("facts_sha256")),
    )


def _items(path: str) -> Iterator[tuple[int, object | _Bad]]:
    """Each record's line and parsed JSON (or why it cannot be parsed).

    Raises:
        OSError: the file cannot be read.
    """
    limit = _batch.MAX_ASSESSMENT_BYTES
    with open(path, "rb") as stream:
        head = stream.read(limit + 1)
    if len(head) <= limit:
        try:
            text = head.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            yield 1 + head.count(b"\n", 0, error.start), _Bad(["not UTF-8 text; save the file as UTF-8"])
            return
        whole: object = None
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as error:
            first = next((line for line in text.splitlines() if line.strip()), "")
            if error.msg != "Extra data" and not _parses(first):
                # One JSON document (written over several lines) that is broken.
                yield error.lineno, _Bad([f"not valid JSON: {error.msg} at column {error.colno}"])
                return
        except (RecursionError, ValueError):
            pass  # read line by line below, where each line's own error is named
        else:
            if isinstance(whole, list):
                yield from enumerate(whole, 1)
            elif text.strip():
                yield 1, whole
            return
    with open(path, "rb") as stream:
        reader = _batch.LineReader(stream)
        for number, raw in reader:
            if isinstance(raw, int):
                yield number, _Bad([f"{raw} bytes long, more than {limit} bytes, the limit for one record"])
                continue
            try:
                yield number, _loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield number, _Bad(["not UTF-8 text; save the file as UTF-8"])
            except _Bad as error:
                yield number, error


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


def read_practice(paths: Iterable[str | os.PathLike[str]], levels: LevelSet) -> Practice:
    """Every override and feedback record in ``paths``, and every one that cannot be read.

    Args:
        paths: Files of override records and/or feedback records (JSON or JSON Lines).
        levels: The levels of the rule base that decided.

    Returns:
        The records, with the unreadable ones reported by file and line.

    Raises:
        OSError: a file cannot be read at all (the caller names it).
    """
    sources: list[str] = []
    records: list[PracticeRecord] = []
    unreadable: list[Unreadable] = []
    count = 0
    for path in paths:
        source = os.fspath(path)
        sources.append(source)
        for line, item in _items(source):
            try:
                if isinstance(item, _Bad):
                    raise item
                records.append(_record(item, levels, source, line))
            except _Bad as error:
                count += 1
                if len(unreadable) < MAX_REPORTED:
                    unreadable.append(Unreadable(source=source, line=line, message=str(error)))
    return Practice(
        sources=tuple(sources), records=tuple(records), unreadable=tuple(unreadable), unreadable_count=count
    )


# --- the assessments behind the records -----------------------------------------------


@attrs.frozen(kw_only=True)
class Assessments:
    """The assessments of a population file that some records were decided on.

    Attributes:
        source: The population file.
        lines: How many lines it has (blank ones left out).
        facts: The validated facts by their digest, for the digests asked for only.
        invalid: The first :data:`MAX_REPORTED` lines that are not valid assessments.
        invalid_count: How many are not, in all.
    """

    source: str
    lines: int
    facts: Mapping[str, Mapping[str, FactValue]]
    invalid: tuple[Unreadable, ...]
    invalid_count: int


def read_assessments(path: str | os.PathLike[str], vocabulary: Any, wanted: Iterable[str]) -> Assessments:
    """The facts behind ``wanted`` digests, from a population file read as ``levelcare batch`` reads it.

    Each line is validated with ``vocabulary`` and its digest computed as a
    decision's ``input_sha256`` is, with :func:`levelcare._model.facts_sha256`.

    Raises:
        OSError: the file cannot be read.
    """
    source = os.fspath(path)
    digests = set(wanted)
    facts: dict[str, Mapping[str, FactValue]] = {}
    invalid: list[Unreadable] = []
    count = lines = 0
    with open(source, "rb") as stream:
        reader = _batch.LineReader(stream)
        for number, raw in reader:
            lines += 1
            try:
                known = _line_facts(raw, vocabulary)
            except _batch.InputError as error:
                count += 1
                if len(invalid) < MAX_REPORTED:
                    message = "; ".join(str(p) for p in error.problems)
                    invalid.append(Unreadable(source=source, line=number, message=message))
                continue
            digest = facts_sha256(known)
            if digest in digests:
                facts.setdefault(digest, known)
    return Assessments(source=source, lines=lines, facts=facts, invalid=tuple(invalid), invalid_count=count)


def _line_facts(raw: bytes | int, vocabulary: Any) -> dict[str, FactValue]:
    """The validated facts of one population line, as :class:`levelcare._batch.LineReader` gives it.

    Raises:
        _batch.InputError: the line is too long (``raw`` is then its length) or not a valid assessment.
    """
    if isinstance(raw, int):
        msg = f"{raw} bytes long, more than the limit for one assessment"
        raise _batch.InputError([AssessmentProblem("", msg)])
    known, _ = _batch.read_assessment(raw, vocabulary)
    return known


# --- the summary ----------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ReasonCount:
    """How often one reason was given.

    Attributes:
        system: The code system (``urn:levelcare:override-reason`` for levelcare's own).
        code: The code.
        count: The records that gave it.
    """

    system: str
    code: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"system": shown(self.system), "code": shown(self.code), "count": self.count}


@attrs.frozen(kw_only=True)
class Tally:
    """What clinicians did with the decisions of one level, or of one rule.

    Attributes:
        key: The level id or the rule id.
        accepted: Records that kept the level indicated.
        overridden: Records that did not.
        above: Overrides whose level received is more intensive than the one indicated.
        below: Overrides whose level received is less intensive.
        same: Overrides that name the indicated level as received.
        not_recorded: Overrides that do not say the level received.
        received: Overrides per level received, in level order.
        reasons: The reasons given, most often first (at most :data:`MAX_LISTED`).
        other_reasons: Reasons given that are not listed, counted.
        no_reason: Overrides that give no reason code.
        comments: Records with free text.
        comment_openings: The most frequent openings of that text, each at most 40
            characters, with their counts (at most three).
    """

    key: str
    accepted: int
    overridden: int
    above: int
    below: int
    same: int
    not_recorded: int
    received: tuple[tuple[str, int], ...]
    reasons: tuple[ReasonCount, ...]
    other_reasons: int
    no_reason: int
    comments: int
    comment_openings: tuple[tuple[str, int], ...]

    @property
    def records(self) -> int:
        """Every record counted here."""
        return self.accepted + self.overridden

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "overridden": self.overridden,
            "above": self.above,
            "below": self.below,
            "same": self.same,
            "not_recorded": self.not_recorded,
            "received": dict(self.received),
            "reasons": [r.to_dict() for r in self.reasons],
            "other_reasons": self.other_reasons,
            "no_reason": self.no_reason,
            "comments": self.comments,
            "comment_openings": [{"text": text, "count": count} for text, count in self.comment_openings],
        }


class _Counter:
    def __init__(self) -> None:
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.received: collections.Counter[Level] = collections.Counter()
        self.reasons: collections.Counter[tuple[str, str]] = collections.Counter()
        self.openings: collections.Counter[str] = collections.Counter()
        self.direction: collections.Counter[str] = collections.Counter()
        self.no_reason = self.comments = 0

    def add(self, record: PracticeRecord) -> None:
        self.outcomes[record.outcome] += 1
        if record.comment:
            self.comments += 1
            self.openings[shown(record.comment)] += 1
        if record.outcome != "overridden":
            return
        self.reasons.update(record.reasons)
        self.no_reason += not record.reasons
        if record.received is None or record.indicated is None:
            self.direction["not_recorded"] += 1
            return
        self.received[record.received] += 1
        if record.received > record.indicated:
            self.direction["above"] += 1
        elif record.received < record.indicated:
            self.direction["below"] += 1
        else:
            self.direction["same"] += 1

    def tally(self, key: str) -> Tally:
        ranked = sorted(self.reasons.items(), key=lambda item: (-item[1], item[0]))
        return Tally(
            key=key,
            accepted=self.outcomes["accepted"],
            overridden=self.outcomes["overridden"],
            above=self.direction["above"],
            below=self.direction["below"],
            same=self.direction["same"],
            not_recorded=self.direction["not_recorded"],
            received=tuple((level.id, count) for level, count in sorted(self.received.items())),
            reasons=tuple(ReasonCount(system=s, code=c, count=n) for (s, c), n in ranked[:MAX_LISTED]),
            other_reasons=sum(n for _, n in ranked[MAX_LISTED:]),
            no_reason=self.no_reason,
            comments=self.comments,
            comment_openings=tuple(sorted(self.openings.items(), key=lambda item: (-item[1], item[0]))[:3]),
        )


@attrs.frozen(kw_only=True)
class OverrideSummary:
    """How clinicians received the decisions: per level indicated and per rule.

    Attributes:
        sources: The files read.
        rulebase: The sha256 of the rule base the records were read with.
        overrides: Override records read.
        feedback: Feedback records read.
        no_level: Records of decisions that indicated no level (not in ``levels``).
        other_rulebase: Records that name another rule base's sha256.
        levels: A tally per level indicated, in level order (levels without
            records left out).
        rules: A tally per rule id among the reasons of each decision, most
            records first; empty without a population.
        population: The population file that gave the decisions, if any.
        attributed: Records whose decision was found (``rules`` counts them).
        unmatched: Records with no line of the population (by the facts' digest);
            records of another rule base are not looked up and count here too.
        unmatched_records: The first of those, as (file, line).
        unreadable: The first records that could not be read.
        unreadable_count: How many could not be read.
        population_invalid: The first population lines that are not valid assessments.
        population_invalid_count: How many are not.
    """

    sources: tuple[str, ...]
    rulebase: str
    overrides: int
    feedback: int
    no_level: int
    other_rulebase: int
    levels: tuple[Tally, ...]
    rules: tuple[Tally, ...]
    population: str | None
    attributed: int
    unmatched: int
    unmatched_records: tuple[tuple[str, int], ...]
    unreadable: tuple[Unreadable, ...]
    unreadable_count: int
    population_invalid: tuple[Unreadable, ...]
    population_invalid_count: int

    def render(self) -> str:
        """The summary as text, as ``levelcare overrides summary`` prints it."""
        kinds = f"{_plural(self.overrides, 'override record')}, {_plural(self.feedback, 'feedback record')}"
        lines = [f"Overrides and feedback: {_plural(self.overrides + self.feedback, 'record')} ({kinds})"]
        lines.append(f"  from {files_text(self.sources)}; rule base sha256 {self.rulebase}")
        if self.other_rulebase:
            lines.append(f"  {_plural(self.other_rulebase, 'record')} of another rule base (another sha256)")
        if self.no_level:
            lines.append(f"  {_plural(self.no_level, 'record')} of decisions that indicated no level")
        if self.unreadable_count:
            lines.append(f"  {_plural(self.unreadable_count, 'record')} could not be read (listed on standard error)")
        lines += ["", "By level indicated:"]
        lines += [line for tally in self.levels for line in _tally_lines(tally)] or ["  no records"]
        if self.population is None:
            lines += ["", "By rule: give --population FILE, the assessments the records were decided on."]
        else:
            matched = f"{self.attributed} of {self.attributed + self.unmatched} records matched"
            lines += ["", f"By rule of the decision (assessments from {self.population}: {matched}):"]
            lines += [line for tally in self.rules for line in _tally_lines(tally)] or ["  no records"]
            if self.unmatched:
                where = ", ".join(f"{source} line {line}" for source, line in self.unmatched_records[:10])
                more = self.unmatched - min(10, len(self.unmatched_records))
                lines.append(
                    f"  {_plural(self.unmatched, 'record')} unmatched (no assessment in the population has the "
                    f"record's facts_sha256, or the record is of another rule base): {where}"
                    + (f" and {more:,} more" if more else "")
                )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; comments appear only as counts and 40-character openings."""
        return {
            "sources": list(self.sources),
            "rulebase_sha256": self.rulebase,
            "records": {"overrides": self.overrides, "feedback": self.feedback},
            "no_level": self.no_level,
            "other_rulebase": self.other_rulebase,
            "levels": {t.key: t.to_dict() for t in self.levels},
            "rules": {t.key: t.to_dict() for t in self.rules},
            "population": None
            if self.population is None
            else {
                "source": self.population,
                "attributed": self.attributed,
                "unmatched": self.unmatched,
                "unmatched_records": [{"source": s, "line": n} for s, n in self.unmatched_records],
                "invalid": [{"line": u.line, "message": u.message} for u in self.population_invalid],
                "invalid_count": self.population_invalid_count,
            },
            "unreadable": [{"source": u.source, "line": u.line, "message": u.message} for u in self.unreadable],
            "unreadable_count": self.unreadable_count,
        }


def summarise(
    paths: Iterable[str | os.PathLike[str]],
    engine: Any,
    *,
    population: str | os.PathLike[str] | None = None,
) -> OverrideSummary:
    """Summarise override records and CDS Hooks feedback per level indicated and per rule.

    Args:
        paths: Files of override records and/or feedback records.
        engine: A :class:`levelcare.Engine` of the rule base that decided; its
            level order says whether a level received is above or below.
        population: Assessments (JSON Lines, as ``levelcare batch`` reads them) the
            records were decided on. With it, each record of this rule base is
            matched to its assessment by the facts' digest, decided again, and
            counted under every rule among the decision's reasons.

    Returns:
        The summary; records that cannot be read are listed in it, never raised.

    Raises:
        OSError: a file cannot be read at all.
    """
    rulebase = engine.rulebase
    practice = read_practice(paths, engine.levels)
    by_level: dict[Level, _Counter] = {}
    no_level = other = 0
    for record in practice.records:
        if record.rulebase_sha256 is not None and record.rulebase_sha256 != rulebase.sha256:
            other += 1
        if record.indicated is None:
            no_level += 1
            continue
        by_level.setdefault(record.indicated, _Counter()).add(record)
    by_rule: dict[str, _Counter] = {}
    attributed = unmatched = 0
    unmatched_records: list[tuple[str, int]] = []
    assessments: Assessments | None = None
    if population is not None:
        # Only records of this rule base: another's decision may have other reasons.
        ours = {r for r in practice.records if r.rulebase_sha256 == rulebase.sha256 and r.facts_sha256 is not None}
        assessments = read_assessments(population, engine.vocabulary, (str(r.facts_sha256) for r in ours))
        decide: Callable[[Mapping[str, FactValue]], Any] = engine.decide
        decided: dict[str, tuple[str, ...]] = {}
        for record in practice.records:
            facts = None if record not in ours else assessments.facts.get(str(record.facts_sha256))
            if facts is None:
                unmatched += 1
                if len(unmatched_records) < MAX_REPORTED:
                    unmatched_records.append((record.source, record.line))
                continue
            digest = str(record.facts_sha256)
            if digest not in decided:
                decided[digest] = tuple(dict.fromkeys(reason.rule_id for reason in decide(facts).reasons))
            attributed += 1
            for rule_id in decided[digest]:
                by_rule.setdefault(rule_id, _Counter()).add(record)
    rules = sorted((c.tally(rule_id) for rule_id, c in by_rule.items()), key=lambda t: (-t.records, t.key))
    return OverrideSummary(
        sources=practice.sources,
        rulebase=rulebase.sha256,
        overrides=sum(r.kind == "override" for r in practice.records),
        feedback=sum(r.kind == "feedback" for r in practice.records),
        no_level=no_level,
        other_rulebase=other,
        levels=tuple(by_level[level].tally(level.id) for level in sorted(by_level)),
        rules=tuple(rules),
        population=None if assessments is None else assessments.source,
        attributed=attributed,
        unmatched=unmatched,
        unmatched_records=tuple(unmatched_records),
        unreadable=practice.unreadable,
        unreadable_count=practice.unreadable_count,
        population_invalid=() if assessments is None else assessments.invalid,
        population_invalid_count=0 if assessments is None else assessments.invalid_count,
    )


def files_text(sources: Sequence[str]) -> str:
    """The files read, named when there are at most two, else counted."""
    return " and ".join(sources) if len(sources) <= 2 else f"{len(sources)} files"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _tally_lines(tally: Tally) -> list[str]:
    head = f"  {tally.key}: {_plural(tally.records, 'record')}, {tally.accepted:,} accepted, {tally.overridden:,} overridden"
    lines = [head]
    if tally.overridden:
        parts = [f"{tally.above:,} above", f"{tally.below:,} below"]
        parts += [f"{tally.same:,} at the level indicated"] if tally.same else []
        parts += [f"{tally.not_recorded:,} not saying"] if tally.not_recorded else []
        received = ", ".join(f"{level} {count:,}" for level, count in tally.received)
        lines.append(f"    received: {'; '.join(parts)}" + (f" ({received})" if received else ""))
        reasons = [f"{_reason_text(r)} {r.count:,}" for r in tally.reasons]
        reasons += [f"{tally.other_reasons:,} more"] if tally.other_reasons else []
        reasons += [f"{tally.no_reason:,} without a code"] if tally.no_reason else []
        lines.append(f"    reasons: {', '.join(reasons)}")
    if tally.comments:
        openings = ", ".join(f'"{text}" {count:,}' for text, count in tally.comment_openings)
        lines.append(f"    comments: {tally.comments:,}, most often {openings}")
    return lines


def _reason_text(reason: ReasonCount) -> str:
    code = shown(reason.code)
    return code if reason.system == REASON_SYSTEM else f"{code} ({shown(reason.system) or 'no system'})"
