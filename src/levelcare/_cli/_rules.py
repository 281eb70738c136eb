"""The commands on one rule base or two: decide, schema, rules, check, report, override, overrides, diff."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import _batch
from .._engine import Engine
from .._render._reference import levels_svg, rules_markdown, vocabulary_markdown
from .._render._report import render
from .._render._schema import assessment_schema
from .._rulebase import default_location
from .._text import closest, shorten
from ..exceptions import AssessmentProblem, LevelCareError
from ._common import (
    EXIT_DATA_REQUIRED,
    EXIT_DECIDED,
    EXIT_DIFFERENT,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_UNVERIFIED,
    _InputError,
    _read_input,
    _rulebase,
    _stderr,
)


def _cmd_decide(args: argparse.Namespace) -> int:
    rulebase = _rulebase(args.rules)
    engine = Engine(rulebase)
    source = "standard input" if args.file == "-" else args.file
    raw = _read_input(args.file)
    try:
        known, record_id = _batch.read_assessment(raw, engine.vocabulary)
    except _batch.InputError as error:
        raise _InputError(source, error.problems) from None
    decision = engine.decide(known, as_of=args.as_of)
    if args.json:
        data = decision.to_dict()
        if record_id is not None:
            data[_batch.ID_FIELD] = record_id
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(render(decision, rulebase))
    return EXIT_DECIDED if decision.complete else EXIT_DATA_REQUIRED


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
    rules_dir = args.rules_dir if args.rules_dir is not None else args.rules
    if args.case is not None:
        return _show_case(rules_dir, args.case, args.json)
    # Imported when used: no other command needs the verifier.
    from .._verify import verify

    report = verify(default_location() if rules_dir is None else rules_dir, budget=args.budget)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print(report.render())
    if report.errors:
        return EXIT_ERROR
    return EXIT_UNVERIFIED if report.unverified else EXIT_DECIDED


def _show_case(rules_dir: str | None, name: str, as_json: bool) -> int:
    """``levelcare check --case NAME``: one test vector's full decision, and whether it passes."""
    from .._verify._vectors import mismatches

    rulebase = _rulebase(rules_dir)
    by_name = {case.name: case for case in rulebase.cases}
    case = by_name.get(name)
    if case is None:
        hint = closest(name, tuple(by_name))
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        known = f" among its {len(by_name)} cases" if by_name else "; the rule base has no [[case]] tables"
        _stderr(f"the rule base has no case named {shorten(name)}{known}{suggestion}")
        return EXIT_INVALID
    decision = Engine(rulebase).decide(dict(case.facts))
    wrong = mismatches(case, decision)
    if as_json:
        data: dict[str, Any] = {"case": case.name, "file": case.file, "story": case.story, "expect": dict(case.expect)}
        data |= {"passed": not wrong, "mismatches": wrong, "decision": decision.to_dict()}
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        lines = [f"Case {case.name} ({case.file})"]
        if case.story:
            lines.append(f"  {case.story}")
        lines.append("Expected: " + "; ".join(f"{key} {json.dumps(value)}" for key, value in case.expect.items()))
        lines.append("Result: passes" if not wrong else "Result: FAILS")
        lines += [f"  {line}" for line in wrong]
        print("\n".join(lines) + "\n\n" + render(decision, rulebase))
    return EXIT_ERROR if wrong else EXIT_DECIDED


def _cmd_report(args: argparse.Namespace) -> int:
    from .._verify._review import review_page, write_page

    if args.population is not None and args.against is None:
        _stderr("--population needs --against OLD: it counts the records that move between the two rule bases")
        return EXIT_INVALID
    location = args.rules_dir if args.rules_dir is not None else (args.rules or str(default_location()))
    try:
        page, report = review_page(location, against=args.against, population_file=args.population)
    except OSError as error:
        _stderr(f"cannot read {shorten(getattr(error, 'filename', '') or '')}: {error.strerror or error}")
        return EXIT_ERROR
    try:
        write_page(args.output, page)
    except OSError as error:
        _stderr(f"cannot write {shorten(args.output)}: {error.strerror or error}")
        return EXIT_ERROR
    verdict = "passed" if report.ok else "did not pass: the page marks the rule base unverified"
    _stderr(f"wrote {shorten(args.output)}; levelcare check {verdict}")
    return EXIT_DECIDED


