"""``levelcare report``: gather what the review page shows, and write it.

The check, the test vectors and (against an older rule base) the item changes,
the diff's counts and the population's records are computed here; the page itself
is written by ``_render._review`` from plain values.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from .._engine import Engine
from .._model import installed_version
from .._render._review import CaseResult, ChangedItem, CheckSummary, Comparison, Movement, review_html
from .._rulebase import RuleBase, load
from .._text import shorten
from ..exceptions import LevelCareError
from ._changes import item_changes, same_label_other_content
from ._diff import DiffError, Part, Population, diff, population
from ._report import VerificationReport
from ._vectors import mismatches


def _check_summary(report: VerificationReport) -> CheckSummary:
    findings = tuple(
        (f.severity.value, f.check, " ".join(p for p in (f.rule_id, f"({f.file})" if f.file else "") if p), f.message)
        for f in report.findings
    )
    return CheckSummary(ok=report.ok, findings=findings, checked=report.checked_sentence())


def case_results(rulebase: RuleBase, engine: Engine | None = None) -> tuple[CaseResult, ...]:
    """Each of the rule base's test vectors decided, with how it differs from what it expects."""
    if not rulebase.cases:
        return ()
    try:
        engine = Engine(rulebase) if engine is None else engine
    except LevelCareError as error:
        why = f"no decision: the engine could not be built ({shorten(str(error))})"
        return tuple(CaseResult(case=case, error=why) for case in rulebase.cases)
    results = []
    for case in rulebase.cases:
        try:
            decision = engine.decide(dict(case.facts))
        except Exception as error:  # noqa: BLE001 - a rule base with other errors (a gap) can fail here
            results.append(CaseResult(case=case, error=f"no decision: {type(error).__name__}"))
            continue
        results.append(CaseResult(case=case, mismatches=tuple(mismatches(case, decision))))
    return tuple(results)


def _moves(pairs: Iterable[tuple[str, str, int]]) -> tuple[tuple[str, str, int], ...]:
    """``(old, new, count)`` summed per pair whose level differs, largest first."""
    counts: Counter[tuple[str, str]] = Counter()
    for old, new, count in pairs:
        if old != new:
            counts[old, new] += count
    return tuple((old, new, count) for (old, new), count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _level_moves(part: Part) -> tuple[tuple[str, str, int], ...]:
    return _moves(
        (change.old.level or change.old.status, change.new.level or change.new.status, change.count)
        for change in part.changes
    )


def _population_moves(found: Population) -> Movement:
    moves = _moves((row.old, row.new, row.count) for row in found.rows)
    return Movement(title=f"records of {found.source}", unit="records", moves=moves, total=found.records)


def _changed_items(old: RuleBase, new: RuleBase) -> tuple[ChangedItem, ...]:
    return tuple(
        ChangedItem(
            label=change.label,
            change=change.change,
            old=() if change.old is None else change.old.lines,
            new=() if change.new is None else change.new.lines,
            old_file=change.old.file if change.old else "",
            new_file=change.new.file if change.new else "",
        )
        for change in item_changes(old, new)
    )


def _comparison(old_dir: str, new_dir: str, old: RuleBase, new: RuleBase, population_file: str | None) -> Comparison:
    notes: list[str] = []
    if same_label_other_content(old, new):
        notes.append(
            f"Both rule bases are called {old.info.name} {old.info.version}, but their content differs: "
            "give the changed one a new version."
        )
    movements: list[Movement] = []
    try:
        found = diff(old_dir, new_dir)
    except DiffError as error:
        notes.append(f"The decisions were not compared: {'; '.join(error.problems)}")
    else:
        movements.append(
            Movement(
                title="admissions",
                unit="kinds of admission",
                moves=_level_moves(found.admissions),
                total=found.admissions.size,
            )
        )
        movements.append(
            Movement(
                title="people in treatment",
                unit="kinds of in-treatment assessment",
                moves=_level_moves(found.in_treatment),
                total=found.in_treatment.size,
            )
        )
    if population_file is not None:
        with open(population_file, "rb") as stream:
            movements.append(_population_moves(population(old_dir, new_dir, stream, population_file)))
    info = old.info
    return Comparison(
        old_name=f"{info.name} {info.version}, sha256 {info.sha256}",
        old_location=old_dir,
        items=_changed_items(old, new),
        movements=tuple(movements),
        notes=tuple(notes),
    )


def review_page(
    location: str, *, against: str | None = None, population_file: str | None = None, budget: float | None = 600.0
) -> tuple[str, VerificationReport]:
    """The review page of the rule base at ``location``, and the check it shows.

    Args:
        location: The rule base folder.
        against: An older rule base to show the changes from.
        population_file: Assessments (JSON Lines) to count the records that move, with ``against``.
        budget: Seconds the check may take.

    Raises:
        RuleBaseError: when either rule base does not load.
        OSError: when the population file cannot be read.
    """
    from . import verify

    rulebase = load(location)
    report = verify(location, budget=budget)
    comparison = None
    if against is not None:
        comparison = _comparison(against, location, load(against), rulebase, population_file)
    page = review_html(
        rulebase,
        check=_check_summary(report),
        cases=case_results(rulebase),
        version=installed_version() or "unknown",
        comparison=comparison,
    )
    return page, report


def write_page(path: str, page: str) -> None:
    """Write ``page`` to ``path`` whole or not at all, never through a symlink planted at a temporary name.

    The page goes to a new file beside ``path`` (created exclusively, so nothing
    already there is followed or overwritten) and is renamed over ``path``: a
    symlink at ``path`` itself is replaced, not followed.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(temporary, flags, 0o644)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(page)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
