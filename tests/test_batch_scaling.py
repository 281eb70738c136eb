"""The batch's parent reads raw chunks of whole lines and the workers do the rest, with the
same bytes out for any number of workers."""

from __future__ import annotations

import errno
import io
import itertools
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import load_examples
from inprocess import run_levelcare
from levelcare import _batch
from levelcare._batch import _reading, _workers

EXAMPLES = load_examples()


def _mixed_input(path: Path) -> None:
    """Decided and invalid lines, every line ending, a byte order mark, blank and over-long lines."""
    endings = [b"\n", b"\r\n", b"\r"]
    lines = [b"\xef\xbb\xbf" + json.dumps(EXAMPLES[0]["facts"]).encode()]
    for index in range(3000):
        if index % 997 == 5:
            line = b" "  # blank; an empty line after a CR would make a CRLF of two endings
        elif index % 1499 == 7:
            line = json.dumps({"harm_risk": "x" * (_batch.MAX_ASSESSMENT_BYTES + 5)}).encode()
        elif index % 301 == 11:
            line = b'{"harm_rsk": "none", "_id": "bad-%d"}' % index
        elif index % 401 == 13:
            line = b"\xc3\x28 not UTF-8"
        else:
            line = json.dumps({**EXAMPLES[index % len(EXAMPLES)]["facts"], "_id": index}).encode()
        lines.append(line + endings[index % 3])
    path.write_bytes(lines[0] + b"\n" + b"".join(lines[1:]))


def test_output_is_byte_identical_for_one_two_and_three_workers(tmp_path: Path) -> None:
    """Whatever the number of workers, the output file and the summary are the same bytes."""
    source = tmp_path / "in.jsonl"
    _mixed_input(source)
    outputs, summaries = [], []
    for workers in ("1", "2", "3"):
        out = tmp_path / f"out-{workers}.jsonl"
        done = run_levelcare("batch", str(source), "-o", str(out), "--workers", workers)
        assert done.returncode == 2, done.stderr[-2000:]
        outputs.append(out.read_bytes())
        summaries.append(done.stderr)
        assert _folders() == []  # the workers' records came back in files of a folder, removed
    assert outputs[0] == outputs[1] == outputs[2]
    assert summaries[0] == summaries[1] == summaries[2]
    records = [json.loads(line) for line in outputs[0].splitlines()]
    closing = records.pop()
    assert closing["lines"] == 3001 and closing["blank"] == 4
    assert [r["line"] for r in records] == sorted(r["line"] for r in records)
    assert sum("error" in r for r in records) == closing["invalid"] > 0
    too_long = [r for r in records if "error" in r and "the limit for one assessment" in r["problems"][0]["message"]]
    assert len(too_long) == 2


def _folders() -> list[str]:
    """The folders of the worker pools started by this process."""
    return [name for name in os.listdir("/dev/shm") if name.startswith(f"levelcare-batch-{os.getpid()}-")]


RESULT = _workers.ChunkResult(b'{"line":1}\n{"line":2}\n', 2, 0, {("complete", "iop", False): 2}, ())


def test_a_workers_records_come_back_in_a_private_file_that_is_then_removed(tmp_path: Path) -> None:
    folder = str(tmp_path)
    sent = _workers._shared(RESULT, folder)
    assert sent[0].output == b"" and sent[2] == len(RESULT.output)
    spilled = tmp_path / str(sent[1])
    assert stat.S_IMODE(spilled.stat().st_mode) == 0o600  # no other user reads the records
    assert _workers._taken(sent, folder) == RESULT
    assert not spilled.exists()
    # No records, or no folder: the result travels whole.
    assert _workers._shared(RESULT._replace(output=b""), folder) == (RESULT._replace(output=b""), None, 0)
    assert _workers._shared(RESULT, None) == (RESULT, None, 0)


def test_records_that_cannot_be_written_whole_go_through_the_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    assert _workers._shared(RESULT, str(tmp_path)) == (RESULT, None, 0)
    assert list(tmp_path.iterdir()) == []  # the file begun is removed


def test_a_record_file_cut_short_is_an_error_not_a_shorter_output(tmp_path: Path) -> None:
    sent = _workers._shared(RESULT, str(tmp_path))
    (tmp_path / str(sent[1])).write_bytes(RESULT.output[:-3])
    with pytest.raises(OSError, match="cut short: 19 of 22 bytes"):
        _workers._taken(sent, str(tmp_path))


