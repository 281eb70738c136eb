"""The ``levelcare`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._engine import Engine
from ._report import render
from .exceptions import InvalidAssessment, LevelCareError, RuleBaseError

EXIT_DECIDED = 0
EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_DATA_REQUIRED = 3


class _InputError(Exception):
    pass


def _engine(rules: str | None) -> Engine:
    return Engine.default() if rules is None else Engine.from_path(rules)


def _read_json(source: str) -> Any:
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as error:
        msg = f"cannot read {source}: {error.strerror or error}"
        raise _InputError(msg) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        msg = f"{source} is not UTF-8 text (byte {error.start})"
        raise _InputError(msg) from None
    if not text.strip():
        msg = f"{source} is empty; expected one JSON object of facts"
        raise _InputError(msg)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        msg = f"{source} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        raise _InputError(msg) from None


def _cmd_decide(args: argparse.Namespace) -> int:
    engine = _engine(args.rules)
    data = _read_json(args.file)
    if not isinstance(data, dict):
        msg = f"{args.file} holds a JSON {type(data).__name__}; expected one object of facts"
        raise _InputError(msg)
    facts = data["facts"] if isinstance(data.get("facts"), dict) and set(data) <= {"name", "story", "facts", "expected"} else data
    decision = engine.decide(facts)
    if args.json:
        print(json.dumps(decision.to_dict(), indent=2, sort_keys=True))
    else:
        print(render(decision))
    return EXIT_DECIDED if decision.complete else EXIT_DATA_REQUIRED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="levelcare",
        description="Decide the level of care for substance use disorders, and say why.",
    )
    parser.add_argument("--rules", metavar="DIR", help="use the rule base in DIR instead of the shipped one")
    commands = parser.add_subparsers(dest="command", required=True)
    decide = commands.add_parser("decide", help="decide one assessment (a JSON object of facts)")
    decide.add_argument("file", metavar="FILE", help="JSON file of facts, or - for standard input")
    decide.add_argument("--json", action="store_true", help="print the decision as JSON")
    decide.set_defaults(run=_cmd_decide)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except InvalidAssessment as error:
        for problem in error.problems:
            print(f"levelcare: invalid input: {problem}", file=sys.stderr)
        return EXIT_INVALID
    except _InputError as error:
        print(f"levelcare: invalid input: {error}", file=sys.stderr)
        return EXIT_INVALID
    except RuleBaseError as error:
        print(f"levelcare: {error}", file=sys.stderr)
        return EXIT_ERROR
    except LevelCareError as error:
        print(f"levelcare: {error}", file=sys.stderr)
        return EXIT_ERROR
