"""``levelcare batch`` owns its files: no symbolic link is followed, a resumed output
holds no record that differs from what the run decides, and no worker outlives its
parent. Real processes, real files, real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import load_examples
from inprocess import run_levelcare

EXAMPLES = load_examples()
TIMEOUT = 120
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="symbolic links and signals as POSIX has them")


def levelcare_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "levelcare", *args]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """``levelcare ARGS`` in this process; the runs a signal stops start processes of their own."""
    return run_levelcare(*args)


def _input(folder: Path, count: int) -> Path:
    """``count`` lines of worked-example facts, each with its own id."""
    source = folder / "in.jsonl"
    with source.open("w", encoding="utf-8") as stream:
        for index in range(count):
            stream.write(json.dumps({**EXAMPLES[index % len(EXAMPLES)]["facts"], "_id": index}) + "\n")
    return source


VICTIM = b"precious bytes that belong to someone else\n"


# --- symbolic links ------------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("planted", ["partial", "output", "dangling-partial", "dangling-output"])
def test_batch_never_writes_through_a_symlink_at_the_output_or_its_partial(tmp_path: Path, planted: str) -> None:
    """A link at OUT.jsonl.partial or OUT.jsonl, to a file or to nowhere, is refused, naming it; the target is untouched."""
    source = _input(tmp_path, 50)
    out = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    victim = tmp_path / "victim.txt"
    link = partial if planted.endswith("partial") else out
    if planted.startswith("dangling"):
        link.symlink_to(victim)  # the victim does not exist: following the link would create it
    else:
        victim.write_bytes(VICTIM)
        link.symlink_to(victim)
    for extra in ([], ["--resume"], ["--workers", "2"]):
        result = run("batch", str(source), "-o", str(out), *extra)
        assert result.returncode == 1, result.stderr
        assert f"levelcare: {link} is a symbolic link" in result.stderr
        assert "Traceback" not in result.stderr
        if planted.startswith("dangling"):
            assert not victim.exists()
        else:
            assert victim.read_bytes() == VICTIM
        assert link.is_symlink()
        # The run left nothing of its own behind.
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            {source.name, link.name} | ({victim.name} if victim.exists() else set())
        )


@posix_only
def test_batch_refuses_a_partial_that_is_not_a_regular_file(tmp_path: Path) -> None:
    """A FIFO planted at OUT.jsonl.partial is refused by name rather than written into."""
    source = _input(tmp_path, 5)
    out = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    os.mkfifo(partial)
    result = run("batch", str(source), "-o", str(out))
    assert result.returncode == 1, result.stderr
    assert f"levelcare: {partial} is not a regular file" in result.stderr
    assert not out.exists()


# --- resume checks every kept record -------------------------------------------------------


def _stopped_run(tmp_path: Path, source: Path, out: Path, workers: str = "1") -> Path:
    """A run stopped by SIGTERM once its first records are in the partial file."""
    partial = Path(f"{out}.partial")
    process = subprocess.Popen(
        levelcare_cmd("batch", str(source), "-o", str(out), "--workers", workers),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + TIMEOUT
    while not (partial.exists() and partial.stat().st_size > 0):
        assert process.poll() is None, "the run ended before it could be stopped"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM
    assert not out.exists()
    return partial


def _edit_level(line: bytes) -> bytes:
    """The same record with another level: what a hand edit or a corrupted disk leaves."""
    record = json.loads(line)
    record["level"] = "outpatient" if record["level"] != "outpatient" else "iop"
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


@pytest.mark.parametrize("workers", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_resume_refuses_a_kept_record_whose_level_was_edited(tmp_path: Path, workers: str) -> None:
    """Every kept record is decided again and compared byte for byte; an edited one stops the run, naming it."""
    source = _input(tmp_path, 3000)
    whole = tmp_path / "whole.jsonl"
    assert run("batch", str(source), "-o", str(whole)).returncode == 0
    out = tmp_path / "out.jsonl"
    partial = _stopped_run(tmp_path, source, out, workers)
    kept = partial.read_bytes().splitlines(keepends=True)
    assert len(kept) > 4
    # Two records edited: the message names the first, and counts both.
    tampered = b"".join([kept[0], _edit_level(kept[1]), kept[2], _edit_level(kept[3]), *kept[4:]])
    assert len(tampered.splitlines()) == len(kept)
    partial.write_bytes(tampered)
    refused = run("batch", str(source), "-o", str(out), "--resume", "--workers", workers)
    assert refused.returncode == 1, refused.stderr
    assert f"levelcare: {partial}, record 2 does not answer line 2 of {source}" in refused.stderr
    assert f"2 of its {len(kept)} records differ" in refused.stderr
    assert "Traceback" not in refused.stderr
    # Nothing was written: the file stays as it was, for a person to look at.
    assert not out.exists()
    assert partial.read_bytes() == tampered
    # Without the edit, the same resume finishes the run as one uninterrupted run would have.
    partial.write_bytes(b"".join(kept))
    resumed = run("batch", str(source), "-o", str(out), "--resume", "--workers", workers)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {partial}: {len(kept)} records kept" in resumed.stderr
    assert out.read_bytes() == whole.read_bytes()
    assert not partial.exists()


def test_resume_refuses_a_partial_holding_more_records_than_the_input_gives(tmp_path: Path) -> None:
    """Kept records past the input's last line answer no line: refused, counted, the file kept."""
    source = _input(tmp_path, 10)
    out = tmp_path / "out.jsonl"
    whole = tmp_path / "whole.jsonl"
    assert run("batch", str(source), "-o", str(whole)).returncode == 0
    records = whole.read_bytes().splitlines(keepends=True)[:-1]  # without the closing record
    partial = Path(f"{out}.partial")
    partial.write_bytes(b"".join(records))
    shorter = tmp_path / "short.jsonl"
    shorter.write_bytes(b"".join(source.read_bytes().splitlines(keepends=True)[:7]))
    refused = run("batch", str(shorter), "-o", str(out), "--resume")
    assert refused.returncode == 1, refused.stderr
    assert f"levelcare: {partial}, record 8 answers no line of {shorter}" in refused.stderr
    assert "3 of its 10 records differ" in refused.stderr
    assert partial.read_bytes() == b"".join(records)


