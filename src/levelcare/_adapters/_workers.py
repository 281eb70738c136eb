"""Worker processes for ``levelcare serve --workers N``, each listening on a socket of its own.

uvicorn's own supervisor hands every worker the same listening socket. The first
worker to wake then accepts every connection waiting, so a few long-lived
keep-alive connections (an EHR's connection pool) all end up in one worker while the
others idle. Here each worker gets its own socket bound to the same address with
``SO_REUSEPORT``, and the kernel spreads new connections over them.

Linux lets only processes of the same user bind a port another socket holds with
``SO_REUSEPORT``, so no other user's process can take a share of the connections.

Only uvicorn's public API is used (``Config``, ``Server.run(sockets=...)``); the
supervisor restarts a worker that dies, and stops them all on SIGINT or SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.process
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..exceptions import LevelCareError

logger = logging.getLogger("levelcare.service")

#: The exit status of a uvicorn worker that could not start (its application or
#: socket is broken, and would be on every restart).
_STARTUP_FAILURE = 3
#: How long a worker has to end after SIGTERM before it is killed, in seconds.
_STOP_GRACE = 30.0
#: A worker that ends sooner than this after its start counts as failing to start;
#: after this many such ends in a row in one slot, the service stops rather than
#: restart it forever (older uvicorn releases exit 1, not 3, on a broken application).
_QUICK_END = 10.0
_QUICK_ENDS = 3
_SPAWN = multiprocessing.get_context("spawn")


def listening_sockets(host: str, port: int, count: int, *, backlog: int = 2048) -> list[socket.socket]:
    """``count`` sockets listening on the same address, with ``SO_REUSEPORT``.

    Port 0 picks a free port for the first socket; the others take the same one.

    Raises:
        LevelCareError: the platform has no ``SO_REUSEPORT``, or the address cannot be bound.
    """
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    if reuse_port is None:  # pragma: no cover - Linux, the BSDs and macOS have it
        msg = "--workers: more than one worker needs SO_REUSEPORT, which this platform lacks; use --workers 1"
        raise LevelCareError(msg)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(backlog)
            sock.set_inheritable(True)
    except OSError as error:
        for sock in sockets:
            sock.close()
        msg = f"cannot listen on {host[:40]}:{port}: {error.strerror or error}"
        raise LevelCareError(msg) from None
    return sockets


def _worker(config: Any, sock: socket.socket) -> None:  # pragma: no cover - runs in a worker process
    import uvicorn

    config.configure_logging()
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Worker processes, one per socket, kept running until SIGINT or SIGTERM.

    Args:
        config: The ``uvicorn.Config`` every worker runs (its application given
            as an import string, so that each spawned worker builds its own).
        sockets: One listening socket per worker.
    """

    def __init__(self, config: Any, sockets: list[socket.socket]) -> None:
        self._config = config
        self._sockets = sockets
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._stop = threading.Event()
        self._started = [0.0] * len(sockets)
        self._quick_ends = [0] * len(sockets)

    def _start(self, index: int) -> multiprocessing.process.BaseProcess:
        process = _SPAWN.Process(target=_worker, args=(self._config, self._sockets[index]), daemon=False)
        process.start()
        self._started[index] = time.monotonic()
        logger.info("started worker %d (process %s)", index + 1, process.pid)
        return process

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        def stop(signum: int, frame: object) -> None:
            self._stop.set()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def run(self) -> None:
        """Start the workers, replace any that dies, and stop them all when told to."""
        with self._signals():
            host, port = self._sockets[0].getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            logger.info(
                "listening on http://%s:%d with %d workers, each on a socket of its own (Press CTRL+C to quit)",
                shown,
                port,
                len(self._sockets),
            )
            self._processes = [self._start(index) for index in range(len(self._sockets))]
            try:
                while not self._stop.wait(0.5):
                    if not self._keep_alive():
                        break
            finally:
                self._stop_all()

    def _keep_alive(self) -> bool:
        """Replace each worker that ended; False when one could not start at all."""
        for index, process in enumerate(self._processes):
            if process.is_alive() or self._stop.is_set():
                continue
            process.join()
            quick = time.monotonic() - self._started[index] < _QUICK_END
            self._quick_ends[index] = self._quick_ends[index] + 1 if quick else 0
            if process.exitcode == _STARTUP_FAILURE or self._quick_ends[index] >= _QUICK_ENDS:
                logger.error("worker %d could not start (status %s); stopping the service", index + 1, process.exitcode)
                return False
            logger.warning(
                "worker %d (process %s) ended with status %s; starting another",
                index + 1,
                process.pid,
                process.exitcode,
            )
            self._processes[index] = self._start(index)
        return True

    def _stop_all(self) -> None:
        for process in self._processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
        for process in self._processes:
            process.join(_STOP_GRACE)
            if process.is_alive():
                process.kill()
                process.join()
        for sock in self._sockets:
            sock.close()
