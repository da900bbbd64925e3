"""What the gateway answers and logs on its own: problems for its every error, no link or token in a log line.

Each runs against nginx alone (its functions' ports closed), with its logs kept.
"""

import json
import socket
import time
import uuid
from pathlib import Path

import httpx2
import pytest

from tests.support.problems import assert_problem
from tests.support.stacks import lone_gateway, lone_gateway_and_logs

TOKEN = str(uuid.uuid4())
RECORD = str(uuid.uuid4())
LINK = f"/record?id={RECORD}&user=424242"


def port_of(gateway: httpx2.Client) -> int:
    return int(str(gateway.base_url).rsplit(":", 1)[1].rstrip("/"))


def raw_answer(gateway: httpx2.Client, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as bytes; the status, headers and body (by its Content-Length) that come back."""
    with socket.create_connection(("127.0.0.1", port_of(gateway)), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            received += connection.recv(65_536)
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        while len(body) < int(headers["content-length"]):
            body += connection.recv(65_536)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
        (b"NOT A REQUEST\r\n\r\n", 400),
    ],
    ids=["unknown-transfer-encoding", "header-too-large", "http-3", "garbage"],
)
def test_every_error_of_nginx_s_own_is_a_problem(request_bytes: bytes, status: int) -> None:
    with lone_gateway() as gateway:
        answered, headers, body = raw_answer(gateway, request_bytes)
    assert answered == status
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == status


def test_a_token_in_the_url_is_refused_before_the_body_is_read() -> None:
    with lone_gateway() as gateway:
        # A declared body of 100 MB that never comes: the answer does not wait for it.
        status, _, body = raw_answer(
            gateway,
            f"POST /record?user_id=1&access_token={TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
            f"Content-Length: 100000000\r\nConnection: close\r\n\r\n".encode(),
        )
        assert status == 400
        assert "URL" in json.loads(body)["detail"]
        for path in (f"/records?access_token={TOKEN}", f"/register?x=1&access_token={TOKEN}"):
            assert_problem(gateway.get(path), 400)


def test_the_docs_carry_the_page_s_policy_and_only_the_files_they_use() -> None:
    with lone_gateway() as gateway:
        for path in ("/docs/", "/docs/init.js", "/docs/assets/swagger-ui.css", "/docs/assets/swagger-ui-bundle.js"):
            response = gateway.get(path)
            assert response.status_code == 200, path
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"], path
        for path in ("/docs/assets/index.html", "/docs/assets/oauth2-redirect.html", "/docs/assets/swagger-ui.js"):
            assert_problem(gateway.get(path), 404)


def test_no_link_and_no_token_reaches_a_log_and_each_line_is_bounded() -> None:
    """Provoke each error nginx logs (a rate limit, a body too large, a function down) on a link and a token."""
    with lone_gateway_and_logs(POST_RATE_LIMIT="1r/m", POST_BURST="1", GET_RATE_LIMIT="1r/m", GET_BURST="1") as (
        gateway,
        logs,
    ):
        long_agent = {"user-agent": "A" * 8000}
        for _ in range(3):  # the function is down (503), then the rate limit (429)
            gateway.get(LINK, headers=long_agent)
            gateway.delete(LINK, headers={"authorization": f"Bearer {TOKEN}"} | long_agent)
        too_large, _, _ = raw_answer(
            gateway,
            f"POST {LINK}&x={TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n".encode(),
        )
        assert too_large == 413
        time.sleep(1.5)  # the access log is flushed every second
        written = {path.name: path.read_text(errors="replace") for path in Path(logs).iterdir()}
    assert set(written) == {"access.log", "error.log"}
    for name, text in written.items():
        assert RECORD not in text, name
        assert TOKEN not in text, name
    lines = written["access.log"].splitlines()
    assert len(lines) >= 7
    assert max(map(len, lines)) < 600


def connect_from(address: str, port: int) -> socket.socket:
    connection = socket.socket()
    connection.settimeout(10)
    connection.bind((address, 0))
    connection.connect(("127.0.0.1", port))
    return connection


def test_one_address_holding_thousands_of_half_open_requests_takes_nothing_from_another() -> None:
    """2,000 half-sent requests from 127.0.0.2: all but CONNECTIONS_PER_ADDRESS are closed, and 127.0.0.3 is served."""
    limit = 64
    with lone_gateway(CONNECTIONS_PER_ADDRESS=str(limit)) as gateway:
        port = port_of(gateway)
        hogs = []
        try:
            for _ in range(2000):
                hog = connect_from("127.0.0.2", port)
                hog.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line that ends it
                hogs.append(hog)
            for _ in range(5):
                with connect_from("127.0.0.3", port) as other:
                    other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    assert other.recv(65_536).startswith(b"HTTP/1.1 200 ")
            still_open = 0
            for hog in hogs:
                hog.settimeout(0.05)
                try:
                    still_open += hog.recv(1) != b""
                except TimeoutError:
                    still_open += 1
                except ConnectionResetError:
                    pass
            assert still_open <= limit
        finally:
            for hog in hogs:
                hog.close()
