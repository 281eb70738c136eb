"""The counts over a batch, its closing record, and the run that writes every record."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable

import attrs

from .._engine import Engine
from .._model import STATUSES, installed_version
from ._lines import TRAILER, LineResult
from ._reading import Chunk
from ._records import dumps
from ._workers import ChunkResult, WorkerPool, decide_chunks


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

    def add(self, chunk: ChunkResult) -> None:
        """Count the records of one chunk."""
        self.records += chunk.lines - chunk.blank
        self.blank += chunk.blank
        self.invalid += len(chunk.invalid)
        for (status, level, emergency), count in chunk.decided.items():
            self.statuses[status] += count
            self.levels[level or "none"] += count
            self.emergency += count * emergency

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


def run(
    chunks: Iterable[Chunk],
    write: Callable[[bytes, int], None],
    engine: Engine,
    summary: Summary,
    *,
    rules: str | None,
    workers: int,
    on_invalid: Callable[[LineResult], None],
    on_progress: Callable[[int], None],
    pool: WorkerPool | None = None,
) -> None:
    """Decide every chunk, writing each chunk's records with ``write``, in input order.

    ``write`` gets each chunk's bytes and how many records they hold (one for each
    line that is not blank).

    ``summary`` counts every record written; a caller that stops the run (an
    interrupt, a full disk) still has the counts of what was written.
    """
    for chunk in decide_chunks(chunks, engine, rules=rules, workers=workers, pool=pool):
        write(chunk.output, chunk.lines - chunk.blank)
        summary.add(chunk)
        for result in chunk.invalid:
            on_invalid(result)
        on_progress(chunk.lines)
