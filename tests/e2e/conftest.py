"""The local stack (`scripts/stack.py`, what `make run` starts) as a fixture."""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import psutil
import pytest

from scripts.stack import (
    ROOT,
    Background,
    free_port,
    function_command,
    function_env,
    start_in_background,
    wait_for_port,
)

STOP_TIMEOUT_S = 40


Stack = Background


@contextmanager
def open_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder other users can enter: nginx's workers and the postgres user
    (pytest's own tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def client(stack: Stack) -> httpx2.Client:
    return httpx2.Client(base_url=stack.base_url, timeout=30)


def start_stack(state_dir: Path, database_url: str, **env: str) -> Stack:
    try:
        return start_in_background(state_dir, {**os.environ, "DATABASE_URL": database_url, **env})
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def function_tmpdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TMPDIR of the stack's functions, so tests can see that nothing is left in it."""
    return tmp_path_factory.mktemp("function-tmp")


@pytest.fixture(scope="session")
def stack(database_url: str, function_tmpdir: Path) -> Iterator[Stack]:
    # Tests send many POSTs from one address; the rate limit has a test of its own.
    with open_folder("records-stack-") as state_dir:
        running = start_stack(
            state_dir,
            database_url,
            TMPDIR=str(function_tmpdir),
            POST_RATE_LIMIT="1000000r/s",
            GET_RATE_LIMIT="1000000r/s",
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


@dataclass
class Function:
    """One function served alone by uvicorn, with its Dockerfile's command line."""

    process: "subprocess.Popen[bytes]"
    port: int


@contextmanager
def serve_function(name: str, **env: str) -> Iterator[Function]:
    port = free_port()
    environment = function_env({**os.environ, **env}, name, port)
    process = subprocess.Popen(function_command(), cwd=ROOT / "functions", env=environment)
    try:
        wait_for_port(port, process)
        yield Function(process, port)
    finally:
        process.terminate()
        process.wait(timeout=STOP_TIMEOUT_S)


def wait_for(condition: Callable[[], object], timeout_s: float = 15) -> bool:
    """Poll `condition` until it holds; False if it never did within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def ffmpeg_children(process: psutil.Process) -> list[psutil.Process]:
    return [child for child in process.children() if child.name() == "ffmpeg"]
