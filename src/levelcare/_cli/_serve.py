"""``levelcare serve``: the service's settings from the command line, and the recipe its workers share."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .._engine import Engine
from ..exceptions import LevelCareError
from ._common import EXIT_DECIDED, _rulebase, _stderr, _verified_engine


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .._adapters import _serving, cdshooks
    except ImportError as error:
        msg = f'levelcare serve needs the server extra (pip install "levelcare[server]"): {error.name} is missing'
        raise LevelCareError(msg) from None
    state = _state_settings(args)
    engine = _verified_engine(_rulebase(args.rules), "serve", args.allow_unverified)
    loopback = cdshooks.is_loopback(args.host)
    if args.no_auth and not loopback:
        msg = f"--no-auth is for local use only; {args.host} is not a loopback address: configure --issuer instead"
        raise LevelCareError(msg)
    issuers: dict[str, tuple[Any, ...]] = {}
    for entry in args.issuer or []:
        iss, sep, path = entry.partition("=")
        if not sep or not iss or not path:
            msg = f"--issuer: expected ISS=KEYFILE, got {entry[:40]!r}"
            raise LevelCareError(msg)
        issuers[iss] = issuers.get(iss, ()) + cdshooks.load_keys(path)
    if not issuers and not args.no_auth and not loopback:
        msg = f"serving on {args.host} needs authentication: give --issuer ISS=KEYFILE for each client"
        raise LevelCareError(msg)
    auth = bool(issuers) and not args.no_auth
    config = cdshooks.ServiceConfig(
        public_url=args.public_url or f"http://{args.host}:{args.port}",
        issuers=issuers,
        auth=auth,
        sink=cdshooks.JsonLinesSink(args.feedback),
        fhir_version=args.fhir_version,
        **_serve_edge(args),
        **state,
    )
    if not auth:
        _stderr("JWT authentication is off: for local use only")
    recipe = _serve_recipe(args, config, engine)
    _serving.serve(engine, config, host=args.host, port=args.port, workers=args.workers, recipe=recipe)
    return EXIT_DECIDED


def _serve_edge(args: argparse.Namespace) -> dict[str, Any]:
    """The ServiceConfig settings of ``serve``'s edge options: FHIR servers and request limits."""
    everyone: list[str] = []
    by_issuer: dict[str, tuple[str, ...]] = {}
    for entry in args.fhir_server or []:
        # ISS=URL names a server for one issuer; an issuer is itself a URL, so split at the first "=http".
        cut = min((i for i in (entry.find("=http://"), entry.find("=https://")) if i > 0), default=-1)
        if cut < 0:
            everyone.append(entry)
        else:
            iss, url = entry[:cut], entry[cut + 1 :]
            by_issuer[iss] = (*by_issuer.get(iss, ()), url)
    return {
        "fhir_servers": tuple(everyone),
        "issuer_fhir_servers": by_issuer,
        "fetch_timeout": args.fetch_timeout,
        "max_fetch_bytes": args.max_fetch_bytes,
        "max_body_bytes": args.max_body_bytes,
        "body_timeout": args.body_timeout,
        "header_timeout": args.header_timeout,
        "keep_alive_timeout": args.keep_alive_timeout,
        "max_header_bytes": args.max_header_bytes,
        "max_token_bytes": args.max_token_bytes,
        "max_connections": args.max_connections,
    }


def _add_serve_edge(serve: argparse.ArgumentParser) -> None:
    edge = serve.add_argument_group("FHIR servers and request limits")
    edge.add_argument(
        "--fhir-server",
        action="append",
        metavar="[ISS=]URL",
        help="a FHIR server base URL the service may fetch the assessment from (repeatable); ISS=URL allows it "
        "only for requests whose JWT issuer is ISS. No other server is ever contacted. https only, unless "
        "authentication is off and the server is on a loopback address",
    )
    edge.add_argument("--fetch-timeout", type=float, default=10.0, metavar="S", help="seconds for a fetch (10)")
    edge.add_argument(
        "--max-fetch-bytes", type=int, default=5_000_000, metavar="N", help="largest FHIR answer read (5000000)"
    )
    edge.add_argument("--max-body-bytes", type=int, default=2_000_000, metavar="N", help="largest body (2000000)")
    edge.add_argument("--body-timeout", type=float, default=10.0, metavar="S", help="seconds for a body (10)")
    edge.add_argument("--header-timeout", type=float, default=10.0, metavar="S", help="seconds for a head (10)")
    edge.add_argument(
        "--keep-alive-timeout", type=float, default=5.0, metavar="S", help="seconds an idle connection stays (5)"
    )
    edge.add_argument(
        "--max-header-bytes", type=int, default=131_072, metavar="N", help="largest request head (131072)"
    )
    edge.add_argument(
        "--max-token-bytes", type=int, default=16_384, metavar="N", help="largest Authorization header (16384)"
    )
    edge.add_argument("--max-connections", type=int, default=512, metavar="N", help="connections at once (512)")


