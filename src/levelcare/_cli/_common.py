"""What every command shares: exit statuses, messages on standard error, reading input, the rule base."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections.abc import Sequence

from .. import _batch
from .._engine import Engine
from .._rulebase import RuleBase, default_location, load
from .._text import shorten
from ..exceptions import AssessmentProblem, UnverifiedRuleBase

EXIT_DECIDED = 0


EXIT_ERROR = 1


EXIT_INVALID = 2


EXIT_DATA_REQUIRED = 3


#: ``levelcare diff``: the two rule bases decide differently.
EXIT_DIFFERENT = 1
#: ``check`` and ``diff``: a check or comparison not decided within its time budget.
EXIT_UNVERIFIED = 4


_PROG = "levelcare"


class _InputError(Exception):
    """Input that cannot be used, with every problem, each naming its fact."""

    def __init__(self, source: str, problems: Sequence[AssessmentProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: " + "; ".join(str(p) for p in self.problems))


def _rulebase(rules: str | None) -> RuleBase:
    return load(default_location() if rules is None else rules)


def _verified_engine(rulebase: RuleBase, command: str, allow_unverified: bool) -> Engine:
    """An engine for ``rulebase`` once ``levelcare check`` passes on it.

    A rule base that does not pass is refused; with ``--allow-unverified`` it runs,
    marked unverified, so every decision it makes says so.
    """
    from .._verify import require_verified

    engine = Engine(rulebase)
    try:
        require_verified(engine)
    except UnverifiedRuleBase:
        if not allow_unverified:
            raise
        _stderr(
            f"{command}: warning: the rule base did not pass levelcare check (levelcare check shows why); "
            "every decision is marked unverified"
        )
        return Engine(rulebase.as_unverified())
    return engine


def _stderr(message: str) -> None:
    print(f"{_PROG}: {message}", file=sys.stderr)


def _read_input(source: str) -> bytes:
    limit = _batch.MAX_ASSESSMENT_BYTES
    if source == "-":
        return sys.stdin.buffer.read(limit + 1)
    try:
        with open(source, "rb") as stream:
            return stream.read(limit + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise _InputError(source, [AssessmentProblem("", f"cannot read the file: {reason}")]) from None


def _as_of(text: str) -> _dt.datetime:
    """``--as-of``: an ISO 8601 date and time with a UTC offset."""
    try:
        value: _dt.datetime | None = _dt.datetime.fromisoformat(text)
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        msg = (
            "expected an ISO 8601 date and time with a UTC offset, such as 2026-11-02T09:30:00+01:00 "
            f"or 2026-11-02T08:30:00Z, got {shorten(text)}"
        )
        raise argparse.ArgumentTypeError(msg)
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        msg = f"expected a number of seconds above 0, got {text[:40]!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a whole number of processes, at least 1, got {text[:40]!r}"
        raise argparse.ArgumentTypeError(msg)
    return value
