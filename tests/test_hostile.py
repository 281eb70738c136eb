"""Hostile input: every kind that once escaped as a traceback, plus fuzzing.

Each gets a clear error naming the field (or file and line), echoing at most 40
characters of any value, and never a traceback or a bare built-in exception.
Batch runs are stopped by real signals sent to real processes; the other commands
run in the test process.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import levelcare
from conftest import EXAMPLES_DIR, RULES_DIR, SHIPPED_LEVELS, load_examples
from inprocess import run_levelcare
from levelcare import _batch
from levelcare._rulebase import load
from levelcare._rulebase._reading import MAX_ID_LENGTH, MAX_NESTING

EXAMPLES = load_examples()
ENGINE = levelcare.Engine.default()
TIMEOUT = 120
HUGE = 10**5000  # more digits than Python converts to text by default (4300)


def levelcare_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "levelcare", *args]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """``levelcare ARGS`` in this process; the runs stopped by signals or a full device start a real one."""
    return run_levelcare(*args, stdin=stdin, errors="replace")


def no_long_echo(text: str, value: str) -> None:
    """``text`` holds no run of more than 40 characters of ``value``."""
    for start in range(0, max(1, len(value) - 40), 7):
        assert value[start : start + 41] not in text


def problems_of(data: object) -> list[levelcare.AssessmentProblem]:
    with pytest.raises(levelcare.InvalidAssessment) as caught:
        levelcare.decide(data)  # type: ignore[arg-type]
    return list(caught.value.problems)


# --- values and keys given to decide() ------------------------------------------------------


def test_an_integer_of_thousands_of_digits_is_named_and_never_written_out() -> None:
    problems = problems_of({"weeks_at_current_level": HUGE, "harm_risk": "none"})
    assert [p.fact for p in problems] == ["weeks_at_current_level"]
    assert "expected an integer from 0 to 520" in problems[0].message
    assert "digits" in problems[0].message
    assert "0" * 41 not in problems[0].message


def test_an_integer_key_of_thousands_of_digits_is_reported_in_40_characters() -> None:
    problems = problems_of({HUGE: "none", "harm_rsk": "none"})
    assert len(problems) == 2
    assert all(len(p.fact) <= 40 for p in problems)
    assert "fact names are strings" in problems[0].message
    assert "0" * 41 not in str(problems)


@pytest.mark.parametrize("value", [10**100, -(10**100), 10**39, 2**200])
def test_a_long_integer_is_echoed_in_at_most_40_characters(value: int) -> None:
    (problem,) = problems_of({"hours_available_per_week": value})
    shown = problem.message.split("got ", 1)[1]
    assert len(shown) <= 40
    assert str(value) not in problem.message
    assert f"({len(str(abs(value)))} digits)" in shown


class Text(str):
    """A str subclass, as numpy.str_ and many ORMs hand out."""

    __slots__ = ()


class Weeks(enum.IntEnum):
    SIX = 6


def test_str_and_int_subclasses_decide_like_plain_values() -> None:
    facts = dict(EXAMPLES[0]["facts"])
    plain = levelcare.decide(facts).to_dict()
    wrapped = {Text(k): Text(v) if isinstance(v, str) else v for k, v in facts.items()}
    assert levelcare.decide(wrapped).to_dict() == plain
    assessment = levelcare.Assessment(wrapped)
    assert all(type(k) is str for k in assessment.facts)
    assert all(type(v) in (str, bool, int) for v in assessment.facts.values())
    in_iop = {"current_level": Text("iop"), "weeks_at_current_level": Weeks.SIX, "harm_risk": "none"}
    decided = levelcare.Assessment(in_iop)
    assert type(decided["weeks_at_current_level"]) is int
    assert type(decided["current_level"]) is str
    assert levelcare.decide(in_iop).to_dict() == levelcare.decide({**in_iop, "weeks_at_current_level": 6}).to_dict()


def test_numpy_strings_are_plain_strings_once_validated() -> None:
    numpy = pytest.importorskip("numpy")
    facts = {"harm_risk": numpy.str_("none"), "withdrawal_risk": numpy.str_("severe")}
    assert levelcare.decide(facts).level is SHIPPED_LEVELS["inpatient"]
    assert type(levelcare.Assessment(facts)["harm_risk"]) is str


def test_deep_long_and_unprintable_values_are_reported_safely() -> None:
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]

    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    problems = problems_of({"harm_risk": deep, "relapse_risk": list(range(100_000)), "goals_met": Unprintable()})
    assert [p.fact for p in problems] == ["harm_risk", "relapse_risk", "goals_met"]
    assert all(len(p.message) < 200 for p in problems)


# --- JSON text: decide and batch --------------------------------------------------------------


def test_decide_rejects_a_key_given_twice_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "twice.json"
    path.write_text('{"harm_risk": "imminent", "addiction_severity": "mild", "harm_risk": "none", "relapse_rsk": 1}')
    result = run("decide", str(path))
    assert result.returncode == 2
    assert f"levelcare: invalid input: {path}: harm_risk: given more than once; give each fact once" in result.stderr
    # Every problem at once: the misspelt fact too.
    assert "relapse_rsk: unknown fact" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_decide_names_the_fact_holding_a_number_python_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    path.write_text('{"harm_risk": "none", "weeks_at_current_level": ' + "9" * 5000 + "}")
    result = run("decide", str(path))
    assert result.returncode == 2
    assert "weeks_at_current_level: expected an integer from 0 to 520, got number <5000 digits>" in result.stderr
    assert "9" * 41 not in result.stderr
    assert "Traceback" not in result.stderr


def test_decide_reads_a_file_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(EXAMPLES[0]).encode())
    result = run("decide", "--json", str(path))
    assert result.returncode in (0, 3), result.stderr
    assert json.loads(result.stdout)["level_range"] == levelcare.decide(EXAMPLES[0]["facts"]).to_dict()["level_range"]


def _records(stdout: str) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    *lines, last = stdout.splitlines()
    records = {}
    for line in lines:
        record = json.loads(line)
        records[record["line"]] = record
    closing = json.loads(last)
    assert closing["batch"] == "complete"
    assert closing["records"] == len(lines)
    return records, closing


@pytest.mark.parametrize("workers", ["1", "2"])
def test_batch_goes_on_past_huge_numbers_and_keys_given_twice(tmp_path: Path, workers: str) -> None:
    good = json.dumps(EXAMPLES[1]["facts"])
    lines = [
        good,
        '{"harm_risk": "none", "weeks_at_current_level": ' + "7" * 4301 + "}",
        '{"harm_risk": "imminent", "withdrawal_risk": "none", "harm_risk": "none"}',
        '{"' + "k" * 200 + '": ' + "-" + "1" * 6000 + "}",
        good,
    ]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run("batch", str(path), "--workers", workers)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    records, closing = _records(result.stdout)
    assert sorted(records) == [1, 2, 3, 4, 5]
    assert records[1]["status"] and records[5]["status"]
    assert records[2]["problems"] == [
        {"fact": "weeks_at_current_level", "message": "expected an integer from 0 to 520, got number <4301 digits>"}
    ]
    assert records[3]["problems"] == [{"fact": "harm_risk", "message": "given more than once; give each fact once"}]
    (unknown,) = records[4]["problems"]
    assert len(unknown["fact"]) <= 40
    assert (closing["decided"], closing["invalid"]) == (2, 3)
    assert "7" * 41 not in result.stdout + result.stderr
    assert "1" * 41 not in result.stdout + result.stderr


def test_batch_reads_bom_crlf_cr_and_blank_lines(tmp_path: Path) -> None:
    facts = [e["facts"] for e in EXAMPLES[:4]]
    texts = [json.dumps(f).encode() for f in facts]
    data = (
        b"\xef\xbb\xbf"
        + texts[0]
        + b"\r\n"
        + texts[1]
        + b"\r"
        + b"  \r\n"
        + texts[2]
        + b"\n\n"
        + texts[3]
        + b"\r\n\r\n"
    )
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    result = run("batch", str(path))
    assert result.returncode == 0, result.stderr
    records, closing = _records(result.stdout)
    assert sorted(records) == [1, 2, 4, 6]
    for number, expected in zip([1, 2, 4, 6], facts, strict=True):
        assert records[number]["level_range"] == levelcare.decide(expected).to_dict()["level_range"]
    assert (closing["lines"], closing["blank"], closing["invalid"]) == (7, 3, 0)
    assert "levelcare: batch: 7 lines: 4 decided, 0 invalid, 3 blank" in result.stderr


def test_a_blank_last_line_is_no_invalid_record() -> None:
    good = json.dumps(EXAMPLES[0]["facts"]).encode()
    result = run("batch", "-", stdin=good + b"\n\n   \n")
    assert result.returncode == 0
    records, closing = _records(result.stdout)
    assert list(records) == [1]
    assert closing["invalid"] == 0


def test_the_record_id_is_copied_and_never_read_as_a_fact() -> None:
    facts = EXAMPLES[0]["facts"]
    lines = [
        json.dumps({**facts, "_id": "visit-17"}),
        json.dumps({"facts": facts, "name": "wrapped", "_id": 42}),
        json.dumps({"harm_rsk": "none", "_id": "bad-line"}),
        json.dumps({**facts, "_id": {"nested": True}}),
        json.dumps({**facts, "_id": "x" * 500}),
        json.dumps(facts),
    ]
    result = run("batch", "-", stdin="\n".join(lines).encode())
    records, _ = _records(result.stdout)
    assert records[1]["_id"] == "visit-17"
    assert records[2]["_id"] == 42
    assert records[3]["_id"] == "bad-line"
    assert records[3]["error"] == "invalid-input"
    for number in (4, 5):
        assert records[number]["problems"][0]["fact"] == "_id"
        assert "_id" not in records[number]
    assert "x" * 41 not in result.stdout + result.stderr
    assert "_id" not in records[6]
    # The id changes nothing else: same decision, same digest of the facts.
    for number in (1, 2):
        same = {k: v for k, v in records[number].items() if k not in ("_id", "line")}
        assert same == {k: v for k, v in records[6].items() if k != "line"}


# --- rule files ------------------------------------------------------------------------------------


def copy_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder)
    return folder


def nested_rule(depth: int, rule_id: str = "DEEP-1") -> str:
    condition = '{ fact = "harm_risk", is = "high" }'
    for _ in range(depth):
        condition = "{ all = [" + condition + "] }"
    return (
        f'\n[[rule]]\nid = "{rule_id}"\nlevel = "iop"\nstatement = "Deep."\nsources = ["tip47"]\nwhen = {condition}\n'
    )


def load_problems(folder: Path) -> list[levelcare.RuleProblem]:
    with pytest.raises(levelcare.RuleBaseError) as caught:
        load(folder)
    return list(caught.value.problems)


def test_a_condition_nested_200_deep_is_a_problem_naming_file_and_line(tmp_path: Path) -> None:
    folder = copy_rules(tmp_path)
    (folder / "zz-deep.toml").write_text("# a rule nested far too deeply\n" + nested_rule(200))
    problems = load_problems(folder)
    assert [(p.file, p.rule_id) for p in problems] == [("zz-deep.toml", "")]
    assert f"nested more than {MAX_NESTING} levels of tables and lists deep, from line 8" in problems[0].message
    result = run("check", str(folder))
    assert result.returncode == 1
    assert "zz-deep.toml" in result.stdout
    assert "unexpected error" not in result.stderr
    assert "Traceback" not in result.stderr
    as_json = run("check", "--json", str(folder))
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["findings"][0]["file"] == "zz-deep.toml"


def test_a_condition_past_the_nesting_limit_is_a_problem_naming_the_rule(tmp_path: Path) -> None:
    folder = copy_rules(tmp_path)
    (folder / "zz-deep.toml").write_text(nested_rule(MAX_NESTING // 2 + 1))
    problems = load_problems(folder)
    assert [(p.file, p.rule_id) for p in problems] == [("zz-deep.toml", "DEEP-1")]
    assert "write the condition flatter" in problems[0].message
    # Just within the limit, the same rule loads.
    (folder / "zz-deep.toml").write_text(nested_rule(MAX_NESTING // 2 - 2))
    assert load(folder).rules


def test_a_rule_id_too_long_is_a_problem(tmp_path: Path) -> None:
    folder = copy_rules(tmp_path)
    long_id = "X" * (MAX_ID_LENGTH + 1)
    (folder / "zz-long.toml").write_text(nested_rule(0, long_id))
    problems = load_problems(folder)
    assert [p.file for p in problems] == ["zz-long.toml"]
    assert problems[0].message == f"id is {MAX_ID_LENGTH + 1} characters long; at most {MAX_ID_LENGTH} are allowed"
    assert len(problems[0].rule_id) <= 40


def test_hidden_files_are_ignored_and_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    folder = copy_rules(tmp_path)
    shipped = load(RULES_DIR).info
    (folder / ".iop.toml.swp.toml").write_text("this is not TOML [[[")
    (folder / ".hidden.toml").write_text(nested_rule(0, "HIDDEN-1"))
    header = folder / "rulebase.toml"
    header.write_bytes(b"\xef\xbb\xbf" + header.read_bytes())
    loaded = load(folder)
    assert loaded.info.sha256 == shipped.sha256
    assert "HIDDEN-1" not in {r.id for r in loaded.rules}


# --- batch output: full disks, signals, resuming ------------------------------------------------------


@pytest.fixture(scope="module")
def many_lines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 3,000-line input (blank and invalid lines among them) and the output of one whole run."""
    folder = tmp_path_factory.mktemp("batch")
    source = folder / "in.jsonl"
    lines = []
    for index in range(3000):
        if index % 500 == 7:
            lines.append("")
        elif index % 300 == 11:
            lines.append('{"harm_rsk": "none"}')
        else:
            lines.append(json.dumps({**EXAMPLES[index % len(EXAMPLES)]["facts"], "_id": index}))
    source.write_text("\n".join(lines) + "\n")
    whole = folder / "whole.jsonl"
    result = run("batch", str(source), "-o", str(whole))
    assert result.returncode == 2, result.stderr
    return source, whole.read_text()


