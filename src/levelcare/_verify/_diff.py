"""The exact semantic difference between two rule bases: ``levelcare diff``.

Both rule bases are decided over the same *space* of complete assessments:

* admissions: every combination of the clinical facts' cells (each finite
  fact's values; each integer's range cut at every threshold either rule base
  mentions, one cell standing for a whole interval);
* in treatment: every admission combined with every current level and every
  combination of the progress facts' cells.

A set of clinical combinations is a Python integer used as a bit set, as in the
verifier. The in-treatment space is handled as one clinical bit set per
*situation* (a current level and the progress facts' cells), because the
mechanism of :class:`~levelcare._semantics.Placement` reads the progress facts
as fixed values there and the clinical facts as bit sets. Every count is
exact: it is the number of cells in the union of both rule bases' cells.

Each change (old outcome, new outcome) is described by a cover of its region
with *cubes*: one set of cells per fact. The cover is greedy: from the first
combination not yet covered, each fact's set is widened, one value at a time,
for as long as the whole cube stays inside the change, so every cube is
maximal and together they cover the change exactly (cubes may overlap).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from .._engine import Engine, _batch
from .._model import Transition
from .._rulebase import RuleBase, load
from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import CURRENT_LEVEL, Fact, shorten
from .._semantics import Placement
from ..exceptions import AssessmentProblem, InvalidAssessment, RuleBaseError

__all__ = ["DiffError", "Outcome", "RuleBaseDiff", "diff", "diff_command"]

#: Above this many clinical combinations, or situations in treatment, the diff refuses.
MAX_COMBINATIONS = 4_000_000
MAX_SITUATIONS = 200_000
#: How many example line numbers the population table keeps per row.
EXAMPLE_LINES = 5
#: How many conditions the text report prints per change (the JSON has them all).
SHOWN_CONDITIONS = 12


class DiffError(Exception):
    """Two rule bases that cannot be compared; every problem is listed."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


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
    """The cells of both rule bases' facts, and clinical combinations as bit sets."""

    def __init__(self, old: RuleBase, new: RuleBase) -> None:
        self.notes: list[str] = []
        problems: list[str] = []
        self.kind: dict[str, str] = {}
        self._high: dict[str, int] = {}
        self.cells: dict[str, tuple[Any, ...]] = {}
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
        self.stride: dict[str, int] = {}
        size = 1
        for name in self.clinical:
            self.stride[name] = size
            size *= len(self.cells[name])
        self.size = size
        self.full = (1 << size) - 1
        situations = len(self.currents)
        for name in self.progress:
            situations *= len(self.cells[name])
        if size > MAX_COMBINATIONS or situations > MAX_SITUATIONS:
            msg = (
                f"the space is too large to compare exhaustively ({size:,} clinical combinations, "
                f"{situations:,} in-treatment situations; limits {MAX_COMBINATIONS:,} and {MAX_SITUATIONS:,})"
            )
            raise DiffError([msg])
        self._masks: dict[tuple[str, frozenset[int]], int] = {}
        self._atoms: dict[tuple[cond.Atom, tuple[tuple[str, Any], ...]], int] = {}

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
                self._domain(name, present, present, [old, new])
                continue
            if a.kind != b.kind:
                problems.append(f"fact {name!r} is {a.kind} in the old rule base and {b.kind} in the new one")
                continue
            self._domain(name, a, b, [old, new])
            if name in self.cells and not self.cells[name]:
                problems.append(f"fact {name!r} has no value both rule bases accept")
        return tuple(n for n in names if n in self.cells)

    def _domain(self, name: str, a: Fact, b: Fact, rulebases: list[RuleBase]) -> None:
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
            cuts = {low}
            for rulebase in rulebases:
                for condition in _level_conditions(rulebase):
                    for atom in cond.atoms(condition):
                        if isinstance(atom, cond.RangeAtom) and atom.fact == name:
                            for start, end in atom.intervals:
                                cuts.update(c for c in (start, end + 1) if low < c <= high)
            self.cells[name] = tuple(sorted(cuts))
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

    # --- bit sets of clinical combinations

    def mask(self, name: str, positions: frozenset[int]) -> int:
        """The clinical combinations whose cell of ``name`` is one of ``positions``."""
        key = (name, positions)
        found = self._masks.get(key)
        if found is None:
            stride, radix = self.stride[name], len(self.cells[name])
            block = sum(((1 << stride) - 1) << (p * stride) for p in positions)
            period = stride * radix
            count = self.size // period
            found = block * (((1 << (period * count)) - 1) // ((1 << period) - 1))
            self._masks[key] = found
        return found

    def cube_mask(self, sets: Mapping[str, frozenset[int]]) -> int:
        result = self.full
        for name, positions in sets.items():
            if len(positions) != len(self.cells[name]):
                result &= self.mask(name, positions)
        return result

    def evaluate(self, condition: cond.Condition, fixed: Mapping[str, Any]) -> int:
        """The clinical combinations where ``condition`` holds, the other facts at ``fixed``."""
        if isinstance(condition, cond.All):
            result = self.full
            for item in condition.items:
                result &= self.evaluate(item, fixed)
                if not result:
                    break
            return result
        if isinstance(condition, cond.Any_):
            result = 0
            for item in condition.items:
                result |= self.evaluate(item, fixed)
                if result == self.full:
                    break
            return result
        if isinstance(condition, (cond.ValueAtom, cond.RangeAtom)):
            if condition.fact in self.stride:
                key = (condition, ())
                found = self._atoms.get(key)
                if found is None:
                    cells = self.cells[condition.fact]
                    positions = frozenset(
                        i for i, v in enumerate(cells) if cond.atom_holds(condition, {condition.fact: v}, {})
                    )
                    found = self.mask(condition.fact, positions)
                    self._atoms[key] = found
                return found
            return self.full if cond.atom_holds(condition, fixed, {}) else 0
        msg = f"condition {condition!r} cannot appear in a level or transition rule"
        raise AssertionError(msg)  # pragma: no cover - the loader rejects it

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


def _level_conditions(rulebase: RuleBase) -> Iterator[cond.Condition]:
    yield from (r.when for r in rulebase.criteria)
    yield from (e.when for e in rulebase.escalations)
    yield from (e.when for e in rulebase.emergencies)
    yield from (s.when for r in rulebase.readiness for s in r.signs)


# --- deciding a whole space ----------------------------------------------------------------

Regions = dict[tuple[Outcome, Outcome], dict[tuple[int, ...], int]]


class _Decider:
    """One rule base's decisions over the space, as clinical bit sets."""

    def __init__(self, rulebase: RuleBase, space: _Space) -> None:
        self.rulebase = rulebase
        self.space = space
        self.placement = Placement(rulebase)
        levels = rulebase.levels
        self.criteria = [self._any(r.when for r in self.placement.criteria_at_least(level)) for level in levels]
        self.emergency = self._any(e.when for e in rulebase.emergencies)

    def _any(self, conditions: Iterable[cond.Condition], fixed: Mapping[str, Any] | None = None) -> int:
        result = 0
        for condition in conditions:
            result |= self.space.evaluate(condition, fixed or {})
        return result

    def outcomes(self, current: str | None, fixed: Mapping[str, Any]) -> list[tuple[Outcome, int]]:
        """Each outcome and the clinical combinations that get it, in one situation."""
        levels = self.rulebase.levels
        at_least = list(self.criteria)
        at_least[0] = self.space.full
        here = levels[current] if current is not None else None
        if here is not None:
            for level in levels[1:]:
                parts = self.placement.parts(here, level)
                at_least[level.rank] |= self._any((c for _, c in parts), fixed)
            # "At least k" for a higher k implies it for every lower one.
            for rank in range(len(levels) - 2, 0, -1):
                at_least[rank] |= at_least[rank + 1]
        found: list[tuple[Outcome, int]] = []
        for level in levels:
            above = at_least[level.rank + 1] if level.rank + 1 < len(levels) else 0
            exactly = at_least[level.rank] & ~above & self.space.full
            if not exactly:
                continue
            if here is None:
                transition = Transition.ADMIT
            elif level > here:
                transition = Transition.STEP_UP
            elif level < here:
                transition = Transition.STEP_DOWN
            else:
                transition = Transition.CONTINUE
            for emergency, mask in ((True, exactly & self.emergency), (False, exactly & ~self.emergency)):
                if mask:
                    found.append((Outcome(level.id, transition.value, "complete", emergency), mask))
        return found


def _regions(
    old: _Decider, new: _Decider, current: str | None, fixed: Mapping[str, Any]
) -> Iterator[tuple[Outcome, Outcome, int]]:
    news = new.outcomes(current, fixed)
    for a, mask_a in old.outcomes(current, fixed):
        for b, mask_b in news:
            if a != b:
                both = mask_a & mask_b
                if both:
                    yield a, b, both


# --- covering a change with cubes ------------------------------------------------------------


class _Cover:
    """Greedy cover of one change: situations (current level, progress cells) x clinical bit sets."""

    def __init__(
        self,
        space: _Space,
        situation_facts: Sequence[str],
        domains: Sequence[int],
        region: Mapping[tuple[int, ...], int],
    ) -> None:
        self.space = space
        self.names = tuple(situation_facts)
        self.domains = tuple(domains)
        self.region = dict(region)

    def cubes(self) -> list[Cube]:
        uncovered = dict(self.region)
        grown: list[tuple[Cube, list[tuple[int, ...]], int]] = []
        for situation in sorted(self.region):
            while uncovered.get(situation):
                rest = uncovered[situation]
                seed = (rest & -rest).bit_length() - 1
                grown.append(self._grow(situation, seed, uncovered))
        # A later cube can cover an earlier one together with the rest: drop such
        # cubes, last first, so the cover stays exact with fewer conditions.
        kept = list(range(len(grown)))
        for index in reversed(range(len(grown))):
            _, situations, mask = grown[index]
            others = [grown[i] for i in kept if i != index]
            if all(mask & ~_union(others, s) == 0 for s in situations):
                kept.remove(index)
        return [grown[i][0] for i in kept]

    def _grow(
        self, situation: tuple[int, ...], seed: int, uncovered: dict[tuple[int, ...], int]
    ) -> tuple[Cube, list[tuple[int, ...]], int]:
        space, region = self.space, self.region
        clinical = {name: frozenset({(seed // space.stride[name]) % len(space.cells[name])}) for name in space.clinical}
        where = [frozenset({p}) for p in situation]

        def situations(sets: Sequence[frozenset[int]]) -> Iterator[tuple[int, ...]]:
            return itertools.product(*(sorted(s) for s in sets))

        # The situation facts first: a cube then reads "in these situations, for
        # these clinical facts", which is how a policy change is usually stated.
        cube = space.cube_mask(clinical)
        for index, domain in enumerate(self.domains):
            for value in _widening(next(iter(where[index])), domain):
                trial = list(where)
                trial[index] = frozenset({value})
                if all(cube & ~region.get(s, 0) == 0 for s in situations(trial)):
                    where[index] = where[index] | {value}
        inside = space.full
        for s in situations(where):
            inside &= region.get(s, 0)
        for name in space.clinical:
            others = space.cube_mask({n: p for n, p in clinical.items() if n != name})
            for value in _widening(next(iter(clinical[name])), len(space.cells[name])):
                slab = others & space.mask(name, frozenset({value}))
                if slab & ~inside == 0:
                    clinical[name] = clinical[name] | {value}
        cube = space.cube_mask(clinical)
        members = list(situations(where))
        for s in members:
            uncovered[s] = uncovered.get(s, 0) & ~cube
        facts: list[tuple[str, tuple[Any, ...]]] = []
        for index, name in enumerate(self.names):
            if len(where[index]) != self.domains[index]:
                facts.append((name, tuple(self._situation_value(index, p) for p in sorted(where[index]))))
        for name in space.clinical:
            if len(clinical[name]) != len(space.cells[name]):
                facts.append((name, tuple(space.cells[name][p] for p in sorted(clinical[name]))))
        return Cube(tuple(facts), cube.bit_count() * len(members)), members, cube

    def _situation_value(self, index: int, position: int) -> Any:
        name = self.names[index]
        if name == CURRENT_LEVEL:
            return self.space.currents[position]
        return self.space.cells[name][position]


def _union(cubes: Iterable[tuple[Cube, list[tuple[int, ...]], int]], situation: tuple[int, ...]) -> int:
    found = 0
    for _, situations, mask in cubes:
        if situation in situations:
            found |= mask
    return found


def _widening(start: int, size: int) -> list[int]:
    """The other positions of a domain, nearest to ``start`` first (lower before higher)."""
    return sorted((p for p in range(size) if p != start), key=lambda p: (abs(p - start), p))


# --- the diff ----------------------------------------------------------------------------------


def _load(location: str, side: str) -> RuleBase:
    try:
        return load(location)
    except RuleBaseError as error:
        raise DiffError([f"{side} rule base ({shorten(location)}): {p}" for p in error.problems]) from None


def diff(old: str | Path, new: str | Path) -> RuleBaseDiff:
    """Compare two rule bases over every complete assessment.

    Args:
        old: The folder of the rule base in use.
        new: The folder of the proposed rule base.

    Returns:
        Every change of decision, admissions and in treatment, with exact counts.

    Raises:
        DiffError: a rule base does not load, or the two cannot be compared.
    """
    started = time.perf_counter()
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
    space = _Space(old_rb, new_rb)
    deciders = _Decider(old_rb, space), _Decider(new_rb, space)

    admissions: Regions = {}
    for a, b, mask in _regions(*deciders, None, {}):
        admissions.setdefault((a, b), {})[()] = mask
    admission_part = _part(space, admissions, [], [], space.size)

    treatment: Regions = {}
    names = [CURRENT_LEVEL, *space.progress] if space.currents else []
    domains = [len(space.currents)] + [len(space.cells[n]) for n in space.progress] if space.currents else []
    for situation in itertools.product(*(range(d) for d in domains)) if domains else ():
        current = space.currents[situation[0]]
        fixed = {name: space.cells[name][p] for name, p in zip(space.progress, situation[1:], strict=True)}
        for a, b, mask in _regions(*deciders, current, fixed):
            treatment.setdefault((a, b), {})[situation] = mask
    situations = 1
    for d in domains:
        situations *= d
    treatment_part = _part(space, treatment, names, domains, space.size * situations if domains else 0)
    return RuleBaseDiff(
        old=str(old),
        new=str(new),
        old_name=_name(old_rb),
        new_name=_name(new_rb),
        vocabulary=tuple(space.notes),
        admissions=admission_part,
        in_treatment=treatment_part,
        space=space,
        seconds=time.perf_counter() - started,
    )


def _name(rulebase: RuleBase) -> str:
    info = rulebase.info
    return f"{info.name} {info.version}, sha256 {info.sha256}"


def _part(space: _Space, regions: Regions, names: Sequence[str], domains: Sequence[int], size: int) -> Part:
    changes = []
    for (a, b), region in sorted(regions.items(), key=lambda item: (item[0][0], item[0][1])):
        count = sum(mask.bit_count() for mask in region.values())
        cubes = _Cover(space, names, domains, region).cubes()
        changes.append(Change(a, b, count, tuple(cubes)))
    return Part(size, tuple(changes))


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


# --- the command ---------------------------------------------------------------------------------

EXIT_SAME = 0
EXIT_DIFFERENT = 1
EXIT_BAD_INPUT = 2


def diff_command(old: str, new: str, population_file: str | None, as_json: bool, out: IO[str], err: IO[str]) -> int:
    """``levelcare diff OLD NEW [--population FILE] [--json]``.

    Returns:
        0 when the rule bases decide identically everywhere, 1 when they
        differ, 2 for input that cannot be compared (every problem is printed).
    """
    try:
        result = diff(old, new)
    except DiffError as error:
        for problem in error.problems:
            print(f"levelcare diff: {problem}", file=err)
        return EXIT_BAD_INPUT
    if population_file is not None:
        try:
            with open(population_file, "rb") as stream:
                people = population(old, new, stream, population_file)
        except OSError as error:
            print(f"levelcare diff: {population_file}: cannot read the file: {error.strerror or error}", file=err)
            return EXIT_BAD_INPUT
        result = attrs.evolve(result, population=people)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True, ensure_ascii=False), file=out)
    else:
        print(result.render(), file=out)
    if result.population is not None and result.population.invalid:
        for number, message in result.population.invalid:
            print(f"levelcare diff: {result.population.source}: line {number}: {message}", file=err)
        return EXIT_BAD_INPUT
    return EXIT_SAME if result.identical else EXIT_DIFFERENT
