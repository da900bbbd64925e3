"""uvicorn's HTTP protocol, with the two bounds it lacks on a request's head, and one on its receive buffer.

uvicorn waits for a half-sent request forever and takes headers of any size
(httptools has no limit), so anyone who reaches a function's own port could
hold its connections or grow its memory at will. The gateway bounds both for
the public (`client_header_timeout`, `large_client_header_buffers`); this
bounds them on the functions' ports too. The Dockerfile's CMD names it:
`--http common.serving:BoundedHttpToolsProtocol`.
"""

import asyncio
import contextlib
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from common.config import get_settings

#: The request line and headers together; the gateway sends at most 32 KiB of them.
MAX_HEAD_BYTES = 64 * 1024
#: After refusing, what the client still sends is read and dropped this long before the
#: connection closes: closed at once, the unread bytes would make the kernel reset it,
#: and the client could lose the answer (nginx's lingering close).
LINGER_S = 1.0
#: Each connection's receive buffer in the kernel, fixed (the kernel doubles it for its
#: bookkeeping). Left to autotuning it grows up to tcp_rmem's maximum (32 MB on some
#: machines) on a fast link, and an upload whose converter is behind keeps it full:
#: memory that counts against the function's limit, per upload. 256 KiB still fills
#: ffmpeg's pipe faster than ffmpeg drains it.
RECEIVE_BUFFER_BYTES = 256 * 1024


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """A request's head must arrive within REQUEST_HEAD_TIMEOUT_S (408) and fit in MAX_HEAD_BYTES (431).

    The time counts from a connection's opening, or a request's first byte.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout_s = get_settings().request_head_timeout_s
        self._head_bytes = 0
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        connection = transport.get_extra_info("socket")
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # httptools hands a header over only once it is whole, so the head is counted as it arrives.
        if self._refused:
            return
        super().data_received(data)
        if self._head_deadline is not None:  # the head is still incomplete
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(431, "Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head()

    def on_headers_complete(self) -> None:
        self._end_head()
        super().on_headers_complete()

    def _start_head(self) -> None:
        self._head_bytes = 0
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self._head_timeout_s, self._refuse, 408, "Request Timeout")

    def _end_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _refuse(self, status: int, reason: str) -> None:
        self._head_deadline = None
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        head = f"HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        self.transport.write(head.encode("ascii"))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)
