"""The ``levelcare`` command line.

Exit codes, for every command: 0 done (for ``decide``: the level is decided), 3 the
level needs more data (``decide``), 2 invalid input (every problem is on standard
error, by fact name; for ``batch``: one or more lines were invalid), 1 anything
else, such as a rule base that does not load.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import errno
import importlib
import json
import os
import platform
import sys
import traceback
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from . import _batch
from ._engine import Engine
from ._render._reference import levels_svg, rules_markdown, vocabulary_markdown
from ._render._report import render
from ._render._schema import assessment_schema
from ._rulebase import RuleBase, default_location, load
from ._text import closest, shorten
from .exceptions import AssessmentProblem, LevelCareError, RuleBaseError, UnverifiedRuleBase

EXIT_DECIDED = 0
EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_DATA_REQUIRED = 3
#: ``levelcare diff``: the two rule bases decide differently.
EXIT_DIFFERENT = 1

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
    from ._verify import require_verified

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
    target: Path | None = None if args.output in (None, "-") else Path(args.output)
    if args.resume and target is None:
        _stderr("batch: --resume continues the partial output of -o OUT.jsonl; give -o")
        return EXIT_INVALID
    rulebase = _rulebase(args.rules)
    engine = _verified_engine(rulebase, "batch", args.allow_unverified)
    rules = None if args.rules is None else os.path.abspath(args.rules)
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
    rules_dir = args.rules_dir if args.rules_dir is not None else args.rules
    if args.case is not None:
        return _show_case(rules_dir, args.case, args.json)
    # Imported when used: no other command needs the verifier.
    from ._verify import verify

    report = verify(default_location() if rules_dir is None else rules_dir, budget=args.budget)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print(report.render())
    return report.exit_status()


def _show_case(rules_dir: str | None, name: str, as_json: bool) -> int:
    """``levelcare check --case NAME``: one test vector's full decision, and whether it passes."""
    from ._verify._vectors import mismatches

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
    from ._verify._review import review_page, write_page

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


# --- override -------------------------------------------------------------------------


def _cmd_override(args: argparse.Namespace) -> int:
    # Imported when used, like the verifier: no other command needs it.
    import datetime as dt

    from ._adapters._overrides import PlacementOverride, nearest_available
    from .exceptions import InvalidOverride

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
    from ._adapters._overrides import REASONS

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
    from ._adapters._practice import summarise

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


# --- serve ----------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from ._adapters import cdshooks
    except ImportError as error:
        msg = f'levelcare serve needs the server extra (pip install "levelcare[server]"): {error.name} is missing'
        raise LevelCareError(msg) from None
    state = _state_settings(args)
    engine = _verified_engine(_rulebase(args.rules), "serve", args.allow_unverified)
    loopback = cdshooks.is_loopback(args.host)
    if args.no_auth and not loopback:
        msg = f"--no-auth is for local use only; {args.host} is not a loopback address: configure --issuer instead"
        raise LevelCareError(msg)
    issuers: dict[str, tuple[Any, ...]] = {}
    for entry in args.issuer or []:
        iss, sep, path = entry.partition("=")
        if not sep or not iss or not path:
            msg = f"--issuer: expected ISS=KEYFILE, got {entry[:40]!r}"
            raise LevelCareError(msg)
        issuers[iss] = issuers.get(iss, ()) + cdshooks.load_keys(path)
    if not issuers and not args.no_auth and not loopback:
        msg = f"serving on {args.host} needs authentication: give --issuer ISS=KEYFILE for each client"
        raise LevelCareError(msg)
    auth = bool(issuers) and not args.no_auth
    config = cdshooks.ServiceConfig(
        public_url=args.public_url or f"http://{args.host}:{args.port}",
        issuers=issuers,
        auth=auth,
        sink=cdshooks.JsonLinesSink(args.feedback),
        fhir_version=args.fhir_version,
        **_serve_edge(args),
        **state,
    )
    if not auth:
        _stderr("JWT authentication is off: for local use only")
    recipe = _serve_recipe(args, config, engine)
    cdshooks.serve(engine, config, host=args.host, port=args.port, workers=args.workers, recipe=recipe)
    return EXIT_DECIDED


