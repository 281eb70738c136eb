"""Deciding chunks of input lines, in this process or in worker processes, in input order.

The parent process reads raw chunks of whole lines and writes the bytes that come
back; workers split, parse, validate, decide and encode. A worker writes each
chunk's records to a file of its own in a folder of the pool's on the memory file
system (``/dev/shm``; the folder and its files are this user's only), which the
parent reads and removes: the records of a run are most of its bytes, and the
pool's pipe would copy them three times more. Where there is no such folder, or a
file cannot be written whole (a full ``/dev/shm``), the records go through the pipe.
The pool removes its folder when it ends, and the folders of pools whose process
is gone when one starts.

Each worker process builds its own engine (durable's C core has no locks and its
state must never be shared between processes) and ends with its parent.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import multiprocessing
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from .._engine import Engine
from .._rulebase import default_location, load
from ._lines import LineResult, decide_line
from ._reading import Chunk, split_chunk
from ._records import RecordWriter

#: Chunks in flight per worker: enough to keep the workers busy, few enough that
#: memory stays bounded whatever the input's length.
_IN_FLIGHT_PER_WORKER = 3


class ChunkResult(NamedTuple):
    """The records of one chunk, encoded, and what the summary needs of them.

    Only counts travel back from a worker, and the lines that were invalid (whose
    problems are reported): the parent process adds a few numbers per chunk and
    copies the bytes to the output.
    """

    output: bytes
    #: Input lines in the chunk, blank ones included.
    lines: int
    blank: int
    #: Decided records by (status, level or None, emergency).
    decided: dict[tuple[str, str | None, bool], int]
    invalid: tuple[LineResult, ...]


def decide_chunk(engine: Engine, writer: RecordWriter, chunk: Chunk) -> ChunkResult:
    """Split a chunk into lines, decide each and encode its records, as one block of bytes."""
    first, pieces = chunk
    texts: list[str] = []
    decided: collections.Counter[tuple[str, str | None, bool]] = collections.Counter()
    invalid: list[LineResult] = []
    blank = lines = 0
    for number, raw in split_chunk(first, pieces):
        lines += 1
        if raw is None:
            blank += 1
            continue
        text, result = decide_line(engine, number, raw, writer)
        texts.append(text)
        if result.problems:
            invalid.append(result)
        else:
            decided[result.status or "", result.level, result.emergency] += 1
    texts.append("")  # every record ends with a newline
    return ChunkResult("\n".join(texts).encode("utf-8"), lines, blank, dict(decided), tuple(invalid))


# Each worker process builds its own engine: durable's C core has no locks and its
# state must never be shared between processes. The engines are built on first use,
# by whether the parent found the rule base unverified (the pool starts before the
# parent has checked it).
_worker_engines: dict[bool, Engine] = {}
_worker_rules: str | None = None
_worker_writer = RecordWriter()
_worker_parent: int | None = None
_worker_spill: str | None = None
#: prctl(2) option: the signal a process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1
#: How often a worker looks whether its parent is still there, in seconds.
_PARENT_POLL = 0.25
#: The exit status of a worker that ends because its parent went away.
ORPHANED = 3


def _start_worker(rules: str | None, parent: int | None = None, spill: str | None = None) -> None:
    global _worker_rules, _worker_parent, _worker_spill
    _worker_spill = spill
    # Ctrl-C reaches every process of the terminal's group: the parent stops the
    # run and ends the workers, which must not stop on their own (with a traceback).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        _worker_parent = parent
        end_with_parent(parent)
    _worker_rules = rules
    # Built now, while the parent checks the rule base, rather than at the first chunk.
    _worker_engine(unverified=False)


def _worker_engine(*, unverified: bool) -> Engine:
    engine = _worker_engines.get(unverified)
    if engine is None:
        rules = _worker_rules
        if unverified:
            # The parent checked the rule base; the workers' records say what it found.
            engine = Engine(load(default_location() if rules is None else rules).as_unverified())
        else:
            engine = Engine.default() if rules is None else Engine.from_path(rules)
        _worker_engines[unverified] = engine
    return engine


def end_with_parent(parent: int, *, interval: float = _PARENT_POLL) -> None:
    """End this process soon after process ``parent`` ends (a parent killed outright, say).

    On Linux the kernel sends SIGKILL the moment the parent dies (``prctl
    PR_SET_PDEATHSIG``). Everywhere, a daemon thread also looks every ``interval``
    seconds whether the parent is still this process's parent, since a process whose
    parent dies is handed to another one; and the parent may have died before this
    ran at all. No work of a worker is worth finishing once nobody reads it.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(ORPHANED)
    threading.Thread(target=_watch_parent, args=(parent, interval), name="levelcare-parent", daemon=True).start()


