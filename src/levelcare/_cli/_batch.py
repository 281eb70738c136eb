"""``levelcare batch``: its progress, its output and how a stopped run ends."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .. import _batch
from .._engine import Engine
from ..exceptions import AssessmentProblem
from ._common import _PROG, EXIT_DECIDED, EXIT_ERROR, EXIT_INVALID, _InputError, _rulebase, _stderr, _verified_engine


class _Progress:
    """A tqdm bar on standard error when it is a terminal and tqdm is installed."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled:
            return
        try:
            tqdm = importlib.import_module("tqdm")
        except ImportError:
            return  # the bar is optional: pip install "levelcare[cli]"
        try:
            columns = os.get_terminal_size(sys.stderr.fileno()).columns
        except OSError:
            columns = 0
        # A terminal that reports no size (a bare pseudo-terminal) would get no bar
        # at all; give it the customary 80 x 24 instead.
        sizing: dict[str, Any] = {"dynamic_ncols": True} if columns else {"ncols": 80, "nrows": 24}
        self._bar = tqdm.tqdm(total=total, unit="line", unit_scale=True, file=sys.stderr, **sizing)

    def update(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def write(self, message: str) -> None:
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _invalid_line_reporter(progress: _Progress) -> Callable[[_batch.LineResult], None]:
    def report(result: _batch.LineResult) -> None:
        for problem in result.problems:
            progress.write(f"{_PROG}: invalid input: line {result.number}: {problem}")

    return report


def _open_input(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as error:
        reason = error.strerror or str(error)
        raise _InputError(path, [AssessmentProblem("", f"cannot read the file: {reason}")]) from None


def _cmd_batch(args: argparse.Namespace) -> int:
    target: Path | None = None if args.output in (None, "-") else Path(args.output)
    if args.resume and target is None:
        _stderr("batch: --resume continues the partial output of -o OUT.jsonl; give -o")
        return EXIT_INVALID
    rulebase = _rulebase(args.rules)
    rules = None if args.rules is None else os.path.abspath(args.rules)
    # The workers start (a Python and an engine each) while this process checks the rule base.
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(_batch.WorkerPool(rules, args.workers)) if args.workers > 1 else None
        engine = _verified_engine(rulebase, "batch", args.allow_unverified)
        return _run_batch(args, target, engine, rules, pool)


def _run_batch(
    args: argparse.Namespace, target: Path | None, engine: Engine, rules: str | None, pool: _batch.WorkerPool | None
) -> int:
    show_bar = not args.no_progress and sys.stderr.isatty()
    total = None
    if show_bar and args.input != "-" and os.path.isfile(args.input):
        total = _batch.count_lines(args.input)
    input_name = "standard input" if args.input == "-" else args.input
    source = _open_input(args.input)
    summary = _batch.Summary(engine.levels.ids)
    progress: _Progress | None = None
    output: _batch.Stdout | _batch.Partial | None = None
    with _batch.Signals() as signals:
        try:
            if target is None:
                output = _batch.Stdout(signals)
            else:
                output = _batch.Partial(target, signals, resume=args.resume, input_name=input_name)
                if output.replaced:
                    _stderr(
                        f"batch: replacing {output.path}, left by an interrupted run (--resume continues it instead)"
                    )
            progress = _Progress(total, show_bar)
            if isinstance(output, _batch.Partial) and output.kept_records:
                progress.write(
                    f"{_PROG}: batch: resuming {output.path}: {output.kept_records} records kept; "
                    "each is decided again and must be the same before the run goes on"
                )
            _batch.run(
                _batch.read_chunks(source),
                output.write,
                engine,
                summary,
                rules=rules,
                workers=args.workers,
                on_invalid=_invalid_line_reporter(progress),
                on_progress=progress.update,
                pool=pool,
            )
            output.end()
            output.write(summary.trailer(engine))
            output.finish()
        except _batch.Interrupted as stop:
            return _stopped(output, summary, f"interrupted by {stop.name}", stop.status)
        except _batch.WriteError as error:
            return _stopped(output, summary, str(error), EXIT_ERROR)
        except OSError as error:
            if isinstance(error, BrokenPipeError):
                raise
            return _stopped(output, summary, f"cannot read {input_name}: {error.strerror or error}", EXIT_ERROR)
        except BaseException:
            if output is not None:
                output.abandon()
            raise
        finally:
            if progress is not None:
                progress.close()
            if source is not sys.stdin.buffer:
                source.close()
    first, *rest = summary.text().splitlines()
    _stderr(f"batch: {first}")
    for row in rest:
        print(row, file=sys.stderr)
    return EXIT_INVALID if summary.invalid else EXIT_DECIDED


def _stopped(output: _batch.Stdout | _batch.Partial | None, summary: _batch.Summary, why: str, status: int) -> int:
    """Report a batch stopped before its end; the exit status."""
    if output is not None:
        output.abandon()
    written = summary.records if output is None else output.records
    done = f"{written} record{'' if written == 1 else 's'} written"
    if output is not None and output.kept is not None:
        after = f"they are kept in {output.kept}: run the same command with --resume to finish"
    elif isinstance(output, _batch.Stdout):
        after = "the output has no closing record, so it reads as incomplete"
    else:
        after = "no output file was written"
    _stderr(f"batch: {why}; {done}; {after}")
    return status