def test_a_full_standard_output_is_a_clear_error(many_lines: tuple[Path, str]) -> None:
    source, _ = many_lines
    with Path("/dev/full").open("wb") as full:
        done = subprocess.run(
            levelcare_cmd("batch", str(source)), stdout=full, stderr=subprocess.PIPE, timeout=TIMEOUT, check=False
        )
    stderr = done.stderr.decode()
    assert done.returncode == 1
    assert "levelcare: batch: cannot write standard output: No space left on device; 0 records written" in stderr
    assert "Traceback" not in stderr


def test_decide_to_a_full_standard_output_is_a_clear_error() -> None:
    with Path("/dev/full").open("wb") as full:
        done = subprocess.run(
            levelcare_cmd("decide", str(EXAMPLES_DIR / "moderate-working-parent.json")),
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT,
            check=False,
        )
    stderr = done.stderr.decode()
    assert done.returncode == 1
    assert "levelcare: cannot write standard output: No space left on device" in stderr
    assert "Traceback" not in stderr


def _limit_file_size() -> None:
    # Writes past 64 KiB fail with EFBIG instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def _whole_records(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def test_an_output_file_that_cannot_grow_keeps_whole_records_for_resume(
    tmp_path: Path, many_lines: tuple[Path, str]
) -> None:
    source, whole = many_lines
    out = tmp_path / "out.jsonl"
    # Not measured by coverage: its data file would meet the same limit.
    env = {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE")}
    done = subprocess.run(
        levelcare_cmd("batch", str(source), "-o", str(out)),
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
        preexec_fn=_limit_file_size,
    )
    stderr = done.stderr.decode()
    assert done.returncode == 1
    assert f"levelcare: batch: cannot write {out}.partial: File too large;" in stderr
    assert "run the same command with --resume to finish" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    kept = _whole_records(Path(f"{out}.partial"))
    assert len(kept) > 0 and len(Path(f"{out}.partial").read_bytes()) <= 64 * 1024
    resumed = run("batch", str(source), "-o", str(out), "--resume")
    assert resumed.returncode == 2, resumed.stderr
    assert f"resuming {out}.partial: {len(kept)} records kept" in resumed.stderr
    assert out.read_text() == whole
    assert not Path(f"{out}.partial").exists()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, where the privileges allow mounting one."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True, check=False
    ).returncode:
        pytest.skip("mounting a tmpfs needs privileges this run does not have")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_a_clear_error_and_the_run_resumes_once_there_is_room(
    tiny_disk: Path, many_lines: tuple[Path, str]
) -> None:
    source, whole = many_lines
    out = tiny_disk / "out.jsonl"
    result = run("batch", str(source), "-o", str(out))
    assert result.returncode == 1
    assert f"levelcare: batch: cannot write {out}.partial: No space left on device;" in result.stderr
    assert "Traceback" not in result.stderr
    kept = _whole_records(Path(f"{out}.partial"))
    assert kept
    subprocess.run(["mount", "-o", "remount,size=8m", str(tiny_disk)], check=True)
    resumed = run("batch", str(source), "-o", str(out), "--resume")
    assert resumed.returncode == 2, resumed.stderr
    assert out.read_text() == whole


