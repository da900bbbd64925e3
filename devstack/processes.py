"""Starting processes that listen, and knowing when they do."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

STARTUP_TIMEOUT_S = 60
#: uvicorn's graceful shutdown (--timeout-graceful-shutdown 20) with room to spare.
STOP_TIMEOUT_S = 40


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` loopback ports free right now, all different (held together while they are chosen)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Return once `process`, just started, answers on 127.0.0.1:`port`; RuntimeError if it exits or is late."""
    deadline = time.monotonic() + timeout_s
    while not answers("127.0.0.1", port):
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers on port {port} after {timeout_s} s")
        time.sleep(0.05)


def nginx_executable() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_command(prefix: Path, config: Path) -> list[str]:
    """nginx in the foreground with `prefix` as its home, logging errors to stderr (as the image runs it)."""
    nginx = nginx_executable()
    return [nginx, "-p", f"{prefix}/", "-c", str(config), "-e", "stderr", "-g", "daemon off;"]


@contextmanager
def serving(command: list[str], port: int, **popen: object) -> Iterator[subprocess.Popen[bytes]]:
    """`command` running until the block ends, once it answers on `port`; then SIGTERM, and wait."""
    process: subprocess.Popen[bytes] = subprocess.Popen(command, **popen)  # type: ignore[call-overload]
    try:
        wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=STOP_TIMEOUT_S)
