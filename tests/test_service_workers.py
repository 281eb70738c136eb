"""How ``levelcare serve`` spreads work over its workers and keeps each answer cheap.

Each worker listens on a socket of its own (``SO_REUSEPORT``), so that long-lived
connections opened together land on every worker; a worker that dies is replaced;
answers leave in one write with Nagle's algorithm off; the database's writers take
turns on a lock file, and the write-ahead log is checkpointed off the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from levelcare import LevelCareError
from levelcare._adapters import _edge, _store, _workers
from levelcare._adapters._edge import Lingering
from test_cdshooks import free_port

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; SO_REUSEPORT as on Linux")


def children(pid: int) -> list[int]:
    """The worker processes (spawned by multiprocessing) whose parent is ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()
            spawned = b"spawn_main" in (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if fields[1] == str(pid) and spawned:
            found.append(int(stat.parent.name))
    return sorted(found)


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` has open."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(link[len("socket:[") : -1])
    return found


def connections_from(clients: list[socket.socket], pid: int) -> int:
    """How many of ``clients``' connections process ``pid`` holds (matched by port in /proc/net/tcp)."""
    ports = {client.getsockname()[1] for client in clients}
    inodes = socket_inodes(pid)
    held = 0
    for line in Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        held += remote_port in ports and fields[9] in inodes
    return held


@contextlib.contextmanager
def two_workers(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``levelcare serve --workers 2`` on 127.0.0.1: its address and its process id; stopped with SIGINT."""
    port = free_port()
    command = [sys.executable, "-m", "levelcare", "serve", "--port", str(port), "--workers", "2", "--no-auth"]
    command += ["--database", str(tmp_path / "state.sqlite3"), "--feedback", str(tmp_path / "f.jsonl")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is None and _answers(base) and len(children(process.pid)) == 2)
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)


def wait_for(condition: Any, *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# --- one socket per worker ---------------------------------------------------------------


def test_the_sockets_share_one_port_and_the_kernel_spreads_connections_over_them() -> None:
    sockets = _workers.listening_sockets("127.0.0.1", 0, 2)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1
        port = ports.pop()
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(32)]
        try:
            accepted = []
            for sock in sockets:
                sock.setblocking(False)
                count = 0
                while True:
                    try:
                        connection, _ = sock.accept()
                    except BlockingIOError:
                        break
                    connection.close()
                    count += 1
                accepted.append(count)
        finally:
            for client in clients:
                client.close()
        assert sum(accepted) == 32
        # Spread by a hash of each connection's addresses: all 32 on one socket has odds 2**-31.
        assert all(count > 0 for count in accepted), accepted
    finally:
        for sock in sockets:
            sock.close()


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LevelCareError, match=rf"cannot listen on 127\.0\.0\.1:{port}: "):
            _workers.listening_sockets("127.0.0.1", port, 2)


def test_keep_alive_connections_opened_together_reach_every_worker(tmp_path: Path) -> None:
    """An EHR's pool of connections, opened at once, is served by both workers, not by the first to wake.

    With one listening socket shared by the workers, the first worker to wake
    accepts every connection waiting, and the other worker idles while they last.
    Here the connections arrive while both workers are stopped, and one resumes
    first: it must leave the other its share.
    """
    with two_workers(tmp_path) as (base, parent):
        workers = children(parent)
        assert len(workers) == 2
        port = int(base.rsplit(":", 1)[1])
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            # The kernel completes the handshakes; nobody accepts yet.
            clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(16)]
            os.kill(workers[0], signal.SIGCONT)
            wait_for(lambda: connections_from(clients, workers[0]) > 0, timeout=30)
            time.sleep(0.5)
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        try:
            for client in clients:
                client.sendall(b"GET /cds-services HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            for client in clients:
                assert client.recv(64).startswith(b"HTTP/1.1 200 ")
            held = {pid: connections_from(clients, pid) for pid in workers}
        finally:
            for client in clients:
                client.close()
    assert sum(held.values()) == 16
    # Spread by a hash of each connection's addresses: all 16 on one worker has odds 2**-15.
    assert all(count > 0 for count in held.values()), held


def test_a_worker_that_dies_is_replaced_and_ctrl_c_ends_them_all(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (base, parent):
        first = children(parent)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        wait_for(lambda: len(children(parent)) == 2 and first[0] not in children(parent))
        replaced = children(parent)
        # The new worker listens on the dead one's socket: every new connection is answered.
        for _ in range(8):
            wait_for(lambda: _answers(base))
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in replaced), timeout=30)


def _answers(base: str) -> bool:
    try:
        return httpx.get(base + "/cds-services", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


# --- each answer in one write, sent at once ------------------------------------------------


class _Transport:
    """A transport that records what is written to it."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.writes: list[bytes] = []
        self.sock = sock
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self.sock
        return default

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return True


class _Protocol:
    lingering = False

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def client_sending(self) -> bool:
        return False


def test_an_answers_head_and_body_leave_in_one_write() -> None:
    async def scenario() -> tuple[list[bytes], list[bytes], int]:
        transport = _Transport()
        lingering = Lingering(transport, _Protocol(asyncio.get_running_loop()))  # type: ignore[arg-type]
        lingering.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
        lingering.write(b"body")
        during = list(transport.writes)
        buffered = lingering.get_write_buffer_size()
        await asyncio.sleep(0)
        return during, transport.writes, buffered

    during, after, buffered = asyncio.run(scenario())
    assert during == []
    assert buffered == len(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody")
    assert after == [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody"]


def test_closing_sends_what_is_written_first() -> None:
    async def scenario() -> tuple[list[bytes], bool]:
        transport = _Transport()
        lingering = Lingering(transport, _Protocol(asyncio.get_running_loop()))  # type: ignore[arg-type]
        lingering.write(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
        lingering.close()
        await asyncio.sleep(0)
        return transport.writes, transport.closed

    writes, closed = asyncio.run(scenario())
    assert writes == [b"HTTP/1.1 503 Service Unavailable\r\n\r\n"]
    assert closed


def test_accepted_connections_send_without_nagle_delay() -> None:
    """uvicorn's listening socket is not made with IPPROTO_TCP, so asyncio leaves Nagle on; the protocol turns it off."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname(), timeout=10) as client:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                _edge._no_delay(_Transport(accepted))  # type: ignore[arg-type]
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert client.getpeername() == listener.getsockname()


# --- the database's writers and its log ----------------------------------------------------


def test_writers_take_turns_on_a_lock_file_for_the_owner_only(tmp_path: Path) -> None:
    database = tmp_path / "state.sqlite3"
    store = _store.Store(database, retention_days=30)
    try:
        assert store.claim_token("iss", "a", expires=time.time() + 60)
        assert not store.claim_token("iss", "a", expires=time.time() + 60)
    finally:
        store.close()
    lock = tmp_path / "state.sqlite3-lock"
    assert oct(lock.stat().st_mode & 0o777) == "0o600"


def test_a_lock_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "state.sqlite3"
    target = tmp_path / "elsewhere"
    target.write_text("not to be touched")
    (tmp_path / "state.sqlite3-lock").symlink_to(target)
    with pytest.raises(LevelCareError, match=r"state\.sqlite3-lock: the service database must not be a symbolic link"):
        _store.Store(database, retention_days=30)
    assert target.read_text() == "not to be touched"


def test_the_log_is_checkpointed_by_a_thread_not_by_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_store, "CHECKPOINT_INTERVAL", 0.05)
    database = tmp_path / "state.sqlite3"
    store = _store.Store(database, retention_days=30)
    thread = store._checkpointers[os.getpid()]
    try:
        connection = sqlite3.connect(database)
        try:
            # Requests do not checkpoint until the log is far longer than SQLite's default.
            assert store._connection().execute("PRAGMA wal_autocheckpoint").fetchone()[0] > 1000
            size = database.stat().st_size
            for number in range(300):
                store.claim_token("iss", f"jti-{number}", expires=time.time() + 60)
            wait_for(lambda: database.stat().st_size > size, timeout=30)
            assert connection.execute("SELECT count(*) FROM tokens").fetchone()[0] == 300
        finally:
            connection.close()
    finally:
        store.close()
    assert not thread.is_alive()


class _Ended:
    """A worker process that has already ended with ``exitcode``."""

    def __init__(self, exitcode: int) -> None:
        self.exitcode = exitcode
        self.pid = 0

    def is_alive(self) -> bool:
        return False

    def join(self, timeout: float | None = None) -> None:
        return None


@pytest.mark.parametrize(("status", "restarts"), [(3, 0), (1, 2)])
def test_a_worker_that_cannot_start_stops_the_service_instead_of_restarting_forever(
    monkeypatch: pytest.MonkeyPatch, status: int, restarts: int
) -> None:
    """uvicorn's start-up failure (3) stops at once; any other quick end, after three in a row."""
    supervisor = _workers.Supervisor(object(), [socket.socket()])
    started: list[int] = []

    def start(index: int) -> Any:
        started.append(index)
        supervisor._started[index] = time.monotonic()
        return _Ended(status)

    monkeypatch.setattr(supervisor, "_start", start)
    supervisor._processes = [start(0)]
    started.clear()
    results = [supervisor._keep_alive() for _ in range(restarts + 1)]
    assert results == [True] * restarts + [False]
    assert started == [0] * restarts
    supervisor._sockets[0].close()


def test_a_worker_that_ends_after_serving_a_while_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    supervisor = _workers.Supervisor(object(), [socket.socket()])
    monkeypatch.setattr(supervisor, "_start", lambda index: _Ended(1))
    supervisor._processes = [_Ended(1)]
    for _ in range(5):
        supervisor._started[0] = time.monotonic() - 60  # it had served for a minute
        assert supervisor._keep_alive()
    supervisor._sockets[0].close()


def test_a_lock_file_open_to_other_users_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "state.sqlite3-lock"
    lock.write_bytes(b"")
    lock.chmod(0o666)
    with pytest.raises(
        LevelCareError, match=r"state\.sqlite3-lock: the service database's lock file is open to other users"
    ):
        _store.Store(tmp_path / "state.sqlite3", retention_days=30)


def test_a_writer_gives_up_when_another_process_holds_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that takes the lock and never lets go delays a write by the busy timeout, not for ever."""
    monkeypatch.setattr(_store, "BUSY_TIMEOUT_MS", 300)
    database = tmp_path / "state.sqlite3"
    store = _store.Store(database, retention_days=30)
    code = (
        "import fcntl, os, time\n"
        f"fd = os.open({str(database) + '-lock'!r}, os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match=r"lock file stayed held for 0\.3 s"):
            store.claim_token("iss", "a", expires=time.time() + 60)
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.communicate()
    # Once it is free, writes go on, and the refused one left nothing behind.
    assert store.claim_token("iss", "a", expires=time.time() + 60)
    store.close()
