"""Reading assessments from files, and deciding a JSON Lines file in a stream.

Output format of a batch, one line per input line and in input order:

* a valid line gives its decision, ``Decision.to_dict()`` as compact JSON with
  sorted keys;
* an invalid line (not UTF-8, not JSON, not an object, too long, or facts the
  vocabulary rejects) gives an error object ``{"line": N, "error":
  "invalid-input", "problems": [{"fact": ..., "message": ...}]}``, where ``fact`` is
  ``""`` when the problem is with the line as a whole.

So line N of the output always answers line N of the input, and a consumer tells
the two kinds apart by the ``"error"`` key.
"""

from __future__ import annotations

import collections
import json
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

import attrs

from .._model import STATUSES
from ..exceptions import AssessmentProblem, InvalidAssessment
from . import Engine

__all__ = [
    "MAX_ASSESSMENT_BYTES",
    "ChunkResult",
    "InputError",
    "LineResult",
    "Summary",
    "count_lines",
    "decide_chunks",
    "dumps",
    "facts_of",
    "parse_assessment",
    "read_lines",
    "run",
]

#: An assessment is a few kilobytes; anything past this is refused unread, so one
#: bad line can never exhaust memory.
MAX_ASSESSMENT_BYTES = 1 << 20
#: Keys of the worked-example files, whose ``facts`` hold the assessment.
EXAMPLE_KEYS = frozenset({"name", "story", "facts", "expected"})
INVALID = "invalid-input"
# Lines per task and tasks in flight per worker: enough to keep the workers busy,
# small enough that memory stays bounded whatever the input's length.
_CHUNK_LINES = 256
_CHUNK_BYTES = 1 << 20
_IN_FLIGHT_PER_WORKER = 4


