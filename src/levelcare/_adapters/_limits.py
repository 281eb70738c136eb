"""The CDS Hooks service's limits on what a client sends, enforced while it is read.

One place for every bound on a request: the body's size and read deadline (checked
while the body streams, so an oversized or stalled body is refused without being
held in memory), the nesting depth and Unicode validity of its JSON (checked before
the parser can recurse or a value is echoed), the size of the bearer token and of the
other headers. Under uvicorn, the request head's size and read deadline are bounded
by :mod:`._edge`. Each refusal is a :class:`Refused` with the status and the
OperationOutcome problems the client gets.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from starlette.requests import ClientDisconnect, Request

from .._text import type_name

#: How deep JSON may nest (objects and arrays); a prefetched FHIR Bundle needs about 15.
MAX_DEPTH = 64
#: At most this many problems are listed for one body; the rest are counted.
MAX_PROBLEMS = 10

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Refused(Exception):
    """A request that gets an error status and an OperationOutcome.

    Attributes:
        status: The HTTP status.
        code: The OperationOutcome issue type (``invalid``, ``too-long``, ...).
        problems: One diagnostics text per issue.
        close: Whether the connection is closed after the answer (the rest of the
            request was not read, so the connection cannot carry another one).
    """

    def __init__(self, status: int, code: str, problems: list[str] | tuple[str, ...], *, close: bool = False) -> None:
        self.status = status
        self.code = code
        self.problems = tuple(problems)
        self.close = close
        super().__init__("; ".join(problems))


def outcome_body(code: str, problems: tuple[str, ...] | list[str]) -> bytes:
    """An OperationOutcome with one error issue per problem, as JSON bytes."""
    issues = [{"severity": "error", "code": code, "diagnostics": text} for text in problems]
    return json.dumps({"resourceType": "OperationOutcome", "issue": issues}, separators=(",", ":")).encode("utf-8")


# --- the body ----------------------------------------------------------------------------


async def read_body(request: Request, *, max_bytes: int, timeout: float) -> bytes:
    """The request body, refused as soon as it is known to be over ``max_bytes``.

    A ``Content-Length`` over the limit is refused before anything is read; a chunked
    body is read only up to the limit. The whole body must arrive within ``timeout``
    seconds, so a client trickling it cannot hold the request open.

    Args:
        request: The request whose body is read (once).
        max_bytes: The largest body accepted.
        timeout: Seconds allowed for the whole body to arrive.

    Returns:
        The body.

    Raises:
        Refused: 413 for a body over the limit, 408 for one that did not arrive in
            time, 400 for a malformed length or a client that went away.
    """
    too_long = Refused(413, "too-long", [f"the request body is over {max_bytes} bytes"], close=True)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise Refused(400, "structure", ["Content-Length: expected a number of bytes"], close=True)
        if int(declared) > max_bytes:
            raise too_long
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise too_long
                chunks.append(chunk)
    except TimeoutError:
        problem = f"the request body did not arrive within {timeout:g} seconds"
        raise Refused(408, "timeout", [problem], close=True) from None
    except ClientDisconnect:
        raise Refused(400, "incomplete", ["the client closed the connection before the body was sent"]) from None
    return b"".join(chunks)


# --- JSON --------------------------------------------------------------------------------

# A JSON string, escapes included; possessive so that a long string costs one pass.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# A \uD800-\uDFFF escape: the only way a surrogate gets into a string (raw UTF-8 cannot hold one).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def too_deep(raw: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests objects and arrays more than ``max_depth`` deep.

    Cheap and without recursion: strings are cut out, the brackets that remain are
    paired off innermost first, at most ``max_depth`` times. Anything still paired
    after that nests deeper; a run of more than ``max_depth`` unclosed brackets would
    make a parser recurse as deep, so it counts too.
    """
    brackets = _STRING.sub(b"", raw).translate(_BRACKETS, _NOT_BRACKETS)
    for _ in range(max_depth):
        reduced = brackets.replace(b"[]", b"")
        if len(reduced) == len(brackets):
            break
        brackets = reduced
    return b"[]" in brackets or b"[" * (max_depth + 1) in brackets


