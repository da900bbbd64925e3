"""Running parts of the service for a test: the whole local stack, one function, or the gateway alone."""

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
import pytest

from devstack.background import RunningStack, start_in_background
from devstack.gateway import gateway_values, render_nginx
from devstack.processes import free_port, free_ports, nginx_command, serving
from devstack.topology import FUNCTIONS, ROOT, Ports, function_command, function_env

Stack = RunningStack

#: Tests send many requests from one address; the limits have tests of their own.
UNLIMITED = {"POST_RATE_LIMIT": "1000000r/s", "GET_RATE_LIMIT": "1000000r/s", "CONNECTIONS_PER_ADDRESS": "60000"}


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


@contextmanager
def running_stack(prefix: str, database_url: str, **env: str) -> Iterator[Stack]:
    """A stack in a folder of its own for the block; afterwards, its log must hold no traceback."""
    with open_folder(prefix) as state_dir:
        running = start_stack(state_dir, database_url, **env)
        yield running
        running.stop()
        # Whatever the tests sent, no function failed on it: an unhandled exception logs a traceback.
        log = running.log.read_text()
        assert "Traceback" not in log, log[log.index("Traceback") - 2000 : log.index("Traceback") + 12000]


@dataclass
class Function:
    """One function served alone by uvicorn, with its Dockerfile's command line."""

    process: "subprocess.Popen[bytes]"
    port: int


@contextmanager
def serve_function(name: str, **env: str) -> Iterator[Function]:
    port = free_port()
    environment = function_env({**os.environ, **env}, name, port)
    with serving(function_command(), port, cwd=ROOT / "functions", env=environment) as process:
        yield Function(process, port)


@contextmanager
def lone_gateway(**env: str) -> Iterator[httpx2.Client]:
    """nginx alone, rendered from the same template, its upstreams pointing at closed ports."""
    with lone_gateway_and_logs(**env) as (gateway, _):
        yield gateway


@contextmanager
def lone_gateway_and_logs(**env: str) -> Iterator[tuple[httpx2.Client, Path]]:
    """`lone_gateway`, and the folder of its logs: `access.log`, and `error.log` (what nginx wrote to stderr)."""
    gateway_port, status_port, inner_port, relay_port, *function_ports = free_ports(4 + len(FUNCTIONS))
    ports = Ports(gateway_port, status_port, inner_port, relay_port, dict(zip(FUNCTIONS, function_ports, strict=True)))
    with open_folder("records-gateway-") as prefix:
        config = render_nginx(prefix, gateway_values(ports, env))
        logs = prefix / "logs"
        with (
            (logs / "error.log").open("wb") as errors,
            serving(nginx_command(prefix, config), ports.gateway, stderr=errors),
            httpx2.Client(base_url=f"http://127.0.0.1:{ports.gateway}", timeout=10) as gateway,
        ):
            yield gateway, logs


def wait_for(condition: Callable[[], object], timeout_s: float = 15) -> bool:
    """Poll `condition` until it holds; False if it never did within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False
