"""Reading assessments from files, and deciding a JSON Lines file in a stream.

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
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import io
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any, NamedTuple

import attrs

from .._model import STATUSES, installed_version
from .._rulebase._vocabulary import FactValue, TooLongNumber, Vocabulary, shorten, type_name
from ..exceptions import AssessmentProblem, InvalidAssessment
from . import Engine
from ._records import RecordWriter, dumps

__all__ = [
    "ID_FIELD",
    "MAX_ASSESSMENT_BYTES",
    "ChunkResult",
    "InputError",
    "LineReader",
    "LineResult",
    "RecordWriter",
    "Summary",
    "count_lines",
    "decide_chunks",
    "dumps",
    "facts_of",
    "read_assessment",
    "run",
]

#: An assessment is a few kilobytes; anything past this is refused unread, so one
#: bad line can never exhaust memory.
MAX_ASSESSMENT_BYTES = 1 << 20
#: The pass-through id of a record: copied to its output, never a fact. Fact names
#: start with a letter, so no fact can ever be called this.
ID_FIELD = "_id"
MAX_ID_LENGTH = 128
_ID_RANGE = (-(1 << 63), (1 << 63) - 1)
#: Keys of the worked-example files, whose ``facts`` hold the assessment.
EXAMPLE_KEYS = frozenset({"name", "story", "facts", "expected", ID_FIELD})
INVALID = "invalid-input"
TRAILER = "batch"
# Lines per task and tasks in flight per worker: enough to keep the workers busy,
# small enough that memory stays bounded whatever the input's length. The first
# tasks are small, so that the first records and progress come soon; later ones
# are larger, since every task costs the parent process a round trip to a worker.
_FIRST_CHUNK_LINES = 256
_FIRST_CHUNKS = 4
_CHUNK_LINES = 1024
_CHUNK_BYTES = 1 << 20
_IN_FLIGHT_PER_WORKER = 3


class InputError(Exception):
    """Input that is not one JSON object of valid facts; ``problems`` say why.

    ``record_id`` is the input's pass-through id, when it had a usable one.
    """

    def __init__(self, problems: Iterable[AssessmentProblem], record_id: str | int | None = None) -> None:
        self.problems = tuple(problems)
        self.record_id = record_id
        super().__init__("; ".join(str(p) for p in self.problems))


def _whole(message: str) -> InputError:
    return InputError([AssessmentProblem("", message)])


def _size(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB" if count >= 1 << 20 else f"{count} bytes"


def _parse_int(text: str) -> int | TooLongNumber:
    # Python refuses to read integers of more than sys.get_int_max_str_digits()
    # digits (4300 by default) and raises a bare ValueError from inside the JSON
    # parser; such a number is kept as its length instead, so that validation
    # names the fact that holds it.
    limit = sys.get_int_max_str_digits()
    if limit and len(text) - text.startswith("-") > limit:
        return TooLongNumber(len(text))
    return int(text)


def _parse(raw: bytes) -> tuple[Any, list[str]]:
    """The JSON value in ``raw`` and the keys that some object in it gives twice."""
    if len(raw) > MAX_ASSESSMENT_BYTES:
        # Callers read at most one byte past the limit, so the true size is unknown.
        msg = f"longer than {_size(MAX_ASSESSMENT_BYTES)}, the limit for one assessment"
        raise _whole(msg)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        msg = f"not UTF-8 text (invalid byte at offset {error.start}); save the file as UTF-8"
        raise _whole(msg) from None
    text = text.removeprefix("\ufeff")  # a byte order mark, as some editors write
    if not text.strip():
        msg = "empty; expected one JSON object of facts"
        raise _whole(msg)
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen and key not in duplicates:
                    duplicates.append(key)
                seen.add(key)
        return result

    try:
        try:
            return json.loads(text, object_pairs_hook=pairs), duplicates
        except json.JSONDecodeError:
            raise
        except ValueError:
            # An integer longer than Python reads (see _parse_int): read again,
            # keeping such numbers by their length.
            duplicates.clear()
            return json.loads(text, object_pairs_hook=pairs, parse_int=_parse_int), duplicates
    except json.JSONDecodeError as error:
        msg = f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        raise _whole(msg) from None
    except RecursionError:
        msg = "not usable JSON: nested too deeply"
        raise _whole(msg) from None
    except ValueError as error:  # pragma: no cover - every known cause is handled above
        msg = f"not usable JSON: {shorten(str(error))}"
        raise _whole(msg) from None


def _duplicate_problems(keys: list[str]) -> list[AssessmentProblem]:
    return [
        AssessmentProblem(shorten(k) if len(k) > 40 else k, "given more than once; give each fact once") for k in keys
    ]


def facts_of(data: Any) -> Mapping[str, Any]:
    """The facts in a parsed JSON value: an object of facts, or a worked example.

    A worked example is an object whose keys are among ``name``, ``story``,
    ``facts``, ``expected`` and ``_id`` and whose ``facts`` is an object.

    Raises:
        InputError: ``data`` is not a JSON object.
    """
    if not isinstance(data, dict):
        kind = "an array" if isinstance(data, list) else f"a JSON {_json_type(data)}"
        msg = f'holds {kind}; expected one object of facts, such as {{"harm_risk": "none"}}'
        raise _whole(msg)
    if isinstance(data.get("facts"), dict) and set(data) <= EXAMPLE_KEYS:
        facts: dict[str, Any] = data["facts"]
        return facts
    return data


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, TooLongNumber)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _record_id(data: dict[str, Any], problems: list[AssessmentProblem]) -> str | int | None:
    """Take the pass-through id out of ``data``."""
    value = data.pop(ID_FIELD, None)
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and _ID_RANGE[0] <= value <= _ID_RANGE[1]:
        return value
    problems.append(
        AssessmentProblem(
            ID_FIELD,
            f"the record id is a string of at most {MAX_ID_LENGTH} characters or a whole number "
            f"that fits in 64 bits, got {type_name(value)} {shorten(value)}",
        )
    )
    return None


def parse_facts(raw: bytes) -> Mapping[str, Any]:
    """The facts in one JSON text, not yet validated (for reading with several vocabularies).

    Raises:
        InputError: the text as a whole, or keys given twice.
    """
    data, duplicates = _parse(raw)
    if duplicates:
        raise InputError(_duplicate_problems(duplicates))
    facts = facts_of(data)
    return {k: v for k, v in facts.items() if k != ID_FIELD}


def read_assessment(raw: bytes, vocabulary: Vocabulary) -> tuple[dict[str, FactValue], str | int | None]:
    """The validated facts in one JSON text, and its pass-through id.

    Raises:
        InputError: listing every problem: the text as a whole, keys given twice,
            the id, and every fact the vocabulary rejects.
    """
    data, duplicates = _parse(raw)
    problems = _duplicate_problems(duplicates)
    record_id = None
    if isinstance(data, dict):
        record_id = _record_id(data, problems)
    try:
        facts = facts_of(data)
    except InputError as error:
        raise InputError([*problems, *error.problems], record_id) from None
    if facts is not data and isinstance(facts, dict) and ID_FIELD in facts:
        record_id = record_id if record_id is not None else _record_id(facts, problems)
    try:
        known = vocabulary.validate(facts)
    except InvalidAssessment as error:
        problems.extend(error.problems)
    if problems:
        raise InputError(problems, record_id)
    return known, record_id


class LineReader:
    """Numbered lines of a byte stream, read one at a time; blank lines are counted, not given.

    A line ends with LF, CRLF or CR; a UTF-8 byte order mark before the first line
    is skipped. A line longer than ``limit`` bytes is skipped unread and given as
    its length (an ``int``) instead of its bytes, so memory stays bounded by
    ``limit``. Bytes that are not UTF-8 are passed through unchanged, for the
    line's own error to report.
    """

    def __init__(self, stream: IO[bytes], limit: int = MAX_ASSESSMENT_BYTES) -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline=None)
        self._limit = limit
        self.number = 0
        self.blank = 0

    def __iter__(self) -> Iterator[tuple[int, bytes | int]]:
        readline, limit = self._text.readline, self._limit
        while True:
            # Characters, not bytes: the byte length is checked once encoded.
            line = readline(limit + 1)
            if not line:
                return
            self.number += 1
            if self.number == 1:
                line = line.removeprefix("\ufeff")
            ended = line.endswith("\n")
            raw = (line[:-1] if ended else line).encode("utf-8", "surrogateescape")
            if not ended and len(line) > limit:
                size = len(raw)
                while True:
                    more = readline(1 << 16)
                    size += len(more.encode("utf-8", "surrogateescape"))
                    if not more or more.endswith("\n"):
                        break
                yield self.number, size
            elif len(raw) > limit:
                yield self.number, len(raw)
            elif not raw.strip():
                self.blank += 1
            else:
                yield self.number, raw

    def detach(self) -> None:
        """Leave the underlying stream open (a wrapper closes it when collected)."""
        self._text.detach()


class LineResult(NamedTuple):
    """What one input line gave, as the summary and the error report need it.

    A named tuple: with worker processes, every line's result is pickled back to
    the parent, and tuples pickle several times faster than attrs instances.
    """

    number: int
    problems: tuple[AssessmentProblem, ...] = ()
    level: str | None = None
    status: str | None = None
    emergency: bool = False


@attrs.frozen
class ChunkResult:
    """Consecutive lines decided together: their output, encoded, and each line's result."""

    output: bytes
    lines: tuple[LineResult, ...]


