"""The local stack (what `make run` starts) as fixtures: one for the session, one logging JSON."""

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.support.stacks import Stack, client, open_folder, start_stack


@pytest.fixture(scope="session")
def function_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TMPDIR of the stack's functions, so tests can see that nothing is left in it."""
    return tmp_path_factory.mktemp("function-tmp")


@pytest.fixture(scope="session")
def stack(database_url: str, function_tmpdir: Path) -> Iterator[Stack]:
    # Tests send many requests from one address; the limits have tests of their own.
    with open_folder("records-stack-") as state_dir:
        running = start_stack(
            state_dir,
            database_url,
            TMPDIR=str(function_tmpdir),
            POST_RATE_LIMIT="1000000r/s",
            GET_RATE_LIMIT="1000000r/s",
            CONNECTIONS_PER_ADDRESS="60000",
        )
        yield running
        running.stop()
        # Whatever the tests sent, no function failed on it: an unhandled exception logs a traceback.
        log = running.log.read_text()
        assert "Traceback" not in log, log[log.index("Traceback") - 2000 : log.index("Traceback") + 3000]


@pytest.fixture(scope="session")
def json_stack(database_url: str) -> Iterator[Stack]:
    """Another stack, its functions logging JSON (LOG_FORMAT=json, as under compose)."""
    with open_folder("records-json-") as state_dir:
        running = start_stack(state_dir, database_url, LOG_FORMAT="json")
        yield running
        running.stop()


@pytest.fixture
def gateway(stack: Stack) -> Iterator[httpx2.Client]:
    with client(stack) as gateway_client:
        yield gateway_client


@pytest.fixture(scope="module")
def gateway_module(stack: Stack) -> Iterator[httpx2.Client]:
    with client(stack) as gateway_client:
        yield gateway_client


@pytest.fixture(scope="module")
def uploader_via_gateway(gateway_module: httpx2.Client) -> tuple[int, str]:
    """A user registered through the gateway: (user_id, access_token)."""
    body = gateway_module.post("/register", json={"name": "e2e"}).json()
    return body["user_id"], body["access_token"]
