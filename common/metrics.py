"""Prometheus metrics every function shares: its requests, its pool, its database errors.

Each function serves them at GET /metrics on its own port; the gateway never
routes that path. A function's own figures live in its folder (metrics.py).
prometheus-client keeps and exposes them. The request middleware is ours:
starlette-exporter's cost /register a fifth of its throughput (docs/performance.md);
this one costs a few microseconds a request.
"""

import time
from collections.abc import Collection, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
PREFIX = "records"

DATABASE_ERRORS = Counter(
    f"{PREFIX}_database_errors_total",
    "Database errors answered: `unavailable` (503) or `other` (500).",
    ["kind"],
)
# Every series from the start, at 0, so rates and alerts see it before its first event.
for kind in ("unavailable", "other"):
    DATABASE_ERRORS.labels(kind)


REQUESTS = Counter(
    f"{PREFIX}_requests_total",
    "Requests answered, by route, method and status.",
    LABELS := ["app_name", "method", "path", "status_code"],
)
LATENCY = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route, method and status.",
    LABELS,
    buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
)
#: Anything else is counted as "other", so a client cannot make new series at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    """Counts and times each request under its route's path (or "other"); skips `unlisted` paths."""

    def __init__(self, app: ASGIApp, function: str, paths: Collection[str], unlisted: Collection[str]) -> None:
        self.app = app
        self.function = function
        self.paths = frozenset(paths)
        self.unlisted = frozenset(unlisted)
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.unlisted:
            await self.app(scope, receive, send)
            return
        status = 500  # unless an answer starts

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, noting_status)
        finally:
            self.series(scope["method"], scope["path"], status, time.perf_counter() - started)

    def series(self, method: str, path: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "other", path if path in self.paths else "other", status)
        if (children := self._series.get(key)) is None:
            labels = (self.function, key[0], key[1], str(status))
            children = self._series[key] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)


def request_metrics(function: str, paths: Collection[str], unlisted: Collection[str]) -> Middleware:
    return Middleware(RequestMetrics, function=function, paths=paths, unlisted=unlisted)


async def handle_metrics(request: Request) -> Response:
    """The process's metrics in Prometheus's text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class Pools(Collector):
    """The process's engine pools as they are at each scrape: connections in use, and opened beyond the pool."""

    FIGURES = (
        ("checked_out", "Pooled database connections in use.", QueuePool.checkedout),
        ("overflow", "Connections open beyond the pool's size (negative: room left in it).", QueuePool.overflow),
        ("size", "The pool's size (DB_POOL_SIZE).", QueuePool.size),
    )

    def __init__(self) -> None:
        self.engines: dict[Engine, str] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, help_text, figure in self.FIGURES:
            family = GaugeMetricFamily(f"{PREFIX}_db_pool_{name}", help_text, labels=["app_name"])
            for engine, function in list(self.engines.items()):
                if isinstance(engine.pool, QueuePool):
                    family.add_metric([function], figure(engine.pool))
            yield family


POOLS = Pools()
REGISTRY.register(POOLS)


__all__ = ["DATABASE_ERRORS", "METRICS_PATH", "POOLS", "handle_metrics", "request_metrics"]
