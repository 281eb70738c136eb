"""The CDS Hooks service, started for real on 127.0.0.1 and called over HTTP.

Every FHIR resource the service returns is checked with the fhir.resources models.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conftest import EXAMPLES_DIR
from inprocess import run_levelcare
from levelcare import Engine, LevelCareError, fhir
from levelcare._adapters import _serving, _store, cdshooks
from levelcare.overrides import REASON_SYSTEM, REASONS, PlacementOverride, facts_digest

ISSUER = "https://ehr.test/cds-client"
SERVICE = f"/cds-services/{cdshooks.SERVICE_ID}"


@contextlib.contextmanager
def running(make_app: Any) -> Iterator[str]:
    """Serve ``make_app(base_url)`` with uvicorn in a thread on a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(make_app(base), log_config=None, ws="none", lifespan="off", http="h11")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class Keys:
    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def token(self, aud: str, *, iss: str = ISSUER, key: Any = None, exp: int = 300, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": iss, "aud": aud, "exp": now + exp, "iat": now, "jti": str(uuid.uuid4()), **claims}
        return jwt.encode(payload, key or self.private, algorithm="RS384", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def feedback_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feedback") / "feedback.jsonl"


@pytest.fixture(scope="module")
def service(engine: Engine, keys: Keys, feedback_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pem = tmp_path_factory.mktemp("keys") / "client.pem"
    pem.write_bytes(keys.public_pem())

    def make(base: str) -> Any:
        config = cdshooks.ServiceConfig(
            public_url=base,
            issuers={ISSUER: cdshooks.load_keys(pem)},
            sink=cdshooks.JsonLinesSink(feedback_file),
        )
        return cdshooks.create_app(engine, config)

    with running(make) as base:
        yield base


def example_facts(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES_DIR / f"{name}.json").read_text(encoding="utf-8"))["facts"])


def assessment(engine: Engine, facts: dict[str, Any], *, authored: str, patient: str = "p1") -> dict[str, Any]:
    response = fhir.response_for(facts, engine)
    response["authored"] = authored
    response["subject"] = {"reference": f"Patient/{patient}"}
    return response


def request(prefetch: Any = None, *, patient: str = "p1", **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/d1", "patientId": patient},
        **more,
    }
    if prefetch is not None:
        body["prefetch"] = {"assessment": prefetch}
    return body


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def post(base: str, path: str, body: Any, keys: Keys | None, **token: Any) -> httpx.Response:
    headers = {} if keys is None else {"Authorization": f"Bearer {keys.token(base + path, **token)}"}
    return httpx.post(base + path, json=body, headers=headers, timeout=30)


def outcome(response: httpx.Response, status: int) -> list[str]:
    """The diagnostics of an OperationOutcome answer, checked against the FHIR model."""
    assert response.status_code == status, response.text
    model = fhir.to_model(response.json())
    assert model.get_resource_type() == "OperationOutcome"
    return [issue.diagnostics for issue in model.issue]


def only_card(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    (card,) = body["cards"]
    assert len(card["summary"]) < 140
    uuid.UUID(card["uuid"])
    return dict(card)


def guidance(response: httpx.Response, version: str = "R5") -> Any:
    (action,) = response.json()["systemActions"]
    assert action["type"] == "create"
    return fhir.to_model(action["resource"], version)


# --- discovery and cards ------------------------------------------------------------------


def test_discovery(service: str, engine: Engine) -> None:
    answer = httpx.get(service + "/cds-services", timeout=30)
    assert answer.status_code == 200
    (entry,) = answer.json()["services"]
    assert (entry["id"], entry["hook"]) == (cdshooks.SERVICE_ID, "patient-view")
    assert fhir.questionnaire_url(engine.rulebase) in entry["prefetch"]["assessment"]
    assert "subject=Patient/{{context.patientId}}&" in entry["prefetch"]["assessment"]


def test_a_complete_assessment_gives_an_info_card(service: str, engine: Engine, keys: Keys) -> None:
    facts = example_facts("moderate-working-parent")
    older = assessment(engine, {"harm_risk": "imminent"}, authored="2026-01-01T09:00:00+00:00")
    newer = assessment(engine, facts, authored="2026-02-01T09:00:00+00:00")
    answer = post(service, SERVICE, request(bundle(newer, older)), keys)
    card = only_card(answer)
    decision = engine.decide(facts, as_of=dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC))
    assert decision.level is not None and decision.transition is not None
    assert card["indicator"] == "info"
    assert card["summary"] == f"Level of care: {decision.level.label} ({decision.transition.value})"
    info = engine.rulebase
    assert card["source"]["label"] == f"levelcare {info.name} {info.version}"
    for reason in (*decision.reasons, *decision.ruled_out):
        assert f"**{reason.rule_id}**" in card["detail"]
    assert all(f"- {source}: " in card["detail"] for reason in decision.reasons for source in reason.sources)
    assert [(c["system"], c["code"], c["display"]) for c in card["overrideReasons"]] == [
        (REASON_SYSTEM, code, display) for code, display in REASONS.items()
    ]
    model = guidance(answer)
    assert model.status == "success"
    assert model.subject.reference == "Patient/p1"
    output = answer.json()["systemActions"][0]["resource"]
    assert output == fhir.guidance_response(
        decision, engine, subject="Patient/p1", request_id=output["requestIdentifier"]["value"]
    )


def test_a_partial_assessment_gives_a_warning_card(service: str, engine: Engine, keys: Keys) -> None:
    facts = {"harm_risk": "none", "addiction_severity": "moderate"}
    answer = post(service, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), keys)
    card = only_card(answer)
    decision = engine.decide(facts)
    low, high = decision.level_range
    assert card["indicator"] == "warning"
    assert (
        card["summary"]
        == f"Level of care undecided: {len(decision.missing)} facts needed ({low.label} to {high.label})"
    )
    assert all(f"- `{name}`: " in card["detail"] for name in decision.missing)
    assert "overrideReasons" not in card
    model = guidance(answer)
    assert model.status == "data-required"
    assert len(model.dataRequirement) == len(decision.missing)


