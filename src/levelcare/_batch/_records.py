"""Batch output records, written as ``json.dumps`` writes them, from parts written once.

A batch record is ``decision.to_dict()`` with the input line number (and the
pass-through id), as compact JSON with sorted keys. Most of a record is reasons,
a programme and the rule base's name: the engine shares those objects between
decisions, so their JSON is written once per object and reused. A property test
holds every record byte for byte equal to ``json.dumps`` of the dict.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from .._model import Decision, Program, Reason, RulebaseInfo


def _hex(digest: str) -> str:
    """A digest as a JSON string: hexadecimal digits need no escaping (anything else is dumped)."""
    return '"' + digest + '"' if digest.isascii() and digest.isalnum() else dumps(digest)


def dumps(data: Any) -> str:
    """Compact JSON with sorted keys, not escaped to ASCII: the batch output format."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class RecordWriter:
    """Writes the output record of one decided line.

    Keeps the JSON of the reasons, programmes, rule-base records and short
    strings (level ids, statuses, service and fact names) it has written, by
    identity or by value; once it holds ``limit`` of either it starts again empty,
    so memory stays bounded.
    """

    limit: ClassVar[int] = 4096

    def __init__(self) -> None:
        self._objects: dict[int, tuple[object, str]] = {}
        self._strings: dict[str, str] = {}

    def record(self, decision: Decision, line: int, record_id: str | int | None = None) -> str:
        """``dumps({**decision.to_dict(), "line": line, "_id": record_id})``; no ``_id`` when None."""
        text, string, strings = self._text, self._string, self._strings_of
        level, transition, as_of, sha = decision.level, decision.transition, decision.as_of, decision.input_sha256
        low, high = decision.level_range
        parts = [
            "{",
            "" if record_id is None else '"_id":' + dumps(record_id) + ",",
            '"as_of":' + ("null" if as_of is None else dumps(as_of.isoformat())),
            ',"considerations":' + self._list(decision.considerations),
            ',"emergency":' + ("true" if decision.emergency else "false"),
            ',"input_sha256":' + ("null" if sha is None else _hex(sha)),
            ',"level":' + ("null" if level is None else string(level.value)),
            ',"level_range":[' + string(low.value) + "," + string(high.value) + "]",
            ',"levelcare_version":'
            + ("null" if decision.levelcare_version is None else string(decision.levelcare_version)),
            ',"line":' + int.__repr__(line),
            ',"missing":' + strings(decision.missing),
            ',"program":' + text(decision.program),
            ',"reasons":' + self._list(decision.reasons),
            ',"rulebase":' + text(decision.rulebase),
            ',"ruled_out":' + self._list(decision.ruled_out),
            ',"services":' + strings(decision.services),
            ',"status":' + string(decision.status),
            ',"transition":' + ("null" if transition is None else string(transition.value)),
            "}",
        ]
        return "".join(parts)

    def _list(self, reasons: tuple[Reason, ...]) -> str:
        text = self._text
        return "[" + ",".join([text(reason) for reason in reasons]) + "]"

    def _strings_of(self, values: tuple[str, ...]) -> str:
        string = self._string
        return "[" + ",".join([string(value) for value in values]) + "]"

    def _text(self, value: Reason | Program | RulebaseInfo) -> str:
        """The JSON of an immutable record; the same object gives the same text."""
        entry = self._objects.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        text = dumps(value.to_dict())
        if len(self._objects) >= self.limit:
            self._objects.clear()
        # The object is kept with its text, so its id is not reused while the entry lives.
        self._objects[id(value)] = (value, text)
        return text

    def _string(self, value: str) -> str:
        text = self._strings.get(value)
        if text is None:
            text = dumps(value)
            if len(self._strings) >= self.limit:
                self._strings.clear()
            self._strings[value] = text
        return text
