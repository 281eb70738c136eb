"""Facts and conditions as boolean functions, held in a binary decision diagram.

Each fact's *cells* (a finite fact's values in need order, an integer's range
cut at every threshold the rules mention, see ``_semantics._unknowns``) are
numbered ``0 .. n-1`` and written in binary on ``ceil(log2 n)`` variables, the
most significant first; the facts follow vocabulary order. A condition becomes
the set of cell combinations where it holds, as one diagram, so checking a
property over every combination costs operations on diagrams whose size follows
the structure of the rules, not the number of combinations.

The diagrams come from ``dd``: its CUDD binding when the installed ``dd`` has it,
else its pure-Python implementation, which gives the same answers more slowly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

from .._rulebase import _conditions as cond

try:  # pragma: no cover - which one depends on how dd was built
    from dd import cudd as _dd

    BACKEND = "cudd"
except ImportError:  # pragma: no cover
    from dd import autoref as _dd

    BACKEND = "autoref"

#: A diagram (``dd``'s ``Function``); untyped in ``dd``.
Node = Any


class OutOfTime(Exception):
    """The time budget ran out before a check was decided."""


class Clock:
    """A time budget, checked between steps of the symbolic checks.

    Args:
        budget: Seconds allowed from now; ``None`` for no limit.
    """

    def __init__(self, budget: float | None) -> None:
        self.budget = budget
        self.started = time.monotonic()
        self.deadline = None if budget is None else self.started + budget

    def elapsed(self) -> float:
        """Seconds since the clock was started."""
        return time.monotonic() - self.started

    def tick(self) -> None:
        """Raise :class:`OutOfTime` once the budget is spent."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise OutOfTime


class Space:
    """Every combination of the cells of some facts, as boolean functions.

    Args:
        cells: Each fact's cells, in need order; the mapping's order is the
            variable order.
        clock: Checked while conditions are encoded.
        backend: The ``dd`` module to use; the best one available by default.
    """

    def __init__(self, cells: Mapping[str, Sequence[Any]], clock: Clock, backend: Any = None) -> None:
        self.bdd = (backend or _dd).BDD()
        self.clock = clock
        self.names = tuple(cells)
        self.cells = {name: tuple(values) for name, values in cells.items()}
        self.bits: dict[str, tuple[str, ...]] = {}
        for index, name in enumerate(self.names):
            width = max(1, math.ceil(math.log2(len(self.cells[name])))) if len(self.cells[name]) > 1 else 0
            self.bits[name] = tuple(f"f{index}_{bit}" for bit in range(width))
            self.bdd.declare(*self.bits[name])
        self.true: Node = self.bdd.true
        self.false: Node = self.bdd.false
        self._cell: dict[tuple[str, int], Node] = {}
        self._atoms: dict[tuple[str, frozenset[int]], Node] = {}
        self._groups: dict[cond.Condition, Node] = {}
        # Only codes below a fact's number of cells stand for a cell.
        self.valid = {name: self._or(self.cell(name, i) for i in range(len(self.cells[name]))) for name in self.names}

    # --- building ------------------------------------------------------------

    def cell(self, name: str, position: int) -> Node:
        """The combinations where fact ``name`` is in cell ``position``."""
        key = (name, position)
        found = self._cell.get(key)
        if found is None:
            bits = self.bits[name]
            found = self.true
            for offset, bit in enumerate(bits):
                on = (position >> (len(bits) - 1 - offset)) & 1
                found &= self.bdd.var(bit) if on else ~self.bdd.var(bit)
            self._cell[key] = found
        return found

    def domain(self, names: Iterable[str]) -> Node:
        """The combinations where each of ``names`` holds a code that stands for a cell."""
        result = self.true
        for name in names:
            result &= self.valid[name]
        return result

    def _or(self, nodes: Iterable[Node]) -> Node:
        result = self.false
        for node in nodes:
            result |= node
        return result

    def encode(self, condition: cond.Condition) -> Node:
        """The combinations where ``condition`` holds (fact atoms only).

        Raises:
            LookupError: the condition reads a fact outside this space, or the
                decided level or a programme minimum.
        """
        # The same rule's condition comes back in every threshold it belongs to:
        # each subtree is encoded once per space. The algebra is made per call: a
        # space holding one that points back at it would be a cycle, and CUDD
        # refuses to free a manager whose nodes a collected cycle still holds.
        return cond.fold(condition, _Encoding(self), memo=self._groups)

    def atom(self, atom: cond.ValueAtom | cond.RangeAtom) -> Node:
        """The combinations where a finite or integer fact's test holds."""
        cells = self.cells[atom.fact]
        positions = frozenset(i for i, value in enumerate(cells) if cond.atom_holds(atom, {atom.fact: value}, {}))
        key = (atom.fact, positions)
        found = self._atoms.get(key)
        if found is None:
            found = self._atoms[key] = self._or(self.cell(atom.fact, i) for i in sorted(positions))
        return found

    # --- reading -------------------------------------------------------------

    def at(self, node: Node, name: str, position: int) -> Node:
        """``node`` with fact ``name`` fixed to cell ``position`` (a function of the other facts)."""
        bits = self.bits[name]
        if not bits:
            return node
        values = {bit: bool((position >> (len(bits) - 1 - offset)) & 1) for offset, bit in enumerate(bits)}
        return self.bdd.let(values, node)

    def holds(self, node: Node, cells: Mapping[str, int]) -> bool:
        """Whether ``node`` holds for one combination of cells (every fact it reads given)."""
        values: dict[str, bool] = {}
        for name, position in cells.items():
            bits = self.bits[name]
            values.update({bit: bool((position >> (len(bits) - 1 - offset)) & 1) for offset, bit in enumerate(bits)})
        return bool(self.bdd.let(values, node) == self.true)

    def lowest(self, node: Node, names: Sequence[str]) -> dict[str, int]:
        """The combination in ``node`` with the lowest need, the first fact counting most.

        ``node`` must be satisfiable within the domain of ``names``.
        """
        found: dict[str, int] = {}
        node &= self.domain(names)
        for name in names:
            for position in range(len(self.cells[name])):
                narrowed = node & self.cell(name, position)
                if narrowed != self.false:
                    node, found[name] = narrowed, position
                    break
            else:  # pragma: no cover - only when node was empty
                msg = "no combination to pick from an empty set"
                raise LookupError(msg)
        return found

    def count(self, node: Node, names: Sequence[str]) -> int:
        """How many combinations of the cells of ``names`` lie in ``node`` (a function of them only).

        The count is exact at any size: it is computed on the diagram's nodes
        with Python integers, where ``dd``'s own count gives a float under CUDD.
        """
        node &= self.domain(names)
        if node == self.false:
            return 0
        variables = [bit for name in names for bit in self.bits[name]]
        # Diagrams may have been reordered: number the variables by their level.
        order = {level: index for index, level in enumerate(sorted(self.bdd.level_of_var(v) for v in variables))}
        return _models(node, order, self.true)

    def cube(self, sets: Mapping[str, Iterable[int]]) -> Node:
        """The combinations where each named fact lies in one of its listed cells (only codes that are cells)."""
        result = self.true
        for name, positions in sets.items():
            chosen = set(positions)
            if len(chosen) == len(self.cells[name]):
                result &= self.valid[name]
            else:
                result &= self._or(self.cell(name, p) for p in sorted(chosen))
        return result

    def values(self, cells: Mapping[str, int]) -> dict[str, Any]:
        """Fact values for a combination of cells (an integer's cell gives its interval's start)."""
        return {name: self.cells[name][position] for name, position in cells.items()}


