"""The engine's shortcuts give the decisions the plain definitions give.

The engine keeps the reasons and settled placements it has built (a bounded
memo) and writes the input digest from prepared fragments; both must be
invisible in what ``decide()`` returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import levelcare
from levelcare._engine import Engine, _Memo
from levelcare._engine._digest import FactsDigest
from levelcare._model import facts_sha256
from levelcare.testing import assessments

SHIPPED = Engine.default()
CONTINUUM = Engine.from_path(Path(__file__).parent.parent / "examples" / "rulebases" / "continuum")


@pytest.mark.parametrize("engine", [SHIPPED, CONTINUUM], ids=["shipped", "continuum"])
@given(data=st.data())
def test_prepared_digest_is_the_canonical_digest(engine: Engine, data: st.DataObject) -> None:
    facts = data.draw(assessments(engine))
    known = engine.vocabulary.validate(facts)
    assert FactsDigest(engine.vocabulary)(known) == facts_sha256(known)
    assert engine.decide(facts).input_sha256 == facts_sha256(known)


@pytest.mark.parametrize(
    "facts",
    [{"not_a_fact": "x"}, {"harm_risk": None}, {"harm_risk": "high", "weeks_at_current_level": 10**30}],
    ids=["unknown name", "None value", "wide integer"],
)
def test_digest_of_unvalidated_mappings_follows_the_definition(facts: dict[str, Any]) -> None:
    assert FactsDigest(SHIPPED.vocabulary)(facts) == facts_sha256(facts)


class _Forgetful(_Memo):
    limit = 1


# A second engine of each rule base, built once: building one compiles its rule
# base again, which costs more than the decisions compared. Each example gives it
# a new, empty memo.
FORGETFUL = {id(engine): Engine(engine._rb) for engine in (SHIPPED, CONTINUUM)}


@pytest.mark.parametrize("engine", [SHIPPED, CONTINUUM], ids=["shipped", "continuum"])
@given(data=st.data())
def test_decisions_do_not_depend_on_the_memo(engine: Engine, data: st.DataObject) -> None:
    """An engine that forgets everything at once decides exactly as the shared one."""
    facts = data.draw(assessments(engine))
    forgetful = FORGETFUL[id(engine)]
    forgetful._memo = _Forgetful()
    assert forgetful.decide(facts).to_dict() == engine.decide(facts).to_dict()
    assert len(forgetful._memo) <= 1


def test_memo_stays_bounded_and_shared_reasons_are_immutable() -> None:
    engine = Engine(SHIPPED._rb)
    engine._memo = type("_Small", (_Memo,), {"limit": 50})()
    seen = 0
    for weeks in range(300):
        decision = engine.decide({"current_level": "iop", "weeks_at_current_level": weeks, "harm_risk": "high"})
        seen = max(seen, len(engine._memo))
        reason = decision.reasons[0]
        with pytest.raises(TypeError):
            reason.facts["harm_risk"] = "low"  # type: ignore[index]
    assert 0 < seen <= 50
    again = engine.decide({"current_level": "iop", "weeks_at_current_level": 3, "harm_risk": "high"})
    assert (
        again.to_dict()
        == levelcare.decide({"current_level": "iop", "weeks_at_current_level": 3, "harm_risk": "high"}).to_dict()
    )
