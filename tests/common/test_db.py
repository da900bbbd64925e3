"""The engine's pool replaces connections the server has closed, without a ping per checkout."""

import time

import psutil
from sqlalchemy import Engine, text

from common.config import Settings
from common.db import create_db_engine


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        pid: int = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return pid


def listed(engine: Engine, pid: int) -> bool:
    """Whether pg_stat_activity shows backend `pid`, asked in a transaction of its own: within
    one transaction, PostgreSQL answers from the snapshot it took at the first read."""
    with engine.connect() as connection:
        count: int = connection.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar_one()
    return count > 0


def exited(pid: int) -> bool:
    """Whether process `pid` has ended; a server on another machine has no process here, so yes."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_pooled_connection_whose_backend_was_terminated_is_replaced_at_checkout(
    settings: Settings, engine: Engine
) -> None:
    pooled = create_db_engine(settings, application_name="tests-reconnect", autocommit=True)
    try:
        first = backend_pid(pooled)  # now idle in the pool
        with engine.connect() as admin:
            assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
        deadline = time.monotonic() + 10
        # Gone from pg_stat_activity is not yet gone: the backend closes its socket as it exits.
        while listed(engine, first) or not exited(first):
            assert time.monotonic() < deadline, "the backend did not exit"
            time.sleep(0.01)
        # Without the check this checkout would hand out the dead connection and the query would fail.
        assert backend_pid(pooled) != first
    finally:
        pooled.dispose()