def _decide_line(
    engine: Engine, number: int, raw: bytes | int, writer: RecordWriter | None = None
) -> tuple[str, LineResult]:
    """The output line for input line ``number`` (``raw``: its bytes, or its length when too long)."""
    try:
        if isinstance(raw, int):
            msg = f"{_size(raw)} long, more than {_size(MAX_ASSESSMENT_BYTES)}, the limit for one assessment"
            raise _whole(msg)
        known, record_id = read_assessment(raw, engine.vocabulary)
    except InputError as error:
        problems = error.problems
        payload: dict[str, Any] = {
            "line": number,
            "error": INVALID,
            "problems": [{"fact": p.fact, "message": p.message} for p in problems],
        }
        if error.record_id is not None:
            payload[ID_FIELD] = error.record_id
        return dumps(payload), LineResult(number, problems)
    # The facts are validated: the engine decides without checking them again.
    decision = engine._decide(known, None)
    level = decision.level
    result = LineResult(number, (), None if level is None else level.value, decision.status, decision.emergency)
    return (writer or RecordWriter()).record(decision, number, record_id), result


def _decide_chunk_with(engine: Engine, writer: RecordWriter, chunk: list[tuple[int, bytes | int]]) -> ChunkResult:
    texts, results = [], []
    for number, raw in chunk:
        text, result = _decide_line(engine, number, raw, writer)
        texts.append(text)
        results.append(result)
    # Encoded here, in one block, so that with workers the parent process only
    # copies bytes to the output rather than rebuilding every line.
    return ChunkResult("".join(t + "\n" for t in texts).encode("utf-8"), tuple(results))


