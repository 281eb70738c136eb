"""The cells a diff compares two rule bases over: every fact both declare, cut where either reads it.

An integer fact is cut at every threshold either rule base's mechanism reads; an
ordinal or boolean fact keeps the values both accept. Notes say where the two
vocabularies differ and how the comparison deals with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .._rulebase import RuleBase
from .._rulebase._vocabulary import CURRENT_LEVEL, Fact
from .._semantics import Placement
from .._semantics._mdd import integer_cuts
from ..exceptions import LevelCareError
from ._space import Clock, Space


class DiffError(LevelCareError):
    """Two rule bases that cannot be compared; every problem is listed."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class DiffSpace:
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
                detail.append("only old accepts " + ", ".join(value_text(v) for v in only_old))
            if only_new:
                detail.append("only new accepts " + ", ".join(value_text(v) for v in only_new))
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
            return f"{name}={value_text(values[0])}"
        positions = sorted(domain.index(v) for v in values)
        contiguous = positions == list(range(positions[0], positions[-1] + 1))
        if contiguous and self.kind[name] == "ordinal":
            if positions[0] == 0:
                return f"{name}<={value_text(domain[positions[-1]])}"
            if positions[-1] == len(domain) - 1:
                return f"{name}>={value_text(domain[positions[0]])}"
        return f"{name} in {{{', '.join(value_text(v) for v in values)}}}"


def value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _product(sizes: Iterable[int]) -> int:
    result = 1
    for size in sizes:
        result *= size
    return result
