"""The local stack (what `make run` starts) as fixtures: one per backend, and one logging JSON."""

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import Engine

from common.config import Settings
from common.storage.backend import Backend, Backends
from devstack.objectstore import ObjectStore
from tests.support.stacks import UNLIMITED, Stack, client, open_folder, running_stack, start_stack


@pytest.fixture(scope="session")
def function_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TMPDIR of the stack's functions, so tests can see that nothing is left in it."""
    return tmp_path_factory.mktemp("function-tmp")


#: RECORD_STORAGE's values: a module marked `every_backend` runs its tests on each.
BACKENDS = ("postgres", "s3")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "record_storage" in metafunc.fixturenames and metafunc.definition.get_closest_marker("every_backend"):
        only = metafunc.definition.get_closest_marker("only_backend")
        metafunc.parametrize("record_storage", only.args if only else BACKENDS, indirect=True, scope="module")


@pytest.fixture(scope="module")
def record_storage(request: pytest.FixtureRequest) -> str:
    """The backend of this module's `stack`: PostgreSQL, or each in turn where the module is marked `every_backend`."""
    return getattr(request, "param", "postgres")


@pytest.fixture(scope="session")
def postgres_stack(database_url: str, function_tmpdir: Path, weed: ObjectStore) -> Iterator[Stack]:
    """New records in PostgreSQL; those moved to the store (common.storage.move) are served from it."""
    store = weed.settings() | {"RECORD_STORAGE": "postgres"}
    with running_stack("records-stack-", database_url, TMPDIR=str(function_tmpdir), **UNLIMITED, **store) as running:
        yield running


@pytest.fixture(scope="session")
def s3_stack(database_url: str, function_tmpdir: Path, weed: ObjectStore) -> Iterator[Stack]:
    """The same stack with RECORD_STORAGE=s3, on the same database."""
    settings = weed.settings()
    with running_stack("records-s3-", database_url, TMPDIR=str(function_tmpdir), **UNLIMITED, **settings) as running:
        yield running


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, record_storage: str) -> Stack:
    stack: Stack = request.getfixturevalue(f"{record_storage}_stack")
    return stack


@pytest.fixture(scope="module")
def record_backend(record_storage: str, settings: Settings, engine: Engine, request: pytest.FixtureRequest) -> Backend:
    """Where `stack` keeps records' bytes, for tests that store records directly (devstack.seed)."""
    if record_storage == "s3":
        store: ObjectStore = request.getfixturevalue("weed")
        return Backends(store.function_settings(), engine).writing
    return Backends(settings, engine).writing


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
