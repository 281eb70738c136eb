"""Batch records written from shared parts are exactly json.dumps of the decision's dict."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from levelcare._batch import RecordWriter, dumps
from levelcare._engine import Engine
from levelcare.testing import assessments

SHIPPED = Engine.default()
CONTINUUM = Engine.from_path(Path(__file__).parent.parent / "examples" / "rulebases" / "continuum")
RECORD_IDS = st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=20)


def _expected(data: dict[str, Any], line: int, record_id: str | int | None) -> str:
    data = {**data, "line": line}
    if record_id is not None:
        data["_id"] = record_id
    return dumps(data)


@pytest.mark.parametrize("engine", [SHIPPED, CONTINUUM], ids=["shipped", "continuum"])
@given(data=st.data(), line=st.integers(min_value=1, max_value=10**9), record_id=RECORD_IDS)
def test_record_is_the_dumped_dict(engine: Engine, data: st.DataObject, line: int, record_id: str | int | None) -> None:
    decision = engine.decide(data.draw(assessments(engine)))
    writer = RecordWriter()
    assert writer.record(decision, line, record_id) == _expected(decision.to_dict(), line, record_id)
    # Written again from what the writer kept: the same text.
    assert writer.record(decision, line, record_id) == _expected(decision.to_dict(), line, record_id)


def test_record_with_as_of_and_unicode_id() -> None:
    moment = dt.datetime(2026, 11, 28, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    decision = SHIPPED.decide({"harm_risk": "high", "current_level": "iop"}, as_of=moment)
    assert RecordWriter().record(decision, 7, 'pätient "7"') == _expected(decision.to_dict(), 7, 'pätient "7"')


class _Small(RecordWriter):
    limit = 3


def test_writer_memory_is_bounded_and_forgetting_changes_nothing() -> None:
    writer = _Small()
    for weeks in range(60):
        decision = SHIPPED.decide({"current_level": "php", "weeks_at_current_level": weeks, "harm_risk": "moderate"})
        assert writer.record(decision, weeks + 1) == _expected(decision.to_dict(), weeks + 1, None)
        assert len(writer._objects) <= 3
        assert len(writer._strings) <= 3


@pytest.mark.parametrize("digest", [None, "0" * 64, 'not "hex" ünïcode'])
def test_any_input_digest_is_written_as_json_writes_it(digest: str | None) -> None:
    decision = attrs.evolve(SHIPPED.decide({"harm_risk": "low"}), input_sha256=digest)
    assert RecordWriter().record(decision, 3) == _expected(decision.to_dict(), 3, None)
