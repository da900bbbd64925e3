"""A function's own port, reached without the gateway: a request's head is bounded in time and size."""

import contextlib
import socket
import threading
from collections.abc import Iterator

import psutil
import pytest

from tests.support.stacks import Function, serve_function

HEAD_TIMEOUT_S = 1


@pytest.fixture(scope="module")
def register(database_url: str) -> Iterator[Function]:
    with serve_function("register", REQUEST_HEAD_TIMEOUT_S=str(HEAD_TIMEOUT_S)) as function:
        yield function


def answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65_536):
        received += chunk
    return received


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"], ids=["nothing", "half"])
def test_a_request_head_that_never_ends_is_cut_off(register: Function, sent: bytes) -> None:
    with socket.create_connection(("127.0.0.1", register.port), timeout=HEAD_TIMEOUT_S + 10) as connection:
        connection.sendall(sent)
        assert answer(connection).startswith(b"HTTP/1.1 408 ")


def test_a_huge_header_is_refused_without_growing_the_function(register: Function) -> None:
    process = psutil.Process(register.process.pid)
    before = process.memory_info().rss
    with socket.create_connection(("127.0.0.1", register.port), timeout=10) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")

        def send_40_mib() -> None:
            with contextlib.suppress(OSError):  # refused and closed before it was all sent
                for _ in range(40 * 16):
                    connection.sendall(b"a" * 65_536)

        sender = threading.Thread(target=send_40_mib)
        sender.start()
        assert answer(connection).startswith(b"HTTP/1.1 431 ")
        sender.join()
    assert process.memory_info().rss - before < 8 * 1024 * 1024


def test_a_whole_request_is_still_served(register: Function) -> None:
    with socket.create_connection(("127.0.0.1", register.port), timeout=10) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert answer(connection).startswith(b"HTTP/1.1 200 ")
