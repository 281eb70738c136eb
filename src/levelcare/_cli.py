"""The ``levelcare`` command line.

Exit codes, for every command: 0 done (for ``decide``: the level is decided), 3 the
level needs more data (``decide``), 2 invalid input (every problem is on standard
error, by fact name; for ``batch``: one or more lines were invalid), 1 anything
else, such as a rule base that does not load.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from . import _batch
from ._engine import Engine
from ._reference import levels_svg, rules_markdown, vocabulary_markdown
from ._report import render
from ._rulebase import RuleBase, default_location, load
from ._schema import assessment_schema
from .exceptions import AssessmentProblem, InvalidAssessment, LevelCareError, RuleBaseError

EXIT_DECIDED = 0
EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_DATA_REQUIRED = 3

_PROG = "levelcare"


class _InputError(Exception):
    """Input that cannot be used, with every problem, each naming its fact."""

    def __init__(self, source: str, problems: Sequence[AssessmentProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(f"{source}: " + "; ".join(str(p) for p in self.problems))


def _rulebase(rules: str | None) -> RuleBase:
    return load(default_location() if rules is None else rules)


def _stderr(message: str) -> None:
    print(f"{_PROG}: {message}", file=sys.stderr)


# --- decide ---------------------------------------------------------------------------


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


def _cmd_decide(args: argparse.Namespace) -> int:
    rulebase = _rulebase(args.rules)
    engine = Engine(rulebase)
    source = "standard input" if args.file == "-" else args.file
    raw = _read_input(args.file)
    try:
        facts = _batch.facts_of(_batch.parse_assessment(raw))
        decision = engine.decide(facts)
    except (_batch.InputError, InvalidAssessment) as error:
        raise _InputError(source, error.problems) from None
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(render(decision, rulebase))
    return EXIT_DECIDED if decision.complete else EXIT_DATA_REQUIRED


# --- batch ----------------------------------------------------------------------------


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
    rulebase = _rulebase(args.rules)
    engine = Engine(rulebase)
    rules = None if args.rules is None else os.path.abspath(args.rules)
    show_bar = not args.no_progress and sys.stderr.isatty()
    total = None
    if show_bar and args.input != "-" and os.path.isfile(args.input):
        total = _batch.count_lines(args.input)
    source = _open_input(args.input)
    target: Path | None = None if args.output in (None, "-") else Path(args.output)
    partial: IO[bytes]
    if target is None:
        partial = sys.stdout.buffer
    else:
        # Written beside the target and renamed at the end, so a failed run never
        # leaves a half-written output file where the complete one is expected.
        try:
            partial = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed or removed below
                dir=target.parent or ".", prefix=f".{target.name}.", suffix=".partial", delete=False
            )
            # A temporary file is private (0600); the output gets the usual mode.
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(partial.name, 0o666 & ~mask)
        except OSError as error:
            if source is not sys.stdin.buffer:
                source.close()
            reason = error.strerror or str(error)
            msg = f"cannot write {target}: {reason}"
            raise LevelCareError(msg) from None
    progress = _Progress(total, show_bar)
    done = False
    try:
        summary = _batch.run(
            _batch.read_lines(source),
            partial,
            engine,
            rules=rules,
            workers=args.workers,
            on_invalid=_invalid_line_reporter(progress),
            on_progress=progress.update,
        )
        partial.flush()
        done = True
    finally:
        progress.close()
        if source is not sys.stdin.buffer:
            source.close()
        if target is not None:
            partial.close()
            if done:
                os.replace(partial.name, target)
            else:
                Path(partial.name).unlink(missing_ok=True)
    first, *rest = summary.text().splitlines()
    _stderr(f"batch: {first}")
    for row in rest:
        print(row, file=sys.stderr)
    return EXIT_INVALID if summary.invalid else EXIT_DECIDED


# --- schema, rules, check -------------------------------------------------------------


def _cmd_schema(args: argparse.Namespace) -> int:
    rulebase = _rulebase(args.rules)
    print(json.dumps(assessment_schema(rulebase.vocabulary, rulebase.info), indent=2, ensure_ascii=False))
    return EXIT_DECIDED


def _cmd_rules(args: argparse.Namespace) -> int:
    rulebase = _rulebase(args.rules)
    if args.diagram:
        sys.stdout.write(levels_svg(rulebase))
    elif args.vocabulary:
        sys.stdout.write(vocabulary_markdown(rulebase))
    else:
        sys.stdout.write(rules_markdown(rulebase))
    return EXIT_DECIDED


def _cmd_check(args: argparse.Namespace) -> int:
    # Imported when used: no other command needs the verifier.
    from ._verify import check_command

    return check_command(args.rules_dir if args.rules_dir is not None else args.rules, args.json)


# --- the parser -------------------------------------------------------------------------


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a whole number of processes, at least 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # pragma: no cover - only in an uninstalled checkout
        return "unknown"


def _version() -> str:
    """levelcare's version, the Python it runs on and the rules engine it loaded."""
    from . import _pyeval_compat

    engine = f"durable-rules {_distribution_version('durable_rules')}"
    if _pyeval_compat.PROVIDES_PYEVAL_CALLOBJECT:
        engine += " (with PyEval_CallObject supplied by levelcare, removed from Python 3.13)"
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{_PROG} {_distribution_version('levelcare')}\nPython: {python}\nRules engine: {engine}"


