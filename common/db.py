"""The database engine (one per process) and the checks that it answers."""

import select
from collections.abc import Callable
from functools import partial
from typing import Any, Concatenate, ParamSpec, TypeVar
from weakref import WeakKeyDictionary

import anyio.to_thread
from anyio import CapacityLimiter
from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from common.config import Settings

#: Errors that mean "the database cannot be reached right now", as opposed to a bug.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (OperationalError, PoolTimeoutError)


def sqlalchemy_url(settings: Settings) -> URL:
    """DATABASE_URL with DATABASE_PASSWORD and the driver made explicit.

    The password goes into the URL object, never its text, so it reaches libpq
    as it is, whatever characters it holds. SQLAlchemy 2.1 would pick psycopg 3
    for `postgresql://`, hence the driver.
    """
    url = make_url(str(settings.database_url))
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg2")
    if settings.database_password is not None:
        url = url.set(password=settings.database_password.get_secret_value())
    return url


def create_db_engine(settings: Settings, application_name: str = "records", *, autocommit: bool = False) -> Engine:
    """An engine whose pool notices a restarted server instead of handing out dead connections.

    `autocommit` suits a function whose every statement stands alone: no BEGIN
    and COMMIT round trips, and no isolation level switched on each checkout.
    """
    engine = create_engine(
        sqlalchemy_url(settings),
        isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED",
        # With autocommit no transaction is ever left open: nothing to roll back on return.
        pool_reset_on_return=None if autocommit else "rollback",
        # A failed statement's error names no values: record ids with their users are links.
        hide_parameters=True,
        # Sized for the usual concurrency: a connection opened beyond the pool is
        # closed after use, a backend fork each time, and waiting in the pool's
        # queue is slower still. Bursts beyond it may open as many again.
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout_s,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "application_name": application_name,
        },
    )
    event.listen(engine, "checkout", discard_if_closed_by_server)
    return engine


Params = ParamSpec("Params")
Result = TypeVar("Result")

_LIMITERS: WeakKeyDictionary[Engine, CapacityLimiter] = WeakKeyDictionary()


async def run_in_pool(
    engine: Engine, work: Callable[Concatenate[Engine, Params], Result], *args: Params.args, **kwargs: Params.kwargs
) -> Result:
    """`work(engine, ...)` in a worker thread, with no more such threads at once than the pool holds connections.

    Requests beyond that wait here, in the event loop, for a thread: not in
    threads blocked on the pool's queue, nor on overflow connections opened and
    closed again (a backend fork each, which took a third of a busy function's
    time; docs/performance.md).
    """
    limiter = _LIMITERS.get(engine)
    if limiter is None:
        limiter = _LIMITERS[engine] = CapacityLimiter(engine.pool.size())  # type: ignore[attr-defined]
    return await anyio.to_thread.run_sync(partial(work, engine, *args, **kwargs), limiter=limiter)


def discard_if_closed_by_server(dbapi_connection: Any, _record: object, _proxy: object) -> None:
    """Refuse a pooled connection the server has hung up on; the pool then opens a fresh one.

    An idle connection has nothing to read unless the server closed it (a restart
    or a terminated backend writes its farewell, then EOF). One poll(2) finds that;
    `pool_pre_ping` paid a `select 1` round trip per checkout for it, about 50 µs
    of CPU here and as much in PostgreSQL (docs/performance.md). A server that
    vanished without closing is caught on first use instead, where SQLAlchemy
    invalidates the whole pool.
    """
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("the server closed this pooled connection")


def ping(engine: Engine) -> None:
    """Run `select 1`; raises one of UNAVAILABLE_ERRORS when the server does not answer."""
    with engine.connect() as connection:
        connection.execute(text("select 1"))


def wait_for_database(engine: Engine, timeout_s: float) -> None:
    """Ping until the server answers, backing off, for at most `timeout_s` seconds."""
    retrying = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait_exponential(multiplier=0.1, max=2),
        retry=retry_if_exception_type(UNAVAILABLE_ERRORS),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            ping(engine)


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database is out of reach (rather than a query bug)."""
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
