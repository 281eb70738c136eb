"""How fast ``levelcare serve`` answers, against a ``decide()`` of the same facts.

Run from the repository root, in an environment with levelcare[server] installed::

    python benchmarks/bench_serve.py            # about a minute on 2 cores
    python benchmarks/bench_serve.py --quick    # a smoke run, targets not judged

In one run, with JWT authentication on (RS384, one fresh token a request, signed
before the clock starts) and the SQLite database on, it measures:

* the yardstick: ``Engine.decide()`` of the assessment's facts in this process;
* one card, sequential: ``levelcare serve`` with one worker, one request at a time
  over one keep-alive httpx connection; the ratio of its median latency to the
  median decide (target: at most 8x); beside it, the same client and requests
  against an endpoint that answers ``{}`` under the same server (uvicorn with
  httptools): what this measure costs with no work behind the answer;
* throughput: ``levelcare serve --workers 2`` and 16 concurrent clients, each on
  its own keep-alive connection (a small asyncio HTTP/1.1 client, so that the load
  generator, which shares the two cores, costs little): cards a second (target: at
  least 1,000) and the 99th percentile latency (target: at most 50 ms), with the
  CPU the load generator used.

Everything listens on 127.0.0.1. Medians over the repeats; exit status 1 when a
target is missed (not with --quick).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from levelcare import Engine, fhir
from levelcare._adapters.cdshooks import SERVICE_ID

CARD_VS_DECIDE = 8.0
CARDS_PER_SECOND = 1_000.0
P99_MS = 50.0
ISSUER = "https://ehr.bench/cds-client"
PATH = f"/cds-services/{SERVICE_ID}"
#: A complete assessment: a decided level, so the card carries its referral suggestion.
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "moderate-working-parent.json"
FACTS: dict[str, Any] = json.loads(EXAMPLE.read_text(encoding="utf-8"))["facts"]


def service_cpu(pid: int) -> float:
    """CPU seconds (user + system) of the service's process and its worker processes, from /proc.

    On a machine busy with other work, latency includes waiting for a core; CPU time
    per card does not. 0.0 where /proc is not there.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command: state, ppid, ..., utime (12th) and stime (13th).
        if entry.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def listening(command: list[str], base: str, probe: str, what: str) -> Iterator[int]:
    """The server ``command`` starts, once ``base + probe`` answers: its process id; stopped with SIGINT, or killed after 30 s."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"bench_serve: {what} did not start")
            try:
                httpx.get(base + probe, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def levelcare_serve(folder: Path, pem: Path, workers: int) -> Iterator[tuple[str, int]]:
    """``levelcare serve`` on 127.0.0.1 with its own database: its address and process id."""
    port = free_port()
    database = folder / f"state-{workers}-{port}.sqlite3"
    command = [sys.executable, "-m", "levelcare", "serve", "--port", str(port), "--workers", str(workers)]
    command += ["--issuer", f"{ISSUER}={pem}", "--database", str(database), "--feedback", str(folder / "fb.jsonl")]
    base = f"http://127.0.0.1:{port}"
    with listening(command, base, "/cds-services", "levelcare serve") as pid:
        yield base, pid


#: An ASGI application that answers every request with ``{}``: the same server (uvicorn
#: with httptools) and client as a card, with no work behind the answer.
EMPTY_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"{}"})
"""


@contextlib.contextmanager
def empty_endpoint(folder: Path) -> Iterator[str]:
    """uvicorn serving :data:`EMPTY_APP` on 127.0.0.1, as ``levelcare serve`` runs (httptools, no access log)."""
    (folder / "bench_empty_app.py").write_text(EMPTY_APP, encoding="utf-8")
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench_empty_app:app", "--app-dir", str(folder), "--port", str(port)]
    command += ["--http", "httptools", "--no-access-log", "--log-level", "warning", "--lifespan", "off"]
    base = f"http://127.0.0.1:{port}"
    with listening(command, base, "/", "the empty endpoint"):
        yield base


class Tokens:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def make(self, aud: str, count: int) -> list[str]:
        now = int(time.time())
        return [
            jwt.encode(
                {"iss": ISSUER, "aud": aud, "exp": now + 240, "iat": now, "jti": str(uuid.uuid4())},
                self.key,
                algorithm="RS384",
            )
            for _ in range(count)
        ]


def hook_body(engine: Engine) -> bytes:
    response = fhir.response_for(FACTS, engine)
    response["authored"] = "2026-02-01T09:00:00+00:00"
    response["subject"] = {"reference": "Patient/p1"}
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/d1", "patientId": "p1"},
        "prefetch": {"assessment": response},
    }
    return json.dumps(body).encode()


