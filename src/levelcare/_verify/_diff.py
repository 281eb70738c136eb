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

Each change (old outcome, new outcome) is described by a cover of its region
with *cubes*: one set of cells per fact. The cover is greedy: from the
lowest combination not yet covered, each fact's set is widened, one value at a
time, for as long as the whole cube stays inside the change, so every cube is
maximal and together they cover the change exactly (cubes may overlap).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from .. import _batch
from .._engine import Engine
from .._model import Transition
from .._rulebase import RuleBase, load
from .._rulebase._vocabulary import CURRENT_LEVEL, Fact, shorten
from .._semantics import Placement
from .._semantics._mdd import integer_cuts
from ..exceptions import AssessmentProblem, InvalidAssessment, LevelCareError, RuleBaseError
from ._space import Clock, Node, OutOfTime, Space
from ._thresholds import outcomes

__all__ = ["DiffError", "DiffUnfinished", "Outcome", "RuleBaseDiff", "diff", "population"]

#: The time budget of ``levelcare diff`` and :func:`diff` when none is given, in seconds.
DEFAULT_BUDGET = 600.0
#: How many example line numbers the population table keeps per row.
EXAMPLE_LINES = 5
#: How many conditions the text report prints per change (the JSON has them all).
SHOWN_CONDITIONS = 12