class _Encoding:
    """The algebra of a space's diagrams: each fact test the set of cells where it holds."""

    def __init__(self, space: Space) -> None:
        self.space = space

    def value(self, atom: cond.ValueAtom | cond.RangeAtom) -> Node:
        space = self.space
        space.clock.tick()
        if atom.fact not in space.cells:
            self._outside(atom)
        return space.atom(atom)

    range = value

    def program(self, atom: cond.ProgramAtom | cond.ContextAtom) -> Node:
        self._outside(atom)

    context = program

    def all(self, items: Iterator[Node]) -> Node:
        return self._combine(items, conjunction=True)

    def any(self, items: Iterator[Node]) -> Node:
        return self._combine(items, conjunction=False)

    def _combine(self, items: Iterator[Node], *, conjunction: bool) -> Node:
        """``and`` or ``or`` of the parts, in order."""
        space = self.space
        space.clock.tick()
        # Every part is encoded, even after a conjunction is already false, so a
        # part reading something outside the space is reported wherever it is.
        nodes = list(items)
        result = space.true if conjunction else space.false
        for node in nodes:
            space.clock.tick()
            result = result & node if conjunction else result | node
            if conjunction and result == space.false:
                break
        return result

    def _outside(self, atom: cond.Atom) -> NoReturn:
        msg = f"condition {atom!r} reads something outside the facts {self.space.names}"
        raise LookupError(msg)


def _models(node: Node, order: Mapping[int, int], true: Node) -> int:
    """The satisfying assignments of ``node`` over the variables whose levels ``order`` numbers.

    Complemented edges are followed as ``dd`` exposes them: a negated node stands
    for the complement of its regular node, whose children are ``low`` and
    ``high``. An explicit stack keeps deep diagrams clear of the recursion limit.
    """
    width = len(order)

    def index(u: Node) -> int:
        return width if u.var is None else order[u.level]

    regular: dict[int, int] = {}  # models of a regular node, over the variables from its own index on

    def known(u: Node) -> int | None:
        """Models of ``u`` over the variables from its index on, when already known."""
        if u.var is None:
            return 1 if u == true else 0
        base = ~u if u.negated else u
        found = regular.get(int(base))
        if found is None:
            return None
        return (1 << (width - index(u))) - found if u.negated else found

    stack = [node]
    while stack:
        u = stack[-1]
        if known(u) is not None:
            stack.pop()
            continue
        base = ~u if u.negated else u
        children = (base.low, base.high)
        pending = [c for c in children if known(c) is None]
        if pending:
            stack.extend(pending)
            continue
        here = index(base)
        total = 0
        for child in children:
            counted = known(child)
            assert counted is not None
            total += counted << (index(child) - here - 1)
        regular[int(base)] = total
        stack.pop()
    result = known(node)
    assert result is not None
    return result << index(node)
