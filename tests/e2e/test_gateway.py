"""The API through nginx, as a client sees it: routing, statuses and problem bodies."""

import socket
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import Engine, text

from common.security import hash_token
from devstack.gateway import gateway_values, render_nginx
from devstack.topology import FUNCTIONS, Ports
from tests.support.problems import assert_problem
from tests.support.stacks import Stack, lone_gateway

JSON = {"content-type": "application/json"}


def test_register_through_the_gateway(gateway: httpx2.Client) -> None:
    response = gateway.post("/register", json={"name": "alice"})
    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["user_id"], int)
    assert uuid.UUID(body["access_token"]).version == 4
    assert response.headers["cache-control"] == "no-store"
    assert "nginx/" not in response.headers.get("server", "")


def test_concurrent_registrations_each_get_their_own_row(stack: Stack, engine: Engine) -> None:
    # register writes concurrent registrations in one statement: every id must
    # come back to the request whose name and token it was stored with.
    names = [f"concurrent-{index}" for index in range(96)]

    def register(name: str) -> tuple[str, dict[str, Any]]:
        with httpx2.Client(base_url=stack.base_url, timeout=30) as own_client:
            response = own_client.post("/register", json={"name": name})
        assert response.status_code == 201, response.text
        return name, response.json()

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(register, names))
    ids = [body["user_id"] for _, body in answers]
    assert len(set(ids)) == len(names)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, name, token_sha256 FROM users WHERE id = ANY(:ids)"), {"ids": ids}
        ).all()
    stored = {row.id: (row.name, bytes(row.token_sha256)) for row in rows}
    for name, body in answers:
        assert stored[body["user_id"]] == (name, hash_token(body["access_token"]))


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{nope", JSON, 400),
        (b"{}", JSON, 422),
        (b'{"name": "   "}', JSON, 422),
        (b'{"name": 7}', JSON, 422),
        (b"[]", JSON, 422),
        (b'{"name": "alice"}', {"content-type": "text/plain"}, 415),
    ],
    ids=["unparseable", "missing-name", "blank-name", "wrong-type", "not-object", "not-json"],
)
def test_register_errors_pass_through_as_problems(
    gateway: httpx2.Client, content: bytes, headers: dict[str, str], status: int
) -> None:
    assert_problem(gateway.post("/register", content=content, headers=headers), status)


def test_register_method_not_allowed(gateway: httpx2.Client) -> None:
    response = gateway.get("/register")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


def test_record_refuses_other_methods_at_the_gateway(gateway: httpx2.Client) -> None:
    for method in ("PUT", "PATCH", "OPTIONS"):
        response = gateway.request(method, "/record")
        assert_problem(response, 405)
        assert response.headers["allow"] == "GET, HEAD, POST, DELETE"


def test_records_refuses_writes_at_the_gateway(gateway: httpx2.Client) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        response = gateway.request(method, "/records")
        assert_problem(response, 405)
        assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/nope", "/healthz", "/register/1", "/records/1", "/index.html", "/docs/nope"])
def test_unknown_paths_are_404(gateway: httpx2.Client, path: str) -> None:
    assert_problem(gateway.get(path), 404)


def test_the_page_is_served_with_its_own_headers(gateway: httpx2.Client) -> None:
    page = gateway.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert gateway.get("/app.js").status_code == 200
    assert gateway.get("/docs").headers["location"].endswith("/docs/")
    assert gateway.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


def test_oversized_registration_is_413_at_the_gateway(gateway: httpx2.Client) -> None:
    response = gateway.post("/register", content=b"x" * 20_000, headers=JSON)
    body = assert_problem(response, 413)
    # The gateway answered: a function's 413 names its own byte limit.
    assert "bytes" not in body["detail"]


def test_functions_are_healthy_on_their_own_ports(stack: Stack) -> None:
    for port in stack.ports.functions.values():
        response = httpx2.get(f"http://127.0.0.1:{port}/healthz")
        assert response.status_code == 200


def test_gateway_reports_its_own_health_on_its_status_port_only(stack: Stack, gateway: httpx2.Client) -> None:
    response = httpx2.get(f"http://127.0.0.1:{stack.ports.gateway_status}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert_problem(gateway.get("/healthz"), 404)


@pytest.fixture
def gateway_without_functions() -> Iterator[httpx2.Client]:
    with lone_gateway() as client:
        yield client


def test_function_down_is_503_with_retry_after(gateway_without_functions: httpx2.Client) -> None:
    for method, path in [
        ("POST", "/register"),
        ("POST", "/record"),
        ("GET", "/record"),
        ("GET", "/records"),
        ("DELETE", "/record"),
    ]:
        response = gateway_without_functions.request(method, path)
        assert_problem(response, 503)
        assert int(response.headers["retry-after"]) > 0


def test_rendered_local_config_passes_nginx_t(tmp_path: Path) -> None:
    ports = Ports(
        gateway=5000,
        gateway_status=5001,
        gateway_inner=5002,
        gateway_relay=5003,
        functions={name: 8000 + i for i, name in enumerate(FUNCTIONS)},
    )
    config = render_nginx(tmp_path, gateway_values(ports, {}))
    result = subprocess.run(
        ["nginx", "-t", "-p", f"{tmp_path}/", "-c", str(config), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


@pytest.mark.parametrize(("method", "path"), [("POST", "/register"), ("DELETE", "/record?id=x"), ("POST", "/token")])
def test_a_flood_of_writes_from_one_address_gets_429(method: str, path: str) -> None:
    with lone_gateway(POST_RATE_LIMIT="1r/s", POST_BURST="2") as gateway:
        statuses = [gateway.request(method, path).status_code for _ in range(8)]
        assert statuses[:3] == [503, 503, 503]  # the burst passes (to a function that is down)
        assert 429 in statuses
        limited = gateway.request(method, path)
        assert_problem(limited, 429)
        assert int(limited.headers["retry-after"]) > 0
        assert gateway.get("/record?id=x&user=1").status_code != 429  # reads are not in this zone


def test_a_client_that_stops_sending_its_body_is_cut_off() -> None:
    """nginx ends it at client_body_timeout by closing the connection (no 408 to a silent client)."""
    with lone_gateway(CLIENT_BODY_TIMEOUT_S="1") as gateway:
        port = int(str(gateway.base_url).rsplit(":", 1)[1].rstrip("/"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(
                b"POST /register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"name":'
            )
            # The socket's own timeout (10 s) would raise TimeoutError instead.
            assert connection.recv(65_536) == b""


def test_behind_a_trusted_proxy_each_client_has_its_own_limit() -> None:
    forwarded = [{"x-forwarded-for": f"203.0.113.{n}"} for n in (1, 1, 1, 2)]
    with lone_gateway(POST_RATE_LIMIT="1r/m", POST_BURST="1", TRUSTED_PROXIES="127.0.0.1") as gateway:
        statuses = [gateway.post("/register", json={"name": "x"}, headers=headers).status_code for headers in forwarded]
    assert statuses == [503, 503, 429, 503]  # the third from .1 is over its burst; .2 has its own


def test_without_a_trusted_proxy_x_forwarded_for_is_not_believed() -> None:
    forwarded = [{"x-forwarded-for": f"203.0.113.{n}"} for n in (1, 2, 3)]
    with lone_gateway(POST_RATE_LIMIT="1r/m", POST_BURST="1") as gateway:
        statuses = [gateway.post("/register", json={"name": "x"}, headers=headers).status_code for headers in forwarded]
    assert statuses == [503, 503, 429]  # one address, whatever the header says
