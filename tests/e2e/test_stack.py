"""`make run`'s supervisor: everything it starts, it stops."""

from collections.abc import Iterator
from pathlib import Path

import httpx2
import psutil
import psycopg2
import pytest

from devstack.postgres import LocalCluster, ensure_database
from devstack.processes import answers, free_port
from devstack.topology import FUNCTIONS
from tests.support.stacks import open_folder, start_stack


@pytest.fixture
def state_dir() -> Iterator[Path]:
    with open_folder("records-stack-") as folder:
        yield folder


def test_sigterm_stops_every_process_it_started(database_url: str, state_dir: Path) -> None:
    stack = start_stack(state_dir, database_url)
    descendants = psutil.Process(stack.process.pid).children(recursive=True)
    command_lines = [child.cmdline() for child in descendants]
    assert sorted(stack.function_processes()) == sorted(FUNCTIONS)
    assert all("uvicorn" in " ".join(process.cmdline()) for process in stack.function_processes().values())
    assert any(argv[0].endswith("nginx") or "nginx:" in argv[0] for argv in command_lines)

    status = stack.stop()

    assert status in (0, 143)  # 143: honcho reports the SIGTERM it received
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []


@pytest.fixture
def cluster_home() -> Iterator[Path]:
    with open_folder("records-cluster-") as folder:
        yield folder


def test_local_cluster_keeps_its_data_across_restarts(cluster_home: Path) -> None:
    """The cluster `make run` starts under .data/ when nothing answers on 5432."""
    port = free_port()
    data_dir = cluster_home / "postgres"
    cluster = LocalCluster(data_dir, port)
    url = f"postgresql://postgres@127.0.0.1:{port}/records"
    cluster.start()
    try:
        ensure_database(url)
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')")
        connection.close()
        cluster.stop()
        assert not answers("127.0.0.1", port)

        cluster.start()
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT value FROM kept")
            assert cursor.fetchone() == ("still here",)
        connection.close()
    finally:
        cluster.stop()


def test_two_stacks_run_side_by_side_and_say_ready_only_when_ready(database_url: str) -> None:
    with open_folder("records-stack-") as first_dir, open_folder("records-stack-") as second_dir:
        first = start_stack(first_dir, database_url)
        second = start_stack(second_dir, database_url)
        try:
            for stack in (first, second):
                # At "ready", every function and the gateway already answer.
                for port in [*stack.ports.functions.values(), stack.ports.gateway_status]:
                    assert httpx2.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                assert httpx2.post(f"{stack.base_url}/register", json={"name": "twin"}).status_code == 201
            assert not set(first.ports.functions.values()) & set(second.ports.functions.values())
            assert sorted(first.function_processes()) == sorted(FUNCTIONS)
        finally:
            first.stop()
            second.stop()
