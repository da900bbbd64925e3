"""schemathesis against the running stack, from the description the gateway serves: no 500s, no mismatch."""

import subprocess
import sys
from pathlib import Path

import httpx2

from tests.support.stacks import Stack

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


def test_the_api_matches_its_description(stack: Stack, gateway: httpx2.Client, tmp_path: Path) -> None:
    described = gateway.get("/openapi.yaml")
    assert described.status_code == 200
    assert described.text.startswith("openapi: 3.1")
    token = gateway.post("/register", json={"name": "schemathesis"}).json()["access_token"]
    result = subprocess.run(
        [
            Path(sys.executable).parent / "schemathesis", "run", f"{stack.base_url}/openapi.yaml",
            "--url", stack.base_url, "--header", f"Authorization: Bearer {token}",
            "--checks", ",".join(CHECKS), "--max-examples", "40", "--seed", "20261122",
        ],
        cwd=tmp_path,  # its cache of examples (.schemathesis/) stays with this run
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_the_description_is_read_only(gateway: httpx2.Client) -> None:
    response = gateway.post("/openapi.yaml", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["content-type"] == "application/problem+json"