def decide_median(engine: Engine, count: int) -> float:
    as_of = dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        engine.decide(FACTS, as_of=as_of)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sequential_median(base: str, body: bytes, tokens: list[str]) -> float:
    """Median latency of one card at a time over one keep-alive httpx connection."""
    times = []
    # No Nagle delay between the request's headers and its body, as a browser or EHR client would set.
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    with httpx.Client(base_url=base, timeout=30, transport=transport) as client:
        for token in tokens:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            start = time.perf_counter()
            answer = client.post(PATH, content=body, headers=headers)
            times.append(time.perf_counter() - start)
            if answer.status_code != 200:
                sys.exit(f"bench_serve: the service answered {answer.status_code}: {answer.text[:200]}")
    return statistics.median(times[len(times) // 10 :])


async def _client(port: int, requests: list[bytes], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in requests:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                sys.exit(f"bench_serve: the service answered {head[:40]!r}")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
    finally:
        writer.close()


def concurrent_run(base: str, body: bytes, tokens: list[str], clients: int) -> tuple[float, float, float]:
    """Cards a second, the 99th percentile latency (s) and the load generator's CPU seconds a second."""
    port = int(base.rsplit(":", 1)[1])
    requests = [
        (
            f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for token in tokens
    ]
    shares = [requests[i::clients] for i in range(clients)]
    latencies: list[float] = []

    async def run() -> None:
        await asyncio.gather(*(_client(port, share, latencies) for share in shares))

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    asyncio.run(run())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / wall, p99, cpu / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; targets are not judged")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of each measurement (default 3)")
    args = parser.parse_args()
    repeats = 1 if args.quick else max(1, args.repeats)
    sequential_count = 100 if args.quick else 1_000
    concurrent_count = 320 if args.quick else 6_000
    clients = 16

    engine = Engine.default()
    body = hook_body(engine)
    keys = Tokens()
    decide, card, rate, p99, load, card_cpu, busy_cpu, empty = [], [], [], [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as name:
        folder = Path(name)
        pem = folder / "client.pem"
        pem.write_bytes(keys.pem())
        with empty_endpoint(folder) as base:
            for _ in range(repeats):
                empty.append(sequential_median(base, body, keys.make(base + PATH, sequential_count)))
        with levelcare_serve(folder, pem, 1) as (base, pid):
            for _ in range(repeats):
                decide.append(decide_median(engine, 2_000 if not args.quick else 200))
                tokens = keys.make(base + PATH, sequential_count)
                before = service_cpu(pid)
                card.append(sequential_median(base, body, tokens))
                card_cpu.append((service_cpu(pid) - before) / sequential_count)
        with levelcare_serve(folder, pem, 2) as (base, pid):
            # Both workers warm, so that the first round does not time their start.
            concurrent_run(base, body, keys.make(base + PATH, 4 * clients), clients)
            for _ in range(repeats):
                tokens = keys.make(base + PATH, concurrent_count)
                before = service_cpu(pid)
                found = concurrent_run(base, body, tokens, clients)
                busy_cpu.append((service_cpu(pid) - before) / concurrent_count)
                rate.append(found[0])
                p99.append(found[1])
                load.append(found[2])

    decide_s, card_s, empty_s = statistics.median(decide), statistics.median(card), statistics.median(empty)
    ratio = card_s / decide_s
    rate_m, p99_m, load_m = statistics.median(rate), statistics.median(p99) * 1000, statistics.median(load)
    print(f"levelcare serve on {os.cpu_count()} cores, Python {sys.version.split()[0]}, {repeats} round(s)")
    print(f"decide() of the facts:                {decide_s * 1e6:8.1f} us  (median)")
    print(f"one card, sequential, keep-alive:      {card_s * 1e6:8.1f} us  (median, 1 worker)")
    print(f"card / decide:                         {ratio:8.1f} x   (target <= {CARD_VS_DECIDE:g}x)")
    print(
        f"  an empty endpoint, same server/client: {empty_s * 1e6:6.1f} us  ({empty_s / decide_s:.1f}x decide; "
        "the HTTP floor of this measure)"
    )
    cpu_s = statistics.median(card_cpu)
    print(
        f"  service CPU per card:                {cpu_s * 1e6:8.1f} us  ({cpu_s / decide_s:.1f}x decide; latency less waiting)"
    )
    print(f"2 workers, {clients} clients:               {rate_m:8.0f} cards/s (target >= {CARDS_PER_SECOND:g})")
    print(f"  p99 latency:                         {p99_m:8.1f} ms  (target <= {P99_MS:g} ms)")
    print(f"  load generator CPU:                  {load_m:8.2f} CPU s per s (of {os.cpu_count()} cores)")
    busy_s = statistics.median(busy_cpu)
    print(
        f"  service CPU per card:                {busy_s * 1e6:8.1f} us  (both workers; {1 / busy_s:.0f} cards per CPU s)"
    )
    print(f"  machine load average:                {os.getloadavg()[0]:8.2f}     (other work shares the cores)")
    print("rounds: card/decide " + ", ".join(f"{c / d:.1f}x" for c, d in zip(card, decide, strict=True)))
    print(
        "rounds: cards/s "
        + ", ".join(f"{r:.0f}" for r in rate)
        + "; p99 ms "
        + ", ".join(f"{p * 1000:.1f}" for p in p99)
    )
    if args.quick:
        return 0
    missed = ratio > CARD_VS_DECIDE or rate_m < CARDS_PER_SECOND or p99_m > P99_MS
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
