"""Where batch records go: standard output, or a file written crash-safe and resumed.

Signals are held while a block of records is written, so output always ends at a
record boundary. A file is written as ``OUT.partial`` beside it and renamed once
complete; neither name is ever followed as a symbolic link.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .._model import installed_version
from ..exceptions import LevelCareError
from ._lines import TRAILER


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; raised between two writes of output, never during one."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.name = signal.Signals(signum).name
        self.status = 128 + signum


class Signals:
    """While a batch runs, SIGINT and SIGTERM stop it cleanly, and only between writes.

    A signal that arrives while a block of output is being written is held until
    the block is complete, so output ends at a record boundary.
    """

    def __init__(self) -> None:
        self._writing = False
        self._pending: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Signals:
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
        raise Interrupted(signum)

    @contextlib.contextmanager
    def writing(self, *, last: bool = False) -> Iterator[None]:
        """Hold signals while writing; then act on one that came, unless this was the last write."""
        self._writing = True
        try:
            yield
        finally:
            self._writing = False
        if self._pending is not None and not last:
            raise Interrupted(self._pending)


class WriteError(Exception):
    """Output could not be written (a full disk, say)."""

    def __init__(self, where: str, error: OSError) -> None:
        super().__init__(f"cannot write {where}: {error.strerror or error}")
        self.error = error


class Stdout:
    """Batch output to standard output, written and flushed record block by record block."""

    where = "standard output"
    kept: str | None = None

    def __init__(self, signals: Signals) -> None:
        self._signals = signals
        self._stream = sys.stdout.buffer
        self.records = 0

    def write(self, data: bytes, records: int | None = None) -> None:
        """Write whole records; ``records`` says how many ``data`` holds (counted when not given)."""
        with self._signals.writing():
            try:
                self._stream.write(data)
                self._stream.flush()
            except BrokenPipeError:
                raise
            except OSError as error:
                raise WriteError(self.where, error) from None
            self.records += data.count(b"\n") if records is None else records

    def end(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def abandon(self) -> None:
        pass


class ResumeMismatch(LevelCareError):
    """The partial output of an earlier run is not what this run decides for the same lines."""


class Partial:
    """Batch output to ``OUT``, written as ``OUT.partial`` and renamed when complete.

    Neither name is ever followed as a symbolic link: the partial file is opened
    with ``O_NOFOLLOW`` relative to the folder, which is opened once, and a link at
    ``OUT`` is refused too. The partial file is locked while a run writes it, and
    it must still be the file this run opened when it is renamed. Every block of
    records is written whole (``committed`` counts the bytes of whole blocks), so
    an interrupted run leaves whole records only; they are kept for ``--resume``.

    With ``resume``, the records already in the file are not trusted: the run
    decides every line again, and each block of records it makes is compared byte
    for byte with the kept records before anything is appended. One that differs
    (an edit, a changed input, rules or levelcare) stops the run before it writes,
    naming the first such record and counting them all.
    """

    def __init__(self, target: Path, signals: Signals, *, resume: bool, input_name: str) -> None:
        self.target = target
        self.path = target.with_name(target.name + ".partial")
        self.where = str(self.path)
        self.kept: str | None = None
        self.replaced = False
        self._signals = signals
        self._input_name = input_name
        self._fd = self._folder = -1
        self._reader: IO[bytes] | None = None
        self.committed = self.records = self.kept_records = 0
        self._kept_end = self._checked = self._compared = self._differ = 0
        self._first: tuple[int, int | None] | None = None
        try:
            self._folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            msg = f"cannot write {self.path}: {error.strerror or error}"
            raise LevelCareError(msg) from None
        try:
            self._open(resume=resume)
        except BaseException:
            self._close()
            raise

    def _open(self, *, resume: bool) -> None:
        if _is_link(self.target.name, self._folder):
            msg = (
                f"{self.target} is a symbolic link; levelcare neither writes through one nor replaces it: "
                "remove it or give the path of the file itself"
            )
            raise LevelCareError(msg)
        self._fd, created = _open_regular(self.path, self._folder)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            msg = f"{self.path} is being written by another levelcare batch; wait for it or choose another output file"
            raise LevelCareError(msg) from None
        # Locked: the name must still lead to this file, not to one put there since.
        self._check_same()
        size = os.fstat(self._fd).st_size
        if resume:
            # Whole lines only: a run killed outright may have left half a record.
            end = _end_of_last_line(self._fd, size)
            os.ftruncate(self._fd, end)
            self._kept_end = end - _closing_record_length(self._fd, end)
            if not self._kept_end:
                os.ftruncate(self._fd, 0)
            self.committed = self._kept_end
            self.records = self._count_records(self._kept_end)
        elif size and not created:
            self.replaced = True
        if not resume:
            os.ftruncate(self._fd, 0)
        os.lseek(self._fd, self.committed, os.SEEK_SET)
        self.kept_records = self.records

    def _count_records(self, end: int) -> int:
        return sum(os.pread(self._fd, min(1 << 20, end - at), at).count(b"\n") for at in range(0, end, 1 << 20))

    def _check_same(self) -> None:
        try:
            named = os.stat(self.path.name, dir_fd=self._folder, follow_symlinks=False)
        except OSError:
            named = None
        opened = os.fstat(self._fd)
        if named is None or (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
            msg = f"{self.path} was replaced by another file while this run wrote it; nothing was renamed"
            raise LevelCareError(msg)

    # --- writing ------------------------------------------------------------

    def write(self, data: bytes, records: int | None = None) -> None:
        """Write whole records; ``records`` says how many ``data`` holds (counted when not given)."""
        with self._signals.writing():
            if self._checked < self._kept_end:
                data = self._compare(data)
                records = None  # the part after the kept records
                if not data:
                    return
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError as error:
                # Keep the whole records that were written (a full disk takes part of a block).
                whole = data.rfind(b"\n", 0, len(data) - len(view)) + 1
                self.committed += whole
                self.records += data.count(b"\n", 0, whole)
                raise WriteError(self.where, error) from None
            self.committed += len(data)
            self.records += data.count(b"\n") if records is None else records

    def _compare(self, data: bytes) -> bytes:
        """Check ``data`` against the kept records it stands for; the part after them, to append."""
        reader = self._kept_reader()
        size = min(len(data), self._kept_end - self._checked)
        if not self._differ:
            if reader.read(size) == data[:size]:
                self._checked += size
                self._compared += data.count(b"\n", 0, size)
                return self._verified(data[size:]) if self._checked >= self._kept_end else b""
            reader.seek(self._checked)
        # Record by record from here: the first that differs is named, all are counted.
        lines = data.splitlines(keepends=True)
        for index, line in enumerate(lines):
            if self._checked >= self._kept_end:
                return self._verified(b"".join(lines[index:]))
            self._compare_record(line)
        return self._verified(b"") if self._checked >= self._kept_end else b""

    def _kept_reader(self) -> IO[bytes]:
        if self._reader is None:
            self._reader = open(os.dup(self._fd), "rb")  # noqa: SIM115 - closed with the output
            self._reader.seek(self._checked)
        return self._reader

    def _compare_record(self, line: bytes | None) -> None:
        """Compare the next kept record with ``line`` (None: no line answers it)."""
        reader = self._kept_reader()
        # A record levelcare writes is far shorter than this; a longer line is none of
        # them, and is passed over without being held.
        kept = reader.readline(1 << 24)
        self._checked += len(kept)
        same = kept == line
        while kept and not kept.endswith(b"\n") and self._checked < self._kept_end:
            kept = reader.readline(1 << 24)
            self._checked += len(kept)
            same = False
        self._compared += 1
        if not same:
            self._differ += 1
            if self._first is None:
                self._first = (self._compared, None if line is None else json.loads(line).get("line"))

    def _verified(self, rest: bytes) -> bytes:
        """Every kept record was compared: refuse if any differed, or go on appending ``rest``."""
        if self._differ:
            self._refuse()
        # A closing record of a run stopped just before its rename goes.
        os.ftruncate(self._fd, self._kept_end)
        os.lseek(self._fd, self._kept_end, os.SEEK_SET)
        self._close_reader()
        return rest

    def end(self) -> None:
        """After the last record: kept records that no line answered are refused."""
        if self._checked < self._kept_end:
            with self._signals.writing():
                while self._checked < self._kept_end:
                    self._compare_record(None)
                self._refuse()

    def _refuse(self) -> None:
        assert self._first is not None
        record, number = self._first
        answer = (
            f"answers no line of {self._input_name}"
            if number is None
            else f"does not answer line {number} of {self._input_name}"
        )
        msg = (
            f"{self.path}, record {record} {answer} as this rule base and levelcare {installed_version()} "
            f"decide it ({self._differ} of its {self.kept_records} records differ): the file was edited, or "
            "the input, the rules or levelcare changed; nothing was written: remove the file or run without --resume"
        )
        raise ResumeMismatch(msg)

    def finish(self) -> None:
        # A signal now waits until the complete file has its name, and then stops
        # nothing: the run is done.
        with self._signals.writing(last=True):
            try:
                os.fsync(self._fd)
                self._check_same()
                os.replace(self.path.name, self.target.name, src_dir_fd=self._folder, dst_dir_fd=self._folder)
            except OSError as error:
                raise WriteError(str(self.target), error) from None
            finally:
                self._close_file()
        # The rename itself is durable once the folder is.
        with contextlib.suppress(OSError):
            os.fsync(self._folder)
        self._close()

    def abandon(self) -> None:
        """After a failed or interrupted run: keep whole records for --resume, or nothing."""
        if self._fd < 0:  # finished (the output has its name), or never opened
            self._close()
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, max(self.committed, self._kept_end))
        if self.committed or self._kept_end:
            self.kept = str(self.path)
        else:
            with contextlib.suppress(OSError):
                self._check_same()
                os.unlink(self.path.name, dir_fd=self._folder)
        self._close()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _close_file(self) -> None:
        self._close_reader()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _close(self) -> None:
        self._close_file()
        if self._folder >= 0:
            os.close(self._folder)
            self._folder = -1


def _is_link(name: str, folder: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _open_regular(path: Path, folder: int) -> tuple[int, bool]:
    """``path`` (in ``folder``) opened to read and write, never through a link; and whether it was created."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    created = True
    try:
        try:
            # O_EXCL: a new file, or nothing (a link, dangling or not, is never followed).
            fd = os.open(path.name, flags | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=folder)
        except FileExistsError:
            created = False
            fd = os.open(path.name, flags, dir_fd=folder)
    except OSError as error:
        if _is_link(path.name, folder):
            msg = (
                f"{path} is a symbolic link; levelcare never writes through one: "
                "remove it or choose another output file"
            )
            raise LevelCareError(msg) from None
        msg = f"cannot write {path}: {error.strerror or error}"
        raise LevelCareError(msg) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        msg = f"{path} is not a regular file; remove it or choose another output file"
        raise LevelCareError(msg)
    os.set_blocking(fd, True)
    return fd, created


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


def _closing_record_length(fd: int, end: int) -> int:
    """The length of the closing record that ends the first ``end`` bytes of ``fd``; 0 if none does.

    A record starts with ``{"_id":``, ``{"as_of":`` or ``{"error":`` (its keys are
    sorted); the closing record with ``{"batch":``.
    """
    if not end:
        return 0
    start = _end_of_last_line(fd, end - 1)
    return end - start if os.pread(fd, 9, start) == b'{"' + TRAILER.encode() + b'":' else 0
