"""The Starlette application every function is built from.

Each function contributes its routes; this adds what they all share: the
engine's life cycle, `GET /healthz`, problem responses for every error.
"""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TypedDict

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from common.config import Settings, get_settings
from common.db import UNAVAILABLE_ERRORS, create_db_engine, ping
from common.logs import configure_logging
from common.problems import EXCEPTION_HANDLERS, service_unavailable


class State(TypedDict):
    engine: Engine
    settings: Settings


def engine_of(request: Request) -> Engine:
    engine: Engine = request.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    settings: Settings = request.state.settings
    return settings


async def healthz(request: Request) -> Response:
    """200 when the database answers `select 1`, 503 otherwise."""
    try:
        await run_in_threadpool(ping, engine_of(request))
    except UNAVAILABLE_ERRORS:
        return service_unavailable("The database is not reachable.")
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


def create_app(name: str, routes: Sequence[BaseRoute], settings: Settings | None = None) -> Starlette:
    """A function's app: `routes` plus `/healthz`, with one engine for the process's life."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        # Creating the engine does not connect: the function starts (and reports
        # unhealthy) even while the database is still coming up.
        engine = create_db_engine(settings, application_name=name)
        try:
            yield {"engine": engine, "settings": settings}
        finally:
            engine.dispose()

    return Starlette(
        routes=[*routes, Route("/healthz", healthz, methods=["GET"])],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
