"""The exact semantic difference between two rule bases: ``levelcare diff``.

Both rule bases are decided over the same *space* of complete assessments:

* admissions: every combination of the clinical facts' cells (each finite
  fact's values; each integer's range cut at every threshold either rule base
  mentions, one cell standing for a whole interval);
* in treatment: every admission combined with every current level and every
  combination of the progress facts' cells.

The space is the verifier's (``_space``): facts and conditions are boolean
functions held in binary decision diagrams. For each rule base, where each
decision (level, transition, emergency) is made comes from the placement
mechanism (``_thresholds.outcomes``); the region of one change is the
conjunction of the old decision's diagram and the new one's. Nothing is
enumerated, so there is no ceiling on the space: the cost follows the structure
of the rules, and every count is exact, a Python integer of any size.

The diff starts from what changed item by item (``_changes``: rules and the
other items, each version in words). Each change of decision (old outcome, new
outcome) is then split by the changed items responsible for it and each part
described by few exact conditions (``_attribution``, which defines both).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from .. import _batch
from .._engine import Engine
from .._model import Transition
from .._rulebase import RuleBase, load
from .._rulebase._vocabulary import shorten
from .._semantics import Placement
from ..exceptions import AssessmentProblem, InvalidAssessment, LevelCareError, RuleBaseError
from ._attribution import Cause, causes, footprints
from ._cells import DiffError, DiffSpace
from ._changes import ItemChange, item_changes, same_label_other_content
from ._space import Clock, Node, OutOfTime, Space
from ._thresholds import outcomes

__all__ = ["DiffError", "DiffUnfinished", "Outcome", "RuleBaseDiff", "SameLabel", "diff", "population"]

#: The time budget of ``levelcare diff`` and :func:`diff` when none is given, in seconds.
DEFAULT_BUDGET = 600.0
#: How many example records (ids, or line numbers) the population table shows per row in text.
EXAMPLE_RECORDS = 5
#: How many conditions the text report prints per part of a change (the JSON has them all).
SHOWN_CONDITIONS = 12
#: What every count of the space is, said once in the text report.
COUNTS_NOTE = (
    "Counts are kinds of assessment (combinations of fact values, an integer counted by its cells), not people; "
    "--population counts records."
)


class SameLabel(DiffError):
    """The two rule bases share name and version but not content (raised when that is not allowed)."""


class DiffUnfinished(LevelCareError):
    """The diff was not finished within its time budget: nothing is known about the difference.

    Attributes:
        budget: The budget that ran out, in seconds.
    """

    def __init__(self, budget: float) -> None:
        self.budget = budget
        super().__init__(
            f"not finished within the time budget of {budget:g} s: nothing is known about how the decisions "
            "differ; allow more time (levelcare diff --budget SECONDS, or diff(..., budget=...))"
        )


@attrs.frozen(order=True)
class Outcome:
    """What a decision says, as far as a diff compares it."""

    level: str | None
    transition: str | None
    status: str = "complete"
    emergency: bool = False

    def text(self) -> str:
        if self.level is None:
            return self.status
        shown = self.level if self.transition in (None, Transition.ADMIT.value) else f"{self.level} {self.transition}"
        return shown + (" +emergency" if self.emergency else "")

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "transition": self.transition, "status": self.status, "emergency": self.emergency}


@attrs.frozen
class Change:
    """One change of decision: where the old rule base decides ``old`` and the new one ``new``.

    Attributes:
        count: The assessments that change so.
        causes: The change split by the changed items responsible, each part
            described by exact conditions.
    """

    old: Outcome
    new: Outcome
    count: int
    causes: tuple[Cause, ...]

    def to_dict(self, space: DiffSpace) -> dict[str, Any]:
        return {
            "from": self.old.to_dict(),
            "to": self.new.to_dict(),
            "count": self.count,
            "causes": [c.to_dict(space) for c in self.causes],
        }

    @property
    def items(self) -> tuple[str, ...]:
        """Every changed item responsible for some of the change, in order of first appearance."""
        return tuple(dict.fromkeys(label for cause in self.causes for label in cause.items))


@attrs.frozen
class Part:
    """The changes over one space (admissions or in treatment)."""

    size: int
    changes: tuple[Change, ...]

    @property
    def changed(self) -> int:
        return sum(c.count for c in self.changes)

    def to_dict(self, space: DiffSpace) -> dict[str, Any]:
        return {"size": self.size, "changed": self.changed, "changes": [c.to_dict(space) for c in self.changes]}


@attrs.frozen
class Record:
    """One record of a population: its line, and its ``_id`` when it had one."""

    line: int
    id: str | int | None = None

    def text(self) -> str:
        return f"line {self.line}" if self.id is None else str(self.id)

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "_id": self.id}


@attrs.frozen
class PopulationRow:
    """The records one (old decision, new decision) pair holds.

    A side's level is a level id, ``data-required`` or ``invalid``, its
    transition ``None`` unless a level was decided; ``changed`` counts the
    records whose decision differs in any way (level, transition, status or
    emergency), and ``records`` lists every record, changed ones first.
    """

    old: str
    new: str
    count: int
    changed: int
    records: tuple[Record, ...]
    old_transition: str | None = None
    new_transition: str | None = None

    def sides(self) -> tuple[str, str]:
        """Each side as the table shows it: the level, and the transition unless an admission."""
        return _side_text(self.old, self.old_transition), _side_text(self.new, self.new_transition)


def _side_text(level: str, transition: str | None) -> str:
    return level if transition in (None, Transition.ADMIT.value) else f"{level} {transition}"


@attrs.frozen
class Population:
    source: str
    records: int
    rows: tuple[PopulationRow, ...]
    invalid: tuple[tuple[int, str], ...]

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "records": self.records,
            "changed": self.changed,
            "rows": [
                {
                    "from": {"level": r.old, "transition": r.old_transition},
                    "to": {"level": r.new, "transition": r.new_transition},
                    "count": r.count,
                    "changed": r.changed,
                    "records": [record.to_dict() for record in r.records],
                }
                for r in self.rows
            ],
            "invalid": [{"line": n, "message": m} for n, m in self.invalid],
        }


@attrs.frozen
class Label:
    """What a rule base says it is: name, version, and the sha256 of its content."""

    location: str
    name: str
    version: str
    sha256: str

    def text(self) -> str:
        return f"{self.location} ({self.name} {self.version}, sha256 {self.sha256})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "rulebase": f"{self.name} {self.version}, sha256 {self.sha256}",
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
        }


@attrs.frozen
class RuleBaseDiff:
    """The result of :func:`diff`.

    Attributes:
        old: The old rule base's location, name, version and sha256.
        new: The same for the new one.
        items: Every item added, removed or changed, each version in words.
        same_label: Whether the content changed while name and version did not.
        vocabulary: Differences between the vocabularies, in words.
        admissions: The changes of decision for admissions.
        in_treatment: The changes of decision for people in treatment.
        population: The impact on a population of records, when asked for.
    """

    old: Label
    new: Label
    items: tuple[ItemChange, ...]
    same_label: bool
    vocabulary: tuple[str, ...]
    admissions: Part
    in_treatment: Part
    space: DiffSpace = attrs.field(repr=False, eq=False)
    seconds: float = attrs.field(default=0.0, eq=False)
    population: Population | None = None

    def with_population(self, population: Population) -> RuleBaseDiff:
        """This diff with the impact table of a population of real assessments."""
        return attrs.evolve(self, population=population)

    @property
    def identical(self) -> bool:
        changed = self.admissions.changed or self.in_treatment.changed or self.vocabulary
        return not changed and (self.population is None or not self.population.changed)

    @property
    def warnings(self) -> tuple[str, ...]:
        """What a reviewer must know before reading on."""
        if not self.same_label:
            return ()
        return (_same_label_text(self.new.name, self.new.version),)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "identical": self.identical,
            "same_label_other_content": self.same_label,
            "warnings": list(self.warnings),
            "items": [item.to_dict() for item in self.items],
            "vocabulary": list(self.vocabulary),
            "admissions": self.admissions.to_dict(self.space),
            "in_treatment": self.in_treatment.to_dict(self.space),
        }
        if self.population is not None:
            data["population"] = self.population.to_dict()
        return data

    def render(self) -> str:
        lines = [f"Old: {self.old.text()}", f"New: {self.new.text()}", ""]
        if self.warnings:
            lines += [f"Warning: {warning}" for warning in self.warnings]
            lines.append("")
        lines += _items_text(self.items)
        if self.vocabulary:
            lines.append("Vocabulary differences:")
            lines += [f"  {note}" for note in self.vocabulary]
            lines.append("")
        lines += [COUNTS_NOTE, ""]
        for title, part, noun in (
            ("Admissions", self.admissions, "kinds of admission"),
            ("In treatment", self.in_treatment, "kinds of in-treatment assessment"),
        ):
            lines.append(f"{title}: {part.changed:,} of {part.size:,} {noun} change")
            for change in part.changes:
                lines += _change_text(change, self.space)
            lines.append("")
        if self.population is not None:
            lines += _population_text(self.population)
        lines.append("Identical decisions everywhere." if self.identical else "The rule bases decide differently.")
        return "\n".join(lines)


def _same_label_text(name: str, version: str) -> str:
    return (
        f"the rule bases share name and version ({name} {version}) but not content "
        "(their sha256 differ): give the new one another version"
    )


def _items_text(items: Sequence[ItemChange]) -> list[str]:
    if not items:
        return ["No rule or other item changed.", ""]
    counts = {kind: sum(1 for i in items if i.change == kind) for kind in ("added", "removed", "changed")}
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n)
    lines = [f"Item changes ({summary}):"]
    for item in items:
        version = item.new or item.old
        where = version.file if version is not None else ""
        lines.append(f"  {item.label} {item.change}" + (f" ({where})" if where else ""))
        for side, version in (("old", item.old), ("new", item.new)):
            if version is None:
                continue
            for index, line in enumerate(version.lines):
                lines.append(f"    {side + ':' if index == 0 else '':<4} {line}")
    lines.append("")
    return lines


def _change_text(change: Change, space: DiffSpace) -> list[str]:
    head = f"  {change.old.text()} -> {change.new.text()}: {change.count:,}"
    single = len(change.causes) == 1
    if single:
        head += f", {change.causes[0].because()}"
    lines = [head]
    for cause in change.causes:
        indent = "    "
        if not single:
            lines.append(f"    {cause.because()}: {cause.count:,}")
            indent = "      "
        if cause.contexts:
            lines.append(f"{indent}where {'; '.join(c.text for c in cause.contexts)}, and:")
        for condition in cause.conditions[:SHOWN_CONDITIONS]:
            lines.append(f"{indent}{condition.text(space)}  ({condition.count:,})")
        hidden = len(cause.conditions) - SHOWN_CONDITIONS
        if hidden > 0:
            lines.append(f"{indent}... and {hidden} more conditions (see --json)")
    return lines


def _population_text(population: Population) -> list[str]:
    sides = [row.sides() for row in population.rows]
    old_width = max([len("old decision"), *(len(a) for a, _ in sides)])
    new_width = max([len("new decision"), *(len(b) for _, b in sides)])
    count_width = max([len("records"), *(len(f"{row.count:,}") for row in population.rows)])
    header = (
        f"  {'old decision':<{old_width}}  {'new decision':<{new_width}}  {'records':>{count_width}}  "
        f"{'changed':>{count_width}}  records (_id, or line)"
    )
    lines = [
        f"Population ({population.source}): {population.changed:,} of {population.records:,} records change",
        header,
    ]
    for row, (a, b) in zip(population.rows, sides, strict=True):
        shown = ", ".join(record.text() for record in row.records[:EXAMPLE_RECORDS])
        more = len(row.records) - EXAMPLE_RECORDS
        if more > 0:
            shown += f" and {more:,} more (see --json)"
        lines.append(
            f"  {a:<{old_width}}  {b:<{new_width}}  {row.count:>{count_width},}  {row.changed:>{count_width},}  {shown}"
        )
    lines.append("")
    return lines


# --- the space -------------------------------------------------------------------------


# --- deciding a whole space ----------------------------------------------------------------


def _decisions(rulebase: RuleBase, space: DiffSpace, currents: Sequence[str] | None) -> dict[Outcome, Node]:
    """Where one rule base makes each decision, for admissions (``currents`` None) or in treatment."""
    found = outcomes(Placement(rulebase), space.bdd, currents)
    return {
        Outcome(level, transition.value, "complete", flag): node for (level, transition, flag), node in found.items()
    }


def _changes(
    olds: Mapping[Outcome, Node], news: Mapping[Outcome, Node], space: Space
) -> Iterator[tuple[Outcome, Outcome, Node]]:
    """Each (old, new) pair of different decisions, and where it happens, in order."""
    for a in sorted(olds):
        for b in sorted(news):
            if a != b:
                space.clock.tick()
                both = olds[a] & news[b]
                if both != space.false:
                    yield a, b, both


# --- the diff ----------------------------------------------------------------------------------


def _load(location: str, side: str) -> RuleBase:
    try:
        return load(location)
    except RuleBaseError as error:
        raise DiffError([f"{side} rule base ({shorten(location)}): {p}" for p in error.problems]) from None


def diff(
    old: str | Path, new: str | Path, *, budget: float | None = DEFAULT_BUDGET, strict: bool = False
) -> RuleBaseDiff:
    """Compare two rule bases: item by item, then over every complete assessment.

    Args:
        old: The folder of the rule base in use.
        new: The folder of the proposed rule base.
        budget: Seconds the comparison may take (checked between its steps, so
            one step can run over); ``None`` for no limit.
        strict: Refuse two rule bases that share name and version but not
            content, instead of warning (:attr:`RuleBaseDiff.warnings`).

    Returns:
        The items added, removed and changed; every change of decision,
        admissions and in treatment, with exact counts, split by the changed
        items responsible and described by exact conditions.

    Raises:
        DiffError: a rule base does not load, or the two cannot be compared.
        SameLabel: with ``strict``, the content changed but name and version did not.
        DiffUnfinished: the comparison was not finished within ``budget``.
    """
    clock = Clock(budget)
    problems: list[str] = []
    rulebases: list[RuleBase] = []
    for location, side in ((old, "old"), (new, "new")):
        try:
            rulebases.append(_load(str(location), side))
        except DiffError as error:
            problems += error.problems
    if problems:
        raise DiffError(problems)
    old_rb, new_rb = rulebases
    same_label = same_label_other_content(old_rb, new_rb)
    if strict and same_label:
        info = new_rb.info
        raise SameLabel([_same_label_text(info.name, info.version)])
    items = item_changes(old_rb, new_rb)
    try:
        space = DiffSpace(old_rb, new_rb, clock)
        admissions = _part(space, old_rb, new_rb, items, None, space.clinical, space.size)
        if space.currents:
            names, size = space.treatment_names, space.size * space.situations
            treatment = _part(space, old_rb, new_rb, items, space.currents, names, size)
        else:
            treatment = Part(0, ())
    except OutOfTime:
        raise DiffUnfinished(clock.budget or 0.0) from None
    return RuleBaseDiff(
        old=_label(str(old), old_rb),
        new=_label(str(new), new_rb),
        items=items,
        same_label=same_label,
        vocabulary=tuple(space.notes),
        admissions=admissions,
        in_treatment=treatment,
        space=space,
        seconds=clock.elapsed(),
    )


def _label(location: str, rulebase: RuleBase) -> Label:
    info = rulebase.info
    return Label(location, info.name, info.version, info.sha256)


def _part(
    space: DiffSpace,
    old: RuleBase,
    new: RuleBase,
    items: Sequence[ItemChange],
    currents: Sequence[str] | None,
    names: Sequence[str],
    size: int,
) -> Part:
    """Every change over one space (admissions, or in treatment at ``currents``), attributed and described."""
    found = []
    olds, news = _decisions(old, space, currents), _decisions(new, space, currents)
    prints = footprints(space, old, new, items, currents)
    for a, b, region in _changes(olds, news, space.bdd):
        count = space.bdd.count(region, names)
        sides = ((a.level, a.emergency), (b.level, b.emergency))
        parts = causes(space, old, new, names, region, prints, sides, currents)
        found.append(Change(a, b, count, parts))
    return Part(size, tuple(found))


# --- a population of real assessments --------------------------------------------------------


def population(old: str | Path, new: str | Path, stream: IO[bytes], source: str) -> Population:
    """How the decisions of the assessments in a JSON Lines stream change, by (old, new) level and transition.

    Args:
        old: The folder of the rule base in use.
        new: The folder of the proposed rule base.
        stream: JSON Lines of assessments, as ``levelcare batch`` reads them
            (a record's ``_id`` names it in the table).
        source: How to name the stream in the report.

    Returns:
        The records per pair of decisions, each with its ``_id`` (or line number).
    """
    engines = Engine(load(str(old))), Engine(load(str(new)))
    counts: dict[_Key, list[int]] = {}
    found: dict[_Key, tuple[list[Record], list[Record]]] = {}
    invalid: list[tuple[int, str]] = []
    records = 0
    reader = _batch.LineReader(stream)
    for number, raw in reader:
        records += 1
        record = Record(number)
        try:
            facts, record_id = _line_facts(raw)
            record = Record(number, record_id)
        except _batch.InputError as error:
            invalid.append((number, "; ".join(str(p) for p in error.problems)))
            key: _Key = ("invalid", None, "invalid", None)
            changed = False
        else:
            sides: list[Outcome | None] = []
            messages = []
            for engine, side in zip(engines, ("old", "new"), strict=True):
                try:
                    sides.append(_outcome_of(engine, facts))
                except InvalidAssessment as error:
                    sides.append(None)
                    messages.append(f"invalid for the {side} rule base: " + "; ".join(str(p) for p in error.problems))
            if messages:
                invalid.append((number, "; ".join(messages)))
            key = (*_side_key(sides[0]), *_side_key(sides[1]))
            changed = sides[0] != sides[1]
        tally = counts.setdefault(key, [0, 0])
        tally[0] += 1
        tally[1] += changed
        found.setdefault(key, ([], []))[0 if changed else 1].append(record)
    reader.detach()  # the caller closes the stream

    def order(key: _Key) -> tuple[bool, int, tuple[str, str, str, str]]:
        return (counts[key][1] == 0, -counts[key][0], (key[0], key[1] or "", key[2], key[3] or ""))

    table = tuple(
        PopulationRow(
            old=key[0],
            new=key[2],
            count=counts[key][0],
            changed=counts[key][1],
            records=(*found[key][0], *found[key][1]),
            old_transition=key[1],
            new_transition=key[3],
        )
        for key in sorted(counts, key=order)
    )
    return Population(source, records, table, tuple(invalid))


#: A population row's key: old level and transition, new level and transition.
_Key = tuple[str, str | None, str, str | None]


def _outcome_of(engine: Engine, facts: Mapping[str, Any]) -> Outcome:
    decision = engine.decide(facts)
    return Outcome(
        None if decision.level is None else decision.level.id,
        None if decision.transition is None else decision.transition.value,
        decision.status,
        decision.emergency,
    )


def _side_key(outcome: Outcome | None) -> tuple[str, str | None]:
    if outcome is None:
        return "invalid", None
    if outcome.level is None:
        return outcome.status, None
    return outcome.level, outcome.transition


def _line_facts(raw: bytes | int) -> tuple[Mapping[str, Any], str | int | None]:
    """The facts and ``_id`` of one population line, as :class:`levelcare._batch.LineReader` gives it.

    Raises:
        _batch.InputError: the line is too long (``raw`` is then its length) or not a JSON object of facts.
    """
    if isinstance(raw, int):
        msg = f"{raw} bytes long, more than the limit for one assessment"
        raise _batch.InputError([_problem(msg)])
    return _batch.parse_facts_and_id(raw)


def _problem(message: str) -> AssessmentProblem:
    return AssessmentProblem("", message)