def spill_folders(pid: int) -> list[str]:
    """The folders of the batch worker pools started by process ``pid``, where workers write their records."""
    return [name for name in os.listdir("/dev/shm") if name.startswith(f"levelcare-batch-{pid}-")]


def _start(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(levelcare_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _wait_for_records(path: Path, process: subprocess.Popen[bytes]) -> None:
    """Until the first block of records is in ``path``."""
    deadline = time.monotonic() + TIMEOUT
    while not (path.exists() and path.stat().st_size > 0):
        assert process.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < deadline
        time.sleep(0.005)


@pytest.mark.parametrize(
    ("signum", "workers", "group"),
    [
        pytest.param(signal.SIGTERM, "1", False, marks=pytest.mark.slow),
        (signal.SIGINT, "1", False),
        pytest.param(signal.SIGTERM, "2", False, marks=pytest.mark.slow),
        (signal.SIGINT, "2", True),  # Ctrl-C reaches every process of the terminal's group
    ],
    ids=["sigterm", "sigint", "sigterm-2-workers", "sigint-group-2-workers"],
)
def test_a_signal_keeps_whole_records_and_resume_finishes_the_run(
    tmp_path: Path, many_lines: tuple[Path, str], signum: signal.Signals, workers: str, group: bool
) -> None:
    source, whole = many_lines
    out = tmp_path / "out.jsonl"
    partial = Path(f"{out}.partial")
    process = _start(["batch", str(source), "-o", str(out), "--workers", workers], start_new_session=group)
    _wait_for_records(partial, process)
    if group:
        os.killpg(process.pid, signum)
    else:
        os.kill(process.pid, signum)
    _, stderr_bytes = process.communicate(timeout=TIMEOUT)
    stderr = stderr_bytes.decode()
    assert process.returncode == 128 + signum
    assert f"levelcare: batch: interrupted by {signum.name};" in stderr
    assert "Traceback" not in stderr
    # The records of the chunks in flight were in files of the pool's folder: gone with it.
    assert spill_folders(process.pid) == []
    assert not out.exists()
    kept = _whole_records(partial)
    assert kept and all("line" in record for record in kept)
    assert [p.name for p in tmp_path.iterdir()] == [partial.name]
    # The kept records are decided again: one changed by hand is refused, not kept.
    original = partial.read_text()
    marked = dict(kept[0], considerations=[{"marker": "kept"}])
    text = original.splitlines(keepends=True)
    partial.write_text(json.dumps(marked, sort_keys=True, separators=(",", ":")) + "\n" + "".join(text[1:]))
    refused = run("batch", str(source), "-o", str(out), "--resume", "--workers", workers)
    assert refused.returncode == 1, refused.stderr
    assert f"{partial}, record 1 does not answer line 1 of {source}" in refused.stderr
    partial.write_text(original)
    resumed = run("batch", str(source), "-o", str(out), "--resume", "--workers", workers)
    assert resumed.returncode == 2, resumed.stderr
    assert f"resuming {partial}: {len(kept)} records kept" in resumed.stderr
    assert out.read_text() == whole
    assert not partial.exists()


def test_a_kill_9_leaves_a_torn_record_that_resume_drops(tmp_path: Path, many_lines: tuple[Path, str]) -> None:
    source, whole = many_lines
    out = tmp_path / "out.jsonl"
    partial = Path(f"{out}.partial")
    process = _start(["batch", str(source), "-o", str(out)])
    _wait_for_records(partial, process)
    process.kill()
    process.communicate(timeout=TIMEOUT)
    # What a write cut short by a power cut leaves: half a record at the end.
    with partial.open("ab") as stream:
        stream.write(b'{"as_of":null,"consid')
    resumed = run("batch", str(source), "-o", str(out), "--resume")
    assert resumed.returncode == 2, resumed.stderr
    assert out.read_text() == whole


def test_output_cut_short_on_standard_output_shows_as_incomplete(many_lines: tuple[Path, str]) -> None:
    source, whole = many_lines
    assert json.loads(whole.splitlines()[-1])["batch"] == "complete"
    process = _start(["batch", str(source)])
    assert process.stdout is not None
    first = process.stdout.readline()
    process.kill()
    rest, _ = process.communicate(timeout=TIMEOUT)
    got = first + rest
    assert json.loads(first)["line"] == 1
    assert got.count(b"\n") < len(whole.splitlines())
    # Whatever arrived, it has no closing record: a reader can tell it is incomplete.
    assert b'"batch":"complete"' not in got


def test_resume_refuses_the_partial_output_of_another_input(tmp_path: Path, many_lines: tuple[Path, str]) -> None:
    source, _ = many_lines
    out = tmp_path / "out.jsonl"
    partial = Path(f"{out}.partial")
    process = _start(["batch", str(source), "-o", str(out)])
    _wait_for_records(partial, process)
    os.kill(process.pid, signal.SIGTERM)
    process.communicate(timeout=TIMEOUT)
    changed = tmp_path / "changed.jsonl"
    lines = source.read_text().splitlines()
    facts = json.loads(lines[3])
    facts["harm_risk"] = "none" if facts.get("harm_risk") == "imminent" else "imminent"
    lines[3] = json.dumps(facts)
    changed.write_text("\n".join(lines) + "\n")
    refused = run("batch", str(changed), "-o", str(out), "--resume")
    assert refused.returncode == 1
    assert f"{partial}, record 4 does not answer line 4 of {changed}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert partial.exists() and not out.exists()


def test_two_runs_never_write_one_output_at_once(tmp_path: Path, many_lines: tuple[Path, str]) -> None:
    source, _ = many_lines
    out = tmp_path / "out.jsonl"
    # The first run reads a pipe left open, so it is still writing when the second starts.
    first = _start(["batch", "-", "-o", str(out)], stdin=subprocess.PIPE)
    assert first.stdin is not None
    first.stdin.write(source.read_bytes())
    first.stdin.flush()
    _wait_for_records(Path(f"{out}.partial"), first)
    second = run("batch", str(source), "-o", str(out))
    first.communicate(timeout=TIMEOUT)  # closes the pipe: the first run ends
    assert second.returncode == 1
    assert f"{out}.partial is being written by another levelcare batch" in second.stderr
    assert first.returncode == 2
    assert out.exists()


def test_resume_needs_an_output_file() -> None:
    result = run("batch", "-", "--resume", stdin=b"{}\n")
    assert result.returncode == 2
    assert "--resume continues the partial output of -o OUT.jsonl" in result.stderr


# --- decision records --------------------------------------------------------------------------------


def test_from_dict_lists_every_inconsistency() -> None:
    complete = levelcare.decide({"withdrawal_risk": "severe"}).to_dict()
    no_level = dict(complete, level=None)
    with pytest.raises(levelcare.InvalidDecisionData) as caught:
        levelcare.Decision.from_dict(no_level, levels=SHIPPED_LEVELS)
    assert caught.value.problems == ("decision.level: a complete decision names its level, got null",)
    outside = dict(complete, level="iop")
    with pytest.raises(levelcare.InvalidDecisionData) as caught:
        levelcare.Decision.from_dict(outside, levels=SHIPPED_LEVELS)
    assert caught.value.problems == (
        "decision.level: 'iop' lies outside level_range ['inpatient', 'inpatient']",
        "program.level: expected 'iop', the decision's level, got 'inpatient'",
    )
    open_ = levelcare.decide({"addiction_severity": "moderate"}).to_dict()
    assert open_["status"] == "data-required"
    with_level = dict(open_, level="iop", transition="admit", missing=[], input_sha256="abc")
    with pytest.raises(levelcare.InvalidDecisionData) as caught:
        levelcare.Decision.from_dict(with_level, levels=SHIPPED_LEVELS)
    assert caught.value.problems == (
        "decision.level: a data-required decision has no level yet, got 'iop'",
        "decision.transition: a data-required decision has no transition yet, got 'admit'",
        "decision.missing: a data-required decision names the facts it needs, got none",
        "program.level: expected 'iop', the decision's level, got 'inpatient'",
        "decision.input_sha256: expected 64 lowercase hexadecimal digits, got 'abc'",
    )
    assert str(caught.value).startswith("invalid decision data, 5 problems:\n- decision.level:")


def test_decision_records_carry_the_version_and_the_digest_of_the_facts() -> None:
    facts = {"harm_risk": "none", "withdrawal_risk": "severe", "goals_met": None}
    result = run("decide", "--json", "--as-of", "2026-11-02T09:30:00+01:00", "-", stdin=json.dumps(facts).encode())
    data = json.loads(result.stdout)
    known = {"harm_risk": "none", "withdrawal_risk": "severe"}
    canonical = json.dumps(known, sort_keys=True, separators=(",", ":"))
    assert data["input_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert data["levelcare_version"] == levelcare.Decision.from_dict(data, levels=SHIPPED_LEVELS).levelcare_version
    from importlib import metadata

    assert data["levelcare_version"] == metadata.version("levelcare")
    assert data["as_of"] == "2026-11-02T09:30:00+01:00"
    back = levelcare.Decision.from_dict(data, levels=SHIPPED_LEVELS)
    assert back.to_dict() == data
    assert back.input_sha256 == data["input_sha256"]
    assert back.rulebase.sha256 == ENGINE.rulebase.sha256


@pytest.mark.parametrize("value", ["2026-11-02", "2026-11-02T09:30:00", "yesterday", "9" * 100])
def test_as_of_needs_a_date_and_time_with_an_offset(value: str) -> None:
    result = run("decide", "--as-of", value, "-", stdin=b"{}")
    assert result.returncode == 2
    assert "expected an ISO 8601 date and time with a UTC offset" in result.stderr
    assert "9" * 41 not in result.stderr


# --- fuzzing -------------------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**50), max_value=10**50),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["none", "mild", "moderate", "severe", "iop", "php", "low", "high"]),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FACT_NAMES = st.sampled_from([f.name for f in ENGINE.vocabulary.facts] + ["_id", "facts", "name", "harm_rsk"])


@st.composite
def json_lines(draw: st.DrawFn) -> bytes:
    """A line as a hostile or careless producer writes it: objects with repeated keys, huge numbers, BOMs, junk."""
    pairs = draw(st.lists(st.tuples(FACT_NAMES | st.text(max_size=8), JSON_VALUES), max_size=8))
    parts = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in pairs]
    if draw(st.booleans()) and parts:
        # A number with more digits than Python reads.
        parts[0] = (
            f"{json.dumps(pairs[0][0])}: {'-' if draw(st.booleans()) else ''}{'8' * draw(st.integers(4290, 4400))}"
        )
    text = "{" + ", ".join(parts) + "}"
    text = draw(st.sampled_from(["", "\ufeff", " "])) + text
    raw = text.encode("utf-8")
    mutation = draw(st.sampled_from(["none", "cut", "byte", "array", "nest"]))
    if mutation == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mutation == "byte":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at:]
    elif mutation == "array":
        raw = b"[" + raw + b"]"
    elif mutation == "nest":
        depth = draw(st.integers(1, 3000))
        raw = b'{"facts": ' * 1 + b"[" * depth + raw + b"]" * depth + b"}"
    return raw


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(json_lines(), st.integers(1, 10**6))
def test_any_json_line_gives_one_record_naming_its_line(raw: bytes, number: int) -> None:
    text, result = _batch.decide_line(ENGINE, number, raw)
    record = json.loads(text)
    assert record["line"] == number
    if "error" in record:
        assert record["error"] == "invalid-input"
        assert record["problems"] and result.problems
        for problem in record["problems"]:
            assert len(problem["fact"]) <= 40
    else:
        assert record["status"] in ("complete", "data-required")
        levelcare.Decision.from_dict(record, levels=SHIPPED_LEVELS)


STREAM_PIECES = st.sampled_from(
    [b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b" ", b"\t", b"{}", b'{"harm_risk": "none"}', b"\xff", b"x" * 70]
)


@given(st.binary(max_size=300) | st.lists(STREAM_PIECES | st.binary(max_size=8), max_size=40).map(b"".join))
def test_any_byte_stream_is_read_as_numbered_lines(data: bytes) -> None:
    import io

    reader = _batch.LineReader(io.BytesIO(data), limit=64)
    seen = list(reader)
    numbers = [number for number, _ in seen]
    assert numbers == sorted(set(numbers))
    assert reader.number == len(seen) + reader.blank
    for _, raw in seen:
        assert isinstance(raw, int) or (raw.strip() and b"\n" not in raw and b"\r" not in raw)


TOML_KEYS = st.sampled_from(
    ["all", "any", "not", "fact", "is", "is_not", "one_of", "at_least", "at_most", "level", "x"]
)
TOML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from(["harm_risk", "high", "none", "iop", "weeks_at_current_level", "continue", ""]),
    st.text(max_size=10),
)


