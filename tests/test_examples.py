"""Every worked example decides exactly as its ``expected`` says."""

from __future__ import annotations

from typing import Any

import pytest

import levelcare
from conftest import load_examples

EXAMPLES = load_examples()


def test_every_example_is_present() -> None:
    """The fourteen worked examples ship with the project."""
    assert len(EXAMPLES) == 14


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
def test_example_decides_as_expected(example: dict[str, Any]) -> None:
    """Level, transition, status, emergency, range and (where given) missing match."""
    decision = levelcare.decide(example["facts"]).to_dict()
    expected = example["expected"]
    assert {key: decision[key] for key in expected} == expected


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["name"] for e in EXAMPLES])
def test_example_complete_decisions_explain_themselves(example: dict[str, Any]) -> None:
    """A complete decision has at least one reason, and rules out every other level."""
    decision = levelcare.decide(example["facts"])
    if decision.status == "complete":
        assert decision.reasons
        assert sorted(r.level.value for r in decision.ruled_out if r.level) == sorted(
            level.value for level in levelcare.Engine.default().levels if level is not decision.level
        )
    else:
        assert decision.level is None
        assert decision.missing