def test_without_a_memory_file_system_the_records_go_through_the_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.jsonl"
    _mixed_input(source)
    expected = run_levelcare("batch", str(source), "--workers", "1")
    monkeypatch.setattr(_workers, "_SPILL_ROOT", str(tmp_path / "missing"))
    piped = run_levelcare("batch", str(source), "--workers", "2")
    assert (piped.returncode, piped.stdout) == (expected.returncode, expected.stdout)


def test_a_folder_left_by_a_pool_whose_process_is_gone_is_removed(tmp_path: Path) -> None:
    """A run killed outright leaves its folder; the next pool removes it, and not another process's."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = (
        Path("/dev/shm", f"levelcare-batch-{gone.stdout.strip()}-x1"),
        Path("/dev/shm", f"levelcare-batch-{os.getpid()}-x2"),
    )
    for folder in (dead, alive):
        folder.mkdir(mode=0o700)
        (folder / "records").write_bytes(b"{}\n")
    try:
        with _workers.WorkerPool(None, 1):
            pass
        assert not dead.exists()
        assert alive.exists()
    finally:
        for folder in (dead, alive):
            shutil.rmtree(folder, ignore_errors=True)


def _reference(data: bytes, limit: int) -> tuple[list[tuple[int, bytes | int]], int, int]:
    """Lines as universal newlines read them, decoded and encoded again."""
    text = data.decode("utf-8", "surrogateescape").replace("\r\n", "\n").replace("\r", "\n")
    parts = text.split("\n")
    if parts and not parts[-1]:
        parts.pop()
    given_lines: list[tuple[int, bytes | int]] = []
    blank = 0
    for number, line in enumerate(parts, start=1):
        raw = (line.removeprefix("\ufeff") if number == 1 else line).encode("utf-8", "surrogateescape")
        if len(raw) > limit:
            given_lines.append((number, len(raw)))
        elif not raw.strip():
            blank += 1
        else:
            given_lines.append((number, raw))
    return given_lines, len(parts), blank


PIECES = st.sampled_from([b"\n", b"\r", b"\r\n", b"\xef\xbb\xbf", b" ", b"{}", b"\xff", b"x" * 70, b"y" * 30])


@given(st.lists(PIECES | st.binary(max_size=8), max_size=40).map(b"".join), st.sampled_from([1, 2, 3, 7, 64, 1 << 18]))
# A blank CR line, then an over-long line kept as its length, then LF line ends.
@example(b"\r" + b"x" * 70 + b"\n\n", 1)
def test_raw_chunks_give_the_lines_universal_newlines_give(data: bytes, block: int) -> None:
    """Chunks are cut at line ends whatever the read size: a CRLF is never split, over-long lines keep their length."""
    saved, _reading._BLOCK = _reading._BLOCK, block
    try:
        reader = _batch.LineReader(io.BytesIO(data), limit=64)
        expected, count, blank = _reference(data, 64)
        assert list(reader) == expected
        assert (reader.number, reader.blank) == (count, blank)
        chunks = list(_batch.read_chunks(io.BytesIO(data), limit=64))
    finally:
        _reading._BLOCK = saved
    pieces = [piece for _, chunk in chunks for piece in chunk]
    texts = [piece for piece in pieces if isinstance(piece, bytes)]
    # Every piece but the last ends a line, and no CRLF is split between two.
    assert all(piece.endswith((b"\n", b"\r")) for piece in texts[:-1])
    # (An over-long line is kept as its length, an int, between the texts around it.)
    assert not any(
        isinstance(a, bytes) and isinstance(b, bytes) and a.endswith(b"\r") and b.startswith(b"\n")
        for a, b in itertools.pairwise(pieces)
    )
    # Each chunk starts at the line after the last one of the chunk before.
    number = 1
    for first, chunk in chunks:
        assert first == number
        number += len(list(_batch.split_chunk(first, chunk, 64)))
    assert number - 1 == count


def test_the_workers_start_while_the_rule_base_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Worker start-up (a Python and an engine each) overlaps the parent's check of the rule base."""
    import multiprocessing

    from levelcare._cli import _batch as cli_batch
    from levelcare._cli._main import main

    seen: list[int] = []
    check = cli_batch._verified_engine

    def counting(*args: Any, **kwargs: Any) -> Any:
        seen.append(len(multiprocessing.active_children()))
        return check(*args, **kwargs)

    monkeypatch.setattr(cli_batch, "_verified_engine", counting)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(example["facts"]) + "\n" for example in EXAMPLES[:4]))
    status = main(["batch", str(source), "-o", str(tmp_path / "out.jsonl"), "--workers", "2", "--no-progress"])
    assert status == 0, capsys.readouterr().err
    assert seen and seen[0] >= 2
    assert not multiprocessing.active_children()