class DiffError(LevelCareError):
    """Two rule bases that cannot be compared; every problem is listed."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


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
class Cube:
    """A readable condition: each named fact takes one of its listed cells."""

    facts: tuple[tuple[str, tuple[Any, ...]], ...]
    count: int

    def to_dict(self, space: _Space) -> dict[str, Any]:
        when: dict[str, Any] = {}
        for name, values in self.facts:
            if space.kind[name] == "integer":
                when[name] = [list(interval) for interval in space.intervals(name, values)]
            else:
                when[name] = list(values)
        return {"when": when, "count": self.count, "text": self.text(space)}

    def text(self, space: _Space) -> str:
        if not self.facts:
            return "(every assessment)"
        return ", ".join(space.describe(name, values) for name, values in self.facts)


@attrs.frozen
class Change:
    old: Outcome
    new: Outcome
    count: int
    cubes: tuple[Cube, ...]

    def to_dict(self, space: _Space) -> dict[str, Any]:
        return {
            "from": self.old.to_dict(),
            "to": self.new.to_dict(),
            "count": self.count,
            "conditions": [c.to_dict(space) for c in self.cubes],
        }


@attrs.frozen
class Part:
    """The changes over one space (admissions or in treatment)."""

    size: int
    changes: tuple[Change, ...]

    @property
    def changed(self) -> int:
        return sum(c.count for c in self.changes)

    def to_dict(self, space: _Space) -> dict[str, Any]:
        return {"size": self.size, "changed": self.changed, "changes": [c.to_dict(space) for c in self.changes]}


@attrs.frozen
class PopulationRow:
    """The records one (old level, new level) pair holds.

    A side is a level id, ``data-required`` or ``invalid``; ``changed`` counts
    the records whose decision differs in any way (level, transition, status or
    emergency), and ``lines`` gives example line numbers, changed ones first.
    """

    old: str
    new: str
    count: int
    changed: int
    lines: tuple[int, ...]


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
                {"from": r.old, "to": r.new, "count": r.count, "changed": r.changed, "lines": list(r.lines)}
                for r in self.rows
            ],
            "invalid": [{"line": n, "message": m} for n, m in self.invalid],
        }


@attrs.frozen
class RuleBaseDiff:
    """The result of :func:`diff`."""

    old: str
    new: str
    old_name: str
    new_name: str
    vocabulary: tuple[str, ...]
    admissions: Part
    in_treatment: Part
    space: _Space = attrs.field(repr=False, eq=False)
    seconds: float = attrs.field(default=0.0, eq=False)
    population: Population | None = None

    def with_population(self, population: Population) -> RuleBaseDiff:
        """This diff with the impact table of a population of real assessments."""
        return attrs.evolve(self, population=population)

    @property
    def identical(self) -> bool:
        changed = self.admissions.changed or self.in_treatment.changed or self.vocabulary
        return not changed and (self.population is None or not self.population.changed)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "old": {"location": self.old, "rulebase": self.old_name},
            "new": {"location": self.new, "rulebase": self.new_name},
            "identical": self.identical,
            "vocabulary": list(self.vocabulary),
            "admissions": self.admissions.to_dict(self.space),
            "in_treatment": self.in_treatment.to_dict(self.space),
        }
        if self.population is not None:
            data["population"] = self.population.to_dict()
        return data

    def render(self) -> str:
        lines = [f"Old: {self.old} ({self.old_name})", f"New: {self.new} ({self.new_name})", ""]
        if self.vocabulary:
            lines.append("Vocabulary differences:")
            lines += [f"  {note}" for note in self.vocabulary]
            lines.append("")
        for title, part, noun in (
            ("Admissions", self.admissions, "admissions"),
            ("In treatment", self.in_treatment, "in-treatment assessments"),
        ):
            lines.append(f"{title}: {part.changed:,} of {part.size:,} {noun} change")
            for change in part.changes:
                lines.append(f"  {change.old.text()} -> {change.new.text()}: {change.count:,}")
                for cube in change.cubes[:SHOWN_CONDITIONS]:
                    lines.append(f"    {cube.text(self.space)}  ({cube.count:,})")
                hidden = len(change.cubes) - SHOWN_CONDITIONS
                if hidden > 0:
                    lines.append(f"    ... and {hidden} more conditions (see --json)")
            lines.append("")
        if self.population is not None:
            lines += _population_text(self.population)
        lines.append("Identical decisions everywhere." if self.identical else "The rule bases decide differently.")
        return "\n".join(lines)


def _population_text(population: Population) -> list[str]:
    lines = [
        f"Population ({population.source}): {population.changed:,} of {population.records:,} records change",
        f"  {'old level':<15} {'new level':<15} {'records':>8} {'changed':>8}  example lines",
    ]
    for row in population.rows:
        examples = ", ".join(str(n) for n in row.lines)
        lines.append(f"  {row.old:<15} {row.new:<15} {row.count:>8,} {row.changed:>8,}  {examples}")
    lines.append("")
    return lines


# --- the space -------------------------------------------------------------------------


class _Space:
    """The cells of both rule bases' facts, and the diagrams both are decided over."""

    def __init__(self, old: RuleBase, new: RuleBase, clock: Clock) -> None:
        self.notes: list[str] = []
        problems: list[str] = []
        self.kind: dict[str, str] = {}
        self._high: dict[str, int] = {}
        self.cells: dict[str, tuple[Any, ...]] = {}
        self._deciding = [Placement(old).deciding_conditions(), Placement(new).deciding_conditions()]
        self.clinical = self._facts(old, new, "clinical", problems)
        progress = self._facts(old, new, "progress", problems)
        self.progress = tuple(n for n in progress if n != CURRENT_LEVEL)
        common = [lid for lid in old.levels.ids if lid in new.levels.ids]
        self.in_treatment = CURRENT_LEVEL in old.vocabulary and CURRENT_LEVEL in new.vocabulary
        if (CURRENT_LEVEL in old.vocabulary) != (CURRENT_LEVEL in new.vocabulary):
            self.notes.append(f"{CURRENT_LEVEL!r} is only in one rule base: no in-treatment assessments are compared")
        if old.levels.ids != new.levels.ids:
            self.notes.append(
                f"levels differ: old {', '.join(old.levels.ids)}; new {', '.join(new.levels.ids)}; "
                f"in treatment only current levels both declare are compared"
            )
        self.currents = tuple(common) if self.in_treatment else ()
        if problems:
            raise DiffError(problems)
        self.size = _product(len(self.cells[n]) for n in self.clinical)
        self.situations = len(self.currents) * _product(len(self.cells[n]) for n in self.progress)
        # The situation facts come first in a cube's words: "in these situations,
        # for these clinical facts", which is how a policy change is usually stated.
        self.treatment_names = (CURRENT_LEVEL, *self.progress, *self.clinical) if self.currents else ()
        cells: dict[str, Sequence[Any]] = {n: self.cells[n] for n in self.clinical}
        if self.currents:
            cells[CURRENT_LEVEL] = self.currents
            cells.update({n: self.cells[n] for n in self.progress})
        self.bdd = Space(cells, clock)

    def _facts(self, old: RuleBase, new: RuleBase, group: str, problems: list[str]) -> tuple[str, ...]:
        olds = {f.name: f for f in old.vocabulary.group(group)}
        news = {f.name: f for f in new.vocabulary.group(group)}
        names = [*olds, *(n for n in news if n not in olds)]
        for name in names:
            a, b = olds.get(name), news.get(name)
            if a is None or b is None:
                present = a or b
                assert present is not None
                side = "old" if b is None else "new"
                other = new if b is None else old
                if name in other.vocabulary:
                    problems.append(
                        f"fact {name!r} is {group} in the {side} rule base and {other.vocabulary[name].group} in the "
                        f"other; give it the same group in both"
                    )
                    continue
                self.notes.append(f"{group} fact {name!r} is only in the {side} rule base")
                self._domain(name, present, present)
                continue
            if a.kind != b.kind:
                problems.append(f"fact {name!r} is {a.kind} in the old rule base and {b.kind} in the new one")
                continue
            self._domain(name, a, b)
            if name in self.cells and not self.cells[name]:
                problems.append(f"fact {name!r} has no value both rule bases accept")
        return tuple(n for n in names if n in self.cells)

    def _domain(self, name: str, a: Fact, b: Fact) -> None:
        self.kind[name] = a.kind
        if a.kind == "integer":
            low = max(a.minimum or 0, b.minimum or 0)
            high = min(a.maximum or 0, b.maximum or 0)
            if (a.minimum, a.maximum) != (b.minimum, b.maximum):
                self.notes.append(
                    f"{name}: old range {a.minimum}..{a.maximum}, new {b.minimum}..{b.maximum}; "
                    f"compared over {low}..{high}"
                )
            if low > high:
                self.cells[name] = ()
                return
            # Cut at every threshold either rule base's mechanism reads.
            self.cells[name] = integer_cuts(name, low, high, [c for side in self._deciding for c in side])
            self._high[name] = high
            return
        values = tuple(v for v in a.values if any(v == w and type(v) is type(w) for w in b.values))
        if values != a.values or values != b.values:
            only_old = [v for v in a.values if v not in values]
            only_new = [v for v in b.values if v not in values]
            detail = []
            if only_old:
                detail.append("only old accepts " + ", ".join(_value(v) for v in only_old))
            if only_new:
                detail.append("only new accepts " + ", ".join(_value(v) for v in only_new))
            if a.values != b.values and not only_old and not only_new:
                detail.append("the need order differs")
            self.notes.append(f"{name}: {'; '.join(detail)}; compared over the values both accept")
        self.cells[name] = values

    def value(self, name: str, position: int) -> Any:
        """The value (an integer's interval start, a current level's id) of a cell of the diagrams."""
        return self.currents[position] if name == CURRENT_LEVEL else self.cells[name][position]

    # --- words

    def intervals(self, name: str, positions: Iterable[Any]) -> list[tuple[int, int]]:
        cells = self.cells[name]
        high = self._high[name]
        found: list[tuple[int, int]] = []
        for start in sorted(positions):
            index = cells.index(start)
            end = cells[index + 1] - 1 if index + 1 < len(cells) else high
            if found and found[-1][1] + 1 == start:
                found[-1] = (found[-1][0], end)
            else:
                found.append((start, end))
        return found

    def describe(self, name: str, values: tuple[Any, ...]) -> str:
        if self.kind[name] == "integer":
            cells, high = self.cells[name], self._high[name]
            parts = []
            for lo, hi in self.intervals(name, values):
                if lo == hi:
                    parts.append(f"{name}={lo}")
                elif lo == cells[0]:
                    parts.append(f"{name}<={hi}")
                elif hi == high:
                    parts.append(f"{name}>={lo}")
                else:
                    parts.append(f"{name}={lo}..{hi}")
            return " or ".join(parts) if len(parts) == 1 else "(" + " or ".join(parts) + ")"
        domain = self.cells[name]
        if len(values) == 1:
            return f"{name}={_value(values[0])}"
        positions = sorted(domain.index(v) for v in values)
        contiguous = positions == list(range(positions[0], positions[-1] + 1))
        if contiguous and self.kind[name] == "ordinal":
            if positions[0] == 0:
                return f"{name}<={_value(domain[positions[-1]])}"
            if positions[-1] == len(domain) - 1:
                return f"{name}>={_value(domain[positions[0]])}"
        return f"{name} in {{{', '.join(_value(v) for v in values)}}}"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _product(sizes: Iterable[int]) -> int:
    result = 1
    for size in sizes:
        result *= size
    return result


