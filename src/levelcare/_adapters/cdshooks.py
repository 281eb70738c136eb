"""A CDS Hooks 2.0 service: the level of care as a card when a clinician opens a patient's record.

``create_app(engine, config)`` is an ASGI application (Starlette); ``levelcare
serve`` runs it with uvicorn. It answers:

- ``GET /cds-services``: discovery, one ``patient-view`` service;
- ``POST /cds-services/{id}``: reads the patient's latest assessment
  QuestionnaireResponse from ``prefetch`` (or fetches it from the client's FHIR
  server with the access token it gave) and returns one card, with the decision as
  a GuidanceResponse in a ``systemActions`` create action;
- ``POST /cds-services/{id}/feedback``: accepted and overridden outcomes, each
  stored in the service's database and written to a :class:`FeedbackSink` (a JSON
  Lines file by default).

Issued cards, the ids of the tokens seen and feedback live in one SQLite file
(:attr:`ServiceConfig.database`), which worker processes share and restarts keep.

It never fails open: a request it cannot answer gets an error status with an
OperationOutcome, never an empty card list. Logs name requests, never fact values.

Needs the ``server`` extra: ``pip install "levelcare[server]"``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import ipaddress
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._model import Decision, Level, Reason
from .._rulebase import RuleBase
from .._text import shorten, type_name
from ..exceptions import InvalidAssessment, InvalidOverride, LevelCareError
from . import _fhir, _fhirclient, _limits
from ._overrides import REASON_SYSTEM, REASONS, PlacementOverride, facts_digest, reason_codings
from ._store import IssuedCard, Store

__all__ = [
    "SERVICE_ID",
    "FeedbackSink",
    "JsonLinesSink",
    "ServiceConfig",
    "create_app",
    "is_loopback",
    "load_keys",
]

logger = logging.getLogger("levelcare.cdshooks")

SERVICE_ID = "levelcare-placement"
#: The prefetch key of the assessment.
PREFETCH_KEY = "assessment"
#: A feedback extension naming the level the person received (CDS Hooks feedback has no field for it).
RECEIVED_LEVEL_EXTENSION = "org.levelcare.received-level"
#: Asymmetric algorithms only: CDS Hooks requires ES384 and RS384; a shared secret is never accepted.
ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
_SUMMARY_LIMIT = 139
_UNVERIFIED_SUMMARY = "UNVERIFIED rules: "
_UNVERIFIED_DETAIL = (
    "**This rule base did not pass levelcare check**: the service runs it with --allow-unverified. "
    "Check the decision against the rules before relying on it.\n\n"
)
#: The longest ``jti`` remembered; a longer one is refused.
_MAX_JTI = 255
#: At most this many feedback problems are listed; the rest are counted.
_MAX_FEEDBACK_PROBLEMS = 20


class FeedbackSink(Protocol):
    """Where feedback records go. ``write`` must store the record or raise."""

    def write(self, record: Mapping[str, Any]) -> None: ...


class JsonLinesSink:
    """Appends each feedback record as one JSON line to a file (the default sink)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as stream:
            stream.write(line)
            stream.flush()
            os.fsync(stream.fileno())


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (localhost, 127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_keys(path: str | os.PathLike[str]) -> tuple[Any, ...]:
    """The public keys in a PEM file or a JWKS (JSON) file.

    Raises:
        LevelCareError: the file cannot be read or holds no usable public key.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        msg = f"{path}: cannot read the key file: {error.strerror or error}"
        raise LevelCareError(msg) from None
    jwks = text.lstrip().startswith("{")
    try:
        keys = (
            tuple(k.key for k in jwt.PyJWKSet.from_json(text).keys)
            if jwks
            else (load_pem_public_key(text.encode("ascii")),)
        )
    except (ValueError, TypeError, jwt.exceptions.PyJWKSetError, jwt.exceptions.PyJWKError) as error:
        msg = f"{path}: not a PEM public key or a JWKS: {type(error).__name__}"
        raise LevelCareError(msg) from None
    found = tuple(key for key in keys if isinstance(key, (RSAPublicKey, EllipticCurvePublicKey)))
    if not found:
        msg = (
            f"{path}: the JWKS holds no RSA or elliptic-curve public key"
            if jwks
            else f"{path}: not an RSA or elliptic-curve public key"
        )
        raise LevelCareError(msg)
    return found


@attrs.frozen(kw_only=True)
class ServiceConfig:
    """How the service runs.

    Attributes:
        public_url: The URL clients call, without the path (``https://cds.example.org``):
            a JWT's ``aud`` must be this URL followed by the endpoint's path.
        issuers: For each accepted ``iss``, the public keys its JWTs are signed with.
        auth: Whether requests must carry a valid JWT. Turn it off only for local
            use; ``levelcare serve`` refuses to without auth on any other host.
        sink: Where feedback records go.
        fhir_version: The FHIR version of the resources returned (``"R5"`` or ``"R4"``).
        fetch_timeout: Seconds the whole fetch from a client's FHIR server may take
            (connecting, sending and reading the answer).
        fhir_servers: Base URLs of the FHIR servers the service may fetch from for any
            client; a request naming another ``fhirServer`` gets 412 and nothing is
            contacted. ``https`` only, unless authentication is off and the server is
            on a loopback address.
        issuer_fhir_servers: For a JWT issuer, base URLs only its clients may name.
        max_fetch_bytes: The largest answer read from a FHIR server.
        max_body_bytes: The largest request body; a larger one gets 413 before it
            is read whole.
        body_timeout: Seconds a request body may take to arrive (408 after that).
        header_timeout: Seconds a request head may take to arrive (408 after that;
            under ``serve``).
        keep_alive_timeout: Seconds an idle keep-alive connection stays open (under
            ``serve``: uvicorn's ``timeout_keep_alive``).
        max_header_bytes: The largest request line and headers (431 beyond).
        max_token_bytes: The largest ``Authorization`` header (401 beyond).
        max_connections: Connections served at once under ``serve``; more get 503
            (uvicorn's ``limit_concurrency``).
        database: The SQLite file of issued cards, seen token ids and feedback,
            created (mode 0600) when absent; worker processes given the same file
            share it, and it outlives restarts. None keeps the state in a
            temporary file of this application only.
        max_token_lifetime: The longest lifetime (``exp - iat``, seconds) of a JWT
            accepted; each token's ``jti`` is remembered until its ``exp``.
        clock_skew: Seconds of clock difference allowed when checking ``exp``,
            ``iat`` and ``nbf``.
        retention_days: Cards and feedback older than this are deleted from the
            database (feedback stays in the sink).
    """

    public_url: str
    issuers: Mapping[str, tuple[Any, ...]] = attrs.field(factory=dict)
    auth: bool = True
    sink: FeedbackSink = attrs.field(factory=lambda: JsonLinesSink("levelcare-feedback.jsonl"))
    fhir_version: str = "R5"
    fetch_timeout: float = 10.0
    # The service's edge: which FHIR servers it contacts, and what a request may hold.
    fhir_servers: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    issuer_fhir_servers: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict)
    max_fetch_bytes: int = 5_000_000
    max_body_bytes: int = 2_000_000
    body_timeout: float = 10.0
    header_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_header_bytes: int = 131_072
    max_token_bytes: int = 16_384
    max_connections: int = 512
    # State shared by worker processes, and the token rules that use it.
    database: str | os.PathLike[str] | None = None
    max_token_lifetime: int = 300
    clock_skew: int = 30
    retention_days: float = 30.0

    def __attrs_post_init__(self) -> None:
        self._check_edge()
        if self.auth and not self.issuers:
            msg = "authentication is on but no issuer is configured: give each accepted iss and its public keys"
            raise LevelCareError(msg)
        if self.fhir_version not in _fhir.VERSIONS:
            msg = f"fhir_version: expected one of {', '.join(_fhir.VERSIONS)}, got {shorten(self.fhir_version)}"
            raise LevelCareError(msg)
        self._check_state_settings()

    def _check_state_settings(self) -> None:
        problems = []
        for name, low, high in (
            ("max_token_lifetime", 1, 86_400),
            ("clock_skew", 0, 600),
            ("retention_days", 1, 36_500),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                problems.append(f"{name}: expected a number from {low} to {high}, got {shorten(value)}")
        if problems:
            raise LevelCareError("; ".join(problems))

    def _check_edge(self) -> None:
        problems = [
            f"{name}: expected a positive number, got {shorten(value)}"
            for name, value in (
                ("fetch_timeout", self.fetch_timeout),
                ("max_fetch_bytes", self.max_fetch_bytes),
                ("max_body_bytes", self.max_body_bytes),
                ("body_timeout", self.body_timeout),
                ("header_timeout", self.header_timeout),
                ("keep_alive_timeout", self.keep_alive_timeout),
                ("max_header_bytes", self.max_header_bytes),
                ("max_token_bytes", self.max_token_bytes),
                ("max_connections", self.max_connections),
            )
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
        ]
        if problems:
            raise LevelCareError("; ".join(problems))
        self.fhir_allow_list()

    def fhir_allow_list(self) -> _fhirclient.AllowList:
        """The FHIR servers the service may contact, checked.

        Raises:
            LevelCareError: a URL is not a plain base URL, or is ``http`` where only
                ``https`` is allowed.
        """
        return _fhirclient.AllowList.build(self.fhir_servers, self.issuer_fhir_servers, auth=self.auth)


class _Failure(_limits.Refused):
    """A request that gets an error status and an OperationOutcome."""


def operation_outcome(code: str, problems: Sequence[str]) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text} for text in problems],
    }


def _failure_response(failure: _limits.Refused) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if failure.status == 401 else {}
    if failure.close:
        # The rest of the request was never read: this connection cannot carry another.
        headers["Connection"] = "close"
    body = operation_outcome(failure.code, failure.problems)
    return JSONResponse(body, status_code=failure.status, headers=headers, media_type="application/fhir+json")


class _Service:
    def __init__(self, engine: Any, config: ServiceConfig) -> None:
        self.engine = engine
        self.rulebase: RuleBase = engine.loaded_rulebase
        self.config = config
        self.store = Store(config.database, retention_days=config.retention_days)
        self.fhir_servers = config.fhir_allow_list()

    # --- authentication ----------------------------------------------------------------

    def authorise(self, request: Request) -> str | None:
        """Verify the request's bearer token and admit it once; its issuer (None with authentication off).

        Raises:
            _Failure: 401, naming what is wrong with the token.
        """
        if not self.config.auth:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Failure(401, "login", ["a JWT bearer token is required (Authorization: Bearer ...)"])
        try:
            jose, unverified = _unverified(token)
        except (ValueError, RecursionError):
            raise _Failure(401, "security", ["the bearer token is not a JWT"]) from None
        algorithm = jose.get("alg")
        issuer = unverified.get("iss")
        keys = self.config.issuers.get(issuer) if isinstance(issuer, str) else None
        if keys is None:
            raise _Failure(401, "security", [f"issuer {shorten(issuer)} is not accepted"])
        if algorithm not in ALGORITHMS:
            raise _Failure(
                401, "security", [f"algorithm {shorten(algorithm)} is not accepted; use one of {', '.join(ALGORITHMS)}"]
            )
        audience = self.config.public_url.rstrip("/") + request.url.path
        problem = "the signature matches none of the issuer's keys"
        # Only keys of the token's family (RSA or elliptic curve) can have signed it.
        family = RSAPublicKey if str(algorithm).startswith("RS") else EllipticCurvePublicKey
        for key in (k for k in keys if isinstance(k, family)):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[str(algorithm)],
                    audience=audience,
                    issuer=issuer,
                    leeway=self.config.clock_skew,
                    options={"require": ["exp", "iat", "iss", "aud", "jti"]},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                problem = "the token has expired"
            except jwt.InvalidAudienceError:
                problem = f"the token's aud is not this endpoint ({audience})"
            except jwt.MissingRequiredClaimError as error:
                problem = f"the token has no {error.claim} claim"
            except jwt.InvalidTokenError as error:
                problem = f"the token is not valid ({type(error).__name__})"
            else:
                self.admit(str(issuer), claims)
                return str(issuer)
            break
        raise _Failure(401, "security", [problem])

    def admit(self, issuer: str, claims: Mapping[str, Any]) -> None:
        """Accept a verified token once: a short lifetime, and a ``jti`` never seen before."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI:
            raise _Failure(401, "security", [f"the token's jti must be a string of 1 to {_MAX_JTI} characters"])
        try:
            # PyJWT has read both as integers already; integers cannot overflow as floats can.
            issued, expires = int(claims["iat"]), int(claims["exp"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise _Failure(401, "security", ["the token's iat and exp must be NumericDate values"]) from None
        lifetime = expires - issued
        limit = self.config.max_token_lifetime
        if lifetime > limit:
            raise _Failure(
                401,
                "security",
                [f"the token's lifetime (exp - iat) is {lifetime} s; this service accepts at most {limit} s"],
            )
        # Remembered past its exp by the skew, as long as the token could still pass.
        if not self.store.claim_token(issuer, jti, expires=expires + self.config.clock_skew):
            raise _Failure(
                401, "security", ["the token was used before (its jti is known): each request needs its own"]
            )

    # --- discovery ---------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        info = self.rulebase.info
        url = _fhir.questionnaire_url(info)
        return {
            "services": [
                {
                    "hook": "patient-view",
                    "id": SERVICE_ID,
                    "title": f"Level of care ({info.name} {info.version})",
                    "description": "Recommends a level of care for a substance use disorder from the patient's latest "
                    "assessment QuestionnaireResponse, with every reason and source.",
                    "prefetch": {
                        PREFETCH_KEY: f"QuestionnaireResponse?subject=Patient/{{{{context.patientId}}}}"
                        f"&questionnaire={url}&_sort=-authored&_count=1",
                    },
                    "usageRequirements": "Patients assessed with the questionnaire levelcare.fhir.questionnaire() "
                    f"generates ({url}).",
                }
            ]
        }

    # --- the hook ----------------------------------------------------------------------

    async def call(self, body: Mapping[str, Any], *, issuer: str | None = None) -> dict[str, Any]:
        problems: list[str] = []
        if body.get("hook") != "patient-view":
            problems.append(f"hook: expected 'patient-view', got {shorten(body.get('hook'))}")
        instance = body.get("hookInstance")
        if not isinstance(instance, str) or not instance:
            problems.append("hookInstance: expected a string")
        context = body.get("context")
        patient = context.get("patientId") if isinstance(context, Mapping) else None
        if not isinstance(patient, str) or not patient:
            problems.append("context.patientId: expected a string")
        prefetch = body.get("prefetch", {})
        if prefetch is not None and not isinstance(prefetch, Mapping):
            problems.append(f"prefetch: expected an object, got {type_name(prefetch)}")
        if problems:
            raise _Failure(400, "invalid", problems)
        data = (prefetch or {}).get(PREFETCH_KEY)
        if data is None:
            data = await self.fetch(body, str(patient), issuer=issuer)
        response = self.latest(data, str(patient))
        return {"cards": [self.card(response, str(patient), str(instance))]}

    async def fetch(self, body: Mapping[str, Any], patient: str, *, issuer: str | None = None) -> Any:
        """The assessment search on the request's ``fhirServer``, if the operator allows that server.

        Raises:
            _Failure: 412 when there is nothing to fetch with, the server is not
                allowed (then nothing is contacted), or the fetch fails.
        """
        server = body.get("fhirServer")
        auth = body.get("fhirAuthorization")
        token = auth.get("access_token") if isinstance(auth, Mapping) else None
        if not isinstance(server, str) or not isinstance(token, str):
            raise _Failure(
                412,
                "not-found",
                [f"prefetch.{PREFETCH_KEY} is missing and no fhirServer with fhirAuthorization was given to fetch it"],
            )
        params = {
            "subject": f"Patient/{patient}",
            "questionnaire": _fhir.questionnaire_url(self.rulebase.info),
            "_sort": "-authored",
            "_count": "1",
        }
        try:
            base = self.fhir_servers.allowed(server, issuer)
            return await _fhirclient.search(
                base,
                "QuestionnaireResponse",
                params,
                token,
                timeout=self.config.fetch_timeout,
                max_bytes=self.config.max_fetch_bytes,
            )
        except _fhirclient.FetchFailed as error:
            raise _Failure(412, "not-found", [str(error)]) from None

    def latest(self, data: Any, patient: str) -> Mapping[str, Any]:
        """The newest assessment in a prefetched (or fetched) resource or Bundle."""
        url = _fhir.questionnaire_url(self.rulebase.info)
        found: list[Mapping[str, Any]]
        if isinstance(data, Mapping) and data.get("resourceType") == "Bundle":
            entries = data.get("entry") or []
            resources = (
                [e.get("resource") for e in entries if isinstance(e, Mapping)] if isinstance(entries, list) else []
            )
            found = [r for r in resources if isinstance(r, Mapping)]
        elif isinstance(data, Mapping):
            found = [data]
        else:
            raise _Failure(
                400, "invalid", [f"prefetch.{PREFETCH_KEY}: expected a resource or a Bundle, got {type_name(data)}"]
            )
        responses = [
            r
            for r in found
            if r.get("resourceType") == "QuestionnaireResponse"
            and r.get("status") != "entered-in-error"
            and str(r.get("questionnaire", url)).split("|")[0] == url
        ]
        if not responses:
            raise _Failure(412, "not-found", [f"no assessment QuestionnaireResponse ({url}) for this patient"])
        newest = max(responses, key=lambda r: _instant(r.get("authored")))
        subject = newest.get("subject")
        reference = subject.get("reference") if isinstance(subject, Mapping) else None
        if reference is not None and reference not in (f"Patient/{patient}", patient):
            raise _Failure(400, "invalid", ["the assessment's subject is not the patient in context"])
        return newest

    def card(self, response: Mapping[str, Any], patient: str, instance: str) -> dict[str, Any]:
        info = self.rulebase.info
        card_id = str(uuid.uuid4())
        source = {
            "label": f"levelcare {info.name} {info.version}",
            "topic": {"system": _fhir.module_url(info), "code": "level-of-care", "display": "Level of care"},
        }
        try:
            facts = _fhir.assessment_from_response(response, self.engine)
        except InvalidAssessment as error:
            # The last listed problem may be the count of those not listed.
            lines = [f"- `{p.fact}`: {p.message}" if p.fact else f"- {p.message}" for p in error.problems]
            count = len(error.problems) - bool(error.omitted) + error.omitted
            # Feedback on this card is welcome too: remember it, with no decision behind it.
            self.store.add_card(
                IssuedCard(
                    uuid=card_id,
                    issued_at=time.time(),
                    indicated=None,
                    rulebase_sha256=info.sha256,
                    facts_sha256=None,
                    suggestion=None,
                )
            )
            return {
                "uuid": card_id,
                "summary": f"Level of care: the latest assessment cannot be read ({count:,} problem{'s' * (count != 1)})",
                "indicator": "warning",
                "detail": "**The latest assessment cannot be read**; correct it and open the record again.\n\n"
                + "\n".join(lines),
                "source": source,
            }
        decision = self.engine.decide(facts, as_of=_aware(response.get("authored")))
        current = facts.get("current_level")
        suggestion = None if decision.level is None else str(uuid.uuid4())
        self.store.add_card(
            IssuedCard(
                uuid=card_id,
                issued_at=time.time(),
                indicated=None if decision.level is None else decision.level.id,
                rulebase_sha256=info.sha256,
                # The decision's digest of its validated facts is the same: no second validation.
                facts_sha256=decision.input_sha256 or facts_digest(facts, self.engine),
                suggestion=suggestion,
            )
        )
        guidance = _fhir.guidance_response(
            decision, self.engine, self.config.fhir_version, subject=f"Patient/{patient}", request_id=instance
        )
        card: dict[str, Any] = {
            "uuid": card_id,
            "summary": _summary(decision, None if current is None else self.rulebase.levels[str(current)]),
            "indicator": "critical" if decision.emergency else ("info" if decision.complete else "warning"),
            "detail": _detail(decision, self.rulebase),
            "source": source,
        }
        if decision.level is not None and suggestion is not None:
            card["suggestions"] = [self.suggestion(decision.level, patient, suggestion)]
            card["selectionBehavior"] = "at-most-one"
            card["overrideReasons"] = reason_codings()
        if info.unverified:
            # Run with --allow-unverified: the clinician must know before acting on it.
            card["summary"] = _UNVERIFIED_SUMMARY + card["summary"][: _SUMMARY_LIMIT - len(_UNVERIFIED_SUMMARY)]
            card["indicator"] = "critical" if decision.emergency else "warning"
            card["detail"] = _UNVERIFIED_DETAIL + card["detail"]
        card["_guidance"] = guidance
        return card

    def suggestion(self, level: Level, patient: str, suggestion: str) -> dict[str, Any]:
        """The referral to ``level`` as a suggestion the clinician can accept."""
        resource = _fhir.service_request(level, self.engine, self.config.fhir_version, subject=f"Patient/{patient}")
        return {
            "label": f"Refer to {level.label}",
            "uuid": suggestion,
            "isRecommended": True,
            "actions": [
                {"type": "create", "description": f"A referral to {level.label} (ServiceRequest)", "resource": resource}
            ],
        }

    # --- feedback ----------------------------------------------------------------------

    def feedback(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        items = body.get("feedback")
        if not isinstance(items, list) or not items:
            raise _Failure(400, "invalid", ["feedback: expected a non-empty list"])
        problems: list[str] = []
        records: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            where = f"feedback[{index}]"
            if not isinstance(item, Mapping):
                problems.append(f"{where}: expected an object, got {type_name(item)}")
                continue
            record, found = self.feedback_record(item, where)
            problems += found
            if record is not None:
                records.append(record)
            if len(problems) > _MAX_FEEDBACK_PROBLEMS:
                # A bounded answer for an unbounded list; the first problems say what to fix.
                break
        if problems:
            if len(problems) > _MAX_FEEDBACK_PROBLEMS:
                problems = [*problems[:_MAX_FEEDBACK_PROBLEMS], "more problems follow; correct these first"]
            raise _Failure(400, "invalid", problems)
        return records

    def feedback_record(self, item: Mapping[str, Any], where: str) -> tuple[dict[str, Any] | None, list[str]]:
        problems: list[str] = []
        card_id = item.get("card")
        issued = self.store.card(card_id) if isinstance(card_id, str) and len(card_id) <= 64 else None
        if issued is None:
            days = self.config.retention_days
            problems.append(
                f"{where}.card: {shorten(card_id)} is not a card this service issued (or it is older than the "
                f"retention of {days:g} days)"
            )
        outcome = item.get("outcome")
        if outcome not in ("accepted", "overridden"):
            problems.append(f"{where}.outcome: expected 'accepted' or 'overridden', got {shorten(outcome)}")
        when = item.get("outcomeTimestamp")
        if not isinstance(when, str) or _aware(when) is None:
            problems.append(
                f"{where}.outcomeTimestamp: expected an ISO 8601 instant with its offset, got {shorten(when)}"
            )
        accepted = _accepted_suggestions(item.get("acceptedSuggestions"), outcome, issued, where, problems)
        reason = item.get("overrideReason")
        code = _override_reason(reason, outcome, where, problems)
        extension = item.get("extension")
        received = extension.get(RECEIVED_LEVEL_EXTENSION) if isinstance(extension, Mapping) else None
        # With one of levelcare's reasons, the placement override checks the level itself.
        placement = code is not None and issued is not None and issued.indicated is not None
        if (
            not placement
            and received is not None
            and (not isinstance(received, str) or received not in self.rulebase.levels.ids)
        ):
            levels = ", ".join(self.rulebase.levels.ids)
            problems.append(
                f"{where}.extension.{RECEIVED_LEVEL_EXTENSION}: {shorten(received)} is not a level of this rule "
                f"base; use one of {levels}"
            )
        if problems or issued is None:
            return None, problems
        record: dict[str, Any] = {
            "service": SERVICE_ID,
            "card": card_id,
            "outcome": outcome,
            "outcomeTimestamp": when,
            "indicated_level": issued.indicated,
            "rulebase_sha256": issued.rulebase_sha256,
            "facts_sha256": issued.facts_sha256,
            "override": None,
        }
        if outcome == "accepted":
            record["acceptedSuggestions"] = accepted
        else:
            # The EHR's own words, whatever their code system: as given, for analysts.
            record["overrideReason"] = None if reason is None else dict(reason)
            record["received_level"] = received
        if placement and issued.indicated is not None and issued.facts_sha256 is not None:
            comment = reason.get("userComment") if isinstance(reason, Mapping) else None
            try:
                override = PlacementOverride.from_dict(
                    {
                        "indicated_level": issued.indicated,
                        "received_level": received,
                        "reasons": [code],
                        "text": comment if isinstance(comment, str) else "",
                        "rulebase_sha256": issued.rulebase_sha256,
                        "facts_sha256": issued.facts_sha256,
                        "recorded_at": when,
                    },
                    self.engine,
                )
            except InvalidOverride as error:
                return None, [f"{where}: {p}" for p in error.problems]
            record["override"] = override.to_dict()
        return record, []


def _accepted_suggestions(
    value: object, outcome: object, issued: IssuedCard | None, where: str, problems: list[str]
) -> list[str]:
    """The uuids of the accepted suggestions, each checked against the card's."""
    if value is None:
        return []
    where = f"{where}.acceptedSuggestions"
    if outcome != "accepted":
        problems.append(f"{where}: only an accepted card has accepted suggestions")
        return []
    if not isinstance(value, list):
        problems.append(f"{where}: expected a list of {{'id': uuid}}, got {type_name(value)}")
        return []
    found: list[str] = []
    for index, entry in enumerate(value[:_MAX_FEEDBACK_PROBLEMS]):
        suggestion = entry.get("id") if isinstance(entry, Mapping) else None
        if not isinstance(suggestion, str):
            problems.append(f"{where}[{index}].id: expected the uuid of a suggestion, got {shorten(suggestion)}")
        elif issued is not None and suggestion != issued.suggestion:
            problems.append(f"{where}[{index}].id: {shorten(suggestion)} is not a suggestion of this card")
        else:
            found.append(suggestion)
    if len(value) > _MAX_FEEDBACK_PROBLEMS:
        problems.append(f"{where}: {len(value)} entries; a card of this service has one suggestion")
    return found


def _override_reason(value: object, outcome: object, where: str, problems: list[str]) -> str | None:
    """Check an override reason; the levelcare reason code it names, if any.

    CDS Hooks lets the client give a reason, a comment or both, and its own codings
    beside the card's: any code system is recorded; a coding of levelcare's own
    system must use one of its codes.
    """
    if value is None:
        return None
    where = f"{where}.overrideReason"
    if outcome != "overridden":
        problems.append(f"{where}: only an overridden card has an override reason")
    if not isinstance(value, Mapping):
        problems.append(f"{where}: expected an object with reason, userComment or both, got {type_name(value)}")
        return None
    coding, comment = value.get("reason"), value.get("userComment")
    if coding is None and comment is None:
        problems.append(f"{where}: give a reason, a userComment or both")
    if comment is not None and not isinstance(comment, str):
        problems.append(f"{where}.userComment: expected a string, got {type_name(comment)}")
    if coding is None:
        return None
    if not isinstance(coding, Mapping):
        problems.append(f"{where}.reason: expected a Coding (system, code, display), got {type_name(coding)}")
        return None
    code, system = coding.get("code"), coding.get("system")
    if not isinstance(code, str) or not code:
        problems.append(f"{where}.reason.code: expected a string, got {shorten(code)}")
        return None
    if system is not None and not isinstance(system, str):
        problems.append(f"{where}.reason.system: expected a URI string, got {type_name(system)}")
        return None
    if system == REASON_SYSTEM or (system is None and code in REASONS):
        if code not in REASONS:
            problems.append(f"{where}.reason: expected a coding of {REASON_SYSTEM} ({', '.join(REASONS)})")
            return None
        return code
    return None


def _unverified(token: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The header and claims of a compact JWS, unverified: only to choose the issuer's keys and the algorithm.

    PyJWT then parses and verifies the token in full; reading it once here, instead
    of through PyJWT's own unverified decoding (twice), saves two strict parses a request.

    Raises:
        ValueError: not three base64url parts with JSON objects in the first two.
    """
    parts = token.split(".")
    if len(parts) != 3:
        msg = "not a compact JWS"
        raise ValueError(msg)
    header, claims = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in parts[:2])
    if not isinstance(header, dict) or not isinstance(claims, dict):
        msg = "not JSON objects"
        raise ValueError(msg)  # noqa: TRY004 - the client's bad input, like the token's other parse errors
    return header, claims


def _instant(value: object) -> _dt.datetime:
    found = _aware(value)
    return found if found is not None else _dt.datetime.min.replace(tzinfo=_dt.UTC)


def _aware(value: object) -> _dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        found = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return found if found.utcoffset() is not None else None


def _summary(decision: Decision, current: Level | None) -> str:
    low, high = decision.level_range
    if decision.level is None:
        count = len(decision.missing)
        text = f"Level of care undecided: {count} fact{'s' * (count != 1)} needed ({low.label} to {high.label})"
    else:
        transition = decision.transition.value if decision.transition is not None else "admit"
        move = transition if current is None or transition == "admit" else f"{transition} from {current.label}"
        text = f"Level of care: {decision.level.label} ({move})"
    if decision.emergency:
        text = "Emergency response needed. " + text
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 3] + "..."


#: Each character that could open a Markdown construct, escaped.
_MARKDOWN_ESCAPES = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|"})


def _markdown(text: str) -> str:
    # Rule text is data: keep it from opening Markdown constructs.
    return text.translate(_MARKDOWN_ESCAPES)


@functools.lru_cache(maxsize=4096)
def _reason_lines(reason: Reason) -> tuple[str, ...]:
    """A reason as Markdown list lines.

    The engine shares one Reason object among the decisions it gives, so the lines of
    a reason are written once, not on every card.
    """
    level = "" if reason.level is None else f" ({_markdown(reason.level.label)})"
    facts = ", ".join(f"{k}={'unknown' if v is None else json.dumps(v)}" for k, v in reason.facts.items())
    lines = [f"- **{_markdown(reason.rule_id)}**{level}: {_markdown(reason.statement)}"]
    if facts:
        # A code span shows fact names as they are; a backtick would close it.
        lines.append(f"  Facts: `{facts.replace('`', chr(39))}`.")
    if reason.sources:
        lines.append(f"  Sources: {', '.join(_markdown(s) for s in reason.sources)}.")
    return tuple(lines)


def _detail(decision: Decision, rulebase: RuleBase) -> str:
    info = rulebase.info
    titles = {s.id: s.title for s in rulebase.sources}
    used: list[str] = []

    def items(reasons: Sequence[Any]) -> list[str]:
        lines: list[str] = []
        for reason in reasons:
            lines += _reason_lines(reason)
            used.extend(s for s in reason.sources if s not in used)
        return lines

    if decision.level is None:
        low, high = decision.level_range
        head = f"**Level undecided**: between {low.label} and {high.label} until these facts are known:"
        parts = [
            head,
            "",
            *[f"- `{name}`: {_markdown(rulebase.vocabulary[name].meaning)}" for name in decision.missing],
        ]
    else:
        move = "" if decision.transition is None else f" ({decision.transition.value})"
        parts = [f"**Level: {_markdown(decision.level.label)}**{move}"]
    if decision.emergency:
        parts += ["", "**An immediate crisis response is needed.**"]
    for title, reasons in (
        ("Reasons", decision.reasons),
        ("Ruled out", decision.ruled_out),
        ("Considerations", decision.considerations),
    ):
        if reasons:
            parts += ["", f"**{title}**", "", *items(reasons)]
    if used:
        parts += ["", "**Sources**", "", *[f"- {_markdown(s)}: {_markdown(titles.get(s, s))}" for s in used]]
    parts += ["", f"Rule base {_markdown(info.name)} {_markdown(info.version)} (sha256 {info.sha256[:12]})."]
    return "\n".join(parts)


# --- the application ------------------------------------------------------------------


async def _json_body(request: Request, config: ServiceConfig) -> Mapping[str, Any]:
    raw = await _limits.read_body(request, max_bytes=config.max_body_bytes, timeout=config.body_timeout)
    return _limits.json_object(raw)


async def _http_error(request: Request, error: Exception) -> Response:
    """An OperationOutcome for Starlette's own answers: an unknown path (404) or method (405)."""
    status = getattr(error, "status_code", 500)
    headers = dict(getattr(error, "headers", None) or {})
    if status == 405:
        allowed = ", ".join(sorted(headers.get("Allow", "").split(", ")))
        problem = f"{shorten(request.method)} is not allowed on {shorten(request.url.path)}; use {allowed}"
        failure = _Failure(405, "not-supported", [problem])
    elif status == 404:
        failure = _Failure(404, "not-found", [f"no endpoint {shorten(request.url.path)}; see GET /cds-services"])
    else:
        failure = _Failure(status, "processing", [f"the request was refused ({status})"])
    response = _failure_response(failure)
    response.headers.update(headers)
    return response


def _guarded(name: str, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Every answer is either the handler's or an OperationOutcome: never an empty card list."""

    async def run(request: Request) -> Response:
        try:
            response = await handler(request)
        except _limits.Refused as failure:
            logger.info("%s: %d %s", name, failure.status, failure.code)
            return _failure_response(failure)
        except Exception as error:  # noqa: BLE001 - the service must answer, and never with no cards
            # The class only: messages and tracebacks can hold assessment values.
            logger.error("%s: internal error %s", name, type(error).__name__)  # noqa: TRY400 - no traceback
            what = "the feedback was not stored" if name == "feedback" else "no guidance could be given"
            internal = _Failure(500, "exception", [f"internal error: {what}; see the service's log"])
            return _failure_response(internal)
        logger.info("%s: %d", name, response.status_code)
        return response

    return run


def create_app(engine: Any, config: ServiceConfig) -> Starlette:
    """The CDS Hooks service for ``engine``'s rule base, as an ASGI application."""
    if not isinstance(getattr(engine, "_rb", None), RuleBase):
        msg = f"engine: expected a levelcare.Engine, got {type_name(engine)}"
        raise LevelCareError(msg)
    service = _Service(engine, config)

    async def discovery(request: Request) -> Response:
        return JSONResponse(service.discovery())

    def known(request: Request) -> None:
        found = request.path_params["service"]
        if found != SERVICE_ID:
            raise _Failure(404, "not-found", [f"no service {shorten(found)}; this server has {SERVICE_ID!r}"])

    async def call(request: Request) -> Response:
        known(request)
        issuer = service.authorise(request)
        body = await _json_body(request, config)
        answer = await service.call(body, issuer=issuer)
        actions = []
        for card in answer["cards"]:
            guidance = card.pop("_guidance", None)
            if guidance is not None:
                actions.append(
                    {"type": "create", "description": "The decision as a GuidanceResponse", "resource": guidance}
                )
        if actions:
            answer["systemActions"] = actions
        indicators = ",".join(card["indicator"] for card in answer["cards"])
        logger.info("%s: card %s", SERVICE_ID, indicators)
        return JSONResponse(answer)

    async def feedback(request: Request) -> Response:
        known(request)
        service.authorise(request)
        records = service.feedback(await _json_body(request, config))

        def export(stored: Sequence[Mapping[str, Any]]) -> None:
            for record in stored:
                config.sink.write(record)

        service.store.add_feedback(records, export=export)
        return JSONResponse({"stored": len(records)})

    routes = [
        Route("/cds-services", _guarded("discovery", discovery), methods=["GET"]),
        Route("/cds-services/{service}", _guarded("service", call), methods=["POST"]),
        Route("/cds-services/{service}/feedback", _guarded("feedback", feedback), methods=["POST"]),
    ]
    limits = Middleware(
        _limits.HeaderLimits, max_header_bytes=config.max_header_bytes, max_token_bytes=config.max_token_bytes
    )
    return Starlette(routes=routes, middleware=[limits], exception_handlers={HTTPException: _http_error})