def _serve_edge(args: argparse.Namespace) -> dict[str, Any]:
    """The ServiceConfig settings of ``serve``'s edge options: FHIR servers and request limits."""
    everyone: list[str] = []
    by_issuer: dict[str, tuple[str, ...]] = {}
    for entry in args.fhir_server or []:
        # ISS=URL names a server for one issuer; an issuer is itself a URL, so split at the first "=http".
        cut = min((i for i in (entry.find("=http://"), entry.find("=https://")) if i > 0), default=-1)
        if cut < 0:
            everyone.append(entry)
        else:
            iss, url = entry[:cut], entry[cut + 1 :]
            by_issuer[iss] = (*by_issuer.get(iss, ()), url)
    return {
        "fhir_servers": tuple(everyone),
        "issuer_fhir_servers": by_issuer,
        "fetch_timeout": args.fetch_timeout,
        "max_fetch_bytes": args.max_fetch_bytes,
        "max_body_bytes": args.max_body_bytes,
        "body_timeout": args.body_timeout,
        "header_timeout": args.header_timeout,
        "keep_alive_timeout": args.keep_alive_timeout,
        "max_header_bytes": args.max_header_bytes,
        "max_token_bytes": args.max_token_bytes,
        "max_connections": args.max_connections,
    }


def _add_serve_edge(serve: argparse.ArgumentParser) -> None:
    edge = serve.add_argument_group("FHIR servers and request limits")
    edge.add_argument(
        "--fhir-server",
        action="append",
        metavar="[ISS=]URL",
        help="a FHIR server base URL the service may fetch the assessment from (repeatable); ISS=URL allows it "
        "only for requests whose JWT issuer is ISS. No other server is ever contacted. https only, unless "
        "authentication is off and the server is on a loopback address",
    )
    edge.add_argument("--fetch-timeout", type=float, default=10.0, metavar="S", help="seconds for a fetch (10)")
    edge.add_argument(
        "--max-fetch-bytes", type=int, default=5_000_000, metavar="N", help="largest FHIR answer read (5000000)"
    )
    edge.add_argument("--max-body-bytes", type=int, default=2_000_000, metavar="N", help="largest body (2000000)")
    edge.add_argument("--body-timeout", type=float, default=10.0, metavar="S", help="seconds for a body (10)")
    edge.add_argument("--header-timeout", type=float, default=10.0, metavar="S", help="seconds for a head (10)")
    edge.add_argument(
        "--keep-alive-timeout", type=float, default=5.0, metavar="S", help="seconds an idle connection stays (5)"
    )
    edge.add_argument(
        "--max-header-bytes", type=int, default=131_072, metavar="N", help="largest request head (131072)"
    )
    edge.add_argument(
        "--max-token-bytes", type=int, default=16_384, metavar="N", help="largest Authorization header (16384)"
    )
    edge.add_argument("--max-connections", type=int, default=512, metavar="N", help="connections at once (512)")


