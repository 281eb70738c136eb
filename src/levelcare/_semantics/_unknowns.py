"""Reasoning about unknown facts, exactly, for any rule base that loads.

The placement mechanism gives, for a new admission and for each current level,
the threshold conditions ``g_k`` = "the final level is at least level k"
(:meth:`Placement.at_least`). Their level function is compiled once into a
decision diagram over the facts' cells (:mod:`._mdd`), so that for one decision

* ``level_range`` is the lowest and highest level any completion of the unknown
  facts reaches, and
* ``missing`` is exactly the unknown facts the level still depends on,

without enumerating combinations and without assuming that more need never
lowers the level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._model import Level
from .._rulebase._vocabulary import CURRENT_LEVEL
from ._mdd import Answer, Thresholds, cell_index, fact_cells
from ._placement import Placement


class Analysis:
    """Cells and the level function's diagrams for one rule base."""

    def __init__(self, placement: Placement) -> None:
        rulebase = placement.rulebase
        self._placement = placement
        self._vocabulary = vocabulary = rulebase.vocabulary
        self.clinical = tuple(f.name for f in vocabulary.group("clinical"))
        self.progress = tuple(f.name for f in vocabulary.group("progress") if f.name != CURRENT_LEVEL)
        conditions = placement.deciding_conditions()
        self.cells: dict[str, tuple[Any, ...]] = {
            name: fact_cells(vocabulary[name], conditions) for name in self.clinical + self.progress
        }
        # One diagram for admissions and one per current level, built on first use.
        self._diagrams: dict[str | None, Thresholds] = {}

    def relevant(self, current: Level | None) -> tuple[str, ...]:
        """The facts that can matter: clinical, and progress when in treatment."""
        return self.clinical if current is None else self.clinical + self.progress

    def fills(self, unknown: Sequence[str]) -> dict[str, Any]:
        """The lowest-need value of each unknown fact."""
        return {n: self.cells[n][0] for n in unknown}

    def cell_of(self, name: str, value: Any) -> int:
        return cell_index(self._vocabulary[name], self.cells[name], value)

    def diagram(self, current: Level | None) -> Thresholds:
        key = None if current is None else current.id
        found = self._diagrams.get(key)
        if found is None:
            levels = self._placement.levels
            conditions = [self._placement.at_least(current, level) for level in levels[1:]]
            found = Thresholds(conditions, {name: self.cells[name] for name in self.relevant(current)})
            self._diagrams[key] = found
        return found

    def _known_cells(self, known: Mapping[str, Any]) -> dict[str, int]:
        return {n: self.cell_of(n, v) for n, v in known.items() if n in self.cells}

    def analyse(self, known: Mapping[str, Any], current: Level | None, unknown: Sequence[str]) -> Answer:
        """The range of level ranks the unknown facts allow, and those that can change it."""
        return self.diagram(current).analyse(self._known_cells(known), unknown)

    def completion(self, known: Mapping[str, Any], current: Level | None, rank: int) -> dict[str, Any]:
        """Values for the unknown facts under which the level has rank ``rank`` (one of the range's)."""
        cells = self.diagram(current).completion(self._known_cells(known), rank)
        if cells is None:  # pragma: no cover - only asked for ranks the analysis found reachable
            msg = f"no completion reaches level rank {rank}"
            raise LookupError(msg)
        return {name: self.cells[name][cell] for name, cell in cells.items()}
