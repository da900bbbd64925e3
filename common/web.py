"""The Starlette application every function is built from.

Each function contributes its routes; this adds what they all share: the
engine's life cycle, `GET /healthz`, problem responses for every error.
"""

import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypedDict, TypeVar, cast

from asgi_correlation_id import CorrelationIdMiddleware
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from common.config import Settings, get_settings
from common.db import UNAVAILABLE_ERRORS, create_db_engine, ping, run_in_pool, wait_for_database
from common.logs import configure_logging
from common.metrics import METRICS_PATH, POOLS, handle_metrics, request_metrics
from common.problems import EXCEPTION_HANDLERS, problem_of, problem_response, retry_later
from common.storage.backend import Backends

logger = logging.getLogger("records.web")

HEALTH_PATH = "/healthz"
#: Served to probes and scrapers on the function's own port; no link is built from them.
UNCHECKED_PATHS = frozenset({HEALTH_PATH, METRICS_PATH})
# A client's X-Request-ID is kept when it is this; any other is replaced (nginx applies the same rule).
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's Host check, answering a foreign Host with a problem instead of plain text.

    Functions build absolute links from the Host the client used; a forged one
    must never end up in a link. `/healthz` and `/metrics` build none and the
    gateway never routes them, so they answer whatever Host a probe or a
    scraper sends (compose's healthcheck asks for 127.0.0.1, which
    ALLOWED_HOSTS need not name).
    """

    def __init__(self, app: Any, allowed_hosts: Sequence[str]) -> None:
        super().__init__(app, allowed_hosts=allowed_hosts, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] not in UNCHECKED_PATHS
            and not self.allow_any
            and not self.allows(Headers(scope=scope).get("host"))
        ):
            detail = "This Host is not served here; add it to ALLOWED_HOSTS."
            await problem_response(400, detail)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def allows(self, host_header: str | None) -> bool:
        hostname = host_name(host_header)
        if hostname is None:
            return False
        return any(
            hostname == pattern or (pattern.startswith("*.") and hostname.endswith(pattern[1:]))
            for pattern in self.allowed_hosts
        )


# RFC 9110 §7.2: Host = uri-host [ ":" port ]. Of RFC 3986's uri-host, a DNS name, an IPv4
# address or a bracketed IPv6 literal: no user info, no fragment, no percent-encoding.
_HOST = re.compile(
    r"(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?))"
    r"(?::[0-9]{0,5})?"
)


def host_name(host_header: str | None) -> str | None:
    """The lower-cased name of a well-formed Host header (an IPv6 literal without its brackets); None otherwise."""
    match = _HOST.fullmatch(host_header or "")
    if match is None:
        return None
    return (match["ipv6"] or match["name"]).lower()


class AppState(TypedDict):
    """What every function's lifespan gives each request; a function's own state extends it."""

    engine: Engine
    settings: Settings
    #: Where records' bytes live: new ones (RECORD_STORAGE), and each stored one.
    backends: Backends


StateT = TypeVar("StateT", bound=AppState)


def state_of(request: Request, kind: type[StateT]) -> StateT:
    """The request's lifespan state, typed as `kind`, so that a wrong key is mypy's error."""
    return cast(StateT, request.scope["state"])


def engine_of(request: Request) -> Engine:
    return state_of(request, AppState)["engine"]


def backends_of(request: Request) -> Backends:
    return state_of(request, AppState)["backends"]


def settings_of(request: Request) -> Settings:
    return state_of(request, AppState)["settings"]


async def healthz(request: Request) -> Response:
    """200 when the database answers `select 1`, 503 otherwise."""
    try:
        await run_in_pool(engine_of(request), ping)
    except UNAVAILABLE_ERRORS:
        return problem_of(retry_later("The database is not reachable."))
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


def is_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


def create_app(
    name: str,
    routes: Sequence[BaseRoute],
    settings: Settings | None = None,
    state: Callable[[Settings, Engine], Mapping[str, object]] | None = None,
    *,
    autocommit: bool = False,
    check_host: bool = True,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """A function's app: `routes` plus `/healthz`, one engine for the process's life.

    `state` adds the function's own per-process objects, built from the settings
    and the engine, to each request's state (read them with `state_of`);
    `autocommit` is passed to the engine (see `create_db_engine`);
    `check_host` is for functions that build links from the Host (see TrustedHosts);
    `middleware` is the function's own, innermost.
    """
    settings = settings or get_settings()
    configure_logging(name, settings.log_level, settings.log_format)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        engine = create_db_engine(settings, application_name=name, autocommit=autocommit)
        # Wait, bounded, for a database that is still starting; past that, serve
        # anyway: /healthz says 503 until it answers, and nothing needs a restart.
        try:
            await run_in_threadpool(wait_for_database, engine, settings.db_startup_wait_s)
        except UNAVAILABLE_ERRORS:
            logger.warning("database not reachable after %s s; starting unhealthy", settings.db_startup_wait_s)
        POOLS.engines[engine] = name
        try:
            common: AppState = {"engine": engine, "settings": settings, "backends": Backends(settings, engine)}
            yield {**common, **(state(settings, engine) if state else {})}
        finally:
            del POOLS.engines[engine]
            engine.dispose()

    return Starlette(
        routes=[*routes, Route(HEALTH_PATH, healthz, methods=["GET"]), Route(METRICS_PATH, handle_metrics)],
        middleware=[
            # Outermost: every response, every log line and every problem below has the request's id.
            Middleware(CorrelationIdMiddleware, validator=is_request_id),
            request_metrics(
                name, paths=[route.path for route in routes if isinstance(route, Route)], unlisted=UNCHECKED_PATHS
            ),
            *([Middleware(TrustedHosts, allowed_hosts=settings.allowed_hosts)] if check_host else []),
            *middleware,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
