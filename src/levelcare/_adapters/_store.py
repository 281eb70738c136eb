"""The CDS Hooks service's state in one SQLite file: issued cards, seen token ids, feedback.

Worker processes share the file, and it outlives restarts. It runs in WAL mode, so
readers never wait for the writer. Writers take turns on an exclusive ``flock`` of a
lock file beside the database (``NAME-lock``) before they begin: a writer waiting
there tries again after tens of microseconds, where SQLite's own busy handler
would sleep for milliseconds at a time, and gives up after the busy timeout; the
busy timeout also covers writers that do not take the lock (another tool opening
the file). Each thread of each process opens its own connection (SQLite
connections must not cross threads, nor a fork).

Every write is one short transaction; the token-id check is an insert into a
primary key, which SQLite makes atomic across processes: of two requests replaying
one token, exactly one insert succeeds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import stat
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..exceptions import LevelCareError

#: The schema version, kept in SQLite's ``user_version``.
SCHEMA_VERSION = 1
#: Milliseconds a writer waits for another before the request fails.
BUSY_TIMEOUT_MS = 5_000
#: Seconds between purges of expired rows (run by whichever write comes first).
PURGE_INTERVAL = 60.0
#: Seconds between checkpoints of the write-ahead log into the database, made by a
#: thread of each process so that no request waits for the disk's flush.
CHECKPOINT_INTERVAL = 1.0
#: Pages of write-ahead log after which a commit checkpoints itself: only when the
#: checkpoint thread falls far behind (SQLite's default is 1,000).
_AUTOCHECKPOINT_PAGES = 20_000
_DAY = 86_400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    uuid TEXT PRIMARY KEY,
    issued_at REAL NOT NULL,
    indicated TEXT,
    rulebase_sha256 TEXT NOT NULL,
    facts_sha256 TEXT,
    suggestion TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cards_issued_at ON cards (issued_at);
CREATE TABLE IF NOT EXISTS tokens (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires REAL NOT NULL,
    PRIMARY KEY (issuer, jti)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tokens_expires ON tokens (expires);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    card TEXT NOT NULL,
    received_at REAL NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_received_at ON feedback (received_at);
"""


@attrs.frozen(kw_only=True)
class IssuedCard:
    """What the service remembers of a card it issued, to link feedback to the decision.

    Attributes:
        uuid: The card's uuid.
        issued_at: When it was issued (seconds since the epoch).
        indicated: The indicated level's id; None when undecided or unreadable.
        rulebase_sha256: The rule base that decided.
        facts_sha256: The digest of the facts decided on; None when the assessment
            could not be read.
        suggestion: The uuid of the card's suggestion, if it offers one.
    """

    uuid: str
    issued_at: float
    indicated: str | None
    rulebase_sha256: str
    facts_sha256: str | None
    suggestion: str | None


def _checkpoints(path: Path, stop: threading.Event, interval: float) -> None:
    """Checkpoint the write-ahead log every ``interval`` seconds until ``stop`` is set.

    A passive checkpoint never blocks a writer; one that cannot run now (another
    process checkpointing) is simply tried again next time.
    """
    connection: sqlite3.Connection | None = None
    try:
        while not stop.wait(interval):
            try:
                if connection is None:
                    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                continue
    finally:
        if connection is not None:
            connection.close()


def _close_all(
    connections: list[sqlite3.Connection], lock: threading.Lock, lock_files: dict[int, int], stop: threading.Event
) -> None:
    """Close ``connections`` and empty the list; close the lock file this process opened; end the checkpoints."""
    stop.set()
    with lock:
        closing = list(connections)
        connections.clear()
        descriptor = lock_files.pop(os.getpid(), None)
    for connection in closing:
        with contextlib.suppress(sqlite3.Error):
            connection.close()
    if descriptor is not None:
        with contextlib.suppress(OSError):
            os.close(descriptor)


def _check_path(path: Path) -> None:
    """Refuse a database path that is a symbolic link, not a file, or readable by others."""
    for candidate in (path, *(path.with_name(path.name + s) for s in ("-wal", "-shm", "-journal", "-lock"))):
        try:
            found = os.lstat(candidate)
        except FileNotFoundError:
            continue
        except OSError as error:
            msg = f"{candidate}: cannot inspect the service database: {error.strerror or error}"
            raise LevelCareError(msg) from None
        if stat.S_ISLNK(found.st_mode):
            msg = f"{candidate}: the service database must not be a symbolic link; name the file itself"
            raise LevelCareError(msg)
        if not stat.S_ISREG(found.st_mode):
            msg = f"{candidate}: the service database must be a regular file"
            raise LevelCareError(msg)
        if candidate == path and found.st_mode & 0o077:
            msg = (
                f"{candidate}: the service database is open to other users (mode {stat.S_IMODE(found.st_mode):o}); "
                f"it holds feedback on patients' care: chmod 600 it"
            )
            raise LevelCareError(msg)
        if candidate.name.endswith("-lock") and found.st_mode & 0o077:
            # Whoever can open the lock file can hold it and stop every write.
            msg = (
                f"{candidate}: the service database's lock file is open to other users "
                f"(mode {stat.S_IMODE(found.st_mode):o}): chmod 600 it"
            )
            raise LevelCareError(msg)