# --- deciding a whole space ----------------------------------------------------------------


def _decisions(rulebase: RuleBase, space: _Space, currents: Sequence[str] | None) -> dict[Outcome, Node]:
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


# --- covering a change with cubes ------------------------------------------------------------


class _Cover:
    """Greedy cover of one change's region by cubes over ``names`` (situation facts first)."""

    def __init__(self, space: _Space, names: Sequence[str], region: Node) -> None:
        self.space = space
        self.bdd = space.bdd
        self.names = tuple(names)
        self.region = region
        self.outside = ~region & self.bdd.domain(self.names)
        # Seeds are the lowest combinations left, the situation facts counting
        # most, then the clinical facts from the last to the first.
        situation = [n for n in self.names if n not in space.clinical]
        self.seed_order = (*situation, *reversed([n for n in self.names if n in space.clinical]))

    def cubes(self) -> list[Cube]:
        bdd = self.bdd
        uncovered = self.region & bdd.domain(self.names)
        grown: list[tuple[Cube, Node]] = []
        while uncovered != bdd.false:
            bdd.clock.tick()
            seed = bdd.lowest(uncovered, self.seed_order)
            cube, node = self._grow(seed)
            grown.append((cube, node))
            uncovered &= ~node
        # A later cube can cover an earlier one together with the rest: drop such
        # cubes, last first, so the cover stays exact with fewer conditions.
        kept = list(range(len(grown)))
        for index in reversed(range(len(grown))):
            bdd.clock.tick()
            others = bdd.false
            for i in kept:
                if i != index:
                    others |= grown[i][1]
            if grown[index][1] & ~others == bdd.false:
                kept.remove(index)
        return [grown[i][0] for i in kept]

    def _grow(self, seed: Mapping[str, int]) -> tuple[Cube, Node]:
        """The cube grown from one combination: each fact in turn widened, nearest values first."""
        bdd, names = self.bdd, self.names
        sets = {name: {seed[name]} for name in names}
        # The facts after the one being widened still hold their seed's cell.
        after: list[Node] = [bdd.true] * (len(names) + 1)
        for index in reversed(range(len(names))):
            after[index] = after[index + 1] & bdd.cell(names[index], seed[names[index]])
        before = bdd.true
        for index, name in enumerate(names):
            others = before & after[index + 1]
            for value in _widening(seed[name], len(bdd.cells[name])):
                bdd.clock.tick()
                if others & bdd.cell(name, value) & self.outside == bdd.false:
                    sets[name].add(value)
            before &= bdd.cube({name: sets[name]})
        facts: list[tuple[str, tuple[Any, ...]]] = []
        count = 1
        for name in names:
            count *= len(sets[name])
            if len(sets[name]) != len(bdd.cells[name]):
                facts.append((name, tuple(self.space.value(name, p) for p in sorted(sets[name]))))
        return Cube(tuple(facts), count), before