def _chunks(lines: Iterable[tuple[int, bytes | int]]) -> Iterator[list[tuple[int, bytes | int]]]:
    chunk: list[tuple[int, bytes | int]] = []
    size = made = 0
    limit = _FIRST_CHUNK_LINES
    for item in lines:
        chunk.append(item)
        size += len(item[1]) if isinstance(item[1], bytes) else 0
        if len(chunk) >= limit or size >= _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
            made += 1
            limit = _FIRST_CHUNK_LINES if made < _FIRST_CHUNKS else _CHUNK_LINES
    if chunk:
        yield chunk


# Each worker process builds its own engine: durable's C core has no locks and its
# state must never be shared between processes.
_worker_engine: Engine | None = None
_worker_writer = RecordWriter()
_worker_parent: int | None = None
#: prctl(2) option: the signal a process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1
#: How often a worker looks whether its parent is still there, in seconds.
_PARENT_POLL = 0.25
#: The exit status of a worker that ends because its parent went away.
ORPHANED = 3


def _start_worker(rules: str | None, parent: int | None = None) -> None:
    global _worker_engine, _worker_parent
    # Ctrl-C reaches every process of the terminal's group: the parent stops the
    # run and ends the workers, which must not stop on their own (with a traceback).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        _worker_parent = parent
        end_with_parent(parent)
    _worker_engine = Engine.default() if rules is None else Engine.from_path(rules)


def end_with_parent(parent: int, *, interval: float = _PARENT_POLL) -> None:
    """End this process soon after process ``parent`` ends (a parent killed outright, say).

    On Linux the kernel sends SIGKILL the moment the parent dies (``prctl
    PR_SET_PDEATHSIG``). Everywhere, a daemon thread also looks every ``interval``
    seconds whether the parent is still this process's parent, since a process whose
    parent dies is handed to another one; and the parent may have died before this
    ran at all. No work of a worker is worth finishing once nobody reads it.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(ORPHANED)
    threading.Thread(target=_watch_parent, args=(parent, interval), name="levelcare-parent", daemon=True).start()


def _watch_parent(parent: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            os._exit(ORPHANED)


@contextlib.contextmanager
def _without_sigint() -> Iterator[None]:
    """SIGINT ignored while worker processes start, so that they start ignoring it.

    An ignored signal stays ignored in a process started from this one, and Python
    then installs no KeyboardInterrupt handler: a Ctrl-C sent to the whole process
    group stops only this process, which ends the workers, even before their
    initializer has run.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _decide_chunk(chunk: list[tuple[int, bytes | int]]) -> ChunkResult:
    engine = _worker_engine
    if engine is None:  # pragma: no cover - the pool's initializer always runs first
        msg = "worker started without an engine"
        raise RuntimeError(msg)
    if _worker_parent is not None and os.getppid() != _worker_parent:
        os._exit(ORPHANED)  # between chunks too: the parent went away since the last
    return _decide_chunk_with(engine, _worker_writer, chunk)


