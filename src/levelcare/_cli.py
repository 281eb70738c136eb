"""The ``levelcare`` command line.

Exit codes, for every command: 0 done (for ``decide``: the level is decided), 3 the
level needs more data (``decide``), 2 invalid input (every problem is on standard
error, by fact name; for ``batch``: one or more lines were invalid), 1 anything
else, such as a rule base that does not load.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import errno
import fcntl
import importlib
import json
import os
import platform
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from ._engine import Engine, _batch
from ._model import facts_sha256, installed_version
from ._render._reference import levels_svg, rules_markdown, vocabulary_markdown
from ._render._report import render
from ._render._schema import assessment_schema
from ._rulebase import RuleBase, default_location, load
from ._text import shorten
from .exceptions import AssessmentProblem, LevelCareError, RuleBaseError

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


class _Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; raised between two writes of output, never during one."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.name = signal.Signals(signum).name
        self.status = 128 + signum


class _Signals:
    """While a batch runs, SIGINT and SIGTERM stop it cleanly, and only between writes.

    A signal that arrives while a block of output is being written is held until
    the block is complete, so output ends at a record boundary.
    """

    def __init__(self) -> None:
        self._writing = False
        self._pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        if self._writing:
            self._pending = self._pending or signum
            return
        raise _Interrupted(signum)

    @contextlib.contextmanager
    def writing(self, *, last: bool = False) -> Iterator[None]:
        """Hold signals while writing; then act on one that came, unless this was the last write."""
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
        if self._pending is not None and not last:
            raise _Interrupted(self._pending)


class _WriteError(Exception):
    """Output could not be written (a full disk, say)."""

    def __init__(self, where: str, error: OSError) -> None:
        super().__init__(f"cannot write {where}: {error.strerror or error}")
        self.error = error


class _Stdout:
    """Batch output to standard output, written and flushed record block by record block."""

    where = "standard output"
    kept: str | None = None

    def __init__(self, signals: _Signals) -> None:
        self._signals = signals
        self._stream = sys.stdout.buffer
        self.records = 0

    def write(self, data: bytes) -> None:
        with self._signals.writing():
            try:
                self._stream.write(data)
                self._stream.flush()
            except BrokenPipeError:
                raise
            except OSError as error:
                raise _WriteError(self.where, error) from None
            self.records += data.count(b"\n")

    def finish(self) -> None:
        pass

    def abandon(self) -> None:
        pass


class _Partial:
    """Batch output to ``OUT``, written as ``OUT.partial`` and renamed when complete.

    The partial file is locked while a run writes it. Every block of records is
    written whole (``committed`` counts the bytes of whole blocks), so an
    interrupted run leaves whole records only; they are kept for ``--resume``.
    """

    def __init__(self, target: Path, signals: _Signals, *, resume: bool) -> None:
        self.target = target
        self.path = target.with_name(target.name + ".partial")
        self.where = str(self.path)
        self._signals = signals
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            msg = f"cannot write {self.path}: {error.strerror or error}"
            raise LevelCareError(msg) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            msg = f"{self.path} is being written by another levelcare batch; wait for it or choose another output file"
            raise LevelCareError(msg) from None
        size = os.fstat(self._fd).st_size
        self.committed = 0
        if resume:
            # Whole lines only: a run killed outright may have left half a record.
            self.committed = _end_of_last_line(self._fd, size)
        elif size:
            _stderr(f"batch: replacing {self.path}, left by an interrupted run (--resume continues it instead)")
        os.ftruncate(self._fd, self.committed)
        os.lseek(self._fd, self.committed, os.SEEK_SET)
        self.kept: str | None = None
        #: Whole records in the file.
        self.records = sum(os.pread(self._fd, 1 << 20, at).count(b"\n") for at in range(0, self.committed, 1 << 20))

    def read_records(self) -> Iterator[tuple[int, bytes]]:
        """The records already in the partial file: each line's end offset and bytes."""
        offset = 0
        with open(self.path, "rb") as stream:
            while offset < self.committed:
                line = stream.readline()
                if not line:
                    return
                offset += len(line)
                yield offset, line

    def rewind(self, offset: int) -> None:
        """Drop everything after ``offset`` (a trailer of a run stopped just before its rename)."""
        os.ftruncate(self._fd, offset)
        os.lseek(self._fd, offset, os.SEEK_SET)
        self.committed = offset
        self.records -= 1

    def write(self, data: bytes) -> None:
        with self._signals.writing():
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as error:
                # Keep the whole records that were written (a full disk takes part of a block).
                whole = data.rfind(b"\n", 0, len(data) - len(view)) + 1
                self.committed += whole
                self.records += data.count(b"\n", 0, whole)
                raise _WriteError(self.where, error) from None
            self.committed += len(data)
            self.records += data.count(b"\n")

    def finish(self) -> None:
        # A signal now waits until the complete file has its name, and then stops
        # nothing: the run is done.
        with self._signals.writing(last=True):
            try:
                os.fsync(self._fd)
                os.replace(self.path, self.target)
            except OSError as error:
                raise _WriteError(str(self.target), error) from None
            finally:
                os.close(self._fd)
                self._fd = -1
        # The rename itself is durable once the folder is.
        with contextlib.suppress(OSError):
            folder = os.open(self.target.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)

    def abandon(self) -> None:
        """After a failed or interrupted run: keep whole records for --resume, or nothing."""
        if self._fd < 0:  # finished: the output has its name
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self.committed)
        os.close(self._fd)
        self._fd = -1
        if self.committed:
            self.kept = str(self.path)
        else:
            self.path.unlink(missing_ok=True)