@pytest.mark.parametrize("example", ["iop-relapse-worsening", "iop-graduating"])
def test_a_transition_names_the_current_level(service: str, engine: Engine, keys: Keys, example: str) -> None:
    facts = example_facts(example)
    card = only_card(post(service, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), keys))
    decision = engine.decide(facts)
    assert decision.level is not None and decision.transition is not None
    current = engine.levels[facts["current_level"]]
    move = f"{decision.transition.value} from {current.label}"
    assert card["summary"] == f"Level of care: {decision.level.label} ({move})"
    assert "Facts: `" in card["detail"]


def test_an_emergency_gives_a_critical_card(service: str, engine: Engine, keys: Keys) -> None:
    facts = {**example_facts("moderate-working-parent"), "harm_risk": "imminent"}
    card = only_card(post(service, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), keys))
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Emergency response needed. Level of care: ")
    assert "**An immediate crisis response is needed.**" in card["detail"]


def test_an_unreadable_assessment_gives_a_warning_card_listing_the_problems(
    service: str, engine: Engine, keys: Keys
) -> None:
    response = assessment(engine, {"harm_risk": "none"}, authored="2026-02-01T09:00:00Z")
    response["item"][0]["answer"] = [{"valueString": "hgih"}]
    response["item"].append({"linkId": "suicide_risk", "answer": [{"valueBoolean": True}]})
    card = only_card(post(service, SERVICE, request(response), keys))
    assert card["indicator"] == "warning"
    assert card["summary"] == "Level of care: the latest assessment cannot be read (2 problems)"
    assert "- `harm_risk`: expected one of" in card["detail"]
    assert "- `suicide_risk`: unknown linkId; did you mean 'harm_risk'?" in card["detail"]


def test_an_assessment_with_more_problems_than_are_listed_counts_them_all_on_its_card(
    service: str, engine: Engine, keys: Keys
) -> None:
    response = assessment(engine, {"harm_risk": "none"}, authored="2026-02-01T09:00:00Z")
    response["item"] += [{"linkId": f"unknown_{n}", "answer": [{"valueBoolean": True}]} for n in range(30)]
    card = only_card(post(service, SERVICE, request(response), keys))
    assert card["summary"] == "Level of care: the latest assessment cannot be read (30 problems)"
    lines = card["detail"].splitlines()[2:]
    assert len(lines) == 21
    assert lines[0].startswith("- `unknown_0`: unknown linkId")
    assert lines[-1] == "- ... and 10 more problems"


def test_r4_resources(engine: Engine) -> None:
    def make(base: str) -> Any:
        config = cdshooks.ServiceConfig(public_url=base, auth=False, fhir_version="R4")
        return cdshooks.create_app(engine, config)

    with running(make) as base:
        facts = example_facts("moderate-working-parent")
        answer = post(base, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), None)
    assert guidance(answer, "R4").status == "success"
    assert "reasonCode" in answer.json()["systemActions"][0]["resource"]


# --- data the service cannot get ----------------------------------------------------------