def _create(path: Path) -> None:
    """Create the file for the owner only, never through a link (O_EXCL, O_NOFOLLOW)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        os.close(os.open(path, flags, 0o600))
    except FileExistsError:
        pass
    except OSError as error:
        msg = f"{path}: cannot create the service database: {error.strerror or error}"
        raise LevelCareError(msg) from None


def _lock(descriptor: int, timeout: float) -> None:
    """An exclusive flock of ``descriptor``, waited for at most ``timeout`` seconds.

    Tried again after pauses that start at 50 microseconds and grow to a millisecond
    (a write holds the lock for tens of microseconds), so that a process that holds
    the lock and never lets go delays each write by the timeout, not for ever.

    Raises:
        sqlite3.OperationalError: the lock was not free within ``timeout``.
    """
    pause, deadline = 0.00005, time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                msg = f"the service database's lock file stayed held for {timeout:g} s"
                raise sqlite3.OperationalError(msg) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.001)
        else:
            return


def _open_lock(path: Path) -> int:
    """The writers' lock file beside the database, opened (created for the owner only), never through a link."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o600)
    except OSError as error:
        msg = f"{path}: cannot open the service database's lock file: {error.strerror or error}"
        raise LevelCareError(msg) from None


class Store:
    """One SQLite database of the service's state.

    Args:
        path: The database file, created (mode 0600) when absent. None keeps the
            state in a private temporary file removed with the store: it then lasts
            only as long as the application and no other process sees it.
        retention_days: Cards and feedback older than this are purged.

    Raises:
        LevelCareError: the path is a link or not a file, is open to other users,
            cannot be created, or holds something other than this database.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, retention_days: float) -> None:
        if path is None:
            folder = tempfile.mkdtemp(prefix="levelcare-service-")
            self._finalizer: weakref.finalize[Any, Store] | None = weakref.finalize(
                self, shutil.rmtree, folder, ignore_errors=True
            )
            self.path = Path(folder) / "state.sqlite3"
        else:
            self._finalizer = None
            self.path = Path(path)
        self.retention = float(retention_days) * _DAY
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # The lock file's descriptor, by process: a forked child opens its own (a
        # flock is shared by every descriptor copied from the same open).
        self._lock_files: dict[int, int] = {}
        # One writer at a time among this process's threads; the flock orders processes.
        self._write_lock = threading.Lock()
        # The checkpoint thread of each process that wrote, until the store is closed.
        self._checkpointers: dict[int, threading.Thread] = {}
        self._stop = threading.Event()
        # A store dropped without close() still closes its connections (Python 3.13
        # and later warn of every connection left open when it is collected).
        self._closer = weakref.finalize(self, _close_all, self._connections, self._lock, self._lock_files, self._stop)
        self._next_purge = 0.0
        _check_path(self.path)
        _create(self.path)
        _check_path(self.path)
        try:
            connection = self._connection()
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                msg = f"{self.path}: a service database of schema {version}; this levelcare reads {SCHEMA_VERSION}"
                raise LevelCareError(msg)
            connection.execute("PRAGMA journal_mode=WAL")
            with self._transaction(connection):
                connection.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        except sqlite3.Error as error:
            self.close()
            msg = f"{self.path}: not a levelcare service database ({type(error).__name__}: {str(error)[:40]})"
            raise LevelCareError(msg) from None
        self.purge()

    # --- connections ---------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        connection: sqlite3.Connection | None = getattr(local, "connection", None)
        # A forked child must not use its parent's connection.
        if connection is None or local.pid != os.getpid():
            # Autocommit: each statement is its own transaction unless one is begun.
            # Each thread has a connection of its own and only uses that; any thread may
            # close them all when the store is closed or collected.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Listed at once, so that close() closes it even when what follows fails.
            with self._lock:
                self._connections.append(connection)
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # WAL with NORMAL survives a killed process; only a power cut can lose the last commits.
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
            local.connection, local.pid = connection, os.getpid()
        return connection

    def _checkpointer(self) -> None:
        """Start this process's checkpoint thread, once."""
        pid = os.getpid()
        with self._lock:
            if pid in self._checkpointers or self._stop.is_set():
                return
            thread = threading.Thread(
                target=_checkpoints,
                args=(self.path, self._stop, CHECKPOINT_INTERVAL),
                name="levelcare-checkpoints",
                daemon=True,
            )
            self._checkpointers[pid] = thread
        thread.start()

    @contextlib.contextmanager
    def _transaction(self, connection: sqlite3.Connection) -> Iterator[None]:
        try:
            yield
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def _lock_file(self) -> int:
        pid = os.getpid()
        with self._lock:
            descriptor = self._lock_files.get(pid)
            if descriptor is None:
                descriptor = self._lock_files[pid] = _open_lock(self.path.with_name(self.path.name + "-lock"))
        return descriptor

    @contextlib.contextmanager
    def _turn(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, while this writer holds the writers' lock."""
        connection = self._connection()
        descriptor = self._lock_file()
        self._checkpointer()
        with self._write_lock:
            _lock(descriptor, BUSY_TIMEOUT_MS / 1000)
            try:
                yield connection
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction of several statements, committed at the end, all or nothing."""
        with self._turn() as connection, self._transaction(connection):
            connection.execute("BEGIN IMMEDIATE")
            yield connection
            connection.execute("COMMIT")

    def _write(self, statement: str, parameters: tuple[Any, ...]) -> None:
        """One statement, its own transaction (SQLite's autocommit), in this writer's turn."""
        with self._turn() as connection:
            connection.execute(statement, parameters)

    def close(self) -> None:
        """Close every connection this store opened (in this process)."""
        _close_all(self._connections, self._lock, self._lock_files, self._stop)
        thread = self._checkpointers.pop(os.getpid(), None)
        if thread is not None:
            thread.join(CHECKPOINT_INTERVAL + 5)
        self._local = threading.local()
        if self._finalizer is not None:
            self._finalizer()

    # --- retention -----------------------------------------------------------------

    def purge(self, now: float | None = None) -> tuple[int, int, int]:
        """Delete token ids past their expiry, and cards and feedback past the retention.

        Returns:
            How many token ids, cards and feedback records were deleted.
        """
        now = time.time() if now is None else now
        self._next_purge = now + PURGE_INTERVAL
        oldest = now - self.retention
        with self._writing() as connection:
            tokens = connection.execute("DELETE FROM tokens WHERE expires < ?", (now,)).rowcount
            cards = connection.execute("DELETE FROM cards WHERE issued_at < ?", (oldest,)).rowcount
            feedback = connection.execute("DELETE FROM feedback WHERE received_at < ?", (oldest,)).rowcount
        return tokens, cards, feedback

    def _maybe_purge(self, now: float) -> None:
        if now >= self._next_purge:
            self.purge(now)

    # --- token ids -----------------------------------------------------------------

    def claim_token(self, issuer: str, jti: str, *, expires: float) -> bool:
        """Record a token id until ``expires``; False if it was seen before (a replay)."""
        now = time.time()
        self._maybe_purge(now)
        try:
            self._write("INSERT INTO tokens (issuer, jti, expires) VALUES (?, ?, ?)", (issuer, jti, expires))
        except sqlite3.IntegrityError:
            return False
        return True

    # --- cards ---------------------------------------------------------------------

    def add_card(self, card: IssuedCard) -> None:
        """Remember an issued card."""
        self._maybe_purge(card.issued_at)
        self._write(
            "INSERT INTO cards (uuid, issued_at, indicated, rulebase_sha256, facts_sha256, suggestion) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (card.uuid, card.issued_at, card.indicated, card.rulebase_sha256, card.facts_sha256, card.suggestion),
        )

    def card(self, uuid: str) -> IssuedCard | None:
        """The card issued with ``uuid``, if it is remembered."""
        row = (
            self._connection()
            .execute(
                "SELECT uuid, issued_at, indicated, rulebase_sha256, facts_sha256, suggestion FROM cards WHERE uuid = ?",
                (uuid,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return IssuedCard(
            uuid=row[0],
            issued_at=row[1],
            indicated=row[2],
            rulebase_sha256=row[3],
            facts_sha256=row[4],
            suggestion=row[5],
        )

    # --- feedback ------------------------------------------------------------------

    def add_feedback(
        self, records: Sequence[Mapping[str, Any]], *, export: Callable[[Sequence[Mapping[str, Any]]], None]
    ) -> None:
        """Store feedback records, all or none, calling ``export`` before the commit.

        ``export`` runs while this transaction holds the database's write lock, so
        exports of concurrent requests, in any worker process, never interleave; if
        it raises, nothing is stored.
        """
        now = time.time()
        self._maybe_purge(now)
        rows = [(str(r["card"]), now, json.dumps(r, sort_keys=True, ensure_ascii=False)) for r in records]
        with self._writing() as connection:
            connection.executemany("INSERT INTO feedback (card, received_at, record) VALUES (?, ?, ?)", rows)
            export(records)

    def feedback(self, *, card: str | None = None) -> list[dict[str, Any]]:
        """The stored feedback records, oldest first (of one card, if given)."""
        query = "SELECT record FROM feedback" + (" WHERE card = ?" if card is not None else "") + " ORDER BY id"
        rows = self._connection().execute(query, () if card is None else (card,)).fetchall()
        return [dict(json.loads(row[0])) for row in rows]