class InputError(Exception):
    """Input that is not one JSON object of facts; ``problems`` say why."""

    def __init__(self, problems: Iterable[AssessmentProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


def _whole(message: str) -> InputError:
    return InputError([AssessmentProblem("", message)])


def _size(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB" if count >= 1 << 20 else f"{count} bytes"


def parse_assessment(raw: bytes) -> Any:
    """The JSON value in ``raw``, which must be UTF-8 text of at most the size limit.

    Raises:
        InputError: the bytes are too long, not UTF-8, empty or not JSON.
    """
    if len(raw) > MAX_ASSESSMENT_BYTES:
        # Callers read at most one byte past the limit, so the true size is unknown.
        msg = f"longer than {_size(MAX_ASSESSMENT_BYTES)}, the limit for one assessment"
        raise _whole(msg)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        msg = f"not UTF-8 text (invalid byte at offset {error.start}); save the file as UTF-8"
        raise _whole(msg) from None
    if not text.strip():
        msg = "empty; expected one JSON object of facts"
        raise _whole(msg)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        msg = f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        raise _whole(msg) from None
    except RecursionError:
        msg = "not usable JSON: nested too deeply"
        raise _whole(msg) from None


def facts_of(data: Any) -> Mapping[str, Any]:
    """The facts in a parsed JSON value: an object of facts, or a worked example.

    A worked example is an object whose keys are among ``name``, ``story``,
    ``facts`` and ``expected`` and whose ``facts`` is an object.

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
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def read_lines(stream: IO[bytes], limit: int = MAX_ASSESSMENT_BYTES) -> Iterator[tuple[int, bytes | int]]:
    """Number and bytes of each line of ``stream``, read one at a time.

    A line longer than ``limit`` bytes is skipped unread and given as its length
    (an ``int``) instead of its bytes, so memory stays bounded by ``limit``.
    """
    number = 0
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            size = len(line)
            while True:
                more = stream.readline(1 << 16)
                size += len(more)
                if not more or more.endswith(b"\n"):
                    break
            yield number, size
        else:
            yield number, line


@attrs.frozen
class LineResult:
    """What one input line gave, as the summary and the error report need it."""

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


def _decide_line(engine: Engine, number: int, raw: bytes | int) -> tuple[str, LineResult]:
    try:
        if isinstance(raw, int):
            msg = f"{_size(raw)} long, more than {_size(MAX_ASSESSMENT_BYTES)}, the limit for one assessment"
            raise _whole(msg)
        decision = engine.decide(facts_of(parse_assessment(raw)))
    except (InputError, InvalidAssessment) as error:
        problems = error.problems
        payload = {
            "line": number,
            "error": INVALID,
            "problems": [{"fact": p.fact, "message": p.message} for p in problems],
        }
        return dumps(payload), LineResult(number, problems)
    data = decision.to_dict()
    return dumps(data), LineResult(number, (), data["level"], data["status"], decision.emergency)


def dumps(data: Mapping[str, Any]) -> str:
    """One output line (without its newline): compact JSON with sorted keys."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _decide_chunk_with(engine: Engine, chunk: list[tuple[int, bytes | int]]) -> ChunkResult:
    texts, results = [], []
    for number, raw in chunk:
        text, result = _decide_line(engine, number, raw)
        texts.append(text)
        results.append(result)
    # Encoded here, in one block, so that with workers the parent process only
    # copies bytes to the output rather than rebuilding every line.
    return ChunkResult("".join(t + "\n" for t in texts).encode("utf-8"), tuple(results))


def _chunks(lines: Iterable[tuple[int, bytes | int]]) -> Iterator[list[tuple[int, bytes | int]]]:
    chunk: list[tuple[int, bytes | int]] = []
    size = 0
    for item in lines:
        chunk.append(item)
        size += len(item[1]) if isinstance(item[1], bytes) else 0
        if len(chunk) >= _CHUNK_LINES or size >= _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


# Each worker process builds its own engine: durable's C core has no locks and its
# state must never be shared between processes.
_worker_engine: Engine | None = None


def _start_worker(rules: str | None) -> None:
    global _worker_engine
    _worker_engine = Engine.default() if rules is None else Engine.from_path(rules)


def _decide_chunk(chunk: list[tuple[int, bytes | int]]) -> ChunkResult:
    engine = _worker_engine
    if engine is None:  # pragma: no cover - the pool's initializer always runs first
        msg = "worker started without an engine"
        raise RuntimeError(msg)
    return _decide_chunk_with(engine, chunk)


def decide_chunks(
    lines: Iterable[tuple[int, bytes | int]], engine: Engine, *, rules: str | None = None, workers: int = 1
) -> Iterator[ChunkResult]:
    """Decide numbered lines in chunks, yielding the chunks in input order.

    Args:
        lines: ``(number, bytes)`` pairs as :func:`read_lines` gives them.
        engine: The engine used in this process (``workers == 1``).
        rules: The rule base folder the worker processes load (``None``: shipped).
        workers: Processes to decide in; 1 decides in this process.
    """
    if workers <= 1:
        for chunk in _chunks(lines):
            yield _decide_chunk_with(engine, chunk)
        return
    # Spawned workers start clean: a forked child would inherit this process's
    # durable state and any lock another thread held at the moment of the fork.
    context = multiprocessing.get_context("spawn")
    window = workers * _IN_FLIGHT_PER_WORKER
    with context.Pool(workers, initializer=_start_worker, initargs=(rules,)) as pool:
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
    """Counts over a batch, for the closing report."""

    level_ids: tuple[str, ...] = ()
    lines: int = 0
    invalid: int = 0
    emergency: int = 0
    statuses: collections.Counter[str] = attrs.field(factory=collections.Counter)
    levels: collections.Counter[str] = attrs.field(factory=collections.Counter)

    def add(self, result: LineResult) -> None:
        self.lines += 1
        if result.problems:
            self.invalid += 1
            return
        self.statuses[result.status or ""] += 1
        self.levels[result.level or "none"] += 1
        self.emergency += int(result.emergency)

    def text(self) -> str:
        """The summary as a few lines of text."""
        decided = self.lines - self.invalid
        line = "line" if self.lines == 1 else "lines"
        rows = [f"{self.lines} {line}: {decided} decided, {self.invalid} invalid"]
        rows.append("  status: " + ", ".join(f"{s} {self.statuses[s]}" for s in STATUSES))
        levels = [f"{lvl} {self.levels[lvl]}" for lvl in self.level_ids]
        rows.append("  level: " + ", ".join(levels) + f", none (data required) {self.levels['none']}")
        rows.append(f"  emergency: {self.emergency}")
        return "\n".join(rows)


def count_lines(path: str) -> int:
    """The number of lines in a file, reading it in blocks."""
    count, last = 0, b"\n"
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def run(
    lines: Iterable[tuple[int, bytes | int]],
    sink: IO[bytes],
    engine: Engine,
    *,
    rules: str | None,
    workers: int,
    on_invalid: Callable[[LineResult], None],
    on_progress: Callable[[int], None],
) -> Summary:
    """Decide every line, writing one output line each to ``sink``.

    Returns:
        The counts for the closing summary.
    """
    summary = Summary(engine.levels.ids)
    for chunk in decide_chunks(lines, engine, rules=rules, workers=workers):
        sink.write(chunk.output)
        for result in chunk.lines:
            summary.add(result)
            if result.problems:
                on_invalid(result)
        on_progress(len(chunk.lines))
    return summary
