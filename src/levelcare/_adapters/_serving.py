"""The service as a recipe that each worker process rebuilds.

Worker processes cannot inherit an engine or keys from the process that starts
them; they get the recipe instead, as JSON in the ``LEVELCARE_SERVICE``
environment variable, and :func:`app_from_environment` (the factory uvicorn
calls in each worker) builds the same application from it. The recipe names
files (rules, keys, database, feedback), never their contents.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs
from starlette.applications import Starlette

from .._engine import Engine
from .._rulebase import default_location, load
from .._text import shorten
from ..exceptions import LevelCareError
from . import cdshooks
from ._edge import protocol_class
from ._workers import Supervisor, listening_sockets

#: The environment variable holding the recipe, as JSON.
ENVIRONMENT = "LEVELCARE_SERVICE"
#: The factory uvicorn imports in each worker.
FACTORY = "levelcare._adapters._serving:app_from_environment"


@attrs.frozen(kw_only=True)
class ServiceRecipe:
    """Everything a worker needs to build the service, by file name.

    Attributes:
        rules: The rule base directory; None for the shipped one.
        public_url: As :attr:`cdshooks.ServiceConfig.public_url`.
        issuers: Pairs of an accepted ``iss`` and a PEM or JWKS key file (an issuer
            may appear more than once).
        auth: Whether requests must carry a JWT.
        feedback: The JSON Lines file feedback is exported to.
        fhir_version: ``"R5"`` or ``"R4"``.
        database: The SQLite file the workers share.
        max_token_lifetime: As in :class:`cdshooks.ServiceConfig`.
        clock_skew: As in :class:`cdshooks.ServiceConfig`.
        retention_days: As in :class:`cdshooks.ServiceConfig`.
        edge: The FHIR servers and request limits, by their
            :class:`cdshooks.ServiceConfig` field names, as JSON holds them.
        unverified: Whether the rule base is served although it did not pass
            ``levelcare check`` (each worker's cards then say so).
    """

    rules: str | None
    public_url: str
    issuers: tuple[tuple[str, str], ...] = ()
    auth: bool = True
    feedback: str = "levelcare-feedback.jsonl"
    fhir_version: str = "R5"
    database: str = "levelcare-service.sqlite3"
    max_token_lifetime: int = 300
    clock_skew: int = 30
    retention_days: float = 30.0
    edge: dict[str, Any] = attrs.field(factory=dict)
    unverified: bool = False

    def build(self) -> tuple[Engine, cdshooks.ServiceConfig]:
        """The engine and the service configuration this recipe describes.

        Raises:
            LevelCareError: a rule base, key file or setting is not usable.
        """
        rulebase = load(default_location() if self.rules is None else self.rules)
        engine = Engine(rulebase.as_unverified() if self.unverified else rulebase)
        issuers: dict[str, tuple[Any, ...]] = {}
        for iss, path in self.issuers:
            issuers[iss] = issuers.get(iss, ()) + cdshooks.load_keys(path)
        config = cdshooks.ServiceConfig(
            public_url=self.public_url,
            issuers=issuers,
            auth=self.auth,
            sink=cdshooks.JsonLinesSink(self.feedback),
            fhir_version=self.fhir_version,
            database=self.database,
            max_token_lifetime=self.max_token_lifetime,
            clock_skew=self.clock_skew,
            retention_days=self.retention_days,
            **_edge_settings(self.edge),
        )
        return engine, config

    def to_json(self) -> str:
        """The recipe as JSON, for :data:`ENVIRONMENT`."""
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceRecipe:
        """The recipe written by :meth:`to_json`.

        Raises:
            LevelCareError: the text is not such a recipe.
        """
        try:
            data = json.loads(text)
            data["issuers"] = tuple((str(iss), str(path)) for iss, path in data["issuers"])
            return cls(**data)
        except (ValueError, TypeError, KeyError) as error:
            msg = f"{ENVIRONMENT}: not a service recipe ({type(error).__name__}): {shorten(text)}"
            raise LevelCareError(msg) from None


def _edge_settings(edge: dict[str, Any]) -> dict[str, Any]:
    """``edge`` with the lists JSON made of its tuples turned back into tuples."""
    settings = dict(edge)
    if "fhir_servers" in settings:
        settings["fhir_servers"] = tuple(settings["fhir_servers"])
    if "issuer_fhir_servers" in settings:
        settings["issuer_fhir_servers"] = {str(k): tuple(v) for k, v in settings["issuer_fhir_servers"].items()}
    return settings


def app_from_environment() -> Starlette:
    """The service described by the recipe in :data:`ENVIRONMENT` (uvicorn's factory in each worker).

    Raises:
        LevelCareError: the variable is unset or its recipe cannot be built.
    """
    text = os.environ.get(ENVIRONMENT)
    if text is None:
        msg = f"{ENVIRONMENT} is not set: start the workers with levelcare serve --workers N"
        raise LevelCareError(msg)
    engine, config = ServiceRecipe.from_json(text).build()
    return cdshooks.create_app(engine, config)


def uvicorn_options(config: cdshooks.ServiceConfig) -> dict[str, Any]:
    """The uvicorn settings that enforce ``config``'s limits on connections and request heads.

    uvicorn's httptools protocol is used, with a size limit (``max_header_bytes``) and a
    deadline on each request head; idle keep-alive connections close after
    ``keep_alive_timeout``; over ``max_connections`` connections get 503.
    """
    return {
        "http": protocol_class(max_header_bytes=config.max_header_bytes, header_timeout=config.header_timeout),
        "timeout_keep_alive": config.keep_alive_timeout,
        "limit_concurrency": config.max_connections,
        "ws": "none",
        "lifespan": "off",
    }


def serve(  # pragma: no cover - runs until stopped
    engine: Any, config: cdshooks.ServiceConfig, *, host: str, port: int, workers: int = 1, recipe: Any = None
) -> None:
    """Run the service with uvicorn until interrupted.

    Args:
        engine: The engine deciding (one worker).
        config: How the service runs (one worker).
        host: The address to listen on.
        port: The port.
        workers: How many worker processes; more than one need ``recipe``, from
            which each builds its own engine and configuration.
        recipe: A ``ServiceRecipe`` describing ``engine`` and ``config`` by file.

    Raises:
        LevelCareError: several workers and no recipe.
    """
    import copy

    import uvicorn
    import uvicorn.config

    # uvicorn's own logging, plus the service's lines (requests, statuses, indicators).
    logging_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    logging_config["loggers"]["levelcare"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": logging_config,
        "log_level": "info",
        # The service logs each answer itself (endpoint and status, never a value).
        "access_log": False,
        **uvicorn_options(config),
    }
    if workers == 1:
        uvicorn.run(cdshooks.create_app(engine, config), **options)
        return
    # Each worker listens on a socket of its own, so that connections spread over them.
    worker_config = uvicorn.Config(_worker_factory(recipe), factory=True, **options)
    Supervisor(worker_config, listening_sockets(host, port, workers)).run()


def _worker_factory(recipe: Any) -> str:  # pragma: no cover - runs in serve()
    """The import string of the factory each worker builds the service with, its recipe exported."""
    if not isinstance(recipe, ServiceRecipe):
        msg = "workers: more than one worker needs the service's recipe (a ServiceRecipe) to rebuild it in each"
        raise LevelCareError(msg)
    os.environ[ENVIRONMENT] = recipe.to_json()
    return FACTORY
