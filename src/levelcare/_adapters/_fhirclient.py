"""The CDS Hooks service's FHIR client: it contacts only the FHIR servers the operator allows.

A CDS Hooks request names the FHIR server to fetch from (``fhirServer``) and hands over
an access token for it (``fhirAuthorization``). Left unchecked, that makes the service
connect wherever a request says and carry the token there. So the operator lists the
base URLs the service may contact (:class:`AllowList`), for every client or for one
issuer; a request naming any other server is refused before any connection is made.

Both the allowed URLs and the requested one are parsed strictly and compared as
normalised parts (scheme, host, port, path segments): anything a parser could read two
ways (userinfo, percent-encoding, ``.`` or ``..`` segments, a trailing dot on the host,
a non-ASCII host, backslashes) is refused rather than normalised. The URL fetched is
built from the parts compared, so the server contacted is the one that was allowed.
The fetch follows no redirect, reads no proxy or ``.netrc`` settings from the
environment, asks for an uncompressed answer, and stops at a size limit and a deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import httpx

from .._text import shorten
from ..exceptions import LevelCareError
from . import _limits

#: The largest URL accepted as a FHIR server base.
_MAX_URL = 2048
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# RFC 3986 pchar without '%': a segment that needs percent-encoding is refused.
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>/[^?#]*)?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchFailed(Exception):
    """The assessment could not be fetched; the message says why (it becomes a 412)."""


@attrs.frozen
class Base:
    """A FHIR server's base URL as normalised parts."""

    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]

    @property
    def url(self) -> str:
        """The URL, with the port only where it is not the scheme's default."""
        port = "" if _DEFAULT_PORTS[self.scheme] == self.port else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}" + "".join(f"/{s}" for s in self.segments)

    def covers(self, other: Base) -> bool:
        """Whether ``other`` is this base or a path below it, on the same scheme, host and port."""
        same_origin = (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)
        return same_origin and other.segments[: len(self.segments)] == self.segments

    @property
    def loopback(self) -> bool:
        """Whether the host is this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_base(text: object) -> Base:
    """``text`` as a FHIR server base URL, parsed strictly.

    Raises:
        ValueError: the URL is not an ``http`` or ``https`` base URL in plain form; the
            message says what to change.
    """
    if not isinstance(text, str):
        msg = "expected a URL string"
        raise ValueError(msg)  # noqa: TRY004 - a request's or setting's bad value, like every other URL problem
    if len(text) > _MAX_URL:
        msg = f"the URL is over {_MAX_URL} characters"
        raise ValueError(msg)
    if not text.isascii():
        msg = "the URL holds non-ASCII characters; give the host in its ASCII (xn--) form"
        raise ValueError(msg)
    if any(c in text for c in "%\\") or any(ord(c) <= 32 or ord(c) == 127 for c in text):
        msg = "the URL holds percent-encoding, a backslash, a space or a control character"
        raise ValueError(msg)
    match = _URL.fullmatch(text)
    if match is None:
        msg = "expected scheme://host[:port][/path], with no query or fragment"
        raise ValueError(msg)
    scheme = match["scheme"].lower()
    if scheme not in _DEFAULT_PORTS:
        msg = f"the scheme must be https (or http), got {shorten(scheme)}"
        raise ValueError(msg)
    host, port = _authority(match["authority"], scheme)
    path = match["path"] or ""
    segments = tuple(path.split("/")[1:])
    if segments and segments[-1] == "":
        segments = segments[:-1]
    for segment in segments:
        if segment in ("", ".", "..") or _SEGMENT.fullmatch(segment) is None:
            msg = "the path has an empty, '.' or '..' segment, or characters a base URL does not need"
            raise ValueError(msg)
    return Base(scheme, host, port, segments)


def _authority(authority: str, scheme: str) -> tuple[str, int]:
    if "@" in authority:
        msg = "the URL has user information (user@host); credentials never go in a FHIR server URL"
        raise ValueError(msg)
    if authority.startswith("["):
        host, bracket, rest = authority[1:].partition("]")
        msg = "the host is not a valid IPv6 address"
        if not bracket:
            raise ValueError(msg)
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(msg) from None
        port_text = rest[1:] if rest.startswith(":") else None
        if rest and port_text is None:
            msg = "expected [IPv6]:port"
            raise ValueError(msg)
    else:
        host, colon, port_text_found = authority.partition(":")
        port_text = port_text_found if colon else None
        host = host.lower()
        if not host or host.endswith("."):
            msg = "the host is empty or ends with a dot"
            raise ValueError(msg)
        if not all(_LABEL.fullmatch(label) for label in host.split(".")):
            msg = "the host is not a DNS name or an IPv4 address"
            raise ValueError(msg)
    if port_text is None:
        return host, _DEFAULT_PORTS[scheme]
    if not (port_text.isdigit() and 0 < int(port_text) < 65536 and len(port_text) <= 5):
        msg = "the port is not a number from 1 to 65535"
        raise ValueError(msg)
    return host, int(port_text)


@attrs.frozen
class AllowList:
    """The FHIR servers the service may contact.

    Attributes:
        everyone: Bases any client may name.
        by_issuer: Bases only the clients of one JWT issuer may name.
    """

    everyone: tuple[Base, ...] = ()
    by_issuer: Mapping[str, tuple[Base, ...]] = attrs.field(factory=dict)

    @classmethod
    def build(cls, servers: Iterable[str], by_issuer: Mapping[str, Iterable[str]], *, auth: bool) -> AllowList:
        """The allow list of the configured URLs.

        With authentication on, every server must be ``https``: the access token and
        the patient's data cross the network. ``http`` is for a development setup
        only: authentication off and the server on a loopback address.

        Raises:
            LevelCareError: every URL that is not a valid base or breaks that rule.
        """
        problems: list[str] = []

        def parsed(urls: Iterable[str], where: str) -> tuple[Base, ...]:
            found: list[Base] = []
            for url in urls:
                try:
                    base = parse_base(url)
                except ValueError as error:
                    problems.append(f"{where}: {shorten(url)}: {error}")
                    continue
                if base.scheme == "http" and (auth or not base.loopback):
                    problems.append(
                        f"{where}: {shorten(url)}: use https; http is only for a loopback server "
                        "with authentication off"
                    )
                    continue
                found.append(base)
            return tuple(found)

        everyone = parsed(servers, "fhir_servers")
        issuers = {iss: parsed(urls, f"issuer_fhir_servers[{shorten(iss)}]") for iss, urls in by_issuer.items()}
        if problems:
            shown = problems[: _limits.MAX_PROBLEMS]
            if len(problems) > len(shown):
                shown.append(f"... and {len(problems) - len(shown)} more")
            raise LevelCareError("; ".join(shown))
        return cls(everyone, issuers)

    def allowed(self, server: object, issuer: str | None) -> Base:
        """The base to fetch from for a request naming ``server``, from a client of ``issuer``.

        Raises:
            FetchFailed: ``server`` is not a valid base URL or not one this list allows.
        """
        try:
            base = parse_base(server)
        except ValueError as error:
            msg = f"fhirServer: {shorten(server)} is not a FHIR server URL this service accepts ({error})"
            raise FetchFailed(msg) from None
        bases = self.everyone + (self.by_issuer.get(issuer, ()) if issuer is not None else ())
        if not any(allowed.covers(base) for allowed in bases):
            msg = f"fhirServer: {shorten(server)} is not a FHIR server this service is allowed to contact"
            raise FetchFailed(msg)
        return base


async def search(
    base: Base, resource: str, params: Mapping[str, str], token: str, *, timeout: float, max_bytes: int
) -> Any:
    """A FHIR search on ``base``, with ``token`` as the Bearer token, as parsed JSON.

    Args:
        base: The (allowed) server.
        resource: The resource type searched.
        params: The search parameters.
        token: The access token the client gave for this server.
        timeout: Seconds for the whole exchange: connecting, sending and reading.
        max_bytes: The largest answer read.

    Returns:
        The JSON of the answer.

    Raises:
        FetchFailed: the server could not be reached, answered anything but 200 (a
            redirect included), answered too much or too slowly, or not with JSON.
    """
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json", "Accept-Encoding": "identity"}
    chunks: list[bytes] = []
    size = 0
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream("GET", f"{base.url}/{resource}", params=params, headers=headers) as answer,
        ):
            if answer.status_code != 200:
                what = " (a redirect, which is never followed)" if answer.is_redirect else ""
                msg = f"the FHIR server answered {answer.status_code} to the assessment search{what}"
                raise FetchFailed(msg)
            if answer.headers.get("content-encoding", "identity").lower() != "identity":
                msg = "the FHIR server answered compressed data although it was asked not to"
                raise FetchFailed(msg)
            declared = answer.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                msg = f"the FHIR server's answer is over {max_bytes} bytes"
                raise FetchFailed(msg)
            async for chunk in answer.aiter_raw():
                size += len(chunk)
                if size > max_bytes:
                    msg = f"the FHIR server's answer is over {max_bytes} bytes"
                    raise FetchFailed(msg)
                chunks.append(chunk)
    except TimeoutError:
        msg = f"the FHIR server did not answer within {timeout:g} seconds"
        raise FetchFailed(msg) from None
    except httpx.HTTPError as error:
        msg = f"the assessment could not be fetched ({type(error).__name__})"
        raise FetchFailed(msg) from None
    try:
        return _limits.parse_json(b"".join(chunks), what="the FHIR server's answer")
    except _limits.Refused as refused:
        raise FetchFailed(refused.problems[0]) from None
