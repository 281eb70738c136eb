"""Deciding a Dask bag of assessments, partition by partition, on any Dask scheduler.

Each output line is the one ``levelcare batch`` writes for the same input line:
the line is handed to the batch path's own function. Every process that runs a
partition builds the engine for a rule base once and keeps it for every later
partition (durable's state must never cross processes, and building an engine
costs far more than deciding one partition).
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import dask.bag
from dask.base import compute
from dask.delayed import delayed

from .._engine import Engine
from ..exceptions import AssessmentProblem
from ._lines import decide_line, decide_mapping, error_record
from ._reading import MAX_ASSESSMENT_BYTES
from ._records import RecordWriter

# The engines this process has built, by rule base folder (None: the shipped
# rules), and how many times each was built, which tests read on the workers.
_ENGINES: dict[str | None, Engine] = {}
_BUILT: collections.Counter[str | None] = collections.Counter()
_LOCK = threading.Lock()


def decide_bag(assessments: dask.bag.Bag, *, rules: str | os.PathLike[str] | None = None) -> dask.bag.Bag:
    """Decide every assessment of a Dask bag; a bag of output lines, in the same order.

    Args:
        assessments: One item per assessment: a line of JSON text (``str`` or
            ``bytes``, as :func:`dask.bag.read_text` gives them; a trailing
            newline is fine) or a mapping of facts.
        rules: A rule base folder that every worker can read; ``None`` for the
            rules shipped with levelcare.

    Returns:
        A bag with one ``str`` per item: exactly the record line ``levelcare
        batch`` writes for it, without the newline (the batch's closing
        summary record is not part of it). An invalid item gives the batch's
        error object, whose ``"line"`` is the item's position in the bag,
        counting from 1; a blank line gives nothing, as in the batch.

    The positions need each partition's length, so the items are counted when
    this function is called (computed on the current scheduler); the decisions
    are computed when the returned bag is.
    """
    folder = None if rules is None else os.path.abspath(os.fspath(rules))
    partitions: list[Any] = assessments.to_delayed()  # type: ignore[no-untyped-call]
    lengths = compute(*[delayed(_count)(part) for part in partitions])  # type: ignore[no-untyped-call]
    starts = itertools.accumulate((int(n) for n in lengths[:-1]), initial=1)
    parts = [delayed(decide_partition)(part, start, folder) for part, start in zip(partitions, starts, strict=True)]
    lines: dask.bag.Bag = dask.bag.from_delayed(parts)  # type: ignore[no-untyped-call]
    return lines


def _count(items: Iterable[Any]) -> int:
    return sum(1 for _ in items)


def engine_for(rules: str | None) -> Engine:
    """This process's engine for the rule base folder ``rules``, built on first use."""
    engine = _ENGINES.get(rules)
    if engine is None:
        with _LOCK:
            engine = _ENGINES.get(rules)
            if engine is None:
                engine = Engine.default() if rules is None else Engine.from_path(rules)
                _ENGINES[rules] = engine
                _BUILT[rules] += 1
    return engine


def built() -> dict[str | None, int]:
    """How many times this process built the engine of each rule base."""
    return dict(_BUILT)


def decide_partition(items: Iterable[Any], start: int, rules: str | None) -> list[str]:
    """Output lines for the items of one partition, the first at position ``start``."""
    engine = engine_for(rules)
    writer = RecordWriter()
    lines = (line(engine, number, item, writer) for number, item in enumerate(items, start))
    return [text for text in lines if text is not None]


def line(engine: Engine, number: int, item: Any, writer: RecordWriter | None = None) -> str | None:
    """The batch output line for one item at position ``number``; None for a blank line, which the batch skips."""
    if isinstance(item, (str, bytes, bytearray)) and not item.strip():
        return None
    if isinstance(item, str):
        raw = item.encode("utf-8", "surrogateescape")
    elif isinstance(item, (bytes, bytearray)):
        raw = bytes(item)
    elif isinstance(item, Mapping):
        return decide_mapping(engine, number, item, writer)[0]
    else:
        kind = type(item).__name__
        problem = AssessmentProblem("", f"expected a line of JSON text or a mapping of facts, got {kind}")
        return error_record(number, [problem])
    # A trailing newline is fine, as the docstring of decide_bag says; a line too long
    # to hold is given by its length alone, as the batch reads it.
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    return decide_line(engine, number, len(raw) if len(raw) > MAX_ASSESSMENT_BYTES else raw, writer)[0]