def _watch_parent(parent: int, interval: float) -> None:
    while True:
        time.sleep(interval)
        if os.getppid() != parent:
            os._exit(ORPHANED)


@contextlib.contextmanager
def _without_sigint() -> Iterator[None]:
    """SIGINT ignored while worker processes start, so that they start ignoring it.

    An ignored signal stays ignored in a process started from this one, and Python
    then installs no KeyboardInterrupt handler: a Ctrl-C sent to the whole process
    group stops only this process, which ends the workers, even before their
    initializer has run.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


#: A chunk's result as a worker sends it: its records (``output``) left empty, with
#: the name and size of the file that holds them; or whole, with ``None`` and 0.
_Shared = tuple[ChunkResult, str | None, int]
#: Where the pools' folders are made: a memory file system (Linux).
_SPILL_ROOT = "/dev/shm"
_SPILL_PREFIX = "levelcare-batch-"
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


def _decide_chunk(chunk: Chunk, unverified: bool) -> _Shared:
    if _worker_parent is not None and os.getppid() != _worker_parent:
        os._exit(ORPHANED)  # between chunks too: the parent went away since the last
    return _shared(decide_chunk(_worker_engine(unverified=unverified), _worker_writer, chunk), _worker_spill)


def _shared(result: ChunkResult, folder: str | None) -> _Shared:
    """``result`` with its records moved into a new file in ``folder``; unchanged when that cannot be done."""
    size = len(result.output)
    if folder is None or not size:
        return result, None, 0
    name = secrets.token_hex(8)
    path = os.path.join(folder, name)
    try:
        fd = os.open(path, _CREATE, 0o600)
    except OSError:
        return result, None, 0
    try:
        view = memoryview(result.output)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:  # a full memory file system: the records go through the pipe
        with contextlib.suppress(OSError):
            os.unlink(path)
        return result, None, 0
    finally:
        os.close(fd)
    return result._replace(output=b""), name, size


def _taken(shared: _Shared, folder: str | None) -> ChunkResult:
    """The result a worker sent, its records read back from their file, which is then removed.

    Raises:
        OSError: the file cannot be read whole.
    """
    result, name, size = shared
    if name is None or folder is None:
        return result
    path = os.path.join(folder, name)
    fd = os.open(path, _OPEN)
    try:
        os.unlink(path)
        with open(fd, "rb", buffering=0, closefd=False) as stream:
            output = stream.readall()
    finally:
        os.close(fd)
    if len(output) != size:
        msg = f"the records of a batch worker were cut short: {len(output)} of {size} bytes"
        raise OSError(msg)
    return result._replace(output=output)


def _spill_folder() -> str | None:
    """A new folder of this user's only for the workers' records, or ``None`` where none can be made."""
    _remove_stale_folders()
    try:
        return tempfile.mkdtemp(prefix=f"{_SPILL_PREFIX}{os.getpid()}-", dir=_SPILL_ROOT)
    except OSError:
        return None


def _remove_stale_folders() -> None:
    """Remove this user's pool folders whose process is gone (a run killed outright, say)."""
    try:
        entries = list(os.scandir(_SPILL_ROOT))
    except OSError:
        return
    for entry in entries:
        pid = entry.name.removeprefix(_SPILL_PREFIX).partition("-")[0]
        if not entry.name.startswith(_SPILL_PREFIX) or not pid.isdigit():
            continue
        with contextlib.suppress(OSError):
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            if _running(int(pid)):
                continue
            shutil.rmtree(entry.path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkerPool:
    """Worker processes that decide chunks, started before they are needed.

    Starting them takes a Python start-up and an engine each; a run starts the
    pool first and checks the rule base meanwhile. Use as a context manager: the
    workers end with it.

    Args:
        rules: The rule base folder the workers load (``None``: shipped).
        workers: How many processes.
    """

    def __init__(self, rules: str | None, workers: int) -> None:
        # Spawned workers start clean: a forked child would inherit this process's
        # durable state and any lock another thread held at the moment of the fork.
        context = multiprocessing.get_context("spawn")
        self.workers = workers
        self._pending: collections.deque[Any] = collections.deque()
        #: Results whose records were read back from their file, by file name.
        self._taken: dict[str, ChunkResult | Exception] = {}
        #: Where the workers write their records (None: through the pool's pipe).
        self._spill = _spill_folder()
        with _without_sigint():
            self._pool = context.Pool(workers, initializer=_start_worker, initargs=(rules, os.getpid(), self._spill))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the workers now (work in flight is dropped, and the files of its records removed)."""
        self._pool.terminate()
        self._pool.join()
        self._pending.clear()
        self._taken.clear()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)

    def decide(self, chunks: Iterable[Chunk], *, unverified: bool) -> Iterator[ChunkResult]:
        """Decide ``chunks`` in the workers, yielding their results in input order."""
        # apply_async with a fixed window rather than imap: imap's feeder thread reads
        # ahead without limit, and so would hold an arbitrarily long input in memory.
        window = self.workers * _IN_FLIGHT_PER_WORKER
        pending = self._pending
        for chunk in chunks:
            pending.append(self._pool.apply_async(_decide_chunk, (chunk, unverified), callback=self._take))
            if len(pending) >= window:
                yield self._next()
        while pending:
            yield self._next()

    def _take(self, shared: _Shared) -> None:
        # Called in the pool's result thread, which no signal interrupts (Python runs
        # signal handlers in the main thread): each file is read and removed whole,
        # never left half-way by an interrupted run. Nothing may escape from here, or
        # the pool would wait for the result forever.
        name = shared[1]
        if name is None:
            return
        try:
            self._taken[name] = _taken(shared, self._spill)
        except Exception as error:  # noqa: BLE001 - raised in the main thread by _next
            self._taken[name] = error

    def _next(self) -> ChunkResult:
        shared: _Shared = self._pending.popleft().get()  # _take has run by then
        result, name, _ = shared
        if name is None:
            return result
        taken = self._taken.pop(name)
        if isinstance(taken, Exception):
            raise taken
        return taken


def decide_chunks(
    chunks: Iterable[Chunk],
    engine: Engine,
    *,
    rules: str | None = None,
    workers: int = 1,
    pool: WorkerPool | None = None,
) -> Iterator[ChunkResult]:
    """Decide chunks of lines, yielding their results in input order.

    The output is the same bytes for any number of workers: each chunk is decided
    on its own, and its records depend only on its lines and their numbers.

    Args:
        chunks: Chunks as :func:`read_chunks` gives them.
        engine: The engine used in this process (``workers == 1``); its rule base
            says whether the records are marked unverified.
        rules: The rule base folder the worker processes load (``None``: shipped).
        workers: Processes to decide in; 1 decides in this process.
        pool: Workers already started (then ``rules`` and ``workers`` are theirs).
    """
    unverified = engine.rulebase.unverified
    if pool is not None:
        yield from pool.decide(chunks, unverified=unverified)
        return
    if workers <= 1:
        writer = RecordWriter()
        for chunk in chunks:
            yield decide_chunk(engine, writer, chunk)
        return
    with WorkerPool(rules, workers) as started:
        yield from started.decide(chunks, unverified=unverified)
