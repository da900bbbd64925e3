"""What a function costs to start and to keep: process start → first /healthz 200, and idle RSS."""

import statistics
import subprocess
import time
from collections.abc import Mapping
from typing import Any

import httpx2
import psutil

from devstack.processes import STARTUP_TIMEOUT_S, free_port

#: Quiet time after the first 200 before RSS is read: what the process keeps, not what starting it took.
SETTLE_S = 1.0


def start_and_idle(command: list[str], env: Mapping[str, str], port: int, cwd: str) -> dict[str, Any]:
    """Start `command` (listening on `port`), time it to its first /healthz 200, read its idle RSS, stop it."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx2.Client(timeout=1) as client:
            while True:
                if process.poll() is not None or time.perf_counter() - started > STARTUP_TIMEOUT_S:
                    raise RuntimeError(f"{command!r} did not answer /healthz (exit status {process.poll()})")
                try:
                    if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx2.TransportError:
                    time.sleep(0.005)
        start_s = time.perf_counter() - started
        time.sleep(SETTLE_S)
        rss = psutil.Process(process.pid).memory_info().rss
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {"start_s": round(start_s, 3), "idle_rss_mb": round(rss / 2**20, 1)}


def median_start(starts: int, command: list[str], env: Mapping[str, str], port: int, cwd: str) -> dict[str, Any]:
    """`start_and_idle` `starts` times: each figure's median (as other rows are medians), and every start's time."""
    runs = [start_and_idle(command, env, port, cwd) for _ in range(starts)]
    return {
        "start_s": statistics.median(run["start_s"] for run in runs),
        "idle_rss_mb": statistics.median(run["idle_rss_mb"] for run in runs),
        "starts_s": [run["start_s"] for run in runs],
    }


def second_copy(running: psutil.Process) -> tuple[list[str], dict[str, str], int, str]:
    """The command, environment and folder of a running function, on a port of its own: the same process, fresh."""
    port = free_port()
    return running.cmdline(), running.environ() | {"UVICORN_PORT": str(port)}, port, running.cwd()
