"""A condition's diagram in the verifier's space: where it holds, shared parts, what it refuses."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from levelcare._rulebase import _conditions as cond
from levelcare._rulebase._vocabulary import CURRENT_LEVEL
from levelcare._semantics._mdd import fact_cells
from levelcare._verify._space import Clock, Space
from test_verify_symbolic import conditions, vocabularies


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_conditions_diagram_holds_exactly_where_the_condition_does(data: st.DataObject) -> None:
    """Encoding a condition into the space agrees with evaluating it, on every combination of cells."""
    vocabulary = data.draw(vocabularies())
    facts = [f for f in vocabulary.facts if f.name != CURRENT_LEVEL]
    condition = data.draw(conditions(facts))
    cells = {f.name: fact_cells(f, [condition]) for f in facts}
    space = Space(cells, Clock(None))
    node = space.encode(condition)
    for combo in itertools.product(*(range(len(c)) for c in cells.values())):
        positions = dict(zip(cells, combo))
        values = {name: cells[name][i] for name, i in positions.items()}
        assert space.holds(node, positions) is cond.holds(condition, values)


def test_a_shared_part_is_encoded_once_per_space() -> None:
    """A part that comes back in several conditions (a rule in several thresholds) is encoded only the first time."""
    space = Space({"a": (False, True), "b": ("v0", "v1", "v2")}, Clock(None))
    shared = cond.All((cond.ValueAtom("a", frozenset({True})), cond.ValueAtom("b", frozenset({"v1", "v2"}))))
    first = space.encode(cond.Any_((shared, cond.ValueAtom("b", frozenset({"v0"})))))
    encoded: list[cond.Condition] = []
    original = space.atom

    def counting(atom: cond.ValueAtom | cond.RangeAtom) -> Any:
        encoded.append(atom)
        return original(atom)

    space.atom = counting  # type: ignore[method-assign]
    second = space.encode(cond.All((shared, cond.ValueAtom("a", frozenset({True})))))
    assert encoded == []
    assert second == space.encode(shared)
    assert first != space.false


def test_a_condition_reading_outside_the_space_is_refused_wherever_the_part_is() -> None:
    """A context test or an unknown fact is refused with LookupError, even after a part that is already false."""
    space = Space({"a": (False, True)}, Clock(None))
    impossible = cond.ValueAtom("a", frozenset())
    for outside in (cond.ContextAtom("level", frozenset({"iop"})), cond.ValueAtom("zz", frozenset({True}))):
        with pytest.raises(LookupError, match="outside the facts"):
            space.encode(cond.All((impossible, outside)))