def toml_value(value: Any) -> str:
    """A value as TOML inline syntax."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


CONDITIONS = st.recursive(
    TOML_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TOML_KEYS, inner, max_size=3),
    max_leaves=10,
)


@st.composite
def rule_files(draw: st.DrawFn) -> bytes:
    rule_id = draw(st.sampled_from(["F-1", "IO-1", "", "x" * 40, "bad id"]))
    level = draw(st.sampled_from(["iop", "php", "nowhere"]))
    when = draw(CONDITIONS)
    depth = draw(st.sampled_from([0, 0, 0, 20, 400]))
    text = toml_value(when)
    text = "{ all = [" * depth + text + "] }" * depth
    body = f'[[rule]]\nid = {json.dumps(rule_id)}\nlevel = "{level}"\nstatement = "S."\nsources = ["tip47"]\nwhen = {text}\n'
    raw = (draw(st.sampled_from(["", "\ufeff"])) + body).encode("utf-8")
    if draw(st.booleans()):
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=3)) + raw[at:]
    return raw


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rule_files())
def test_any_rule_file_loads_or_is_a_rule_base_error(tmp_path: Path, raw: bytes) -> None:
    folder = tmp_path / "fuzzed"
    if not folder.exists():
        shutil.copytree(RULES_DIR, folder)
    (folder / "zz-fuzzed.toml").write_bytes(raw)
    try:
        load(folder)
    except levelcare.RuleBaseError as error:
        assert error.problems
        for problem in error.problems:
            assert len(problem.rule_id) <= 40
