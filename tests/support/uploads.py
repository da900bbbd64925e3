"""Uploads over a bare socket, so a test decides when each byte is sent."""

import contextlib
import select
import socket
import threading

from tests.support.stacks import Function


class RawUpload:
    """A raw-body upload over a bare socket, so the test decides when each byte is sent."""

    def __init__(
        self, function: Function, user: tuple[int, str] | None, wav: bytes, content_type: str = "audio/wav"
    ) -> None:
        """`user` None sends no credentials in the query or the headers."""
        self.wav = wav
        self.connection = socket.create_connection(("127.0.0.1", function.port), timeout=30)
        query, authorization = (f"?user_id={user[0]}", f"Authorization: Bearer {user[1]}\r\n") if user else ("", "")
        self.connection.sendall(
            f"POST /record{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}"
            f"Content-Type: {content_type}\r\nContent-Length: {len(wav)}\r\n\r\n".encode()
        )

    def send(self, data: bytes) -> None:
        # The server may answer, and stop reading, before the body is over.
        with contextlib.suppress(OSError):
            self.connection.sendall(data)

    def send_in_background(self, data: bytes) -> None:
        threading.Thread(target=self.send, args=(data,), daemon=True).start()

    def answered(self, within_s: float) -> bool:
        """Whether the server has begun its answer, or closed the connection, within `within_s`."""
        readable, _, _ = select.select([self.connection], [], [], within_s)
        return bool(readable)

    def response(self) -> tuple[int, dict[str, str]]:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.connection.recv(65_536)
            assert chunk, f"connection closed after {received!r}"
            received += chunk
        head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in head[1:])
        self.connection.close()
        return int(head[0].split()[1]), headers


def assert_retry_later(status: int, headers: dict[str, str]) -> None:
    assert status == 503
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["retry-after"]) > 0