def _end_of_last_line(fd: int, size: int) -> int:
    """The offset just past the last newline among the first ``size`` bytes of ``fd``."""
    end = size
    while end > 0:
        start = max(0, end - (1 << 16))
        block = os.pread(fd, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


class _ResumeMismatch(LevelCareError):
    """The partial output of an earlier run does not answer this input."""


def _resume(
    lines: Iterator[tuple[int, bytes | int]],
    output: _Partial,
    engine: Engine,
    summary: _batch.Summary,
    input_name: str,
) -> None:
    """Check every record of an earlier run against its input line, and count it.

    Each record must name the input line it sits against; a decision must have
    the sha256 of that line's facts, this rule base and this levelcare version;
    an error record must stand against a line that is still invalid. So a resumed
    output is the output one uninterrupted run would have written.
    """
    vocabulary, rulebase = engine.vocabulary, engine.rulebase.sha256
    version = installed_version()
    previous = 0
    for offset, text in output.read_records():
        where = f"{output.path}, record {summary.records + 1}"
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            msg = f"{where} is not a record levelcare wrote; remove the file or run without --resume"
            raise _ResumeMismatch(msg)
        if _batch.TRAILER in record:
            output.rewind(previous)
            break
        item = next(lines, None)
        if item is None or record.get("line") != item[0]:
            msg = (
                f"{where} answers line {shorten(record.get('line'))}, but the next line of {input_name} "
                f"is {'missing' if item is None else item[0]}: it comes from another input; "
                "remove the file or run without --resume"
            )
            raise _ResumeMismatch(msg)
        number, raw = item
        try:
            if isinstance(raw, int):
                raise _batch.InputError([])
            known, record_id = _batch.read_assessment(raw, vocabulary)
        except _batch.InputError:
            known, record_id = None, None
        if known is None:
            same = record.get("error") == _batch.INVALID
        else:
            same = (
                "status" in record
                and record.get("input_sha256") == facts_sha256(known)
                and (record.get("rulebase") or {}).get("sha256") == rulebase
                and record.get("levelcare_version") == version
                and record.get(_batch.ID_FIELD) == record_id
            )
        if not same:
            msg = (
                f"{where} does not answer line {number} of {input_name} as this rule base and levelcare "
                f"{version} would: the input, the rules or levelcare changed; remove the file or run without --resume"
            )
            raise _ResumeMismatch(msg)
        decided = None if known is None else (record.get("status"), record.get("level"), bool(record.get("emergency")))
        summary.add_record(decided)
        previous = offset


def _cmd_batch(args: argparse.Namespace) -> int:
    target: Path | None = None if args.output in (None, "-") else Path(args.output)
    if args.resume and target is None:
        _stderr("batch: --resume continues the partial output of -o OUT.jsonl; give -o")
        return EXIT_INVALID
    rulebase = _rulebase(args.rules)
    engine = Engine(rulebase)
    rules = None if args.rules is None else os.path.abspath(args.rules)
    show_bar = not args.no_progress and sys.stderr.isatty()
    total = None
    if show_bar and args.input != "-" and os.path.isfile(args.input):
        total = _batch.count_lines(args.input)
    input_name = "standard input" if args.input == "-" else args.input
    source = _open_input(args.input)
    reader = _batch.LineReader(source)
    summary = _batch.Summary(engine.levels.ids)
    progress: _Progress | None = None
    output: _Stdout | _Partial | None = None
    with _Signals() as signals:
        try:
            output = _Stdout(signals) if target is None else _Partial(target, signals, resume=args.resume)
            lines = iter(reader)
            progress = _Progress(total, show_bar)
            if isinstance(output, _Partial) and args.resume:
                _resume(lines, output, engine, summary, input_name)
                if summary.records:
                    first = f"line {reader.number + 1}" if reader.number else "the start"
                    progress.write(
                        f"{_PROG}: batch: resuming {output.path}: {summary.records} records kept, from {first}"
                    )
                progress.update(reader.number)
            _batch.run(
                lines,
                output.write,
                engine,
                summary,
                rules=rules,
                workers=args.workers,
                on_invalid=_invalid_line_reporter(progress),
                on_progress=progress.update,
            )
            summary.blank = reader.blank
            progress.update(reader.blank)
            output.write(summary.trailer(engine))
            output.finish()
        except _Interrupted as stop:
            return _stopped(output, summary, f"interrupted by {stop.name}", stop.status)
        except _WriteError as error:
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
            reader.detach()
            if source is not sys.stdin.buffer:
                source.close()
    first, *rest = summary.text().splitlines()
    _stderr(f"batch: {first}")
    for row in rest:
        print(row, file=sys.stderr)
    return EXIT_INVALID if summary.invalid else EXIT_DECIDED


def _stopped(output: _Stdout | _Partial | None, summary: _batch.Summary, why: str, status: int) -> int:
    """Report a batch stopped before its end; the exit status."""
    if output is not None:
        output.abandon()
    written = summary.records if output is None else output.records
    done = f"{written} record{'' if written == 1 else 's'} written"
    if output is not None and output.kept is not None:
        after = f"they are kept in {output.kept}: run the same command with --resume to finish"
    elif isinstance(output, _Stdout):
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
    # Imported when used: no other command needs the verifier.
    from ._verify import check_command

    return check_command(args.rules_dir if args.rules_dir is not None else args.rules, args.json, args.budget)


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


# --- serve ----------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from ._adapters import cdshooks
    except ImportError as error:
        msg = f'levelcare serve needs the server extra (pip install "levelcare[server]"): {error.name} is missing'
        raise LevelCareError(msg) from None
    engine = Engine(_rulebase(args.rules))
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
    if not auth:
        _stderr("JWT authentication is off: for local use only")
    config = cdshooks.ServiceConfig(
        public_url=args.public_url or f"http://{args.host}:{args.port}",
        issuers=issuers,
        auth=auth,
        sink=cdshooks.JsonLinesSink(args.feedback),
        fhir_version=args.fhir_version,
    )
    cdshooks.serve(engine, config, host=args.host, port=args.port)
    return EXIT_DECIDED


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
    serve.set_defaults(run=_cmd_serve)


def _cmd_diff(args: argparse.Namespace) -> int:
    # Imported when used, like the verifier.
    from ._verify._diff import diff_command

    return diff_command(args.old, args.new, args.population, args.json, sys.stdout, sys.stderr)


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
    from ._engine import _durable_source

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
        "--resume",
        action="store_true",
        help="continue the run whose records were kept in OUT.jsonl.partial (needs -o), checking each against its line",
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
    check.set_defaults(run=_cmd_check)
    _add_override(commands, common)
    _add_serve(commands, common)

    compare = commands.add_parser(
        "diff",
        help="compare the decisions of two rule bases",
        description="Decide every complete assessment (admissions, and in treatment) with both rule bases and "
        "describe every region whose decision changes, with exact counts. Exit code 0 when they decide "
        "identically, 1 when they differ, 2 when the input cannot be compared.",
    )
    compare.add_argument("old", metavar="OLD", help="the rule base folder in use")
    compare.add_argument("new", metavar="NEW", help="the proposed rule base folder")
    compare.add_argument(
        "--population", metavar="FILE", help="JSON Lines of assessments (as batch reads): add an impact table"
    )
    compare.add_argument("--json", action="store_true", help="print the difference as JSON")
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
