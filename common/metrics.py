"""Prometheus metrics every function shares: its requests (starlette-exporter), its pool, its database errors.

Each function serves them at GET /metrics on its own port; the gateway never
routes that path. A function's own figures live in its folder (metrics.py).
"""

from collections.abc import Iterator

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool
from starlette.middleware import Middleware
from starlette_exporter import PrometheusMiddleware, handle_metrics

METRICS_PATH = "/metrics"
PREFIX = "records"

DATABASE_ERRORS = Counter(
    f"{PREFIX}_database_errors_total",
    "Database errors answered: `unavailable` (503) or `other` (500).",
    ["kind"],
)
# Every series from the start, at 0, so rates and alerts see it before its first event.
for value in ["unavailable", "other"]:
    DATABASE_ERRORS.labels(value)


def request_metrics(function: str, unlisted: list[str]) -> Middleware:
    """Requests by route, method and status, and their latency, as `records_requests_total` and the like."""
    return Middleware(
        PrometheusMiddleware,
        app_name=function,
        prefix=PREFIX,
        group_paths=True,
        skip_paths=unlisted,
        buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    )


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
