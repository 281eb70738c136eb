"""Reading assessments: one JSON text of facts, and numbered lines of a byte stream.

A line ends with LF, CRLF or CR; a UTF-8 byte order mark at the start is skipped;
blank lines are not records. An object may carry a pass-through id, ``"_id"`` (a
string of at most 128 characters, or a whole number): it is no fact, is never read
by the rules, and is copied to the line's output record.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from .._rulebase._vocabulary import FactValue, TooLongNumber, Vocabulary, shorten, type_name
from ..exceptions import AssessmentProblem, InvalidAssessment, _bounded

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


class InputError(Exception):
    """Input that is not one JSON object of valid facts; ``problems`` say why, as many as an error lists.

    ``record_id`` is the input's pass-through id, when it had a usable one.
    """

    def __init__(self, problems: Iterable[AssessmentProblem], record_id: str | int | None = None) -> None:
        self.problems = _bounded(problems)
        self.record_id = record_id
        super().__init__("; ".join(str(p) for p in self.problems))


def whole(message: str) -> InputError:
    return InputError([AssessmentProblem("", message)])


def size_text(count: int) -> str:
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
        msg = f"longer than {size_text(MAX_ASSESSMENT_BYTES)}, the limit for one assessment"
        raise whole(msg)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        msg = f"not UTF-8 text (invalid byte at offset {error.start}); save the file as UTF-8"
        raise whole(msg) from None
    text = text.removeprefix("\ufeff")  # a byte order mark, as some editors write
    if not text.strip():
        msg = "empty; expected one JSON object of facts"
        raise whole(msg)
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
        raise whole(msg) from None
    except RecursionError:
        msg = "not usable JSON: nested too deeply"
        raise whole(msg) from None
    except ValueError as error:  # pragma: no cover - every known cause is handled above
        msg = f"not usable JSON: {shorten(str(error))}"
        raise whole(msg) from None


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
        raise whole(msg)
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


def parse_facts_and_id(raw: bytes) -> tuple[Mapping[str, Any], str | int | None]:
    """The facts in one JSON text, not yet validated, and its pass-through id, read as the batch reads them.

    Raises:
        InputError: the text as a whole, keys given twice, or an unusable id.
    """
    data, duplicates = _parse(raw)
    problems = _duplicate_problems(duplicates)
    record_id = _record_id(data, problems) if isinstance(data, dict) else None
    if problems:
        raise InputError(problems, record_id)
    facts = facts_of(data)
    if facts is not data and isinstance(facts, dict) and ID_FIELD in facts and record_id is None:
        record_id = _record_id(dict(facts), problems)
        if problems:
            raise InputError(problems)
    return {k: v for k, v in facts.items() if k != ID_FIELD}, record_id


def read_assessment(raw: bytes, vocabulary: Vocabulary) -> tuple[dict[str, FactValue], str | int | None]:
    """The validated facts in one JSON text, and its pass-through id.

    Raises:
        InputError: listing every problem: the text as a whole, keys given twice,
            the id, and every fact the vocabulary rejects.
    """
    data, duplicates = _parse(raw)
    return _validated(data, _duplicate_problems(duplicates), vocabulary)


def assessment_of(data: Mapping[Any, Any], vocabulary: Vocabulary) -> tuple[dict[str, FactValue], str | int | None]:
    """The validated facts of a mapping (facts, or a worked example), and its pass-through id.

    The mapping is read as :func:`read_assessment` reads the same JSON object; it
    is not changed.

    Raises:
        InputError: listing every problem: the id and every fact the vocabulary rejects.
    """
    return _validated(dict(data), [], vocabulary)


def _validated(
    data: Any, problems: list[AssessmentProblem], vocabulary: Vocabulary
) -> tuple[dict[str, FactValue], str | int | None]:
    record_id = None
    if isinstance(data, dict):
        record_id = _record_id(data, problems)
    try:
        facts = facts_of(data)
    except InputError as error:
        raise InputError([*problems, *error.problems], record_id) from None
    if facts is not data and isinstance(facts, dict) and ID_FIELD in facts:
        facts = dict(facts)  # the id is taken out of a copy: a caller's mapping stays as it was
        record_id = record_id if record_id is not None else _record_id(facts, problems)
    try:
        known = vocabulary.validate(facts)
    except InvalidAssessment as error:
        problems.extend(error.problems)
    if problems:
        raise InputError(problems, record_id)
    return known, record_id


#: A piece of a chunk: whole lines as bytes (their endings included), or the length
#: of one line too long to hold, which was passed over unread.
Piece = bytes | int
#: Consecutive input lines: the number of the first, and the pieces that hold them.
Chunk = tuple[int, tuple[Piece, ...]]
_BOM = b"\xef\xbb\xbf"
#: Bytes read from the input at a time.
_BLOCK = 1 << 18
#: Chunk sizes: the first ones small, so that the first records come soon.
_FIRST_CHUNK_BYTES = 1 << 15
_FIRST_CHUNKS = 4
_CHUNK_BYTES = 1 << 18


def _lines_in(piece: bytes) -> int:
    """Lines in ``piece``: each LF, CR or CRLF ends one, and so does the end of a piece that has none."""
    count = piece.count(b"\n")
    if b"\r" in piece:  # rare: a search for it is much quicker than the two counts
        count += piece.count(b"\r") - piece.count(b"\r\n")
    return count + (not piece.endswith((b"\n", b"\r")))


def _first_end(block: bytes) -> int:
    """The offset of the first LF or CR in ``block``; -1 if none."""
    ends = [at for at in (block.find(b"\n"), block.find(b"\r")) if at >= 0]
    return min(ends) if ends else -1


def read_chunks(stream: IO[bytes], *, limit: int = MAX_ASSESSMENT_BYTES) -> Iterator[Chunk]:
    """The lines of a byte stream in chunks of whole lines, as bytes, never parsed.

    Chunks are cut at line ends (LF, CRLF or CR, a CRLF never split), so that each
    can be split into lines on its own (:func:`split_chunk`). A line longer than
    ``limit`` bytes is passed over unread and given as its length, so memory stays
    bounded by the chunk size and ``limit``. Only byte counting is done here: this
    is all a batch's parent process does with its input.
    """
    read = getattr(stream, "read1", stream.read)  # what is there: a pipe is read as it comes
    hold = limit + len(_BOM)  # the first line's byte order mark is not part of its length
    number = 1  # the number of the first line of the chunk being filled
    lines = 0  # lines in the chunk being filled
    pieces: list[Piece] = []
    size = made = 0
    tail = b""  # the start of a line whose end is not read yet
    skipped: int | None = None  # the length so far of an over-long line being passed over
    lf_ends_it = False  # the line passed over ended with CR at the end of a block

    def cut() -> Chunk:
        nonlocal number, lines, pieces, size, made
        chunk = (number, tuple(pieces))
        number, lines, pieces, size, made = number + lines, 0, [], 0, made + 1
        return chunk

    while block := read(_BLOCK):
        if lf_ends_it:
            lf_ends_it = False
            block = block.removeprefix(b"\n")
        if skipped is not None:
            end = _first_end(block)
            if end < 0:
                skipped += len(block)
                continue
            pieces.append(skipped + end)
            lines += 1
            skipped = None
            if block[end : end + 2] == b"\r\n":
                end += 1
            elif block[end:] == b"\r":
                lf_ends_it = True
            block = block[end + 1 :]
        data = tail + block if tail else block
        # The last line end; a CR as the very last byte may be half a CRLF, so it waits.
        last = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1))
        if last >= 0:
            whole = data[: last + 1]
            pieces.append(whole)
            lines += _lines_in(whole)
            size += len(whole)
        tail = data[last + 1 :]
        if len(tail) > hold:
            # Too long to hold: only its length is kept (less a byte order mark on line 1).
            length = len(tail) - (len(_BOM) if number + lines == 1 and tail.startswith(_BOM) else 0)
            tail = b""
            if data.endswith(b"\r"):
                pieces.append(length - 1)
                lines += 1
                lf_ends_it = True
            else:
                skipped = length
        if size >= (_FIRST_CHUNK_BYTES if made < _FIRST_CHUNKS else _CHUNK_BYTES):
            yield cut()
    if skipped is not None:
        pieces.append(skipped)
        lines += 1
    elif tail:
        pieces.append(tail)
        lines += 1
    if pieces:
        yield cut()


def split_chunk(
    first: int, pieces: Iterable[Piece], limit: int = MAX_ASSESSMENT_BYTES
) -> Iterator[tuple[int, Piece | None]]:
    """The numbered lines of a chunk: each line's bytes (its ending left off), its length when longer than ``limit``, or None when blank.

    Lines are numbered from ``first``; line 1 loses a UTF-8 byte order mark. Bytes
    that are not UTF-8 are passed through unchanged, for the line's own error to
    report.
    """
    number = first
    for piece in pieces:
        if isinstance(piece, int):
            yield number, piece
            number += 1
            continue
        lines = piece.splitlines()  # bytes: LF, CRLF and CR only, as the chunks are cut
        if number == 1 and lines:
            lines[0] = lines[0].removeprefix(_BOM)
        for raw in lines:
            if len(raw) > limit:
                yield number, len(raw)
            elif not raw.strip():
                yield number, None
            else:
                yield number, raw
            number += 1


class LineReader:
    """Numbered lines of a byte stream, read one at a time; blank lines are counted, not given.

    A line ends with LF, CRLF or CR; a UTF-8 byte order mark before the first line
    is skipped. A line longer than ``limit`` bytes is skipped unread and given as
    its length (an ``int``) instead of its bytes, so memory stays bounded. Bytes
    that are not UTF-8 are passed through unchanged, for the line's own error to
    report. The lines are those :func:`read_chunks` and :func:`split_chunk` give.
    """

    def __init__(self, stream: IO[bytes], limit: int = MAX_ASSESSMENT_BYTES) -> None:
        self._stream = stream
        self._limit = limit
        self.number = 0
        self.blank = 0

    def __iter__(self) -> Iterator[tuple[int, bytes | int]]:
        for first, pieces in read_chunks(self._stream, limit=self._limit):
            for number, raw in split_chunk(first, pieces, self._limit):
                self.number = number
                if raw is None:
                    self.blank += 1
                else:
                    yield number, raw

    def detach(self) -> None:
        """Nothing to do: the reader never closes the stream, which stays the caller's."""


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