def _constant(name: str) -> Any:
    raise ValueError(name)


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH, what: str = "the request body") -> Any:
    """The JSON value of ``raw``, refused before parsing if it nests too deep.

    Strings must be valid Unicode: a lone surrogate (``"\\ud800"``) is refused, naming
    where it is, so that nothing invalid is ever echoed back. ``NaN`` and
    ``Infinity`` are not JSON and are refused too.

    Args:
        raw: The JSON text.
        max_depth: The deepest nesting of objects and arrays accepted.
        what: What ``raw`` is, for the messages.

    Returns:
        The value.

    Raises:
        Refused: 400 for text that is not UTF-8 JSON, nests over ``max_depth``, or holds
            an invalid string.
    """
    if too_deep(raw, max_depth):
        raise Refused(400, "structure", [f"{what} nests objects and arrays more than {max_depth} deep"])
    try:
        value = json.loads(raw, parse_constant=_constant)
    except (ValueError, RecursionError):
        # UnicodeDecodeError is a ValueError: the body is not UTF-8.
        raise Refused(400, "structure", [f"{what} is not JSON"]) from None
    if _SURROGATE_ESCAPE.search(raw):
        problems = _invalid_strings(value)
        if problems:
            raise Refused(400, "invalid", problems)
    return value


def _valid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _invalid_strings(value: Any) -> list[str]:
    """Where ``value`` holds strings (or keys) with lone surrogates, at most :data:`MAX_PROBLEMS`."""
    found: list[str] = []
    count = 0
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            if not _valid(item):
                count += 1
                if len(found) < MAX_PROBLEMS:
                    found.append(f"{where or 'the body'}: not valid Unicode (a lone surrogate); send UTF-8 text")
        elif isinstance(item, Mapping):
            for key, child in reversed(list(item.items())):
                if not _valid(key):
                    count += 1
                    if len(found) < MAX_PROBLEMS:
                        found.append(f"{where or 'the body'}: a key is not valid Unicode (a lone surrogate)")
                    continue
                stack.append((f"{where}.{key[:40]}" if where else key[:40], child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{index}]", child) for index, child in reversed(list(enumerate(item))))
    if count > len(found):
        found.append(f"... and {count - len(found)} more strings that are not valid Unicode")
    return found


def json_object(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Mapping[str, Any]:
    """:func:`parse_json` of a body that must be a JSON object.

    Raises:
        Refused: as :func:`parse_json`, and 400 for a value that is not an object.
    """
    body = parse_json(raw, max_depth=max_depth)
    if not isinstance(body, Mapping):
        raise Refused(400, "structure", [f"the request body must be a JSON object, got {type_name(body)}"])
    return body


# --- headers -----------------------------------------------------------------------------


class HeaderLimits:
    """ASGI middleware checking a request's head before any route runs.

    An ``Authorization`` header over ``max_token_bytes`` gets 401; a request target
    and other headers over ``max_header_bytes`` together get 431. Both are answered
    with an OperationOutcome, so a client learns which limit it hit.

    Args:
        app: The ASGI application.
        max_header_bytes: The largest request target plus headers, the token left out.
        max_token_bytes: The largest ``Authorization`` header value.
    """

    def __init__(self, app: ASGIApp, *, max_header_bytes: int, max_token_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_token_bytes = max_token_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = _head_refusal(scope, self.max_header_bytes, self.max_token_bytes)
            if refusal is not None:
                await _answer(send, refusal)
                return
        await self.app(scope, receive, send)


def _head_refusal(scope: Scope, max_header_bytes: int, max_token_bytes: int) -> Refused | None:
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            if len(value) > max_token_bytes:
                problem = f"the Authorization header is over {max_token_bytes} bytes: no token this service accepts"
                return Refused(401, "security", [problem])
            continue
        size += len(name) + len(value) + 4
    if size > max_header_bytes:
        return Refused(431, "too-long", [f"the request's headers are over {max_header_bytes} bytes"])
    return None


async def _answer(send: Send, refusal: Refused) -> None:
    body = outcome_body(refusal.code, refusal.problems)
    headers = [(b"content-type", b"application/fhir+json"), (b"content-length", str(len(body)).encode())]
    if refusal.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
