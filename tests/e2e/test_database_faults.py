"""add_record and register against a PostgreSQL the test owns: crashed mid-upload, late to start.

Nothing is restarted but PostgreSQL: the functions recover on their own.
"""

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import Engine

from common.config import Settings
from common.db import create_db_engine
from devstack.postgres import LocalCluster, ensure_database, migrate
from devstack.processes import answers, free_port
from devstack.seed import create_user
from tests.support.audio import Wav
from tests.support.functions import record_count
from tests.support.stacks import Function, serve_function, wait_for
from tests.support.uploads import RawUpload


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    home = Path(tempfile.mkdtemp(prefix="records-faults-"))
    cluster = LocalCluster(home / "postgres", free_port())
    cluster.start()
    try:
        yield cluster
    finally:
        if answers("127.0.0.1", cluster.port):
            cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster_url(cluster: LocalCluster) -> str:
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}/records"
    ensure_database(url)
    migrate({**os.environ, "DATABASE_URL": url})
    return url


@pytest.fixture(scope="module")
def cluster_engine(cluster_url: str) -> Iterator[Engine]:
    engine = create_db_engine(Settings(database_url=cluster_url))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def user(cluster_engine: Engine) -> tuple[int, str]:
    return create_user(cluster_engine, "faults")


@pytest.fixture
def running_cluster(cluster: LocalCluster) -> LocalCluster:
    if not answers("127.0.0.1", cluster.port):
        cluster.start()
    return cluster


def healthy(function: Function) -> bool:
    try:
        return httpx2.get(f"http://127.0.0.1:{function.port}/healthz", timeout=5).status_code == 200
    except httpx2.TransportError:
        return False


def test_postgres_crashing_mid_upload_is_503_then_recovers(
    running_cluster: LocalCluster, cluster_url: str, cluster_engine: Engine, user: tuple[int, str]
) -> None:
    wav = Wav(duration_s=5).to_bytes()
    with serve_function("add_record", DATABASE_URL=cluster_url, DB_CONNECT_TIMEOUT_S="2") as add_record:
        before = record_count(cluster_engine)
        upload = RawUpload(add_record, user, wav)
        upload.send(wav[: len(wav) // 2])
        running_cluster.stop("immediate")
        upload.send(wav[len(wav) // 2 :])
        status, headers = upload.response()
        assert status == 503
        assert int(headers["retry-after"]) > 0
        assert not healthy(add_record)

        running_cluster.start()
        assert wait_for(lambda: healthy(add_record))
        retry = RawUpload(add_record, user, wav)
        retry.send(wav)
        assert retry.response()[0] == 201
        assert record_count(cluster_engine) == before + 1  # the retry's, and no orphan of the crash


def test_a_function_started_before_postgres_waits_then_serves(running_cluster: LocalCluster, cluster_url: str) -> None:
    running_cluster.stop()
    back = threading.Event()

    def restart_later() -> None:
        time.sleep(3)
        running_cluster.start()
        back.set()

    restarter = threading.Thread(target=restart_later)
    restarter.start()
    try:
        # uvicorn binds its port only once the lifespan (and its bounded wait) is over.
        with serve_function("register", DATABASE_URL=cluster_url, DB_STARTUP_WAIT_S="60") as register:
            assert back.is_set(), "the function served before PostgreSQL was back"
            assert healthy(register)
    finally:
        restarter.join()


def test_a_function_without_postgres_is_unhealthy_until_it_returns(
    running_cluster: LocalCluster, cluster_url: str
) -> None:
    running_cluster.stop()
    with serve_function("register", DATABASE_URL=cluster_url, DB_STARTUP_WAIT_S="0") as register:
        assert not healthy(register)
        response = httpx2.post(f"http://127.0.0.1:{register.port}/register", json={"name": "early"}, timeout=10)
        assert response.status_code == 503
        running_cluster.start()
        assert wait_for(lambda: healthy(register))
        response = httpx2.post(f"http://127.0.0.1:{register.port}/register", json={"name": "late"}, timeout=10)
        assert response.status_code == 201


def test_sigterm_lets_an_upload_in_flight_finish(
    running_cluster: LocalCluster, cluster_url: str, cluster_engine: Engine, user: tuple[int, str]
) -> None:
    wav = Wav(duration_s=5).to_bytes()
    with serve_function("add_record", DATABASE_URL=cluster_url) as add_record:
        before = record_count(cluster_engine)
        upload = RawUpload(add_record, user, wav)
        upload.send(wav[: len(wav) // 2])
        add_record.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert add_record.process.poll() is None, "uvicorn must wait for the request in flight"
        upload.send(wav[len(wav) // 2 :])
        assert upload.response()[0] == 201
        # Then it exits: uvicorn re-raises the SIGTERM it handled, hence -15.
        assert add_record.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert record_count(cluster_engine) == before + 1


def test_a_database_out_of_connections_is_503_not_a_hang(
    running_cluster: LocalCluster, cluster_url: str, cluster_engine: Engine
) -> None:
    """PostgreSQL refusing every new connection (here a role's limit, as past max_connections): 503 at once."""
    with cluster_engine.begin() as connection:
        connection.exec_driver_sql("DROP ROLE IF EXISTS crowded")
        connection.exec_driver_sql("CREATE ROLE crowded LOGIN CONNECTION LIMIT 0")
    crowded = cluster_url.replace("postgres@", "crowded@")
    with serve_function("register", DATABASE_URL=crowded, DB_STARTUP_WAIT_S="0") as register:
        # The client's timeout is the "not a hang": a wait for a connection would raise instead.
        response = httpx2.post(f"http://127.0.0.1:{register.port}/register", json={"name": "crowd"}, timeout=10)
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert not healthy(register)
