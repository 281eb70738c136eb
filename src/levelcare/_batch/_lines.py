"""One input line, or one mapping of facts, to its output record.

The batch, its workers and the Dask path all answer an assessment through
:func:`decide_line` or :func:`decide_mapping`, so every path writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .._engine import Engine
from ..exceptions import AssessmentProblem
from ._reading import ID_FIELD, MAX_ASSESSMENT_BYTES, InputError, assessment_of, read_assessment, size_text, whole
from ._records import RecordWriter, dumps

#: The ``"error"`` of a record answering an invalid line.
INVALID = "invalid-input"
#: The key that marks the closing record of a batch.
TRAILER = "batch"


class LineResult(NamedTuple):
    """What one input line gave, as the summary and the error report need it.

    A named tuple: with worker processes, results are pickled back to the parent,
    and tuples pickle several times faster than attrs instances.
    """

    number: int
    problems: tuple[AssessmentProblem, ...] = ()
    level: str | None = None
    status: str | None = None
    emergency: bool = False


def error_record(number: int, problems: Iterable[AssessmentProblem], record_id: str | int | None = None) -> str:
    """The record answering invalid input at position ``number``: ``{"line", "error", "problems"}``."""
    payload: dict[str, Any] = {
        "line": number,
        "error": INVALID,
        "problems": [{"fact": p.fact, "message": p.message} for p in problems],
    }
    if record_id is not None:
        payload[ID_FIELD] = record_id
    return dumps(payload)


def decide_line(
    engine: Engine, number: int, raw: bytes | int, writer: RecordWriter | None = None
) -> tuple[str, LineResult]:
    """The output record for input line ``number``, without its newline, and what it gave.

    Args:
        engine: The engine that decides.
        number: The line's number, counted from 1, blank lines included.
        raw: The line's bytes without its ending, or its length when it is longer
            than :data:`MAX_ASSESSMENT_BYTES` (and so was not read).
        writer: A record writer to reuse (its cache makes records faster to write).

    Returns:
        The record as text, and the line's result for the summary.
    """
    try:
        if isinstance(raw, int):
            msg = f"{size_text(raw)} long, more than {size_text(MAX_ASSESSMENT_BYTES)}, the limit for one assessment"
            raise whole(msg)
        known, record_id = read_assessment(raw, engine.vocabulary)
    except InputError as error:
        return error_record(number, error.problems, error.record_id), LineResult(number, error.problems)
    return _decided(engine, number, known, record_id, writer)


def decide_mapping(
    engine: Engine, number: int, facts: Mapping[Any, Any], writer: RecordWriter | None = None
) -> tuple[str, LineResult]:
    """The output record for a mapping of facts (or a worked example) at position ``number``.

    The same record as :func:`decide_line` gives for the mapping's JSON text: its
    ``"_id"`` is the pass-through id, and every problem is listed.
    """
    try:
        known, record_id = assessment_of(facts, engine.vocabulary)
    except InputError as error:
        return error_record(number, error.problems, error.record_id), LineResult(number, error.problems)
    return _decided(engine, number, known, record_id, writer)


def _decided(
    engine: Engine, number: int, known: dict[str, Any], record_id: str | int | None, writer: RecordWriter | None
) -> tuple[str, LineResult]:
    # The facts are validated: the engine decides without checking them again.
    decision = engine.decide_validated(known)
    level = decision.level
    result = LineResult(number, (), None if level is None else level.value, decision.status, decision.emergency)
    return (writer or RecordWriter()).record(decision, number, record_id), result