def _state_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The service's database, retention and token settings from ``serve``'s options."""
    if args.workers < 1:
        msg = f"--workers: expected 1 or more, got {args.workers}"
        raise LevelCareError(msg)
    return {
        "database": args.database,
        "max_token_lifetime": args.max_token_lifetime,
        "clock_skew": args.clock_skew,
        "retention_days": args.retention_days,
    }


def _serve_recipe(args: argparse.Namespace, config: Any, engine: Engine) -> Any:
    """The recipe worker processes rebuild the service from (checked here, once, with the database).

    Paths are made absolute without following links, so that the database check sees what the workers open.
    """
    from ._adapters._serving import ServiceRecipe
    from ._adapters._store import Store

    issuers = []
    for entry in (args.issuer or []) if config.auth else []:
        iss, _, path = entry.partition("=")
        issuers.append((iss, os.path.abspath(path)))
    recipe = ServiceRecipe(
        rules=None if args.rules is None else os.path.abspath(args.rules),
        public_url=config.public_url,
        issuers=tuple(issuers),
        auth=config.auth,
        feedback=os.path.abspath(args.feedback),
        fhir_version=config.fhir_version,
        database=os.path.abspath(args.database),
        max_token_lifetime=config.max_token_lifetime,
        clock_skew=config.clock_skew,
        retention_days=config.retention_days,
        edge=_serve_edge(args),
        unverified=engine.rulebase.unverified,
    )
    # Refuse an unusable database before any worker starts; this also purges expired rows.
    Store(recipe.database, retention_days=recipe.retention_days).close()
    return recipe


def _add_serve(commands: Any, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the CDS Hooks service",
        description="Run a CDS Hooks 2.0 service (patient-view) that answers with the level of care as a card. "
        "Requests must carry a JWT from a configured issuer; on a loopback host without --issuer, or with "
        "--no-auth, authentication is off. Needs the server extra.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    serve.add_argument("--public-url", metavar="URL", help="the URL clients call, for the JWT aud check")
    serve.add_argument(
        "--issuer", action="append", metavar="ISS=KEYFILE", help="accept JWTs from ISS signed with the PEM or JWKS keys"
    )
    serve.add_argument("--no-auth", action="store_true", help="turn JWT authentication off (loopback hosts only)")
    serve.add_argument(
        "--feedback", default="levelcare-feedback.jsonl", metavar="FILE", help="JSON Lines file for feedback"
    )
    serve.add_argument("--fhir-version", choices=["R5", "R4"], default="R5", help="FHIR version of returned resources")
    _add_serve_edge(serve)
    _add_serve_state(serve)
    serve.add_argument(
        "--allow-unverified",
        action="store_true",
        help="serve a rule base that does not pass levelcare check; every card then says it is unverified",
    )
    serve.set_defaults(run=_cmd_serve)


def _add_serve_state(serve: argparse.ArgumentParser) -> None:
    """``serve``'s options for worker processes, their shared database and the token rules."""
    state = serve.add_argument_group("workers, state and tokens")
    state.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default: 1)")
    state.add_argument(
        "--database",
        default="levelcare-service.sqlite3",
        metavar="FILE",
        help="SQLite file of issued cards, token ids and feedback, shared by the workers "
        "(default: levelcare-service.sqlite3; created with mode 0600)",
    )
    state.add_argument(
        "--retention-days",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="delete cards and feedback older than this from the database (default: 30)",
    )
    state.add_argument(
        "--max-token-lifetime",
        type=int,
        default=300,
        metavar="SECONDS",
        help="refuse a JWT whose exp - iat is longer (default: 300)",
    )
    state.add_argument(
        "--clock-skew",
        type=int,
        default=30,
        metavar="SECONDS",
        help="clock difference allowed for exp, iat and nbf (default: 30)",
    )


def _cmd_diff(args: argparse.Namespace) -> int:
    """``levelcare diff``: 0 identical, 1 different, 2 input that cannot be compared (or, with
    ``--strict``, a changed rule base that kept its name and version), 4 out of time."""
    # Imported when used, like the verifier.
    from ._verify._diff import DiffError, DiffUnfinished, diff, population
    from ._verify._report import EXIT_UNVERIFIED

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
    from ._verify._evidence import override_evidence

    try:
        return override_evidence(args.old, args.new, args.overrides, args.population)
    except OSError as error:
        msg = f"{error.filename}: cannot read the file: {error.strerror or error}"
        raise LevelCareError(msg) from None


# --- the parser -------------------------------------------------------------------------


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
