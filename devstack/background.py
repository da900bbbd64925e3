"""The local stack in a child process, for the tests and the benchmark, and what its logs say."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from devstack.processes import STARTUP_TIMEOUT_S, STOP_TIMEOUT_S, free_port
from devstack.supervisor import READY
from devstack.topology import ROOT, Ports


@dataclass
class RunningStack:
    """A stack started by `start_in_background`."""

    process: subprocess.Popen[bytes]
    ports: Ports
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def access_log(self) -> Path:
        """The gateway's access log; nginx writes it at least once a second."""
        return self.log.parent / "logs" / "access.log"

    def access_log_since(self, since: int = 0) -> str:
        """The gateway's access log from byte `since` on."""
        with self.access_log.open() as log:
            log.seek(since)
            return log.read()

    def record_cache_statuses(self, since: int = 0) -> list[str]:
        """What the gateway's cache did for each download logged after byte `since` (MISS, REVALIDATED, …)."""
        return re.findall(r'"GET /record [^"]*" \d+ .* cache=(\S+)', self.access_log_since(since))

    def request_times_ms(self, user_agent: str, since: int = 0) -> list[float]:
        """How long the gateway took over each request from `user_agent` logged after byte `since`."""
        pattern = rf'" \d+ \d+ ([\d.]+) "{re.escape(user_agent)}"'
        return [float(seconds) * 1000 for seconds in re.findall(pattern, self.access_log_since(since))]

    def function_processes(self) -> dict[str, psutil.Process]:
        """Each function's uvicorn process (not the shell honcho starts it through), by name."""
        found = {}
        for child in psutil.Process(self.process.pid).children(recursive=True):
            try:
                app = child.environ().get("UVICORN_APP", "")
                if child.name() == "uvicorn" and app.endswith(".app:app"):  # not the shell honcho runs it in
                    found[app.removesuffix(".app:app")] = child
            except psutil.NoSuchProcess:  # an ffmpeg of add_record's, gone since the listing
                pass
        return found

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, as Ctrl-C or `docker stop` would send; returns the exit status."""
        self.process.terminate()
        return self.process.wait(timeout=timeout_s)


def ffmpeg_children(process: psutil.Process) -> list[psutil.Process]:
    """The ffmpeg processes `process` runs now; one that exits while they are listed is left out."""
    found = []
    for child in process.children():
        try:
            if child.name() == "ffmpeg":
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def proportional_memory(process: psutil.Process) -> int:
    """Bytes `process` and its ffmpeg children take, the pages they share split among them (PSS).

    The sum is what a container's memory limit counts of them, but for the kernel's
    own (socket and pipe buffers) and the page cache.
    """
    total = int(process.memory_full_info().pss)
    for child in ffmpeg_children(process):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += int(child.memory_full_info().pss)
    return total


def start_in_background(state_dir: Path, env: Mapping[str, str]) -> RunningStack:
    """Run the stack on free loopback ports, logging to `state_dir`/stack.log, and wait until it is ready.

    Only the gateway's port is chosen here; the stack picks its internal ones, and says which when ready.
    """
    environment = {**env, "GATEWAY_PORT": str(free_port()), "STACK_DIR": str(state_dir)}
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "stack.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack"], cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (ready := re.search(rf"^{READY}(.*)$", log.read_text(), re.MULTILINE)):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=STOP_TIMEOUT_S)
            raise RuntimeError(f"the stack did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return RunningStack(process, Ports.described(ready[1]), log)
