"""The CDS Hooks service's edge, against real uvicorn servers on 127.0.0.1.

Which FHIR servers it contacts (and where the access token goes), and the limits on
what a client sends: body size while it streams, JSON depth and Unicode, header and
token sizes, and deadlines for heads, bodies and idle connections. Each server runs
with the uvicorn settings ``levelcare serve`` uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from levelcare import Engine, LevelCareError
from levelcare._adapters import _fhirclient, _limits, _serving, cdshooks
from test_cdshooks import (
    ISSUER,
    SERVICE,
    Keys,
    assessment,
    bundle,
    example_facts,
    outcome,
    refused_serve,
    request,
    running,
)

AUTH_OFF = {"auth": False}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


class Counted:
    """An ASGI app wrapper counting the request body bytes the service reads."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counting() -> Any:
            message = await receive()
            self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counting, send)


@contextlib.contextmanager
def serving(engine: Engine, *, counted: bool = False, **settings: Any) -> Iterator[tuple[str, Any]]:
    """The service with ``settings``, under uvicorn configured as ``levelcare serve`` configures it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = cdshooks.ServiceConfig(public_url=base, **settings)
    app: Any = cdshooks.create_app(engine, config)
    if counted:
        app = Counted(app)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, **_serving.uvicorn_options(config)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield base, app
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class Listener:
    """A bare TCP listener on 127.0.0.1 recording every connection and every byte it receives."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self.received = b""
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.settimeout(1)
            with contextlib.suppress(OSError), conn:
                self.received += conn.recv(65536)

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


def fetch_request(server: str, token: str = "secret-token-123") -> dict[str, Any]:
    return request(fhirServer=server, fhirAuthorization={"access_token": token, "token_type": "Bearer"})


def raw_exchange(base: str, data: bytes, *, timeout: float = 10) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it (or ``timeout``)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(data)
        return read_all(conn)


def read_all(conn: socket.socket) -> bytes:
    answer = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return answer
        answer += chunk