def decide_chunks(
    lines: Iterable[tuple[int, bytes | int]], engine: Engine, *, rules: str | None = None, workers: int = 1
) -> Iterator[ChunkResult]:
    """Decide numbered lines in chunks, yielding the chunks in input order.

    Args:
        lines: ``(number, bytes)`` pairs as :class:`LineReader` gives them.
        engine: The engine used in this process (``workers == 1``).
        rules: The rule base folder the worker processes load (``None``: shipped).
        workers: Processes to decide in; 1 decides in this process.
    """
    if workers <= 1:
        writer = RecordWriter()
        for chunk in _chunks(lines):
            yield _decide_chunk_with(engine, writer, chunk)
        return
    # Spawned workers start clean: a forked child would inherit this process's
    # durable state and any lock another thread held at the moment of the fork.
    context = multiprocessing.get_context("spawn")
    window = workers * _IN_FLIGHT_PER_WORKER
    with _without_sigint():
        pool = context.Pool(workers, initializer=_start_worker, initargs=(rules, os.getpid()))
    with pool:
        # apply_async with a fixed window rather than imap: imap's feeder thread reads
        # ahead without limit, and so would hold an arbitrarily long input in memory.
        pending: collections.deque[Any] = collections.deque()
        for chunk in _chunks(lines):
            pending.append(pool.apply_async(_decide_chunk, (chunk,)))
            if len(pending) >= window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


@attrs.define
class Summary:
    """Counts over a batch, for the closing report and the trailer record."""

    level_ids: tuple[str, ...] = ()
    records: int = 0
    blank: int = 0
    invalid: int = 0
    emergency: int = 0
    statuses: collections.Counter[str] = attrs.field(factory=collections.Counter)
    levels: collections.Counter[str] = attrs.field(factory=collections.Counter)

    @property
    def lines(self) -> int:
        """Input lines: a record each, and the blank ones."""
        return self.records + self.blank

    def add(self, result: LineResult) -> None:
        self.add_record(None if result.problems else (result.status, result.level, result.emergency))

    def add_record(self, decided: tuple[str | None, str | None, bool] | None) -> None:
        """Count one record: ``(status, level, emergency)`` of a decision, or None for an error."""
        self.records += 1
        if decided is None:
            self.invalid += 1
            return
        status, level, emergency = decided
        self.statuses[status or ""] += 1
        self.levels[level or "none"] += 1
        self.emergency += int(emergency)

    def text(self) -> str:
        """The summary as a few lines of text."""
        decided = self.records - self.invalid
        line = "line" if self.lines == 1 else "lines"
        head = f"{self.lines} {line}: {decided} decided, {self.invalid} invalid"
        rows = [head + (f", {self.blank} blank" if self.blank else "")]
        rows.append("  status: " + ", ".join(f"{s} {self.statuses[s]}" for s in STATUSES))
        levels = [f"{lvl} {self.levels[lvl]}" for lvl in self.level_ids]
        rows.append("  level: " + ", ".join(levels) + f", none (data required) {self.levels['none']}")
        rows.append(f"  emergency: {self.emergency}")
        return "\n".join(rows)

    def trailer(self, engine: Engine) -> bytes:
        """The closing record, with its newline."""
        record = {
            TRAILER: "complete",
            "lines": self.lines,
            "records": self.records,
            "decided": self.records - self.invalid,
            "invalid": self.invalid,
            "blank": self.blank,
            "statuses": {s: self.statuses[s] for s in STATUSES},
            "levels": {**{lvl: self.levels[lvl] for lvl in self.level_ids}, "none": self.levels["none"]},
            "emergency": self.emergency,
            "levelcare_version": installed_version(),
            "rulebase": engine.rulebase.to_dict(),
        }
        return (dumps(record) + "\n").encode("utf-8")


def count_lines(path: str) -> int:
    """The number of lines in a file (LF, CRLF or CR endings), reading it in blocks."""
    count, last = 0, b"\n"
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            # A CR right before an LF ends the same line; a block may end between them.
            count += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
            if last == b"\r" and block.startswith(b"\n"):
                count -= 1
            last = block[-1:]
    return count + (last not in (b"\n", b"\r"))


def run(
    lines: Iterable[tuple[int, bytes | int]],
    write: Callable[[bytes], None],
    engine: Engine,
    summary: Summary,
    *,
    rules: str | None,
    workers: int,
    on_invalid: Callable[[LineResult], None],
    on_progress: Callable[[int], None],
) -> None:
    """Decide every line, writing each chunk of output records with ``write``.

    ``summary`` counts every record written; a caller that stops the run (an
    interrupt, a full disk) still has the counts of what was written.
    """
    for chunk in decide_chunks(lines, engine, rules=rules, workers=workers):
        write(chunk.output)
        for result in chunk.lines:
            summary.add(result)
            if result.problems:
                on_invalid(result)
        on_progress(len(chunk.lines))