def _state_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The service's database, retention and token settings from ``serve``'s options."""
    if args.workers < 1:
        msg = f"--workers: expected 1 or more, got {args.workers}"
        raise LevelCareError(msg)
    return {
        "database": args.database,
        "max_token_lifetime": args.max_token_lifetime,
        "clock_skew": args.clock_skew,
        "retention_days": args.retention_days,
    }


def _serve_recipe(args: argparse.Namespace, config: Any, engine: Engine) -> Any:
    """The recipe worker processes rebuild the service from (checked here, once, with the database).

    Paths are made absolute without following links, so that the database check sees what the workers open.
    """
    from .._adapters._serving import ServiceRecipe
    from .._adapters._store import Store

    issuers = []
    for entry in (args.issuer or []) if config.auth else []:
        iss, _, path = entry.partition("=")
        issuers.append((iss, os.path.abspath(path)))
    recipe = ServiceRecipe(
        rules=None if args.rules is None else os.path.abspath(args.rules),
        public_url=config.public_url,
        issuers=tuple(issuers),
        auth=config.auth,
        feedback=os.path.abspath(args.feedback),
        fhir_version=config.fhir_version,
        database=os.path.abspath(args.database),
        max_token_lifetime=config.max_token_lifetime,
        clock_skew=config.clock_skew,
        retention_days=config.retention_days,
        edge=_serve_edge(args),
        unverified=engine.rulebase.unverified,
    )
    # Refuse an unusable database before any worker starts; this also purges expired rows.
    Store(recipe.database, retention_days=recipe.retention_days).close()
    return recipe


def _add_serve(commands: Any, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the CDS Hooks service",
        description="Run a CDS Hooks 2.0 service (patient-view) that answers with the level of care as a card. "
        "Requests must carry a JWT from a configured issuer; on a loopback host without --issuer, or with "
        "--no-auth, authentication is off. Needs the server extra.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    serve.add_argument("--public-url", metavar="URL", help="the URL clients call, for the JWT aud check")
    serve.add_argument(
        "--issuer", action="append", metavar="ISS=KEYFILE", help="accept JWTs from ISS signed with the PEM or JWKS keys"
    )
    serve.add_argument("--no-auth", action="store_true", help="turn JWT authentication off (loopback hosts only)")
    serve.add_argument(
        "--feedback", default="levelcare-feedback.jsonl", metavar="FILE", help="JSON Lines file for feedback"
    )
    serve.add_argument("--fhir-version", choices=["R5", "R4"], default="R5", help="FHIR version of returned resources")
    _add_serve_edge(serve)
    _add_serve_state(serve)
    serve.add_argument(
        "--allow-unverified",
        action="store_true",
        help="serve a rule base that does not pass levelcare check; every card then says it is unverified",
    )
    serve.set_defaults(run=_cmd_serve)


def _add_serve_state(serve: argparse.ArgumentParser) -> None:
    """``serve``'s options for worker processes, their shared database and the token rules."""
    state = serve.add_argument_group("workers, state and tokens")
    state.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default: 1)")
    state.add_argument(
        "--database",
        default="levelcare-service.sqlite3",
        metavar="FILE",
        help="SQLite file of issued cards, token ids and feedback, shared by the workers "
        "(default: levelcare-service.sqlite3; created with mode 0600)",
    )
    state.add_argument(
        "--retention-days",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="delete cards and feedback older than this from the database (default: 30)",
    )
    state.add_argument(
        "--max-token-lifetime",
        type=int,
        default=300,
        metavar="SECONDS",
        help="refuse a JWT whose exp - iat is longer (default: 300)",
    )
    state.add_argument(
        "--clock-skew",
        type=int,
        default=30,
        metavar="SECONDS",
        help="clock difference allowed for exp, iat and nbf (default: 30)",
    )