def status_and_outcome(answer: bytes) -> tuple[int, list[str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    parsed = json.loads(body)
    assert parsed["resourceType"] == "OperationOutcome"
    return status, [issue["diagnostics"] for issue in parsed["issue"]]


# --- which FHIR servers are contacted ---------------------------------------------------------


def test_a_fhir_server_the_operator_did_not_allow_is_never_contacted(engine: Engine, listener: Listener) -> None:
    """No connection reaches a server off the list, however its URL is dressed up, and no token leaks."""
    allowed = f"http://127.0.0.1:{listener.port + 1}/fhir"
    port = listener.port
    disguises = [
        f"http://127.0.0.1:{port}/fhir",
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{listener.port + 1}@127.0.0.1:{port}/fhir",
        f"http://user:pw@127.0.0.1:{port}/fhir",
        f"{allowed}/../../x",
        f"{allowed}/%2e%2e/x",
        f"http://127.0.0.1:{listener.port + 1}%2f@127.0.0.1:{port}/fhir",
        f"http://localhost.:{port}/fhir",
        f"http://ｌocalhost:{port}/fhir",
        f"https://127.0.0.1:{listener.port + 1}/fhir",
        f"{allowed}x",
        f"http://127.0.0.1:{listener.port + 1}\\@127.0.0.1:{port}/fhir",
        f"http://127.0.0.1:{port}#@127.0.0.1:{listener.port + 1}/fhir",
    ]
    with serving(engine, fhir_servers=[allowed], **AUTH_OFF) as (base, _):
        for server in disguises:
            answer = httpx.post(base + SERVICE, json=fetch_request(server), timeout=30)
            (problem,) = outcome(answer, 412)
            assert problem.startswith("fhirServer: "), problem
    assert listener.connections == 0
    assert b"secret-token-123" not in listener.received


def test_with_jwt_on_an_http_fhir_server_is_refused(
    engine: Engine, keys: Keys, listener: Listener, tmp_path: Path
) -> None:
    """With authentication on, http servers cannot be configured, and a request naming one contacts nothing."""
    pem = tmp_path / "client.pem"
    pem.write_bytes(keys.public_pem())
    issuers = {ISSUER: cdshooks.load_keys(pem)}
    server = f"http://127.0.0.1:{listener.port}/fhir"
    with pytest.raises(LevelCareError, match=r"fhir_servers: 'http://127.0.0.1:\d+/fhir': use https"):
        cdshooks.ServiceConfig(public_url="https://cds.test", issuers=issuers, fhir_servers=[server])
    with pytest.raises(LevelCareError, match=r"issuer_fhir_servers\['x'\]: 'http://127.0.0.1:\d+/fhir': use https"):
        cdshooks.ServiceConfig(public_url="https://cds.test", issuers=issuers, issuer_fhir_servers={"x": (server,)})
    with pytest.raises(LevelCareError, match=r"'http://ehr.test/fhir': use https; http is only for a loopback"):
        cdshooks.ServiceConfig(public_url="https://cds.test", auth=False, fhir_servers=["http://ehr.test/fhir"])
    with serving(engine, issuers=issuers, fhir_servers=["https://fhir.test/r4"]) as (base, _):
        token = keys.token(base + SERVICE)
        answer = httpx.post(
            base + SERVICE, json=fetch_request(server), headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert outcome(answer, 412) == [
            f"fhirServer: '{server}' is not a FHIR server this service is allowed to contact"
        ]
    assert listener.connections == 0


def test_the_allow_list_compares_normalised_parts_and_issuers() -> None:
    allow = _fhirclient.AllowList.build(
        ["https://EHR.test:443/fhir/"], {"https://a.test": ["https://a-fhir.test/r4"]}, auth=True
    )
    assert allow.allowed("https://ehr.test/fhir", None).url == "https://ehr.test/fhir"
    assert allow.allowed("HTTPS://ehr.TEST/fhir/tenant/", None).url == "https://ehr.test/fhir/tenant"
    assert allow.allowed("https://a-fhir.test/r4", "https://a.test").url == "https://a-fhir.test/r4"
    for server, issuer in [
        ("https://a-fhir.test/r4", "https://b.test"),
        ("https://a-fhir.test/r4", None),
        ("https://ehr.test:8443/fhir", None),
        ("https://ehr.test/fhirx", None),
        ("https://ehr.test/", None),
        ("http://ehr.test/fhir", None),
        ("https://ehr.test.evil.test/fhir", None),
    ]:
        with pytest.raises(_fhirclient.FetchFailed, match="is not a FHIR server this service is allowed to contact"):
            allow.allowed(server, issuer)
    for bad, why in [
        ("https://u@ehr.test/fhir", "user information"),
        ("https://ehr.test./fhir", "ends with a dot"),
        ("https://ehr.test/fhir/./x", "'.' or '..' segment"),
        ("https://ehr.test/fhir//x", "'.' or '..' segment"),
        ("https://ehr.test/%66hir", "percent-encoding"),
        ("https://bücher.test/fhir", "non-ASCII"),
        ("https://ehr.test:0/fhir", "port"),
        ("https://ehr.test:99999/fhir", "port"),
        ("https://ehr.test/fhir?x=1", "no query or fragment"),
        ("ftp://ehr.test/fhir", "scheme must be https"),
        ("https://ehr_test/fhir", "not a DNS name"),
        ("https://[::1/fhir", "IPv6"),
        (7, "expected a URL string"),
    ]:
        with pytest.raises(_fhirclient.FetchFailed, match=why):
            allow.allowed(bad, None)
    assert _fhirclient.parse_base("https://[::1]:8443/r4").url == "https://[::1]:8443/r4"


@pytest.fixture(scope="module")
def fhir_stand_in(engine: Engine) -> Iterator[tuple[str, list[str | None], list[str]]]:
    """A FHIR server answering well, by redirect, with too much, and too slowly, recording tokens it sees."""
    tokens: list[str | None] = []
    redirect_to = ["http://127.0.0.1:9/"]
    good = json.dumps(
        bundle(assessment(engine, example_facts("moderate-working-parent"), authored="2026-02-01T09:00:00Z"))
    )

    async def search(request: Request) -> Response:
        tokens.append(request.headers.get("authorization"))
        return Response(good, media_type="application/fhir+json")

    async def redirect(request: Request) -> Response:
        tokens.append(request.headers.get("authorization"))
        return RedirectResponse(redirect_to[0], status_code=302)

    async def huge(request: Request) -> Response:
        return Response(b" " * 300_000 + good.encode(), media_type="application/fhir+json")

    async def huge_chunked(request: Request) -> Response:
        async def chunks() -> Any:
            for _ in range(100):
                yield b" " * 65536

        return StreamingResponse(chunks(), media_type="application/fhir+json")

    async def slow(request: Request) -> Response:
        async def trickle() -> Any:
            for _ in range(100):
                await asyncio.sleep(0.1)
                yield b" "

        return StreamingResponse(trickle(), media_type="application/fhir+json")

    async def deep(request: Request) -> Response:
        return Response(b"[" * 100_000, media_type="application/fhir+json")

    def make(base: str) -> Any:
        routes = [
            Route(f"/{name}/QuestionnaireResponse", handler)
            for name, handler in [
                ("good", search),
                ("redirect", redirect),
                ("huge", huge),
                ("chunked", huge_chunked),
                ("slow", slow),
                ("deep", deep),
            ]
        ]
        return Starlette(routes=routes)

    with running(make) as base:
        yield base, tokens, redirect_to


def test_an_allowed_fhir_server_gets_the_token_and_nothing_else_does(
    engine: Engine, fhir_stand_in: tuple[str, list[str | None], list[str]], listener: Listener
) -> None:
    """The token goes to the allowed server; a redirect from it is a failure and is not followed."""
    stand_in, tokens, redirect_to = fhir_stand_in
    redirect_to[0] = f"http://127.0.0.1:{listener.port}/fhir/QuestionnaireResponse"
    with serving(engine, fhir_servers=[stand_in], **AUTH_OFF) as (base, _):
        answer = httpx.post(base + SERVICE, json=fetch_request(f"{stand_in}/good"), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["cards"][0]["indicator"] == "info"
        assert tokens[-1] == "Bearer secret-token-123"
        answer = httpx.post(base + SERVICE, json=fetch_request(f"{stand_in}/redirect"), timeout=30)
        assert outcome(answer, 412) == [
            "the FHIR server answered 302 to the assessment search (a redirect, which is never followed)"
        ]
        assert tokens[-1] == "Bearer secret-token-123"
    # The redirect named a listener of this machine: it was never contacted.
    assert listener.connections == 0
    assert b"secret-token-123" not in listener.received


@pytest.mark.parametrize(
    ("path", "settings", "problem"),
    [
        ("huge", {"max_fetch_bytes": 100_000}, "the FHIR server's answer is over 100000 bytes"),
        ("chunked", {"max_fetch_bytes": 100_000}, "the FHIR server's answer is over 100000 bytes"),
        ("slow", {"fetch_timeout": 1.0}, "the FHIR server did not answer within 1 seconds"),
        ("deep", {}, "the FHIR server's answer nests objects and arrays more than 64 deep"),
    ],
)
def test_an_oversized_slow_or_deep_fhir_answer_fails_cleanly(
    engine: Engine,
    fhir_stand_in: tuple[str, list[str | None], list[str]],
    path: str,
    settings: dict[str, Any],
    problem: str,
) -> None:
    stand_in, _, _ = fhir_stand_in
    with serving(engine, fhir_servers=[stand_in], **AUTH_OFF, **settings) as (base, _):
        answer = httpx.post(base + SERVICE, json=fetch_request(f"{stand_in}/{path}"), timeout=30)
        assert outcome(answer, 412) == [problem]


# --- the body ---------------------------------------------------------------------------------


def test_a_200_mb_chunked_body_is_refused_after_the_limit_without_being_read(engine: Engine) -> None:
    """The service stops reading at the limit and answers 413; the client is cut off long before 200 MB."""
    with serving(engine, counted=True, **AUTH_OFF) as (base, app):
        host, port = base.removeprefix("http://").split(":")
        conn = socket.create_connection((host, int(port)), timeout=20)
        conn.sendall(
            f"POST {SERVICE} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
        sent = 0

        def send() -> None:
            nonlocal sent
            with contextlib.suppress(OSError):
                for _ in range(200_000_000 // 65536):
                    conn.sendall(chunk)
                    sent += 65536

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = b""
        with contextlib.suppress(OSError):
            answer = read_all(conn)
        sender.join(20)
        conn.close()
    assert status_and_outcome(answer) == (413, ["the request body is over 2000000 bytes"])
    assert b"connection: close" in answer.lower()
    assert app.read <= 2_000_000 + 65536 * 4
    assert sent < 50_000_000


def test_an_announced_oversized_body_is_refused_before_it_is_sent(engine: Engine) -> None:
    with serving(engine, **AUTH_OFF) as (base, _):
        answer = raw_exchange(base, f"POST {SERVICE} HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n".encode())
    assert status_and_outcome(answer) == (413, ["the request body is over 2000000 bytes"])


def test_a_stalled_body_times_out_with_408(engine: Engine) -> None:
    with serving(engine, body_timeout=1.0, **AUTH_OFF) as (base, _):
        answer = raw_exchange(
            base, f'POST {SERVICE} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{"hook":'.encode()
        )
    assert status_and_outcome(answer) == (408, ["the request body did not arrive within 1 seconds"])


def test_deep_json_and_lone_surrogates_are_400s_not_500s(engine: Engine) -> None:
    facts = example_facts("moderate-working-parent")
    with serving(engine, **AUTH_OFF) as (base, _):
        url = base + SERVICE
        for deep in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000, b"[" * 100_000):
            answer = httpx.post(url, content=deep, timeout=30)
            assert outcome(answer, 400) == ["the request body nests objects and arrays more than 64 deep"]
        body = json.dumps(request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")))
        lone = body.replace('"hookInstance": "', '"hookInstance": "\\ud800', 1)
        answer = httpx.post(url, content=lone.encode(), timeout=30)
        assert outcome(answer, 400) == ["hookInstance: not valid Unicode (a lone surrogate); send UTF-8 text"]
        # A pair of surrogate escapes is one character, and fine.
        paired = body.replace('"hookInstance": "', '"hookInstance": "\\ud83d\\ude00', 1)
        assert httpx.post(url, content=paired.encode(), timeout=30).status_code == 200
        answer = httpx.post(url, content=b'{"hook": NaN}', timeout=30)
        assert outcome(answer, 400) == ["the request body is not JSON"]


def test_the_depth_scan_counts_only_brackets_outside_strings() -> None:
    assert not _limits.too_deep(json.dumps({"a": "[" * 1000, "b": [[[["]]]]"]]]]}).encode())
    assert not _limits.too_deep(b"[" * 64 + b"]" * 64)
    assert _limits.too_deep(b"[" * 65 + b"]" * 65)
    assert _limits.too_deep(b'{"a":' * 65 + b"1" + b"}" * 65)
    assert not _limits.too_deep(b"[[],[[]],[[[]]]]" * 10_000)
    # An escaped quote does not end a string; an escaped backslash before a quote does.
    assert not _limits.too_deep(b'["\\"[' + b"[" * 70 + b'"]')
    assert _limits.too_deep(b'["\\\\",' + b"[" * 70 + b"]" * 71)
    problems = _limits._invalid_strings({"a": ["\ud800"] * 15})
    assert problems[0] == "a[0]: not valid Unicode (a lone surrogate); send UTF-8 text"
    assert problems[-1] == "... and 5 more strings that are not valid Unicode"


# --- heads, methods and paths -----------------------------------------------------------------


def test_405_and_404_answer_with_an_operation_outcome(engine: Engine) -> None:
    with serving(engine, **AUTH_OFF) as (base, _):
        answer = httpx.get(base + SERVICE, timeout=30)
        assert outcome(answer, 405) == [f"'GET' is not allowed on '{SERVICE}'; use POST"]
        assert answer.headers["allow"] == "POST"
        assert answer.headers["content-type"] == "application/fhir+json"
        assert outcome(httpx.delete(base + "/cds-services", timeout=30), 405) == [
            "'DELETE' is not allowed on '/cds-services'; use GET, HEAD"
        ]
        assert outcome(httpx.get(base + "/nowhere", timeout=30), 404) == [
            "no endpoint '/nowhere'; see GET /cds-services"
        ]


def test_a_100_kb_token_gets_401_and_oversized_headers_431(engine: Engine, keys: Keys, tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_bytes(keys.public_pem())
    with serving(engine, issuers={ISSUER: cdshooks.load_keys(pem)}) as (base, _):
        url = base + SERVICE
        answer = httpx.post(url, json=request(), headers={"Authorization": "Bearer " + "a" * 100_000}, timeout=30)
        assert outcome(answer, 401) == ["the Authorization header is over 16384 bytes: no token this service accepts"]
        assert answer.headers["www-authenticate"] == "Bearer"
        # Whole (read in one go) or still arriving (counted as it comes): 431 either way.
        head = f"POST {SERVICE} HTTP/1.1\r\nHost: x\r\nX-Big: {'c' * 200_000}\r\n\r\n".encode()
        for data in (head, head[:-4]):
            assert status_and_outcome(raw_exchange(base, data)) == (
                431,
                ["the request's headers are over 131072 bytes"],
            )
        broken = raw_exchange(base, b"NOT HTTP AT ALL\r\n\r\n")
        assert status_and_outcome(broken) == (400, ["the request is not valid HTTP/1.1"])


def test_the_app_alone_refuses_oversized_headers_and_tokens(engine: Engine) -> None:
    """Under another ASGI server, the application still answers 431 and 401 with an OperationOutcome."""
    config = cdshooks.ServiceConfig(public_url="http://cds.test", auth=False, max_header_bytes=4096)
    app = cdshooks.create_app(engine, config)

    async def call(headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cds.test") as client:
            return await client.get("/cds-services", headers=headers)

    assert outcome(asyncio.run(call({f"x-{i}": "b" * 100 for i in range(40)})), 431) == [
        "the request's headers are over 4096 bytes"
    ]
    assert outcome(asyncio.run(call({"authorization": "Bearer " + "a" * 20_000})), 401) == [
        "the Authorization header is over 16384 bytes: no token this service accepts"
    ]
    assert asyncio.run(call({"x-small": "1"})).status_code == 200


def test_idle_silent_and_trickling_connections_are_closed(engine: Engine) -> None:
    with serving(engine, header_timeout=1.0, keep_alive_timeout=1.0, **AUTH_OFF) as (base, _):
        host, port = base.removeprefix("http://").split(":")
        # Connected, and never a byte.
        with socket.create_connection((host, int(port)), timeout=10) as silent:
            assert status_and_outcome(read_all(silent)) == (408, ["the request head did not arrive within 1 seconds"])
        # A head trickling in, a byte at a time, well within any per-read timeout.
        with socket.create_connection((host, int(port)), timeout=10) as slow:
            started = time.monotonic()
            answer = b""
            with contextlib.suppress(OSError):
                for byte in f"GET /cds-services HTTP/1.1\r\nHost: x\r\nX-Slow: {'d' * 100}".encode():
                    slow.sendall(bytes([byte]))
                    time.sleep(0.05)
                    if time.monotonic() - started > 5:
                        break
            with contextlib.suppress(OSError):
                answer = read_all(slow)
            assert status_and_outcome(answer)[0] == 408
        # Idle after a request: the keep-alive timeout closes it.
        with socket.create_connection((host, int(port)), timeout=10) as idle:
            idle.sendall(b"GET /cds-services HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_all(idle)
            assert answer.startswith(b"HTTP/1.1 200")


def test_configured_limits_must_be_positive() -> None:
    with pytest.raises(LevelCareError, match="max_body_bytes: expected a positive number, got 0; body_timeout"):
        cdshooks.ServiceConfig(public_url="http://127.0.0.1:1", auth=False, max_body_bytes=0, body_timeout=-1)


# --- levelcare serve --------------------------------------------------------------------------


def test_serve_options_name_fhir_servers_for_everyone_or_one_issuer() -> None:
    from levelcare import _cli
    from levelcare._cli import _serve

    args = _cli.build_parser().parse_args(
        [
            "serve",
            "--fhir-server",
            "https://fhir.test/r4",
            "--fhir-server",
            "https://ehr.test/cds=https://ehr.test/fhir",
            "--fhir-server",
            "https://ehr.test/cds=https://ehr.test/fhir2",
            "--max-body-bytes",
            "1000",
            "--header-timeout",
            "3",
        ]
    )
    edge = _serve._serve_edge(args)
    assert edge["fhir_servers"] == ("https://fhir.test/r4",)
    assert edge["issuer_fhir_servers"] == {"https://ehr.test/cds": ("https://ehr.test/fhir", "https://ehr.test/fhir2")}
    assert (edge["max_body_bytes"], edge["header_timeout"], edge["max_token_bytes"]) == (1000, 3.0, 16_384)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fhir-server", "http://ehr.test/fhir"], "fhir_servers: 'http://ehr.test/fhir': use https"),
        (["--fhir-server", "https://u@ehr.test/fhir"], "fhir_servers: 'https://u@ehr.test/fhir': the URL has user"),
        (["--max-body-bytes", "0"], "max_body_bytes: expected a positive number, got 0"),
    ],
)
def test_levelcare_serve_refuses_bad_edge_settings(
    args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = refused_serve(monkeypatch, *args)
    assert done.returncode == 1
    assert f"levelcare: {message}" in done.stderr, done.stderr