def _cmd_override(args: argparse.Namespace) -> int:
    # Imported when used, like the verifier: no other command needs it.
    import datetime as dt

    from .._adapters._overrides import PlacementOverride, nearest_available
    from ..exceptions import InvalidOverride

    engine = Engine(_rulebase(args.rules))
    source = "standard input" if args.file == "-" else args.file
    try:
        facts, _ = _batch.read_assessment(_read_input(args.file), engine.vocabulary)
    except _batch.InputError as error:
        raise _InputError(source, error.problems) from None
    decision = engine.decide(facts)
    if decision.level is None:
        _stderr(f"{source}: no level is indicated until more is known: {', '.join(decision.missing)}")
        return EXIT_DATA_REQUIRED
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        if args.available is not None:
            if args.reason:
                problem = AssessmentProblem("--reason", "--available records service-not-available itself")
                raise _InputError("override", [problem])
            offered = [part.strip() for part in args.available.split(",") if part.strip()]
            record = nearest_available(decision, offered, engine, facts=facts, recorded_at=now)
            if record is None:
                _stderr(f"{decision.level.id} is available: nothing to override")
                return EXIT_DECIDED
        else:
            record = PlacementOverride.create(
                engine,
                decision=decision,
                facts=facts,
                received=args.received,
                reasons=args.reason or [],
                text=args.text,
                recorded_at=now,
            )
    except InvalidOverride as error:
        raise _InputError("override", error.problems) from None
    text = json.dumps(record.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as error:
            msg = f"cannot write {args.output}: {error.strerror or error}"
            raise LevelCareError(msg) from None
    return EXIT_DECIDED


def _add_override(commands: Any, common: argparse.ArgumentParser) -> None:
    from .._adapters._overrides import REASONS

    override = commands.add_parser(
        "override",
        parents=[common],
        help="record the level a person received instead of the level indicated",
        description="Decide an assessment and write a JSON record of a placement override: the level indicated, "
        "the level received and why, linked to the rule base (sha256) and to the facts (a digest). "
        "Exit code 3 when the assessment indicates no level yet.",
    )
    override.add_argument("file", metavar="FILE", help="JSON file of facts, or - for standard input")
    received = override.add_mutually_exclusive_group(required=True)
    received.add_argument("--received", metavar="LEVEL", help="the level the person received")
    received.add_argument(
        "--available",
        metavar="LEVEL,...",
        help="the levels that can be offered: place at the nearest more intensive one (service-not-available)",
    )
    override.add_argument(
        "--reason", action="append", choices=list(REASONS), help="why (repeatable): " + ", ".join(REASONS)
    )
    override.add_argument("--text", default="", help="free text (required with --reason other)")
    override.add_argument("-o", "--output", metavar="OUT.json", help="write the record here instead of standard output")
    override.set_defaults(run=_cmd_override)


def _cmd_overrides_summary(args: argparse.Namespace) -> int:
    from .._adapters._practice import summarise

    engine = Engine(_rulebase(args.rules))
    try:
        summary = summarise(args.files, engine, population=args.population)
    except OSError as error:
        _stderr(f"{error.filename}: cannot read the file: {error.strerror or error}")
        return EXIT_ERROR
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(summary.render())
    for problem in (*summary.unreadable, *summary.population_invalid):
        _stderr(f"invalid input: {problem}")
    left = summary.unreadable_count + summary.population_invalid_count
    left -= len(summary.unreadable) + len(summary.population_invalid)
    if left:
        _stderr(f"invalid input: {left} more lines that cannot be read")
    return EXIT_INVALID if summary.unreadable_count or summary.population_invalid_count else EXIT_DECIDED


def _add_overrides(commands: Any, common: argparse.ArgumentParser) -> None:
    overrides = commands.add_parser(
        "overrides",
        help="read override records and CDS Hooks feedback back",
        description="Read placement override records and CDS Hooks feedback records back.",
    )
    actions = overrides.add_subparsers(dest="action", required=True, metavar="ACTION")
    summary = actions.add_parser(
        "summary",
        parents=[common],
        help="how often each level and rule was accepted or overridden, in which direction and why",
        description="Summarise override records (levelcare override) and feedback records (levelcare serve "
        "--feedback) per level indicated and, with --population, per rule of the decision: accepted or "
        "overridden, the level received above or below the one indicated, and the reasons given. Each file "
        "is JSON (one record or an array) or JSON Lines; each record's kind is told by its fields. A record "
        "that cannot be read is reported on standard error by file and line and never stops the others. "
        "Exit code 0 when every record was read, 2 when any was not, 1 on any other error.",
    )
    summary.add_argument("files", metavar="FILE", nargs="+", help="files of override and/or feedback records")
    summary.add_argument(
        "--population",
        metavar="POP",
        help="JSON Lines of assessments (as batch reads) the records were decided on: add a tally per rule",
    )
    summary.add_argument("--json", action="store_true", help="print the summary as JSON")
    summary.set_defaults(run=_cmd_overrides_summary)


def _cmd_diff(args: argparse.Namespace) -> int:
    """``levelcare diff``: 0 identical, 1 different, 2 input that cannot be compared (or, with
    ``--strict``, a changed rule base that kept its name and version), 4 out of time."""
    # Imported when used, like the verifier.
    from .._verify._diff import DiffError, DiffUnfinished, diff, population

    if args.overrides and args.population is None:
        print(
            "levelcare diff: --overrides needs --population FILE, the assessments the records were decided on",
            file=sys.stderr,
        )
        return EXIT_INVALID
    try:
        result = diff(args.old, args.new, budget=args.budget, strict=args.strict)
    except DiffError as error:
        for problem in error.problems:
            print(f"levelcare diff: {problem}", file=sys.stderr)
        return EXIT_INVALID
    except DiffUnfinished as error:
        if args.json:
            data: dict[str, Any] = {"old": {"location": args.old}, "new": {"location": args.new}}
            data.update(identical=None, unverified=str(error))
            print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
        print(f"levelcare diff: unverified: {error}", file=sys.stderr)
        return EXIT_UNVERIFIED
    if args.population is not None:
        try:
            with open(args.population, "rb") as stream:
                people = population(args.old, args.new, stream, args.population)
        except OSError as error:
            reason = error.strerror or error
            print(f"levelcare diff: {args.population}: cannot read the file: {reason}", file=sys.stderr)
            return EXIT_INVALID
        result = result.with_population(people)
    evidence = _diff_overrides(args) if args.overrides else None
    if args.json:
        data = result.to_dict()
        if evidence is not None:
            data["overrides"] = evidence.to_dict()
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(result.render())
        if evidence is not None:
            print("\n" + evidence.render())
    for warning in result.warnings:
        print(f"levelcare diff: warning: {warning} (--strict makes this an error)", file=sys.stderr)
    if evidence is not None and (evidence.unreadable_count or evidence.population_invalid_count):
        for problem in (*evidence.unreadable, *evidence.population_invalid):
            print(f"levelcare diff: {problem}", file=sys.stderr)
        return EXIT_INVALID
    if result.population is not None and result.population.invalid:
        for number, message in result.population.invalid:
            print(f"levelcare diff: {result.population.source}: line {number}: {message}", file=sys.stderr)
        return EXIT_INVALID
    return EXIT_DECIDED if result.identical else EXIT_DIFFERENT


def _diff_overrides(args: argparse.Namespace) -> Any:
    """``levelcare diff --overrides``: the evidence of past overrides and agreements, or an error."""
    from .._verify._evidence import override_evidence

    try:
        return override_evidence(args.old, args.new, args.overrides, args.population)
    except OSError as error:
        msg = f"{error.filename}: cannot read the file: {error.strerror or error}"
        raise LevelCareError(msg) from None
