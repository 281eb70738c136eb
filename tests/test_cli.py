"""The ``levelcare`` command: what each command prints and the status it exits with.

The commands run in the test process (``inprocess``); a real process is started
where the process is the subject: a reader that goes away, a terminal, the worker
processes of a large batch.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import random
import re
import shutil
import struct
import subprocess
import sys
import termios
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import levelcare
from conftest import EXAMPLES_DIR, RULES_DIR, load_examples
from inprocess import run_levelcare
from levelcare import Engine, InvalidAssessment

EXAMPLES = load_examples()
EXAMPLE_PATHS = sorted(EXAMPLES_DIR.glob("*.json"))
TIMEOUT = 120


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """``levelcare ARGS`` in this process, with text output."""
    return run_levelcare(*args, stdin=stdin)


def run_process(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``python -m levelcare ARGS`` in a process of its own, with text output."""
    return subprocess.run(
        [sys.executable, "-m", "levelcare", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def input_digest(facts: dict[str, Any]) -> str:
    """The sha256 of valid facts as the decision records it, computed here independently."""
    known = {name: value for name, value in facts.items() if value is not None}
    return hashlib.sha256(json.dumps(known, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def audited(facts: dict[str, Any]) -> dict[str, Any]:
    """``decide(facts).to_dict()`` as the command line writes it: with the input's digest."""
    data = levelcare.decide(facts).to_dict()
    assert data["input_sha256"] == input_digest(facts)
    return data


def canonical(facts: dict[str, Any], line: int) -> str:
    """The batch output record for a valid assessment on input line ``line``: compact JSON, sorted keys."""
    data = {**audited(facts), "line": line}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def trailer(output: str) -> tuple[list[str], dict[str, Any]]:
    """A batch's records and its closing record, which must be there."""
    *records, last = output.splitlines()
    closing = json.loads(last)
    assert closing["batch"] == "complete"
    assert closing["records"] == len(records)
    return records, closing


def copy_rules(tmp_path: Path, name: str = "clinic-rules") -> Path:
    """A copy of the shipped rule base, renamed so its decisions can be told apart."""
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    header = folder / "rulebase.toml"
    text = header.read_text(encoding="utf-8")
    renamed = re.sub(r'(?m)^name = ".*"$', f'name = "{name}"', text, count=1)
    assert renamed != text
    header.write_text(renamed, encoding="utf-8")
    return folder


# --- decide -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=[p.stem for p in EXAMPLE_PATHS])
def test_decide_json_is_the_decision_and_the_exit_code_its_status(path: Path) -> None:
    """--json prints to_dict() of the example's facts; 0 when decided, 3 when data is required."""
    example = json.loads(path.read_text(encoding="utf-8"))
    expected = levelcare.decide(example["facts"])
    result = run("decide", "--json", str(path))
    assert result.stderr == ""
    assert json.loads(result.stdout) == audited(example["facts"])
    assert expected.input_sha256 == input_digest(example["facts"])
    assert result.returncode == (0 if expected.complete else 3)
    assert example["expected"]["status"] == expected.status


@pytest.mark.parametrize("path", EXAMPLE_PATHS, ids=[p.stem for p in EXAMPLE_PATHS])
def test_decide_report_shows_everything_a_clinician_checks(path: Path) -> None:
    """The text report names the level, reasons, levels ruled out, missing facts, services, programme and rule base."""
    facts = json.loads(path.read_text(encoding="utf-8"))["facts"]
    decision = levelcare.decide(facts)
    result = run("decide", str(path))
    out = result.stdout
    assert result.returncode == (0 if decision.complete else 3)
    if decision.level is None:
        low, high = decision.level_range
        assert f"not decided (data required); the unknown facts allow {low.value} to {high.value}" in out
    else:
        assert f"Level: {decision.level.value} ({decision.level.label})" in out
        assert decision.transition is not None
        assert f"Transition: {decision.transition.value}" in out
    assert ("EMERGENCY" in out) == decision.emergency
    lines = out.splitlines()
    for reason in (*decision.reasons, *decision.ruled_out, *decision.considerations):
        assert any(line.strip().startswith(reason.rule_id) for line in lines), reason.rule_id
        for source in reason.sources:
            assert source in out
    for name in decision.missing:
        assert any(line.startswith(f"  {name}: ") for line in lines), name
    if decision.complete:
        for service in decision.services:
            assert service in out
        assert f"Programme ({decision.program.level.value}): " in out
    else:
        # Nothing is recommended before the level is decided.
        assert "Programme (" not in out
        assert "Services:" not in out
        assert "Programme and services: none recommended until the level is decided" in out
    info = decision.rulebase
    assert f"Rule base: {info.name} {info.version} (sha256 {info.sha256})" in out
    assert f"Input facts: sha256 {input_digest(facts)}" in out


def test_decide_reads_standard_input_and_bare_facts() -> None:
    """'-' reads standard input; bare facts and a worked example give the same decision."""
    example = EXAMPLES[0]
    bare = run("decide", "--json", "-", stdin=json.dumps(example["facts"]).encode())
    wrapped = run("decide", "--json", "-", stdin=json.dumps(example).encode())
    assert bare.returncode == wrapped.returncode
    assert bare.stdout == wrapped.stdout
    assert json.loads(bare.stdout) == audited(example["facts"])


def test_decide_json_is_byte_identical_across_runs() -> None:
    path = str(EXAMPLE_PATHS[0])
    assert run("decide", "--json", path).stdout == run("decide", "--json", path).stdout


def test_invalid_facts_list_every_problem_by_fact_name(tmp_path: Path) -> None:
    """Exit 2, nothing on stdout, and one line per problem on stderr naming the fact."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"harm_rsk": "none", "withdrawal_risk": "huge", "weeks_at_current_level": 3.5}))
    result = run("decide", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    problems = result.stderr.splitlines()
    assert len(problems) == 3
    for fact in ("harm_rsk", "withdrawal_risk", "weeks_at_current_level"):
        assert sum(f": {fact}: " in line for line in problems) == 1, fact
    assert "did you mean 'harm_risk'?" in result.stderr
    assert "Traceback" not in result.stderr


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "not-json": (b'{"harm_risk": "none",', "not valid JSON"),
    "not-utf8": ('{"harm_risk": "none"}'.encode("utf-16"), "not UTF-8 text"),
    "latin-1": ('{"harm_risk": "caf\u00e9"}'.encode("latin-1"), "not UTF-8 text"),
    "array": (b'[{"harm_risk": "none"}]', "holds an array; expected one object of facts"),
    "string": (b'"harm_risk"', "holds a JSON string; expected one object of facts"),
    "empty": (b"", "empty; expected one JSON object of facts"),
    "blank": (b"  \n\t\n", "empty; expected one JSON object of facts"),
    "ten-megabytes": (
        json.dumps({"harm_risk": "x" * (10 * 1024 * 1024)}).encode(),
        "longer than 1.0 MiB, the limit for one assessment",
    ),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_are_invalid_input_with_a_clear_message(tmp_path: Path, name: str) -> None:
    content, message = BAD_FILES[name]
    path = tmp_path / f"{name}.json"
    path.write_bytes(content)
    result = run("decide", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"levelcare: invalid input: {path}: {message}")


def test_a_missing_file_is_invalid_input(tmp_path: Path) -> None:
    result = run("decide", str(tmp_path / "absent.json"))
    assert result.returncode == 2
    assert "absent.json: cannot read the file: No such file or directory" in result.stderr


# --- --rules DIR on every command ----------------------------------------------------------


@pytest.mark.parametrize("before", [True, False], ids=["before-command", "after-command"])
def test_rules_option_uses_an_organisations_rule_base(tmp_path: Path, before: bool) -> None:
    folder = str(copy_rules(tmp_path))
    example = str(EXAMPLE_PATHS[0])

    def command(*args: str) -> list[str]:
        return ["--rules", folder, *args] if before else [args[0], "--rules", folder, *args[1:]]

    decided = run(*command("decide", "--json", example))
    assert decided.returncode in (0, 3)
    assert json.loads(decided.stdout)["rulebase"]["name"] == "clinic-rules"
    schema = run(*command("schema"))
    assert schema.returncode == 0
    assert "clinic-rules" in json.loads(schema.stdout)["title"]
    rules = run(*command("rules"))
    assert rules.returncode == 0
    assert "Rule base **clinic-rules**" in rules.stdout


def test_batch_workers_load_the_given_rule_base(tmp_path: Path) -> None:
    folder = str(copy_rules(tmp_path))
    lines = tmp_path / "in.jsonl"
    lines.write_text("".join(json.dumps(e["facts"]) + "\n" for e in EXAMPLES) * 20)
    result = run("batch", "--rules", folder, "--workers", "2", str(lines))
    assert result.returncode == 0, result.stderr
    names = {json.loads(line)["rulebase"]["name"] for line in result.stdout.splitlines()}
    assert names == {"clinic-rules"}


def test_a_broken_rule_base_is_an_error_naming_file_and_rule(tmp_path: Path) -> None:
    folder = copy_rules(tmp_path)
    with (folder / "iop.toml").open("a", encoding="utf-8") as stream:
        stream.write('\n[[rule]]\nid = "XX-1"\nlevel = "iop"\nstatement = "A test rule."\n')
        stream.write('sources = ["no-such-source"]\nwhen = { fact = "harm_rsk", is = "high" }\n')
    for command in (["decide", str(EXAMPLE_PATHS[0])], ["schema"], ["rules"], ["batch", "-"]):
        result = run("--rules", str(folder), *command, stdin=b"")
        assert result.returncode == 1, command
        assert result.stdout == ""
        assert "iop.toml: XX-1: unknown source 'no-such-source'" in result.stderr
        assert "iop.toml: XX-1: when: unknown fact 'harm_rsk'" in result.stderr


def test_a_missing_rule_folder_is_an_error(tmp_path: Path) -> None:
    result = run("--rules", str(tmp_path / "nowhere"), "schema")
    assert result.returncode == 1
    assert "no such rule base folder" in result.stderr


# --- usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["decide"],
        ["batch", "in.jsonl", "--workers", "0"],
        ["batch", "in.jsonl", "--workers", "two"],
        ["frobnicate"],
    ],
    ids=["no-command", "no-file", "zero-workers", "words-for-workers", "unknown-command"],
)
def test_usage_errors_exit_2_with_usage(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "usage: levelcare" in result.stderr


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("levelcare ")


# --- batch ------------------------------------------------------------------------------------


def test_batch_answers_every_line_in_order_and_reports_invalid_ones(tmp_path: Path) -> None:
    """An invalid line gives an error object on its own output line and a message with its number."""
    good = [e["facts"] for e in EXAMPLES[:3]]
    lines = [
        json.dumps(good[0]).encode(),
        b'{"harm_rsk": "none", "withdrawal_risk": 7}',
        b"not json",
        b"[1, 2]",
        b"",
        json.dumps(good[1]).encode(),
        b"\xff\xfe{}",
        json.dumps({"facts": good[2], "name": "wrapped"}).encode(),
    ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    result = run("batch", str(path), "-o", str(out))
    assert result.returncode == 2
    assert result.stdout == ""
    got, closing = trailer(out.read_text(encoding="utf-8"))
    # The empty line 5 is no record; every record names its line.
    assert len(got) == len(lines) - 1
    assert closing["lines"] == len(lines)
    assert (closing["decided"], closing["invalid"], closing["blank"]) == (3, 4, 1)
    records = {json.loads(text)["line"]: text for text in got}
    assert list(records) == [1, 2, 3, 4, 6, 7, 8]
    assert records[1] == canonical(good[0], 1)
    assert records[6] == canonical(good[1], 6)
    assert records[8] == canonical(good[2], 8)
    errors = {n: json.loads(records[n]) for n in (2, 3, 4, 7)}
    for number, error in errors.items():
        assert error["line"] == number
        assert error["error"] == "invalid-input"
        assert error["problems"], number
    with pytest.raises(InvalidAssessment) as raised:
        levelcare.decide(json.loads(lines[1]))
    assert errors[2]["problems"] == [{"fact": p.fact, "message": p.message} for p in raised.value.problems]
    assert [p["fact"] for p in errors[3]["problems"]] == [""]
    stderr = result.stderr.splitlines()
    for number in errors:
        assert any(line.startswith(f"levelcare: invalid input: line {number}: ") for line in stderr), number
    assert sum("line 2: " in line for line in stderr) == 2
    assert "levelcare: batch: 8 lines: 3 decided, 4 invalid, 1 blank" in stderr


def test_batch_reads_standard_input_and_exits_0_when_every_line_is_valid() -> None:
    facts = [e["facts"] for e in EXAMPLES]
    data = "".join(json.dumps(f) + "\n" for f in facts).encode()
    result = run("batch", "-", stdin=data)
    assert result.returncode == 0, result.stderr
    records, _ = trailer(result.stdout)
    assert records == [canonical(f, n) for n, f in enumerate(facts, start=1)]


def test_batch_of_nothing_is_an_empty_success() -> None:
    result = run("batch", "-", stdin=b"")
    assert result.returncode == 0
    records, closing = trailer(result.stdout)
    assert (records, closing["lines"]) == ([], 0)
    assert "levelcare: batch: 0 lines: 0 decided, 0 invalid" in result.stderr


def test_batch_skips_a_ten_megabyte_line_without_stopping(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    huge = json.dumps({"harm_risk": "x" * (10 * 1024 * 1024)})
    first, last = EXAMPLES[0]["facts"], EXAMPLES[1]["facts"]
    path.write_text(f"{json.dumps(first)}\n{huge}\n{json.dumps(last)}\n")
    result = run("batch", str(path))
    assert result.returncode == 2
    got, _ = trailer(result.stdout)
    assert got[0] == canonical(first, 1)
    assert got[2] == canonical(last, 3)
    error = json.loads(got[1])
    assert error["line"] == 2
    assert error["problems"][0]["message"].startswith("10.0 MiB long")
    assert "line 2: 10.0 MiB long, more than 1.0 MiB, the limit for one assessment" in result.stderr


def test_a_failed_batch_leaves_no_output_file(tmp_path: Path) -> None:
    """With -o, output appears only when the run completes."""
    folder = tmp_path / "empty-rules"
    folder.mkdir()
    out = tmp_path / "out.jsonl"
    result = run("batch", "--rules", str(folder), "-", "-o", str(out), stdin=b"{}\n")
    assert result.returncode == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [folder]


def _pool() -> list[tuple[bytes, str | None]]:
    """Distinct input lines, each with its expected output line (None for an invalid one)."""
    vocabulary = Engine.default().vocabulary
    rng = random.Random(20240611)
    pool: list[tuple[bytes, str | None]] = []
    assessments = [e["facts"] for e in EXAMPLES]
    for _ in range(40):
        facts: dict[str, Any] = {}
        for fact in vocabulary.facts:
            roll = rng.random()
            if roll < 0.15:
                continue
            if roll < 0.2:
                facts[fact.name] = None
            elif fact.kind == "integer":
                facts[fact.name] = rng.randint(fact.minimum or 0, fact.maximum or 0)
            else:
                # Lower need is likelier, so that every level turns up in the pool.
                facts[fact.name] = fact.values[min(rng.randrange(len(fact.values)) for _ in range(3))]
        assessments.append(facts)
    for facts in assessments:
        pool.append((json.dumps(facts).encode(), json.dumps(audited(facts), sort_keys=True, separators=(",", ":"))))
    for bad in (b'{"harm_rsk": "none"}', b'{"addiction_severity": "extreme"}', b"{oops", b"[]", b"\xc3\x28"):
        pool.append((bad, None))
    return pool


@pytest.mark.parametrize("count", [pytest.param(100_000, marks=pytest.mark.slow), 2_000])
def test_batch_of_100000_lines_with_two_workers_matches_decide(tmp_path: Path, count: int) -> None:
    """Every output line equals decide() for its input line, in order, with invalid lines answered in place."""
    pool = _pool()
    # A stride coprime with the pool's size visits every entry and never repeats
    # neighbours, so a line out of place cannot go unnoticed.
    stride = 7919
    assert len({p[0] for p in pool}) == len(pool)
    source = tmp_path / "in.jsonl"
    with source.open("wb") as stream:
        for index in range(count):
            stream.write(pool[(index * stride) % len(pool)][0] + b"\n")
    out = tmp_path / "out.jsonl"
    try:
        # In a process of its own, with a guard against a hang, not a speed test: under
        # coverage, on a busy shared machine, this run has taken close to two minutes.
        result = run_process("batch", str(source), "-o", str(out), "--workers", "2", timeout=600)
        assert result.returncode == 2, result.stderr[-2000:]
        expected_levels: Counter[str] = Counter()
        invalid = 0
        with out.open("r", encoding="utf-8") as stream:
            number = 0
            for number, line in enumerate(stream, start=1):
                if number > count:
                    assert json.loads(line)["records"] == count
                    continue
                _, expected = pool[((number - 1) * stride) % len(pool)]
                if expected is None:
                    invalid += 1
                    error = json.loads(line)
                    assert (error["line"], error["error"]) == (number, "invalid-input"), number
                    assert error["problems"], number
                else:
                    # The record is the decision plus its line number, whose key sorts
                    # right before "missing".
                    spliced = expected.replace(',"missing":', f',"line":{number},"missing":', 1)
                    assert line.rstrip("\n") == spliced, f"line {number}"
                    expected_levels[json.loads(expected)["level"] or "none"] += 1
        assert number == count + 1
        assert len([k for k in expected_levels if k != "none"]) == 4, expected_levels
        summary = result.stderr.splitlines()
        assert f"levelcare: batch: {count} lines: {count - invalid} decided, {invalid} invalid" in summary
        assert sum(line.startswith("levelcare: invalid input: line ") for line in summary) == invalid
        level_row = next(line for line in summary if line.strip().startswith("level:"))
        for level, seen in expected_levels.items():
            label = "none (data required)" if level == "none" else level
            assert f"{label} {seen}" in level_row
    finally:
        source.unlink(missing_ok=True)
        out.unlink(missing_ok=True)


def test_batch_stops_quietly_when_the_reader_goes_away(tmp_path: Path) -> None:
    """Piped into a reader that closes early (as `| head -1` does): no traceback."""
    source = tmp_path / "in.jsonl"
    source.write_text((json.dumps(EXAMPLES[0]["facts"]) + "\n") * 2000)
    with subprocess.Popen(
        [sys.executable, "-m", "levelcare", "batch", str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read().decode()
        process.wait(timeout=TIMEOUT)
    assert json.loads(first)["rulebase"]["name"]
    assert process.returncode == 1
    assert "Traceback" not in stderr


# --- the progress bar ----------------------------------------------------------------------------


def _on_terminal(args: list[str], rows: int = 24, columns: int = 80) -> tuple[int, str]:
    """Run with standard error on a pseudo-terminal; the exit code and what it showed."""
    master, slave = pty.openpty()
    # Terminal emulators give their size; a bare pseudo-terminal reports 0 x 0.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closes with the process
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return process.wait(timeout=TIMEOUT), b"".join(chunks).decode("utf-8", "replace")


def _lines_file(tmp_path: Path, count: int) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(EXAMPLES[i % len(EXAMPLES)]["facts"]) + "\n" for i in range(count)))
    return path


@pytest.mark.parametrize("size", [(24, 80), (0, 0)], ids=["80x24", "no-size"])
def test_progress_bar_on_a_terminal(tmp_path: Path, size: tuple[int, int]) -> None:
    pytest.importorskip("tqdm")
    source = _lines_file(tmp_path, 300)
    code, shown = _on_terminal(
        [sys.executable, "-m", "levelcare", "batch", str(source), "-o", str(tmp_path / "out.jsonl")], *size
    )
    assert code == 0
    assert "300/300" in shown
    assert "100%" in shown
    assert "300 lines: 300 decided, 0 invalid" in shown


def test_no_progress_bar_when_piped(tmp_path: Path) -> None:
    result = run("batch", str(_lines_file(tmp_path, 300)))
    assert result.returncode == 0
    assert "\r" not in result.stderr
    assert "%" not in result.stderr
    assert result.stderr.splitlines()[0] == "levelcare: batch: 300 lines: 300 decided, 0 invalid"


def test_no_progress_bar_without_tqdm(tmp_path: Path) -> None:
    """Without the cli extra the batch runs the same, on a terminal too, with no bar."""
    source = _lines_file(tmp_path, 50)
    script = (
        "import sys; sys.modules['tqdm'] = None; from levelcare._cli import main; "
        f"sys.exit(main(['batch', {str(source)!r}, '-o', {str(tmp_path / 'out.jsonl')!r}]))"
    )
    code, shown = _on_terminal([sys.executable, "-c", script])
    assert code == 0
    assert "%" not in shown
    assert "50 lines: 50 decided, 0 invalid" in shown


# --- schema, rules, check ------------------------------------------------------------------------------


def test_schema_command_prints_a_json_schema() -> None:
    result = run("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(schema["properties"]) == [f.name for f in Engine.default().vocabulary.facts]


def test_rules_command_prints_markdown_vocabulary_and_a_diagram() -> None:
    rules = run("rules")
    assert rules.returncode == 0
    assert rules.stdout.startswith("# Rules reference\n")
    vocabulary = run("rules", "--vocabulary")
    assert vocabulary.returncode == 0
    assert vocabulary.stdout.startswith("# Fact vocabulary\n")
    diagram = run("rules", "--diagram")
    assert diagram.returncode == 0
    assert ET.fromstring(diagram.stdout).tag == "{http://www.w3.org/2000/svg}svg"
    both = run("rules", "--vocabulary", "--diagram")
    assert both.returncode == 2


def test_check_passes_on_the_shipped_rules() -> None:
    result = run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    as_json = run("check", "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)


def test_check_fails_on_a_rule_base_with_problems(tmp_path: Path) -> None:
    folder = copy_rules(tmp_path)
    with (folder / "iop.toml").open("a", encoding="utf-8") as stream:
        stream.write('\n[[rule]]\nid = "XX-1"\nlevel = "iop"\nstatement = "A test rule."\n')
        stream.write('sources = ["no-such-source"]\nwhen = { fact = "harm_risk", is = "high" }\n')
    result = run("check", str(folder))
    assert result.returncode != 0
    assert "XX-1" in result.stdout + result.stderr


def test_check_budget_is_a_positive_number_of_seconds_and_an_exhausted_one_exits_4() -> None:
    """`--budget` takes seconds; a check not decided in time exits with 4, never 0."""
    for bad in ("soon", "0", "-3", "inf"):
        result = run("check", "--budget", bad)
        assert result.returncode == 2
        assert "expected a number of seconds above 0" in result.stderr
    exhausted = run("check", "--budget", "0.000001")
    assert exhausted.returncode == 4, exhausted.stdout + exhausted.stderr
    assert "unverified [not-monotone]" in exhausted.stdout
    assert run("check", "--budget", "600").returncode == 0


def test_a_bad_worker_count_is_refused_echoing_at_most_40_characters() -> None:
    value = "x" * 500
    result = run_levelcare("batch", "-", "--workers", value)
    assert result.returncode == 2
    assert f"expected a whole number of processes, at least 1, got {'x' * 40!r}" in result.stderr
    assert "x" * 41 not in result.stderr