def test_resume_drops_the_closing_record_of_a_run_stopped_before_its_rename(tmp_path: Path) -> None:
    """A partial file that already ends with the closing record is finished, not refused."""
    source = _input(tmp_path, 10)
    out = tmp_path / "out.jsonl"
    whole = tmp_path / "whole.jsonl"
    assert run("batch", str(source), "-o", str(whole)).returncode == 0
    Path(f"{out}.partial").write_bytes(whole.read_bytes())
    resumed = run("batch", str(source), "-o", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes() == whole.read_bytes()


# --- workers end with their parent ---------------------------------------------------------


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # The command name, in parentheses, may hold spaces: fields follow the last ')'.
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _is_worker(pid: int) -> bool:
    """Whether ``pid`` is a process multiprocessing spawned to run work (not its resource tracker)."""
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds ``pid`` has used, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _running(pid: int) -> bool:
    """Whether ``pid`` still exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_workers_end_within_seconds_when_the_parent_is_killed(tmp_path: Path) -> None:
    """After SIGKILL of the batch process, its worker processes are gone within a few seconds, not after their work."""
    # Lines slow to answer (every misspelt fact gets its suggestions), so that the
    # chunks already handed to the workers hold many seconds of work.
    source = tmp_path / "in.jsonl"
    slow = json.dumps({f"harm_rsk_{index}_xx": "none" for index in range(10)})
    source.write_text((slow + "\n") * 2500)
    out = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        levelcare_cmd("batch", str(source), "-o", str(out), "--workers", "2", "--no-progress"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        # Killed once both workers are deciding (each has spent CPU time on its chunks).
        while True:
            assert process.poll() is None, "the run ended before its parent could be killed"
            assert time.monotonic() < deadline
            busy = [pid for pid in _children(process.pid) if _is_worker(pid) and _cpu_seconds(pid) >= 0.5]
            if len(busy) >= 2:
                break
            time.sleep(0.05)
        workers = _children(process.pid)
        process.kill()
        process.wait(timeout=TIMEOUT)
        deadline = time.monotonic() + 5
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in workers if _running(pid)]
    finally:
        if process.poll() is None:
            process.kill()
    for pid in left:  # clean up before failing, so that nothing computes on after the test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} still running 5 s after their parent was killed"


@pytest.mark.skipif(sys.platform == "win32", reason="os.getppid as POSIX has it")
def test_a_worker_ends_once_its_parent_is_no_longer_its_parent() -> None:
    """The portable watch (for systems without prctl): a process told another parent ends on its own, promptly."""
    from levelcare._batch import _workers as _batch

    code = (
        "import os, time\n"
        "from levelcare._batch import _workers as _batch\n"
        "_batch._watch_parent(os.getppid() + 1_000_000, 0.05)\n"
        "time.sleep(60)\n"
    )
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=TIMEOUT, check=False)
    assert done.returncode == _batch.ORPHANED, done.stderr
    assert time.monotonic() - start < 30