def test_412_when_the_assessment_is_neither_prefetched_nor_fetchable(service: str, engine: Engine, keys: Keys) -> None:
    assert outcome(post(service, SERVICE, request(), keys), 412) == [
        "prefetch.assessment is missing and no fhirServer with fhirAuthorization was given to fetch it"
    ]
    url = fhir.questionnaire_url(engine.rulebase)
    other = {"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "urn:other"}
    assert outcome(post(service, SERVICE, request(bundle(other)), keys), 412) == [
        f"no assessment QuestionnaireResponse ({url}) for this patient"
    ]


@pytest.fixture(scope="module")
def fhir_server(engine: Engine) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A FHIR server stand-in holding one assessment, recording each search it answers."""
    searches: list[dict[str, Any]] = []

    def make(base: str) -> Any:
        async def search(request: Request) -> Response:
            searches.append({"params": dict(request.query_params), "auth": request.headers.get("authorization")})
            if request.headers.get("authorization") != "Bearer good-token":
                return JSONResponse({"resourceType": "OperationOutcome", "issue": []}, status_code=401)
            found = assessment(engine, example_facts("moderate-working-parent"), authored="2026-02-01T09:00:00Z")
            return JSONResponse(bundle(found))

        return Starlette(routes=[Route("/fhir/QuestionnaireResponse", search)])

    with running(make) as base:
        yield base + "/fhir", searches


def test_the_assessment_is_fetched_when_not_prefetched(
    engine: Engine, fhir_server: tuple[str, list[dict[str, Any]]]
) -> None:
    """From an allowed server only: here a loopback http one, which needs authentication off."""
    server, searches = fhir_server

    def make(base: str) -> Any:
        allowed = [server, "http://127.0.0.1:9/fhir"]
        config = cdshooks.ServiceConfig(public_url=base, auth=False, fhir_servers=allowed)
        return cdshooks.create_app(engine, config)

    with running(make) as service:
        check_fetches(service, server, searches, engine)


def check_fetches(service: str, server: str, searches: list[dict[str, Any]], engine: Engine) -> None:
    keys = None
    token = {"access_token": "good-token", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read"}
    answer = post(service, SERVICE, request(fhirServer=server, fhirAuthorization=token), keys)
    assert only_card(answer)["indicator"] == "info"
    assert searches[-1]["params"] == {
        "subject": "Patient/p1",
        "questionnaire": fhir.questionnaire_url(engine.rulebase),
        "_sort": "-authored",
        "_count": "1",
    }
    refused = post(service, SERVICE, request(fhirServer=server, fhirAuthorization={"access_token": "bad"}), keys)
    assert outcome(refused, 412) == ["the FHIR server answered 401 to the assessment search"]
    nowhere = post(
        service, SERVICE, request(fhirServer="http://127.0.0.1:9/fhir", fhirAuthorization={"access_token": "x"}), keys
    )
    assert outcome(nowhere, 412) == ["the assessment could not be fetched (ConnectError)"]


def test_bad_requests_get_an_operation_outcome(service: str, engine: Engine, keys: Keys) -> None:
    facts = example_facts("moderate-working-parent")
    elsewhere = assessment(engine, facts, authored="2026-02-01T09:00:00Z", patient="p2")
    assert outcome(post(service, SERVICE, request(elsewhere), keys), 400) == [
        "the assessment's subject is not the patient in context"
    ]
    body = {"hook": "order-select", "context": {}, "prefetch": []}
    assert outcome(post(service, SERVICE, body, keys), 400) == [
        "hook: expected 'patient-view', got 'order-select'",
        "hookInstance: expected a string",
        "context.patientId: expected a string",
        "prefetch: expected an object, got array",
    ]
    assert outcome(post(service, SERVICE, request(["x"]), keys), 400) == [
        "prefetch.assessment: expected a resource or a Bundle, got array"
    ]
    assert outcome(post(service, SERVICE, [1], keys), 400) == ["the request body must be a JSON object, got array"]
    raw = httpx.post(
        service + SERVICE,
        content=b"{",
        headers={"Authorization": f"Bearer {keys.token(service + SERVICE)}"},
        timeout=30,
    )
    assert outcome(raw, 400) == ["the request body is not JSON"]
    assert outcome(post(service, "/cds-services/other", request(), keys), 404) == [
        f"no service 'other'; this server has {cdshooks.SERVICE_ID!r}"
    ]


# --- authentication -----------------------------------------------------------------------


def test_bad_jwts_are_refused(service: str, keys: Keys, engine: Engine) -> None:
    body = request(assessment(engine, example_facts("moderate-working-parent"), authored="2026-02-01T09:00:00Z"))
    url = service + SERVICE
    missing = httpx.post(url, json=body, timeout=30)
    assert outcome(missing, 401) == ["a JWT bearer token is required (Authorization: Bearer ...)"]
    assert missing.headers["www-authenticate"] == "Bearer"

    def refused(token: str) -> list[str]:
        return outcome(httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30), 401)

    assert refused("not-a-jwt") == ["the bearer token is not a JWT"]
    assert refused(keys.token(url, iss="https://intruder.test")) == ["issuer 'https://intruder.test' is not accepted"]
    assert refused(keys.token(service + "/cds-services/other")) == [f"the token's aud is not this endpoint ({url})"]
    assert refused(keys.token(url, exp=-60)) == ["the token has expired"]
    assert refused(keys.token(url, key=keys.other)) == ["the signature matches none of the issuer's keys"]
    shared = jwt.encode({"iss": ISSUER, "aud": url, "exp": int(time.time()) + 60}, "secret" * 6, algorithm="HS256")
    assert refused(shared) == ["algorithm 'HS256' is not accepted; use one of RS256, RS384, RS512, ES256, ES384, ES512"]
    no_exp = jwt.encode({"iss": ISSUER, "aud": url}, keys.private, algorithm="RS384")
    assert refused(no_exp) == ["the token has no exp claim"]
    assert only_card(httpx.post(url, json=body, headers={"Authorization": f"Bearer {keys.token(url)}"}, timeout=30))


def test_a_jwks_with_several_keys(tmp_path: Path, keys: Keys) -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    jwks = {
        "keys": [
            json.loads(jwt.algorithms.ECAlgorithm.to_jwk(other.public_key())),
            json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys.private.public_key())),
        ]
    }
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks), encoding="utf-8")
    assert len(cdshooks.load_keys(path)) == 2

    def make(base: str) -> Any:
        config = cdshooks.ServiceConfig(public_url=base, issuers={ISSUER: cdshooks.load_keys(path)})
        return cdshooks.create_app(Engine.default(), config)

    with running(make) as base:
        url = base + SERVICE
        for key, algorithm in ((other, "ES384"), (keys.private, "RS384")):
            now = int(time.time())
            claims = {"iss": ISSUER, "aud": url, "exp": now + 60, "iat": now, "jti": str(uuid.uuid4())}
            token = jwt.encode(claims, key, algorithm=algorithm)
            answer = httpx.post(url, json=request(), headers={"Authorization": f"Bearer {token}"}, timeout=30)
            # Authenticated, so the missing assessment is what the service reports.
            assert outcome(answer, 412) == [
                "prefetch.assessment is missing and no fhirServer with fhirAuthorization was given to fetch it"
            ]
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0"}]}), encoding="utf-8")
    with pytest.raises(LevelCareError, match=r"secret.json: the JWKS holds no RSA or elliptic-curve public key"):
        cdshooks.load_keys(secret)
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", encoding="utf-8")
    with pytest.raises(LevelCareError, match=r"bad.pem: not a PEM public key or a JWKS"):
        cdshooks.load_keys(bad)
    with pytest.raises(LevelCareError, match=r"absent.pem: cannot read the key file"):
        cdshooks.load_keys(tmp_path / "absent.pem")


def test_configuration_errors(engine: Engine) -> None:
    with pytest.raises(LevelCareError, match="authentication is on but no issuer is configured"):
        cdshooks.ServiceConfig(public_url="http://127.0.0.1:1")
    with pytest.raises(LevelCareError, match="fhir_version: expected one of R5, R4, R4B, got 'R3'"):
        cdshooks.ServiceConfig(public_url="http://127.0.0.1:1", auth=False, fhir_version="R3")
    with pytest.raises(LevelCareError, match=r"engine: expected a levelcare.Engine, got string"):
        cdshooks.create_app("engine", cdshooks.ServiceConfig(public_url="http://127.0.0.1:1", auth=False))
    assert cdshooks.is_loopback("localhost") and cdshooks.is_loopback("::1") and cdshooks.is_loopback("127.0.0.2")
    assert not cdshooks.is_loopback("0.0.0.0") and not cdshooks.is_loopback("ehr.test")


# --- feedback -----------------------------------------------------------------------------


def test_feedback_with_an_override_is_stored(service: str, engine: Engine, keys: Keys, feedback_file: Path) -> None:
    facts = example_facts("moderate-working-parent")
    card = only_card(post(service, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), keys))
    decision = engine.decide(facts)
    assert decision.level is not None
    received = engine.levels[decision.level.rank + 1].id
    before = feedback_file.read_text(encoding="utf-8").splitlines() if feedback_file.exists() else []
    items = [
        {
            "card": card["uuid"],
            "outcome": "overridden",
            "overrideReason": {
                "reason": {"system": REASON_SYSTEM, "code": "payer-decision", "display": REASONS["payer-decision"]},
                "userComment": "Authorised one level up",
            },
            "outcomeTimestamp": "2026-02-01T09:05:00Z",
            "extension": {cdshooks.RECEIVED_LEVEL_EXTENSION: received},
        },
        {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-02-01T09:06:00+00:00"},
    ]
    answer = post(service, SERVICE + "/feedback", {"feedback": items}, keys)
    assert (answer.status_code, answer.json()) == (200, {"stored": 2})
    lines = feedback_file.read_text(encoding="utf-8").splitlines()[len(before) :]
    overridden, accepted = (json.loads(line) for line in lines)
    assert overridden["override"] is not None
    record = PlacementOverride.from_dict(overridden["override"], engine)
    assert (record.indicated, record.received, record.reasons) == (
        decision.level,
        engine.levels[received],
        ("payer-decision",),
    )
    assert record.text == "Authorised one level up"
    assert record.facts_sha256 == facts_digest(facts, engine) == overridden["facts_sha256"]
    assert record.rulebase_sha256 == engine.rulebase.sha256
    assert (accepted["outcome"], accepted["override"], accepted["indicated_level"]) == (
        "accepted",
        None,
        decision.level.id,
    )


def test_bad_feedback_stores_nothing(service: str, engine: Engine, keys: Keys, feedback_file: Path) -> None:
    facts = example_facts("moderate-working-parent")
    card = only_card(post(service, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), keys))
    before = feedback_file.read_text(encoding="utf-8") if feedback_file.exists() else ""
    items: list[Any] = [
        {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-02-01T09:06:00Z"},
        {"card": str(uuid.uuid4()), "outcome": "ignored", "outcomeTimestamp": "yesterday"},
        {
            "card": card["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": "2026-02-01T09:06:00Z",
            "overrideReason": {"reason": {"system": REASON_SYSTEM, "code": "budget"}},
        },
        {
            "card": card["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": "2026-02-01T09:06:00Z",
            "overrideReason": {"reason": {"system": REASON_SYSTEM, "code": "other"}},
            "extension": {cdshooks.RECEIVED_LEVEL_EXTENSION: "detox"},
        },
        "x",
    ]
    problems = outcome(post(service, SERVICE + "/feedback", {"feedback": items}, keys), 400)
    levels = ", ".join(engine.levels.ids)
    assert problems == [
        (
            f"feedback[1].card: {items[1]['card']!r} is not a card this service issued "
            "(or it is older than the retention of 30 days)"
        ),
        "feedback[1].outcome: expected 'accepted' or 'overridden', got 'ignored'",
        "feedback[1].outcomeTimestamp: expected an ISO 8601 instant with its offset, got 'yesterday'",
        f"feedback[2].overrideReason.reason: expected a coding of {REASON_SYSTEM} ({', '.join(REASONS)})",
        f"feedback[3]: received_level: 'detox' is not a level of this rule base; use one of {levels}",
        "feedback[3]: text: reason 'other' needs the text to say what it is",
        "feedback[4]: expected an object, got string",
    ]
    assert (feedback_file.read_text(encoding="utf-8") if feedback_file.exists() else "") == before
    assert outcome(post(service, SERVICE + "/feedback", {"feedback": []}, keys), 400) == [
        "feedback: expected a non-empty list"
    ]
    assert outcome(post(service, SERVICE + "/feedback", {"feedback": items[:1]}, None), 401)


# --- never fail open, never log values ----------------------------------------------------


class _FailingSink:
    def write(self, record: Any) -> None:
        msg = f"disk full while writing {record}"
        raise OSError(msg)


def test_a_sink_that_fails_gives_a_500(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    def make(base: str) -> Any:
        return cdshooks.create_app(engine, cdshooks.ServiceConfig(public_url=base, auth=False, sink=_FailingSink()))

    facts = example_facts("moderate-working-parent")
    with running(make) as base:
        card = only_card(post(base, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), None))
        item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-02-01T09:06:00Z"}
        answer = post(base, SERVICE + "/feedback", {"feedback": [item]}, None)
        assert outcome(answer, 500) == ["internal error: the feedback was not stored; see the service's log"]
        too_big = httpx.post(base + SERVICE, content=b" " * 2_000_001, timeout=30)
        assert outcome(too_big, 413) == ["the request body is over 2000000 bytes"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "feedback: internal error OSError" in logged
    assert "disk full" not in logged and card["uuid"] not in logged


class _Broken(Engine):
    def decide(self, facts: Any, *, as_of: dt.datetime | None = None) -> Any:
        msg = f"defect while deciding {dict(facts)}"
        raise RuntimeError(msg)


def test_a_handler_error_is_a_500_and_logs_no_values(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    broken = _Broken(engine._rb)
    caplog.set_level(logging.INFO)

    def make(base: str) -> Any:
        return cdshooks.create_app(broken, cdshooks.ServiceConfig(public_url=base, auth=False))

    facts = example_facts("moderate-working-parent")
    with running(make) as base:
        answer = post(base, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), None)
        assert outcome(answer, 500) == ["internal error: no guidance could be given; see the service's log"]
        assert "cards" not in answer.json()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "service: internal error RuntimeError" in logged
    for name, value in facts.items():
        assert name not in logged
        if isinstance(value, str):
            assert value not in logged
    assert "defect while deciding" not in logged


def test_service_logs_hold_no_assessment_values(
    service: str, engine: Engine, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    facts = {**example_facts("moderate-working-parent"), "psychiatric_severity": "severe"}
    answer = post(service, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), keys)
    assert answer.status_code == 200
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "levelcare-placement: card " in logged
    for name, value in facts.items():
        assert name not in logged
        if isinstance(value, str):
            assert value not in logged


# --- levelcare serve ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_levelcare_serve(tmp_path: Path) -> None:
    port = free_port()
    facts = example_facts("moderate-working-parent")
    feedback = tmp_path / "feedback.jsonl"
    command = [sys.executable, "-m", "levelcare", "serve", "--port", str(port), "--feedback", str(feedback)]
    command += ["--database", str(tmp_path / "state.sqlite3")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/cds-services", timeout=5)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "levelcare serve did not start"
                time.sleep(0.1)
        assert answer.json()["services"][0]["id"] == cdshooks.SERVICE_ID
        engine = Engine.default()
        body = request(assessment(engine, facts, authored="2026-02-01T09:00:00Z"))
        assert only_card(post(f"http://127.0.0.1:{port}", SERVICE, body, None))["indicator"] == "info"
    finally:
        process.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert "levelcare: JWT authentication is off: for local use only" in stderr
    # The service's own log lines reach the console; fact names never do.
    assert "discovery: 200" in stderr
    assert "levelcare-placement: card info" in stderr
    for name, value in facts.items():
        assert name not in stderr
        if isinstance(value, str):
            assert value not in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0", "--no-auth"], "--no-auth is for local use only; 0.0.0.0 is not a loopback address"),
        (["--host", "0.0.0.0"], "serving on 0.0.0.0 needs authentication: give --issuer ISS=KEYFILE"),
        (["--issuer", "no-key-file"], "--issuer: expected ISS=KEYFILE, got 'no-key-file'"),
        (["--workers", "0"], "--workers: expected 1 or more, got 0"),
        (["--max-token-lifetime", "0"], "max_token_lifetime: expected a number from 1 to 86400, got 0"),
    ],
)
def test_levelcare_serve_refuses_to_fail_open(args: list[str], message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    done = refused_serve(monkeypatch, *args)
    assert done.returncode == 1
    assert done.stderr.startswith(f"levelcare: {message}")


def refused_serve(monkeypatch: pytest.MonkeyPatch, *args: str) -> subprocess.CompletedProcess[str]:
    """``levelcare serve --port 1 ARGS`` in this process, for settings it must refuse before serving."""

    def reached(*_: object, **__: object) -> None:
        msg = "levelcare serve started serving settings it should have refused"
        raise AssertionError(msg)

    monkeypatch.setattr(_serving, "serve", reached)
    return run_levelcare("serve", "--port", "1", *args)


# --- tokens: each accepted once, and only short-lived -------------------------------------

REPLAY = "the token was used before (its jti is known): each request needs its own"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_is_accepted_once(service: str, engine: Engine, keys: Keys) -> None:
    """The same JWT twice: the second use is a replay, refused with 401 and an OperationOutcome."""
    url = service + SERVICE
    body = request(assessment(engine, example_facts("moderate-working-parent"), authored="2026-02-01T09:00:00Z"))
    token = keys.token(url)
    assert only_card(httpx.post(url, json=body, headers=bearer(token), timeout=30))
    replayed = httpx.post(url, json=body, headers=bearer(token), timeout=30)
    assert outcome(replayed, 401) == [REPLAY]
    assert replayed.headers["www-authenticate"] == "Bearer"
    # A token for the feedback endpoint is spent there alone, and likewise once.
    feedback_token = keys.token(url + "/feedback")
    item = {"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": "2026-02-01T09:06:00Z"}
    first = httpx.post(url + "/feedback", json={"feedback": [item]}, headers=bearer(feedback_token), timeout=30)
    assert first.status_code == 400
    again = httpx.post(url + "/feedback", json={"feedback": [item]}, headers=bearer(feedback_token), timeout=30)
    assert outcome(again, 401) == [REPLAY]


def test_tokens_need_jti_and_iat_and_a_short_lifetime(service: str, keys: Keys) -> None:
    """jti and iat are required; exp - iat above the maximum (300 s by default) is refused; 300 s is not."""
    url = service + SERVICE

    def answer(token: str) -> httpx.Response:
        return httpx.post(url, json=request(), headers=bearer(token), timeout=30)

    now = int(time.time())
    base = {"iss": ISSUER, "aud": url, "exp": now + 60, "iat": now, "jti": str(uuid.uuid4())}
    for claim in ("jti", "iat"):
        claims = {k: v for k, v in base.items() if k != claim}
        assert outcome(answer(jwt.encode(claims, keys.private, algorithm="RS384")), 401) == [
            f"the token has no {claim} claim"
        ]
    ten_years = 10 * 365 * 86_400
    assert outcome(answer(keys.token(url, exp=ten_years)), 401) == [
        f"the token's lifetime (exp - iat) is {ten_years} s; this service accepts at most 300 s"
    ]
    assert outcome(answer(keys.token(url, exp=301)), 401) == [
        "the token's lifetime (exp - iat) is 301 s; this service accepts at most 300 s"
    ]
    for jti in ("", "j" * 256):
        assert outcome(answer(keys.token(url, jti=jti)), 401) == [
            "the token's jti must be a string of 1 to 255 characters"
        ]
    assert outcome(answer(keys.token(url, iat=now + 120)), 401) == ["the token is not valid (ImmatureSignatureError)"]
    # Authenticated: the missing assessment is what is reported.
    assert outcome(answer(keys.token(url, exp=300)), 412)


def test_the_token_lifetime_is_a_setting(engine: Engine, keys: Keys, tmp_path: Path) -> None:
    pem = tmp_path / "client.pem"
    pem.write_bytes(keys.public_pem())

    def make(base: str) -> Any:
        config = cdshooks.ServiceConfig(
            public_url=base, issuers={ISSUER: cdshooks.load_keys(pem)}, max_token_lifetime=60
        )
        return cdshooks.create_app(engine, config)

    with running(make) as base:
        url = base + SERVICE
        long = httpx.post(url, json=request(), headers=bearer(keys.token(url, exp=61)), timeout=30)
        assert outcome(long, 401) == ["the token's lifetime (exp - iat) is 61 s; this service accepts at most 60 s"]
        assert outcome(httpx.post(url, json=request(), headers=bearer(keys.token(url, exp=60)), timeout=30), 412)
    with pytest.raises(LevelCareError, match="max_token_lifetime: expected a number from 1 to 86400, got 0"):
        cdshooks.ServiceConfig(public_url="http://127.0.0.1:1", auth=False, max_token_lifetime=0)
    with pytest.raises(LevelCareError, match="retention_days: expected a number from 1 to 36500, got 'x'"):
        cdshooks.ServiceConfig(public_url="http://127.0.0.1:1", auth=False, retention_days="x")  # type: ignore[arg-type]


# --- feedback as CDS Hooks allows it --------------------------------------------------------


def stored_feedback(feedback_file: Path, before: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in feedback_file.read_text(encoding="utf-8").splitlines()[before:]]


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) if path.exists() else 0


def test_feedback_on_the_card_of_an_unreadable_assessment_is_stored(
    service: str, engine: Engine, keys: Keys, feedback_file: Path
) -> None:
    response = assessment(engine, {"harm_risk": "none"}, authored="2026-02-01T09:00:00Z")
    response["item"][0]["answer"] = [{"valueString": "hgih"}]
    card = only_card(post(service, SERVICE, request(response), keys))
    assert card["indicator"] == "warning" and "suggestions" not in card
    before = line_count(feedback_file)
    reason = {"userComment": "The form was filled in on paper"}
    items = [
        {
            "card": card["uuid"],
            "outcome": "overridden",
            "overrideReason": reason,
            "outcomeTimestamp": "2026-02-01T09:05Z",
        },
        {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-02-01T09:06:00Z"},
    ]
    answer = post(service, SERVICE + "/feedback", {"feedback": items}, keys)
    assert (answer.status_code, answer.json()) == (200, {"stored": 2})
    overridden, accepted = stored_feedback(feedback_file, before)
    assert overridden["card"] == accepted["card"] == card["uuid"]
    assert (overridden["indicated_level"], overridden["facts_sha256"], overridden["override"]) == (None, None, None)
    assert overridden["overrideReason"] == reason
    assert overridden["rulebase_sha256"] == engine.rulebase.sha256
    assert accepted["acceptedSuggestions"] == []


def decided_card(service: str, engine: Engine, keys: Keys) -> tuple[dict[str, Any], Any]:
    facts = example_facts("moderate-working-parent")
    card = only_card(post(service, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), keys))
    return card, engine.decide(facts)


def test_an_override_with_only_a_comment_or_the_ehrs_own_coding_is_recorded_as_given(
    service: str, engine: Engine, keys: Keys, feedback_file: Path
) -> None:
    """cds-fb-3 allows a reason, a comment or both; a client may code reasons in its own system."""
    card, decision = decided_card(service, engine, keys)
    received = engine.levels[decision.level.rank + 1].id
    comment_only = {"userComment": "Family asked for a residential programme"}
    ehr_coded = {
        "reason": {"system": "http://ehr.example/override-reason", "code": "pt-pref", "display": "Patient preference"},
        "userComment": "Prefers a programme near home",
    }
    no_system = {"reason": {"code": "local-42"}}
    before = line_count(feedback_file)
    items = [
        {
            "card": card["uuid"],
            "outcome": "overridden",
            "overrideReason": reason,
            "outcomeTimestamp": "2026-02-01T09:05:00Z",
            "extension": {cdshooks.RECEIVED_LEVEL_EXTENSION: received},
        }
        for reason in (comment_only, ehr_coded, no_system)
    ]
    answer = post(service, SERVICE + "/feedback", {"feedback": items}, keys)
    assert (answer.status_code, answer.json()) == (200, {"stored": 3})
    records = stored_feedback(feedback_file, before)
    assert [r["overrideReason"] for r in records] == [comment_only, ehr_coded, no_system]
    assert all(r["override"] is None and r["received_level"] == received for r in records)
    assert all(r["indicated_level"] == decision.level.id for r in records)
    # levelcare's own reasons still make a placement override.
    ours = {"reason": {"system": REASON_SYSTEM, "code": "payer-decision"}}
    item = {**items[0], "overrideReason": ours}
    assert post(service, SERVICE + "/feedback", {"feedback": [item]}, keys).status_code == 200
    (record,) = stored_feedback(feedback_file, before + 3)
    assert PlacementOverride.from_dict(record["override"], engine).reasons == ("payer-decision",)
    assert record["overrideReason"] == ours


def test_an_override_reason_must_say_something(service: str, engine: Engine, keys: Keys) -> None:
    card, _ = decided_card(service, engine, keys)
    where = "feedback[0].overrideReason"
    for reason, problem in (
        ({}, f"{where}: give a reason, a userComment or both"),
        ({"userComment": 3}, f"{where}.userComment: expected a string, got integer"),
        ({"reason": {"system": "http://ehr.example", "code": 7}}, f"{where}.reason.code: expected a string, got 7"),
        ("payer", f"{where}: expected an object with reason, userComment or both, got string"),
    ):
        item = {
            "card": card["uuid"],
            "outcome": "overridden",
            "overrideReason": reason,
            "outcomeTimestamp": "2026-02-01T09:05Z",
        }
        assert outcome(post(service, SERVICE + "/feedback", {"feedback": [item]}, keys), 400) == [problem]
    wrong_level = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"userComment": "x"},
        "outcomeTimestamp": "2026-02-01T09:05Z",
        "extension": {cdshooks.RECEIVED_LEVEL_EXTENSION: "detox"},
    }
    assert outcome(post(service, SERVICE + "/feedback", {"feedback": [wrong_level]}, keys), 400) == [
        (
            f"feedback[0].extension.{cdshooks.RECEIVED_LEVEL_EXTENSION}: 'detox' is not a level of this rule base; "
            f"use one of {', '.join(engine.levels.ids)}"
        )
    ]


def test_a_card_suggests_a_referral_as_a_service_request(service: str, engine: Engine, keys: Keys) -> None:
    card, decision = decided_card(service, engine, keys)
    (suggestion,) = card["suggestions"]
    assert card["selectionBehavior"] == "at-most-one"
    uuid.UUID(suggestion["uuid"])
    assert suggestion["uuid"] != card["uuid"]
    assert suggestion["label"] == f"Refer to {decision.level.label}" and suggestion["isRecommended"] is True
    (action,) = suggestion["actions"]
    assert action["type"] == "create"
    model = fhir.to_model(action["resource"], "R5")
    assert (model.get_resource_type(), model.status, model.intent) == ("ServiceRequest", "draft", "proposal")
    assert model.subject.reference == "Patient/p1"
    assert action["resource"]["code"]["concept"]["coding"] == [fhir.level_coding(decision.level, engine.rulebase)]
    assert fhir.levels_system(engine.rulebase) == model.code.concept.coding[0].system
    # An undecided assessment has nothing to refer to.
    partial = assessment(engine, {"harm_risk": "none"}, authored="2026-02-01T09:00:00Z")
    assert "suggestions" not in only_card(post(service, SERVICE, request(partial), keys))


def test_the_referral_is_an_r4_service_request_from_an_r4_service(engine: Engine) -> None:
    def make(base: str) -> Any:
        return cdshooks.create_app(engine, cdshooks.ServiceConfig(public_url=base, auth=False, fhir_version="R4"))

    facts = example_facts("moderate-working-parent")
    with running(make) as base:
        card = only_card(post(base, SERVICE, request(assessment(engine, facts, authored="2026-02-01T09:00:00Z")), None))
    resource = card["suggestions"][0]["actions"][0]["resource"]
    model = fhir.to_model(resource, "R4")
    assert model.get_resource_type() == "ServiceRequest"
    level = engine.decide(facts).level
    assert resource["code"] == {
        "coding": [fhir.level_coding(level, engine.rulebase)],
        "text": f"Referral to {level.label}",
    }
    with pytest.raises(fhir.FhirError, match="does not conform to FHIR R5"):
        fhir.to_model(resource, "R5")


def test_an_accepted_suggestion_is_recorded(service: str, engine: Engine, keys: Keys, feedback_file: Path) -> None:
    card, decision = decided_card(service, engine, keys)
    suggestion = card["suggestions"][0]["uuid"]
    before = line_count(feedback_file)
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion}],
        "outcomeTimestamp": "2026-02-01T09:06:00Z",
    }
    answer = post(service, SERVICE + "/feedback", {"feedback": [item]}, keys)
    assert (answer.status_code, answer.json()) == (200, {"stored": 1})
    (record,) = stored_feedback(feedback_file, before)
    assert (record["outcome"], record["acceptedSuggestions"], record["indicated_level"]) == (
        "accepted",
        [suggestion],
        decision.level.id,
    )
    unknown = str(uuid.uuid4())
    bad = [
        {**item, "acceptedSuggestions": [{"id": unknown}]},
        {**item, "acceptedSuggestions": {"id": suggestion}},
        {**item, "outcome": "overridden", "overrideReason": {"userComment": "x"}},
    ]
    assert outcome(post(service, SERVICE + "/feedback", {"feedback": bad}, keys), 400) == [
        f"feedback[0].acceptedSuggestions[0].id: {unknown!r} is not a suggestion of this card",
        "feedback[1].acceptedSuggestions: expected a list of {'id': uuid}, got object",
        "feedback[2].acceptedSuggestions: only an accepted card has accepted suggestions",
    ]
    assert line_count(feedback_file) == before + 1


def test_feedback_problems_are_bounded(service: str, keys: Keys) -> None:
    """A long list of bad items gets the first 20 problems and a note, not one line per item."""
    items = [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-02-01T09:06:00Z"}] * 5_000
    problems = outcome(post(service, SERVICE + "/feedback", {"feedback": items}, keys), 400)
    assert len(problems) == 21 and problems[-1] == "more problems follow; correct these first"


# --- state in SQLite, shared by processes and kept across restarts ----------------------------


@contextlib.contextmanager
def levelcare_serve(port: int, *args: str | Path) -> Iterator[str]:
    """``levelcare serve`` in a process of its own on 127.0.0.1, stopped (SIGINT) on leaving."""
    with levelcare_serve_with((), port, *args) as base:
        yield base


@contextlib.contextmanager
def levelcare_serve_with(common: tuple[str | Path, ...], port: int, *args: str | Path) -> Iterator[str]:
    """``levelcare [COMMON...] serve --port PORT ARGS...``, as :func:`levelcare_serve` runs it."""
    command = [sys.executable, "-m", "levelcare", *map(str, common), "serve", "--port", str(port), *map(str, args)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            try:
                httpx.get(base + "/cds-services", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "levelcare serve did not start"
                time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def test_replays_and_feedback_are_shared_by_processes_and_kept_across_restarts(
    tmp_path: Path, engine: Engine, keys: Keys
) -> None:
    """Two processes on one database: a token spent on one is refused by the other and after a restart,
    and feedback on a card is accepted wherever and whenever it arrives."""
    pem = tmp_path / "client.pem"
    pem.write_bytes(keys.public_pem())
    database = tmp_path / "state.sqlite3"
    first, second = free_port(), free_port()
    public = f"http://127.0.0.1:{first}"
    common = ("--issuer", f"{ISSUER}={pem}", "--database", database, "--public-url", public)
    body = request(assessment(engine, example_facts("moderate-working-parent"), authored="2026-02-01T09:00:00Z"))
    token = keys.token(public + SERVICE)

    def feedback(base: str, minute: int) -> httpx.Response:
        item = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": f"2026-02-01T09:{minute:02}:00Z"}
        feedback_token = keys.token(public + SERVICE + "/feedback")
        return httpx.post(
            base + SERVICE + "/feedback", json={"feedback": [item]}, headers=bearer(feedback_token), timeout=30
        )

    feedback_files = (tmp_path / "a.jsonl", tmp_path / "b.jsonl")
    with (
        levelcare_serve(first, *common, "--feedback", feedback_files[0]) as a,
        levelcare_serve(second, *common, "--feedback", feedback_files[1]) as b,
    ):
        card = only_card(httpx.post(a + SERVICE, json=body, headers=bearer(token), timeout=30))
        assert outcome(httpx.post(b + SERVICE, json=body, headers=bearer(token), timeout=30), 401) == [REPLAY]
        assert feedback(b, 5).json() == {"stored": 1}
    assert oct(database.stat().st_mode & 0o777) == "0o600"
    with levelcare_serve(first, *common, "--feedback", feedback_files[0]) as a:
        assert outcome(httpx.post(a + SERVICE, json=body, headers=bearer(token), timeout=30), 401) == [REPLAY]
        assert feedback(a, 6).json() == {"stored": 1}
    store = _store.Store(database, retention_days=30)
    try:
        stored = store.feedback(card=card["uuid"])
    finally:
        store.close()
    assert [r["outcomeTimestamp"] for r in stored] == ["2026-02-01T09:05:00Z", "2026-02-01T09:06:00Z"]
    # The JSON Lines export stays beside the database, one line per record.
    assert [line_count(path) for path in feedback_files] == [1, 1]


def test_levelcare_serve_with_two_workers_shares_cards_and_tokens(tmp_path: Path, engine: Engine, keys: Keys) -> None:
    pem = tmp_path / "client.pem"
    pem.write_bytes(keys.public_pem())
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    args = ("--workers", "2", "--issuer", f"{ISSUER}={pem}", "--database", tmp_path / "state.sqlite3")
    body = request(assessment(engine, example_facts("moderate-working-parent"), authored="2026-02-01T09:00:00Z"))
    with levelcare_serve(port, *args, "--feedback", tmp_path / "feedback.jsonl") as base:
        tokens = [keys.token(public + SERVICE) for _ in range(12)]
        # A new connection each time, so that both workers take some.
        cards = [only_card(httpx.post(base + SERVICE, json=body, headers=bearer(t), timeout=30)) for t in tokens]
        items = [{"card": c["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-02-01T09:06:00Z"} for c in cards]
        for item in items:
            answer = httpx.post(
                base + SERVICE + "/feedback",
                json={"feedback": [item]},
                headers=bearer(keys.token(public + SERVICE + "/feedback")),
                timeout=30,
            )
            assert answer.json() == {"stored": 1}
        for token in tokens:
            assert outcome(httpx.post(base + SERVICE, json=body, headers=bearer(token), timeout=30), 401) == [REPLAY]
    assert line_count(tmp_path / "feedback.jsonl") == 12


def test_every_worker_of_levelcare_serve_keeps_the_request_limits(tmp_path: Path) -> None:
    """The edge settings reach each worker: a body over ``--max-body-bytes`` and a silent client are refused there."""
    port = free_port()
    args = ("--workers", "2", "--no-auth", "--database", tmp_path / "state.sqlite3")
    limits = ("--max-body-bytes", "1000", "--header-timeout", "1")
    with levelcare_serve(port, *args, *limits, "--feedback", tmp_path / "feedback.jsonl") as base:
        for _ in range(4):  # new connections, so that both workers answer some
            answer = httpx.post(base + SERVICE, content=b"{" + b" " * 2000 + b"}", timeout=30)
            assert answer.status_code == 413
            assert answer.json()["resourceType"] == "OperationOutcome"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            silent.settimeout(10)
            assert silent.recv(4096).startswith(b"HTTP/1.1 408 ")


def test_levelcare_serve_refuses_a_rule_base_that_fails_its_check(tmp_path: Path, unsound_rules: Path) -> None:
    command = [sys.executable, "-m", "levelcare", "--rules", str(unsound_rules), "serve", "--no-auth"]
    command += ["--port", str(free_port()), "--database", str(tmp_path / "state.sqlite3")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "the rule base did not pass levelcare check, 2 problems:" in result.stderr
    assert "--allow-unverified" in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_card_of_an_unverified_rule_base_says_so(
    tmp_path: Path, engine: Engine, workers: str, unsound_rules: Path
) -> None:
    port = free_port()
    args = ("--no-auth", "--workers", workers, "--database", tmp_path / "state.sqlite3", "--allow-unverified")
    body = request(assessment(engine, example_facts("moderate-working-parent"), authored="2026-02-01T09:00:00Z"))
    rules = ("--rules", unsound_rules)
    with levelcare_serve_with(rules, port, *args, "--feedback", tmp_path / "feedback.jsonl") as base:
        for _ in range(3):
            card = only_card(httpx.post(base + SERVICE, json=body, timeout=30))
            assert card["summary"].startswith("UNVERIFIED rules: Level of care: IOP")
            assert len(card["summary"]) <= 140
            assert card["indicator"] == "warning"
            assert card["detail"].startswith("**This rule base did not pass levelcare check**")


def test_the_database_is_created_for_its_owner_and_never_through_a_link(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    _store.Store(path, retention_days=30).close()
    assert path.stat().st_mode & 0o777 == 0o600
    link = tmp_path / "link.sqlite3"
    link.symlink_to(path)
    with pytest.raises(LevelCareError, match=r"link.sqlite3: the service database must not be a symbolic link"):
        _store.Store(link, retention_days=30)
    dangling = tmp_path / "dangling.sqlite3"
    dangling.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LevelCareError, match="must not be a symbolic link"):
        _store.Store(dangling, retention_days=30)
    assert not (tmp_path / "elsewhere").exists()
    path.chmod(0o644)
    with pytest.raises(LevelCareError, match=r"is open to other users \(mode 644\).*chmod 600 it"):
        _store.Store(path, retention_days=30)
    other = tmp_path / "other.sqlite3"
    other.write_text("not a database at all, but long enough to look like one" * 20, encoding="utf-8")
    other.chmod(0o600)
    with pytest.raises(LevelCareError, match=r"other.sqlite3: not a levelcare service database"):
        _store.Store(other, retention_days=30)


def test_expired_token_ids_and_cards_and_feedback_past_the_retention_are_purged(tmp_path: Path) -> None:
    store = _store.Store(tmp_path / "state.sqlite3", retention_days=1)
    try:
        now = time.time()
        assert store.claim_token(ISSUER, "j1", expires=now + 10)
        assert not store.claim_token(ISSUER, "j1", expires=now + 10)
        assert store.claim_token("https://other.test", "j1", expires=now + 10)

        def card(name: str, age: float) -> _store.IssuedCard:
            return _store.IssuedCard(
                uuid=name, issued_at=now - age, indicated=None, rulebase_sha256="r", facts_sha256=None, suggestion=None
            )

        store.add_card(card("old", 2 * 86_400))
        store.add_card(card("new", 0))
        store.add_feedback([{"card": "new", "outcome": "accepted"}], export=lambda records: None)
        assert store.purge(now + 20) == (2, 1, 0)
        assert store.claim_token(ISSUER, "j1", expires=now + 400)
        assert store.card("old") is None and store.card("new") == card("new", 0)
        assert store.purge(now + 2 * 86_400) == (1, 1, 1)
        assert store.feedback() == []
    finally:
        store.close()


def test_feedback_whose_export_fails_is_not_stored(tmp_path: Path) -> None:
    store = _store.Store(tmp_path / "state.sqlite3", retention_days=1)

    def fail(records: Any) -> None:
        raise OSError("disk full")

    try:
        with pytest.raises(OSError, match="disk full"):
            store.add_feedback([{"card": "c", "outcome": "accepted"}], export=fail)
        assert store.feedback() == []
    finally:
        store.close()


def test_levelcare_serve_refuses_a_database_behind_a_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.sqlite3"
    link = tmp_path / "state.sqlite3"
    link.symlink_to(target)
    done = subprocess.run(
        [sys.executable, "-m", "levelcare", "serve", "--port", "1", "--database", str(link)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"levelcare: {link}: the service database must not be a symbolic link; name the file itself" in done.stderr
    assert not target.exists()
