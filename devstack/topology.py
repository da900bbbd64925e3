"""What runs where: the functions, their ports, and how each is started (as in its image)."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack import roster
from devstack.processes import free_ports

ROOT = Path(__file__).resolve().parent.parent
#: The functions' names, in functions/roster.toml's order.
FUNCTIONS = tuple(function.name for function in roster.load())


@dataclass(frozen=True)
class Ports:
    gateway: int
    gateway_status: int
    #: The gateway's HTTP server, behind its front door (nginx/templates/gateway.stream.template).
    gateway_inner: int
    #: The object relay (RECORD_STORAGE=s3), the cache's way to get_record and the store.
    gateway_relay: int
    functions: Mapping[str, int]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Ports:
        """GATEWAY_PORT, or 5000; every internal port as set, or a free one, so stacks can run side by side."""
        spare = iter(free_ports(3 + len(FUNCTIONS)))
        return cls(
            gateway=int(env.get("GATEWAY_PORT") or 5000),
            gateway_status=int(env.get("GATEWAY_STATUS_PORT") or next(spare)),
            gateway_inner=next(spare),
            gateway_relay=next(spare),
            functions={name: int(env.get(f"{name.upper()}_PORT") or next(spare)) for name in FUNCTIONS},
        )

    def describe(self) -> str:
        """The ready line's account of them, which `Ports.described` reads back."""
        functions = ", ".join(f"{name} on :{port}" for name, port in self.functions.items())
        return (
            f"http://127.0.0.1:{self.gateway}; {functions}; the gateway's /healthz on :{self.gateway_status}"
            f", its HTTP server on :{self.gateway_inner} and its object relay on :{self.gateway_relay}"
        )

    @classmethod
    def described(cls, line: str) -> Ports:
        gateway = re.search(r"http://127\.0\.0\.1:(\d+);", line)
        status = re.search(r"the gateway's /healthz on :(\d+)", line)
        inner = re.search(r"its HTTP server on :(\d+)", line)
        relay = re.search(r"its object relay on :(\d+)", line)
        assert gateway is not None
        assert status is not None
        assert inner is not None
        assert relay is not None
        functions = {name: int(port) for name, port in re.findall(r"(\w+) on :(\d+)", line) if name in FUNCTIONS}
        return cls(int(gateway[1]), int(status[1]), int(inner[1]), int(relay[1]), functions)


def function_command() -> list[str]:
    """The CMD of the functions' Dockerfile: local and container processes run the same line.

    It names no app: uvicorn takes it from UVICORN_APP (see `function_env`), as in the image.
    """
    dockerfile = (ROOT / "functions" / "Dockerfile").read_text()
    match = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    if match is None:
        raise SystemExit("functions/Dockerfile has no exec-form CMD")
    command: list[str] = json.loads(match.group(1))
    return command


def function_env(env: Mapping[str, str], name: str, port: int) -> dict[str, str]:
    """`env` plus what the image's ENV sets, for function `name` on loopback port `port`."""
    return {
        **env,
        "UVICORN_APP": f"{name}.app:app",
        "UVICORN_HOST": "127.0.0.1",
        "UVICORN_PORT": str(port),
        "UVICORN_FORWARDED_ALLOW_IPS": "127.0.0.1",
        # The venv's executables (uvicorn, ffmpeg wrappers) first, like the image's PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }
