"""Deciding chunks of input lines, in this process or in worker processes, in input order.

The parent process reads raw chunks of whole lines and writes the bytes that come
back; workers split, parse, validate, decide and encode. A worker's records come
back in a block of shared memory (readable by this user only), which the parent
copies out and removes: the records of a run are most of its bytes, and a pipe would
copy them three times more. Every block's name starts with the pool's own random
prefix, so that the pool removes the blocks of work dropped at its end too.

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
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from multiprocessing import shared_memory
from typing import Any, NamedTuple, cast

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
_worker_blocks = ""
#: prctl(2) option: the signal a process gets when its parent dies (Linux).
_PR_SET_PDEATHSIG = 1
#: How often a worker looks whether its parent is still there, in seconds.
_PARENT_POLL = 0.25
#: The exit status of a worker that ends because its parent went away.
ORPHANED = 3


def _start_worker(rules: str | None, parent: int | None = None, blocks: str = "") -> None:
    global _worker_rules, _worker_parent, _worker_blocks
    _worker_blocks = blocks
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


#: A chunk's result as a worker sends it: its records (``output``) left empty, and
#: the name and size of the shared memory block that holds them (``None``, 0: none).
_Shared = tuple[ChunkResult, str | None, int]


def _decide_chunk(chunk: Chunk, unverified: bool) -> _Shared:
    if _worker_parent is not None and os.getppid() != _worker_parent:
        os._exit(ORPHANED)  # between chunks too: the parent went away since the last
    return _shared(decide_chunk(_worker_engine(unverified=unverified), _worker_writer, chunk))


def _shared(result: ChunkResult) -> _Shared:
    """``result`` with its records moved into a new shared memory block, for the parent to take."""
    size = len(result.output)
    if not size:
        return result, None, 0
    block = _new_block(size)
    try:
        cast(memoryview, block.buf)[:size] = result.output
    finally:
        block.close()
    return result._replace(output=b""), block.name, size


def _new_block(size: int) -> shared_memory.SharedMemory:
    for _ in range(8):
        with contextlib.suppress(FileExistsError):  # a name already taken, by chance or not
            return shared_memory.SharedMemory(_worker_blocks + secrets.token_hex(8), create=True, size=size)
    msg = "no free name for a shared memory block"
    raise OSError(msg)


#: Where POSIX shared memory blocks are listed (Linux).
_SHARED_MEMORY = "/dev/shm"


def _remove_blocks(prefix: str) -> None:
    """Remove every shared memory block whose name starts with ``prefix``."""
    try:
        names = [name for name in os.listdir(_SHARED_MEMORY) if name.startswith(prefix)]
    except OSError:
        return  # not listed here: blocks left by dropped work go when the run ends
    for name in names:
        with contextlib.suppress(OSError):
            block = shared_memory.SharedMemory(name)
            block.close()
            block.unlink()


def _taken(shared: _Shared) -> ChunkResult:
    """The result a worker sent, its records copied out of their block, which is then removed."""
    result, name, size = shared
    if name is None:
        return result
    block = shared_memory.SharedMemory(name=name)
    try:
        output = bytes(cast(memoryview, block.buf)[:size])
    finally:
        block.close()
        block.unlink()
    return result._replace(output=output)


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
        #: Results whose records were copied out of their block, by block name.
        self._taken: dict[str, ChunkResult | Exception] = {}
        #: The start of the name of every shared memory block of this pool's workers.
        self._blocks = f"levelcare-{os.getpid()}-{secrets.token_hex(6)}-"
        with _without_sigint():
            self._pool = context.Pool(workers, initializer=_start_worker, initargs=(rules, os.getpid(), self._blocks))

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the workers now (work in flight is dropped, and the blocks of its records removed)."""
        self._pool.terminate()
        self._pool.join()
        self._pending.clear()
        self._taken.clear()
        _remove_blocks(self._blocks)

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
        # signal handlers in the main thread): each block is copied out and removed
        # whole, never left half-way by an interrupted run. Nothing may escape from
        # here, or the pool would wait for the result forever.
        name = shared[1]
        if name is None:
            return
        try:
            self._taken[name] = _taken(shared)
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