class _VersionAction(argparse.Action):
    """``--version``: several lines, printed as they are (argparse's own action rewraps them)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:  # noqa: A002 - argparse's name
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(_version())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``levelcare`` command.

    Returns:
        A parser whose namespaces carry the command to run as ``run``.
    """
    rules_help = "use the rule base in folder DIR instead of the one shipped with levelcare"
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Decide the level of care for substance use disorders, and say why.",
        epilog="Exit codes: 0 done, 3 data required (decide), 2 invalid input, 1 any other error.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show levelcare's version, its Python and its rules engine, and exit"
    )
    parser.add_argument("--rules", metavar="DIR", help=rules_help)
    # The same option after the command; SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--rules", metavar="DIR", default=argparse.SUPPRESS, help=rules_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    decide = commands.add_parser(
        "decide",
        parents=[common],
        help="decide one assessment",
        description="Decide one assessment: a JSON object of facts, or a worked example with its facts "
        "under 'facts'. Exit code 0 when the level is decided, 3 when more facts are needed.",
    )
    decide.add_argument("file", metavar="FILE", help="JSON file of facts, or - for standard input")
    decide.add_argument("--json", action="store_true", help="print the decision as JSON (Decision.to_dict())")
    decide.set_defaults(run=_cmd_decide)

    batch = commands.add_parser(
        "batch",
        parents=[common],
        help="decide every line of a JSON Lines file",
        description="Decide one assessment per line. Output line N answers input line N: the decision as "
        'compact JSON, or for an invalid line {"line": N, "error": "invalid-input", "problems": [...]}. '
        "Invalid lines are also reported on standard error and never stop the run; a summary follows. "
        "Exit code 0 when every line was valid, 2 when any was not.",
    )
    batch.add_argument("input", metavar="IN.jsonl", help="one JSON object of facts per line, or - for standard input")
    batch.add_argument("-o", "--output", metavar="OUT.jsonl", help="write decisions here instead of standard output")
    batch.add_argument(
        "--workers", type=_workers, default=1, metavar="N", help="decide in N processes (default: 1, this process)"
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    batch.set_defaults(run=_cmd_batch)

    schema = commands.add_parser(
        "schema",
        parents=[common],
        help="print the JSON Schema of an assessment",
        description="Print the JSON Schema (draft 2020-12) of an assessment, generated from the rule base's facts.",
    )
    schema.set_defaults(run=_cmd_schema)

    rules = commands.add_parser(
        "rules",
        parents=[common],
        help="print the rule base as a Markdown reference",
        description="Print the rule base as a Markdown reference: criteria by level, transitions, "
        "programmes, services, considerations and sources.",
    )
    shown = rules.add_mutually_exclusive_group()
    shown.add_argument("--vocabulary", action="store_true", help="print the fact vocabulary instead")
    shown.add_argument("--diagram", action="store_true", help="print an SVG diagram of the levels and transitions")
    rules.set_defaults(run=_cmd_rules)

    check = commands.add_parser(
        "check",
        parents=[common],
        help="check a rule base",
        description="Check a rule base: load it and test the properties every rule base must have.",
    )
    check.add_argument("rules_dir", metavar="RULES_DIR", nargs="?", help="the rule base folder (default: shipped)")
    check.add_argument("--json", action="store_true", help="print the findings as JSON")
    check.set_defaults(run=_cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns:
        The exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except _InputError as error:
        for problem in error.problems:
            _stderr(f"invalid input: {error.source}: {problem}")
        return EXIT_INVALID
    except RuleBaseError as error:
        _stderr(str(error))
        return EXIT_ERROR
    except LevelCareError as error:
        _stderr(str(error))
        return EXIT_ERROR
    except KeyboardInterrupt:
        _stderr("interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (as with `| head`); point stdout at nothing so that
        # the interpreter's final flush cannot fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - the last line of defence: a defect, reported as one
        _stderr(f"unexpected error, please report it: {type(error).__name__}: {error}")
        traceback.print_exc(file=sys.stderr)
        return EXIT_ERROR
