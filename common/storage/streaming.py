"""The event loop's side of a Writer (either backend's): bytes handed over as they come, written in a worker thread.

A batch is written while the next one gathers, so the producer (ffmpeg's
output) rarely waits for the database; two batches at most are in memory.
"""

import asyncio
import contextlib

import anyio.to_thread

from common.models import Record
from common.storage.backend import Writer

#: Bytes handed to the worker thread at a time: a few chunks per COPY.
BATCH_BYTES = 1024 * 1024


class StreamedWrite:
    """`write` as the bytes come, then `commit` (or nothing: `close` leaves no row and no chunk)."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._pending = bytearray()
        self._in_flight: asyncio.Future[None] | None = None
        self._committed = False

    async def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= BATCH_BYTES:
            await self._hand_over()

    async def commit(self, record: Record, quota_bytes: int | None) -> None:
        await self._settled()
        rest, self._pending = bytes(self._pending), bytearray()
        await anyio.to_thread.run_sync(self._finish, rest, record, quota_bytes)
        self._committed = True

    async def close(self) -> None:
        """Roll back what was not committed; waits for a batch still being written."""
        if self._committed:  # the commit gave the connection back already
            return
        with contextlib.suppress(Exception):  # its error, if any, has been raised to the caller already
            await self._settled()
        await anyio.to_thread.run_sync(self._writer.close)

    def _finish(self, rest: bytes, record: Record, quota_bytes: int | None) -> None:
        """The last bytes and the row, in one hop to a worker thread: on every upload's path to its answer."""
        self._writer.append(rest)
        self._writer.commit(record, quota_bytes)

    async def _hand_over(self) -> None:
        await self._settled()
        batch, self._pending = bytes(self._pending), bytearray()
        self._in_flight = asyncio.ensure_future(anyio.to_thread.run_sync(self._writer.append, batch))

    async def _settled(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await in_flight
