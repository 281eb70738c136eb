"""The batch: a JSON Lines file of assessments decided in a stream, to a file of records.

Input: one JSON object of facts per line (or a worked example, whose ``facts``
are used). Lines end with LF, CRLF or CR; a UTF-8 byte order mark at the start
is skipped; blank lines are not records. An object may carry a pass-through id,
``"_id"`` (a string of at most 128 characters, or a whole number): it is no
fact, is never read by the rules, and is copied to the line's output record.

Output, one record per non-blank input line, in input order, each naming its
input line as ``"line"`` (and carrying its ``"_id"`` when the input gave one):

* a valid line gives its decision: ``Decision.to_dict()`` (with its
  ``input_sha256``), plus ``line``;
* an invalid line (not UTF-8, not JSON, not an object, too long, a key given
  twice, or facts the vocabulary rejects) gives an error record ``{"line": N,
  "error": "invalid-input", "problems": [{"fact": ..., "message": ...}]}``, where
  ``fact`` is ``""`` when the problem is with the line as a whole;
* after the last record, one trailer record ``{"batch": "complete", "records":
  R, ...}`` with the counts. A file that does not end with it is incomplete.

Records are compact JSON with sorted keys, one per line; a consumer tells them
apart by ``"status"`` (decision), ``"error"`` and ``"batch"`` (trailer).

Modules by role: reading lines and assessments (``_reading``), one line to its
record (``_lines``, ``_records``), chunks decided in worker processes
(``_workers``), counts and the closing record (``_summary``), crash-safe output and
resume (``_output``), and Dask (``_dask``, imported only by :mod:`levelcare.dask`).
"""

from __future__ import annotations

from ._lines import INVALID, TRAILER, LineResult, decide_line, decide_mapping, error_record
from ._output import Interrupted, Partial, ResumeMismatch, Signals, Stdout, WriteError
from ._reading import (
    ID_FIELD,
    MAX_ASSESSMENT_BYTES,
    InputError,
    LineReader,
    assessment_of,
    count_lines,
    facts_of,
    parse_facts,
    parse_facts_and_id,
    read_assessment,
    read_chunks,
    split_chunk,
)
from ._records import RecordWriter, dumps
from ._summary import Summary, run
from ._workers import ChunkResult, WorkerPool, decide_chunk, decide_chunks

__all__ = [
    "ID_FIELD",
    "INVALID",
    "MAX_ASSESSMENT_BYTES",
    "TRAILER",
    "ChunkResult",
    "InputError",
    "Interrupted",
    "LineReader",
    "LineResult",
    "Partial",
    "RecordWriter",
    "ResumeMismatch",
    "Signals",
    "Stdout",
    "Summary",
    "WorkerPool",
    "WriteError",
    "assessment_of",
    "count_lines",
    "decide_chunk",
    "decide_chunks",
    "decide_line",
    "decide_mapping",
    "dumps",
    "error_record",
    "facts_of",
    "parse_facts",
    "parse_facts_and_id",
    "read_assessment",
    "read_chunks",
    "run",
    "split_chunk",
]
