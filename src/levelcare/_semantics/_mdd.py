"""Exact answers about unknown facts, for any rule base, monotone or not.

The level mechanism is given as threshold conditions ``g_1, ..., g_{n-1}``,
``g_k`` meaning "the final level is at least level k", so that
``level(x) = max{k : g_k(x)}`` (0 when none holds). Each fact that can be unknown
has *cells*: its values, or for an integer its range cut at every threshold a
rule mentions, so every condition is constant on a cell and one representative
value per cell stands for all of it.

:class:`Thresholds` compiles the level function once into a reduced, ordered,
hash-consed multi-valued decision diagram (MDD): one node per (fact, children by
cell), identical nodes shared, a node whose children are all the same dropped,
terminals the levels. Because the diagram is canonical, two sub-diagrams are
equal exactly when they compute the same function. For one decision,
:meth:`Thresholds.analyse` walks the part of the diagram the known facts leave
reachable and rebuilds it reduced, in a table of its own:

* the terminals reached are the levels some completion of the unknowns gives, so
  their minimum and maximum are the range;
* the facts labelling the nodes of the rebuilt diagram are exactly the facts the
  level still depends on: a reduced diagram contains a node on a fact if and only
  if two completions that differ only in that fact reach different levels.

Nothing here assumes that more need never lowers the level, so both answers stay
exact for rule bases the monotone shortcut gets wrong. The cost of a decision is
the size of the reachable part of the diagram, never the product of the unknown
facts' domains.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .._rulebase import _conditions as cond
from .._rulebase._vocabulary import Fact

# --- cells ----------------------------------------------------------------------


def integer_cuts(name: str, low: int, high: int, conditions: Iterable[cond.Condition]) -> tuple[int, ...]:
    """The range ``low .. high`` of integer fact ``name`` cut at every bound ``conditions`` put on it.

    Returns:
        The lower end of each interval, ascending; each condition is constant on
        each interval.
    """
    cuts = {low}
    for condition in conditions:
        for atom in cond.atoms(condition):
            if isinstance(atom, cond.RangeAtom) and atom.fact == name:
                for start, end in atom.intervals:
                    cuts.update(c for c in (start, end + 1) if low < c <= high)
    return tuple(sorted(cuts))


def integer_cells(fact: Fact, conditions: Iterable[cond.Condition]) -> tuple[int, ...]:
    """The cells of an integer fact: the lower end of each interval, in need order.

    The fact's range is cut at every bound a range atom of ``conditions`` puts on
    it (:func:`integer_cuts`), so each condition is constant on each interval.
    """
    starts = integer_cuts(fact.name, fact.minimum or 0, fact.maximum or 0, conditions)
    return tuple(reversed(starts)) if fact.need == "decreasing" else starts


def fact_cells(fact: Fact, conditions: Iterable[cond.Condition]) -> tuple[Any, ...]:
    """One representative value per cell of ``fact``, lowest need first."""
    return integer_cells(fact, conditions) if fact.kind == "integer" else fact.values


def cell_index(fact: Fact, cells: Sequence[Any], value: Any) -> int:
    """The index in ``cells`` (from :func:`fact_cells`) of the cell holding ``value``."""
    if fact.kind != "integer":
        return fact.rank(value)
    # Integer cells hold each interval's lower end, in need order: find the
    # interval holding value among the ends sorted ascending.
    if len(cells) > 1 and cells[0] > cells[-1]:
        position = len(cells) - bisect.bisect_right(cells[::-1], value)
        return min(max(position, 0), len(cells) - 1)
    return max(bisect.bisect_right(cells, value) - 1, 0)


# --- answers ----------------------------------------------------------------------


@attrs.frozen
class Answer:
    """What the unknown facts leave open, for one decision.

    Attributes:
        low: The lowest level rank any completion of the unknown facts gives.
        high: The highest level rank any completion gives.
        missing: The unknown facts that can change the level, in the order they
            were given: for each, two completions that differ only in it give
            different levels.
    """

    low: int
    high: int
    missing: tuple[str, ...]


class ThresholdError(LookupError):
    """Conditions or cells that do not fit together; a fault of the caller, not of the input facts."""


# --- the diagram ------------------------------------------------------------------


class Thresholds:
    """Exact answers about unknown facts for nested conditions ``g_1 ⊇ g_2 ⊇ ... ⊇ g_{n-1}``.

    Args:
        conditions: ``conditions[k - 1]`` is ``g_k``, the condition under which
            the level is at least rank ``k``; trees of ``All``, ``Any_``,
            ``ValueAtom`` and ``RangeAtom``.
        cells: For every fact the conditions read (and any other that may be
            unknown), one representative value per cell, lowest need first.
            The diagram tests facts in the order of this mapping.

    Raises:
        ThresholdError: a condition reads a fact without cells, or holds an atom
            that is not about a fact's value.

    The diagram does not change once built and each answer keeps its state to
    itself, so one instance can answer for any number of threads.
    """

    def __init__(self, conditions: Sequence[cond.Condition], cells: Mapping[str, tuple[Any, ...]]) -> None:
        self.levels = len(conditions) + 1
        read = frozenset().union(*(cond.facts_read(c) for c in conditions))
        problems = sorted(name for name in read if not cells.get(name))
        if problems:
            shown = ", ".join(repr(name[:40]) for name in problems)
            msg = f"the conditions read facts without cells: {shown}; give each at least one cell"
            raise ThresholdError(msg)
        self.names: tuple[str, ...] = tuple(name for name in cells if name in read)
        self._position = {name: i for i, name in enumerate(self.names)}
        self._cells = {name: tuple(cells[name]) for name in self.names}
        self._sizes = tuple(len(self._cells[name]) for name in self.names)
        # Nodes 0 .. terminals - 1 are terminals: the level ranks, and 0/1 for
        # the truth values of a single condition.
        self._terminals = max(self.levels, 2)
        bottom = len(self.names)
        self._var: list[int] = [bottom] * self._terminals
        self._kids: list[tuple[int, ...]] = [()] * self._terminals
        self._unique: dict[tuple[int, tuple[int, ...]], int] = {}
        # A rule's condition comes back in every threshold it belongs to: compile it once.
        compiled: dict[cond.Condition, int] = {}
        truth = _Truth(self._atom_node, self._apply)
        level = 0
        for rank, condition in enumerate(conditions, start=1):
            holds = cond.fold(condition, truth, memo=compiled)
            level = self._apply(_raise_to(rank), holds, level, {})
        self.root = self._keep(level)

    @property
    def size(self) -> int:
        """Number of inner nodes of the diagram."""
        return len(self._var) - self._terminals

    # --- building -----------------------------------------------------------------

    def _node(self, var: int, kids: tuple[int, ...]) -> int:
        first = kids[0]
        for kid in kids:
            if kid != first:
                break
        else:
            return first
        key = (var, kids)
        found = self._unique.get(key)
        if found is None:
            found = len(self._var)
            self._var.append(var)
            self._kids.append(kids)
            self._unique[key] = found
        return found

    def _atom_node(self, atom: cond.ValueAtom | cond.RangeAtom) -> int:
        """The node of the truth of ``atom`` in each cell of its fact."""
        cells = self._cells[atom.fact]
        return self._node(
            self._position[atom.fact], tuple(int(cond.atom_holds(atom, {atom.fact: v}, {})) for v in cells)
        )

    def _apply(self, op: Callable[[int, int], int], a: int, b: int, memo: dict[tuple[int, int], int]) -> int:
        """The diagram of ``op`` applied pointwise to the functions of nodes ``a`` and ``b``.

        ``op`` returns the result node when it can tell from the two nodes alone
        (always when both are terminals), else -1 to split on the first fact.
        """
        found = op(a, b)
        if found >= 0:
            return found
        key = (a, b)
        found = memo.get(key, -1)
        if found >= 0:
            return found
        var_a, var_b = self._var[a], self._var[b]
        var = min(var_a, var_b)
        width = self._sizes[var]
        kids_a = self._kids[a] if var_a == var else (a,) * width
        kids_b = self._kids[b] if var_b == var else (b,) * width
        found = self._node(var, tuple([self._apply(op, x, y, memo) for x, y in zip(kids_a, kids_b, strict=True)]))
        memo[key] = found
        return found

    def _keep(self, root: int) -> int:
        """Drop the nodes only building needed; return the new id of ``root``.

        Renumbers the nodes reachable from ``root``, children first, so a
        diagram holds nothing but the level function.
        """
        terminals = self._terminals
        renumbered: dict[int, int] = {t: t for t in range(terminals)}
        var_of: list[int] = self._var[:terminals]
        kids_of: list[tuple[int, ...]] = self._kids[:terminals]
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node in renumbered:
                continue
            if expanded:
                renumbered[node] = len(var_of)
                var_of.append(self._var[node])
                kids_of.append(tuple(renumbered[kid] for kid in self._kids[node]))
            else:
                stack.append((node, True))
                stack.extend((kid, False) for kid in self._kids[node] if kid not in renumbered)
        self._var, self._kids = var_of, kids_of
        self._unique = {}
        return renumbered[root]

    # --- answering ----------------------------------------------------------------

    def _fixed(self, known_cells: Mapping[str, int]) -> list[int]:
        """The known cell of each variable, -1 where unknown."""
        fixed = [-1] * len(self.names)
        position = self._position
        for name, cell in known_cells.items():
            var = position.get(name)
            if var is None:
                continue
            if not 0 <= cell < self._sizes[var]:
                msg = f"{name[:40]!r} has {self._sizes[var]} cells, got cell {cell!r}"
                raise ThresholdError(msg)
            fixed[var] = cell
        return fixed

    def analyse(self, known_cells: Mapping[str, int], unknown: Sequence[str]) -> Answer:
        """Range and missing facts, given the cell of each known fact.

        Args:
            known_cells: Cell index of each known fact; facts the conditions do
                not read are ignored.
            unknown: The unknown facts, in the order ``missing`` should follow.
                A fact the conditions read that is in neither ``known_cells`` nor
                ``unknown`` is taken as unknown too, and listed after them.

        Raises:
            ThresholdError: a known cell index is out of range.
        """
        fixed = self._fixed(known_cells)
        var_of, kids_of, terminals = self._var, self._kids, self._terminals
        memo: dict[int, int] = {}
        table: dict[tuple[int, tuple[int, ...]], int] = {}
        depends: set[int] = set()
        reached: set[int] = set()

        def walk(node: int) -> int:
            if node < terminals:
                reached.add(node)
                return node
            found = memo.get(node)
            if found is not None:
                return found
            var = var_of[node]
            cell = fixed[var]
            if cell >= 0:
                result = walk(kids_of[node][cell])
            else:
                kids = tuple([walk(kid) for kid in kids_of[node]])
                first = kids[0]
                result = first
                for kid in kids:
                    if kid != first:
                        key = (var, kids)
                        result = table.get(key, -1)
                        if result < 0:
                            # Ids of the rebuilt diagram only need to differ from the
                            # terminals and from each other.
                            result = terminals + len(table)
                            table[key] = result
                            depends.add(var)
                        break
            memo[node] = result
            return result

        walk(self.root)
        names = self.names
        wanted = set(unknown)
        missing = [name for name in unknown if name in self._position and self._position[name] in depends]
        missing += [names[var] for var in sorted(depends) if names[var] not in wanted]
        return Answer(min(reached), max(reached), tuple(missing))

    def completion(self, known_cells: Mapping[str, int], rank: int) -> dict[str, int] | None:
        """Cells for the unknown facts under which the level is ``rank``, or None if none gives it.

        Every fact the conditions read and ``known_cells`` does not give gets a
        cell; those the path to ``rank`` does not test get their lowest-need cell.

        Raises:
            ThresholdError: a known cell index is out of range.
        """
        fixed = self._fixed(known_cells)
        var_of, kids_of, terminals = self._var, self._kids, self._terminals
        dead: set[int] = set()
        chosen: dict[int, int] = {}

        def reach(node: int) -> bool:
            if node < terminals:
                return node == rank
            if node in dead:
                return False
            var = var_of[node]
            cells = (fixed[var],) if fixed[var] >= 0 else tuple(range(len(kids_of[node])))
            for cell in cells:
                if reach(kids_of[node][cell]):
                    chosen[var] = cell
                    return True
            dead.add(node)
            return False

        if not reach(self.root):
            return None
        return {name: chosen.get(var, 0) for var, name in enumerate(self.names) if fixed[var] < 0}


class _Truth:
    """A condition as a diagram with the terminals 0 and 1, built in a :class:`Thresholds`' node table.

    Args:
        atom_node: The node of one atom about a fact's value.
        apply: The table's pointwise combination of two nodes (:meth:`Thresholds._apply`).
    """

    def __init__(
        self,
        atom_node: Callable[[cond.ValueAtom | cond.RangeAtom], int],
        apply: Callable[[Callable[[int, int], int], int, int, dict[tuple[int, int], int]], int],
    ) -> None:
        self._atom_node = atom_node
        self._apply = apply

    def value(self, atom: cond.ValueAtom | cond.RangeAtom) -> int:
        return self._atom_node(atom)

    range = value

    def program(self, atom: cond.ProgramAtom) -> int:
        return self._not_a_fact_value(atom)

    def context(self, atom: cond.ContextAtom) -> int:
        return self._not_a_fact_value(atom)

    def all(self, items: Iterator[int]) -> int:
        result = 1
        for node in items:
            result = self._apply(_and, result, node, {})
        return result

    def any(self, items: Iterator[int]) -> int:
        result = 0
        for node in items:
            result = self._apply(_or, result, node, {})
        return result

    @staticmethod
    def _not_a_fact_value(atom: cond.Atom) -> int:
        msg = f"a threshold condition tests only facts' values, not {type(atom).__name__}"
        raise ThresholdError(msg)


def _raise_to(rank: int) -> Callable[[int, int], int]:
    """The level once ``g_rank`` is known: ``rank`` where it holds, the level below it elsewhere."""

    def level(holds: int, lower: int) -> int:
        if holds <= 1:
            return rank if holds else lower
        return -1

    return level


# The truth values are the terminals 0 and 1; a node with a fact to split on is above both.


def _and(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    if a in (1, b):
        return b
    return a if b == 1 else -1


def _or(a: int, b: int) -> int:
    if a == 1 or b == 1:
        return 1
    if a in (0, b):
        return b
    return a if b == 0 else -1
