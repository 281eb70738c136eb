"""The parser of every command, and ``main``: the one place that turns errors into exit statuses."""

from __future__ import annotations

import argparse
import errno
import os
import platform
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata

from ..exceptions import LevelCareError, RuleBaseError, UnverifiedRuleBase
from ._batch import _cmd_batch
from ._common import _PROG, EXIT_ERROR, EXIT_INVALID, _as_of, _InputError, _seconds, _stderr, _workers
from ._rules import (
    _add_override,
    _add_overrides,
    _cmd_check,
    _cmd_decide,
    _cmd_diff,
    _cmd_report,
    _cmd_rules,
    _cmd_schema,
)
from ._serve import _add_serve


def _distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:  # pragma: no cover - only in an uninstalled checkout
        return "unknown"


def _version() -> str:
    """levelcare's version, the Python it runs on and the rules engine it loaded."""
    from .._engine import _durable_source

    engine = f"durable-rules {_durable_source.VERSION} (its C core, compiled into levelcare)"
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
    decide.add_argument(
        "--as-of",
        type=_as_of,
        metavar="WHEN",
        help="when the assessment applies: an ISO 8601 date and time with a UTC offset, recorded in the decision",
    )
    decide.set_defaults(run=_cmd_decide)

    batch = commands.add_parser(
        "batch",
        parents=[common],
        help="decide every line of a JSON Lines file",
        description="Decide one assessment per line. Each non-blank line gives one record, in input order, "
        'naming its line: the decision as compact JSON, or {"line": N, "error": "invalid-input", '
        '"problems": [...]}; a closing {"batch": "complete", ...} record follows the last one. An "_id" '
        "in a line is copied to its record. Invalid lines are also reported on standard error and never "
        "stop the run; a summary follows. Exit code 0 when every line was valid, 2 when any was not, "
        "1 on any other error, 130 or 143 when interrupted.",
    )
    batch.add_argument("input", metavar="IN.jsonl", help="one JSON object of facts per line, or - for standard input")
    batch.add_argument(
        "-o",
        "--output",
        metavar="OUT.jsonl",
        help="write the records here instead of standard output (as OUT.jsonl.partial, renamed when complete)",
    )
    batch.add_argument(
        "--workers", type=_workers, default=1, metavar="N", help="decide in N processes (default: 1, this process)"
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    batch.add_argument(
        "--allow-unverified",
        action="store_true",
        help="run a rule base that does not pass levelcare check; every record then says it is unverified",
    )
    batch.add_argument(
        "--resume",
        action="store_true",
        help="continue the run whose records were kept in OUT.jsonl.partial (needs -o); each is decided again and must be the same",
    )
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
    check.add_argument(
        "--budget",
        type=_seconds,
        default=600.0,
        metavar="SECONDS",
        help="time the symbolic checks may take (default 600); a check not decided in time is reported "
        "as unverified, exit status 4",
    )
    check.add_argument(
        "--case",
        metavar="NAME",
        help="print one test vector's full decision and whether it passes (exit 0 passes, 1 fails)",
    )
    check.set_defaults(run=_cmd_check)

    report = commands.add_parser(
        "report",
        parents=[common],
        help="write a review page of a rule base (one self-contained HTML file)",
        description="Write a review page for clinicians: the levels diagram, each level's criteria with "
        "sources, the check, the test vectors, and with --against the changes from an older rule base.",
    )
    report.add_argument("rules_dir", metavar="RULES_DIR", nargs="?", help="the rule base folder (default: shipped)")
    report.add_argument("--against", metavar="OLD", help="an older rule base: show what changed from it")
    report.add_argument(
        "--population", metavar="FILE", help="assessments (JSON Lines) whose moves to show, with --against"
    )
    report.add_argument("-o", "--output", metavar="FILE", required=True, help="the HTML file to write")
    report.set_defaults(run=_cmd_report)
    _add_override(commands, common)
    _add_overrides(commands, common)
    _add_serve(commands, common)

    compare = commands.add_parser(
        "diff",
        help="compare the decisions of two rule bases",
        description="Decide every complete assessment (admissions, and in treatment) with both rule bases and "
        "describe every region whose decision changes, with the changed rules responsible and exact counts "
        "(kinds of assessment, not people). Exit code 0 when they decide identically, 1 when they differ, 2 "
        "when the input cannot be compared (with --strict, also when the content changed but name and version "
        "did not), 4 when the comparison was not finished within the time budget.",
    )
    compare.add_argument("old", metavar="OLD", help="the rule base folder in use")
    compare.add_argument("new", metavar="NEW", help="the proposed rule base folder")
    compare.add_argument(
        "--population", metavar="FILE", help="JSON Lines of assessments (as batch reads): add an impact table"
    )
    compare.add_argument(
        "--overrides",
        action="extend",
        nargs="+",
        metavar="FILE",
        help="files of override or feedback records (needs --population): count the past overrides the change "
        "turns into agreement and the agreements it turns into disagreement",
    )
    compare.add_argument("--json", action="store_true", help="print the difference as JSON")
    compare.add_argument(
        "--strict",
        action="store_true",
        help="refuse (exit status 2) two rule bases that share name and version but not content, instead of warning",
    )
    compare.add_argument(
        "--budget",
        type=_seconds,
        default=600.0,
        metavar="SECONDS",
        help="time the comparison may take (default 600); a diff not finished in time is reported as "
        "unverified, exit status 4",
    )
    compare.set_defaults(run=_cmd_diff)
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
        status = int(args.run(args))
        sys.stdout.flush()  # here, where a failure can still be reported
    except _InputError as error:
        for problem in error.problems:
            _stderr(f"invalid input: {error.source}: {problem}")
        return EXIT_INVALID
    except UnverifiedRuleBase as error:
        _stderr(str(error))
        _stderr(
            "levelcare check shows every finding; --allow-unverified runs it anyway, each decision marked unverified"
        )
        return EXIT_ERROR
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
        # The reader went away (as with `| head`).
        _drop_stdout()
        return EXIT_ERROR
    except OSError as error:
        if error.errno not in _OUTPUT_ERRNOS:
            return _unexpected(error)
        # Nothing but standard output is written outside a batch, which reports its own.
        _stderr(f"cannot write standard output: {error.strerror or error}")
        _drop_stdout()
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - the last line of defence: a defect, reported as one
        return _unexpected(error)
    return status


#: Errors of writing to a file or device that is full or failing.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO})


def _drop_stdout() -> None:
    """Point standard output at nothing, so that the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _unexpected(error: BaseException) -> int:
    _stderr(f"unexpected error, please report it: {type(error).__name__}: {error}")
    traceback.print_exception(error, file=sys.stderr)
    return EXIT_ERROR