def _widening(start: int, size: int) -> list[int]:
    """The other positions of a domain, nearest to ``start`` first (lower before higher)."""
    return sorted((p for p in range(size) if p != start), key=lambda p: (abs(p - start), p))


# --- the diff ----------------------------------------------------------------------------------


def _load(location: str, side: str) -> RuleBase:
    try:
        return load(location)
    except RuleBaseError as error:
        raise DiffError([f"{side} rule base ({shorten(location)}): {p}" for p in error.problems]) from None


def diff(old: str | Path, new: str | Path, *, budget: float | None = DEFAULT_BUDGET) -> RuleBaseDiff:
    """Compare two rule bases over every complete assessment.

    Args:
        old: The folder of the rule base in use.
        new: The folder of the proposed rule base.
        budget: Seconds the comparison may take (checked between its steps, so
            one step can run over); ``None`` for no limit.

    Returns:
        Every change of decision, admissions and in treatment, with exact counts.

    Raises:
        DiffError: a rule base does not load, or the two cannot be compared.
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
    try:
        space = _Space(old_rb, new_rb, clock)
        admissions = _part(space, old_rb, new_rb, None, space.clinical, space.size)
        if space.currents:
            names, size = space.treatment_names, space.size * space.situations
            treatment = _part(space, old_rb, new_rb, space.currents, names, size)
        else:
            treatment = Part(0, ())
    except OutOfTime:
        raise DiffUnfinished(clock.budget or 0.0) from None
    return RuleBaseDiff(
        old=str(old),
        new=str(new),
        old_name=_name(old_rb),
        new_name=_name(new_rb),
        vocabulary=tuple(space.notes),
        admissions=admissions,
        in_treatment=treatment,
        space=space,
        seconds=clock.elapsed(),
    )


def _name(rulebase: RuleBase) -> str:
    info = rulebase.info
    return f"{info.name} {info.version}, sha256 {info.sha256}"


def _part(
    space: _Space, old: RuleBase, new: RuleBase, currents: Sequence[str] | None, names: Sequence[str], size: int
) -> Part:
    """Every change over one space (admissions, or in treatment at ``currents``), covered by cubes."""
    found = []
    olds, news = _decisions(old, space, currents), _decisions(new, space, currents)
    for a, b, region in _changes(olds, news, space.bdd):
        count = space.bdd.count(region, names)
        cubes = _Cover(space, names, region).cubes()
        found.append(Change(a, b, count, tuple(cubes)))
    return Part(size, tuple(found))


# --- a population of real assessments --------------------------------------------------------


def population(old: str | Path, new: str | Path, stream: IO[bytes], source: str) -> Population:
    """How the decisions of the assessments in a JSON Lines stream change, by (old, new) level."""
    engines = Engine(load(str(old))), Engine(load(str(new)))
    counts: dict[tuple[str, str], list[int]] = {}
    examples: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    invalid: list[tuple[int, str]] = []
    records = 0
    reader = _batch.LineReader(stream)
    for number, raw in reader:
        records += 1
        try:
            if isinstance(raw, int):
                msg = f"{raw} bytes long, more than the limit for one assessment"
                raise _batch.InputError([_problem(msg)])
            facts = _batch.parse_facts(raw)
        except _batch.InputError as error:
            invalid.append((number, "; ".join(str(p) for p in error.problems)))
            key, changed = ("invalid", "invalid"), False
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
            key = (_side_name(sides[0]), _side_name(sides[1]))
            changed = sides[0] != sides[1]
        tally = counts.setdefault(key, [0, 0])
        tally[0] += 1
        tally[1] += changed
        kept = examples.setdefault(key, ([], []))[0 if changed else 1]
        if len(kept) < EXAMPLE_LINES:
            kept.append(number)
    reader.detach()  # the caller closes the stream

    def order(key: tuple[str, str]) -> tuple[bool, int, tuple[str, str]]:
        return (counts[key][1] == 0, -counts[key][0], key)

    table = tuple(
        PopulationRow(
            key[0],
            key[1],
            counts[key][0],
            counts[key][1],
            tuple([*examples[key][0], *examples[key][1]][:EXAMPLE_LINES]),
        )
        for key in sorted(counts, key=order)
    )
    return Population(source, records, table, tuple(invalid))


def _outcome_of(engine: Engine, facts: Mapping[str, Any]) -> Outcome:
    decision = engine.decide(facts)
    return Outcome(
        None if decision.level is None else decision.level.id,
        None if decision.transition is None else decision.transition.value,
        decision.status,
        decision.emergency,
    )


def _side_name(outcome: Outcome | None) -> str:
    if outcome is None:
        return "invalid"
    return outcome.status if outcome.level is None else outcome.level


def _problem(message: str) -> AssessmentProblem:
    return AssessmentProblem("", message)
