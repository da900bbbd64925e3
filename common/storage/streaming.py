"""The event loop's side of a Writer (either backend's): the MP3 spooled while it is made, stored at the commit.

An upload over a slow link takes minutes, and one process converts a hundred
at once; were each MP3 streamed to its backend as it is made, each would hold
a database connection (a transaction) or an object store's part buffers
(5 MB each) for all that time. So the MP3 goes to a file of its own instead:
unnamed (O_TMPFILE), so nobody else can open it and it is gone with the upload
however that ends, SIGKILL included. Its batches are written by a worker
thread while the next one gathers. At the commit the whole file goes to the
backend's Writer and the row goes in, in one hop to a worker thread that
holds a connection only for that (common.db.run_in_pool).

Once the upload's last byte is in, ffmpeg still has what its pipe holds to
convert (on a fast link, a second of audio or more). If one of a few spare
connections is free (`early`), what is spooled goes to the backend meanwhile
(`input_complete`), and so does the rest as ffmpeg makes it: the commit is then
the row, not the whole MP3. A few at most, so that connections held between
hops never starve the pool the hops themselves need.

The spool is in the temporary folder (TMPDIR): on disk, since it holds up to
MAX_DURATION_S of MP3 per upload (86 MB at an hour, 192 kb/s).
"""

import asyncio
import contextlib
import tempfile
from typing import IO

import anyio.to_thread
from sqlalchemy import Engine

from common.db import run_in_pool
from common.models import Record
from common.storage.backend import Writer
from common.storage.write import RowCondition

#: Bytes handed to the worker thread at a time: two such batches at most are in memory per upload.
BATCH_BYTES = 256 * 1024
#: Read back from the spool at a time, at the commit.
READ_BYTES = 1024 * 1024


class StreamedWrite:
    """`write` as the bytes come, then `commit` (or nothing: `close` leaves no row, no bytes, no file)."""

    def __init__(self, writer: Writer, engine: Engine, early: asyncio.Semaphore | None = None) -> None:
        self._writer = writer
        self._engine = engine
        self._spool: IO[bytes] | None = None
        self._pending = bytearray()
        self._in_flight: asyncio.Future[None] | None = None
        self._committed = False
        self._early = early
        #: Whether the bytes now go to the writer itself (after `input_complete`), not the spool.
        self._streaming = False
        #: ffmpeg's output (`write`) and the upload (`input_complete`) start work from two tasks:
        #: one at a time, each after the last, so the bytes reach the writer in order.
        self._order = asyncio.Lock()

    async def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= BATCH_BYTES:
            await self._hand_over()

    async def commit(self, record: Record, allowed: RowCondition | None) -> None:
        """The bytes to the backend, then the row if `allowed` lets it in, in its transaction."""
        async with self._order:
            await self._settled()
            rest, self._pending = bytes(self._pending), bytearray()
        await run_in_pool(self._engine, lambda _engine: self._finish(rest, record, allowed))
        self._committed = True

    async def input_complete(self) -> None:
        """The upload is all in: store what is spooled while ffmpeg finishes, if a spare connection allows."""
        if self._early is None or self._early.locked():
            return
        await self._early.acquire()
        async with self._order:
            self._streaming = True
            await self._settled()
            self._in_flight = asyncio.ensure_future(run_in_pool(self._engine, lambda _engine: self._store_spool()))

    async def close(self) -> None:
        """Roll back what was not committed and drop the spool; waits for a batch still being written."""
        with contextlib.suppress(Exception):  # its error, if any, has been raised to the caller already
            await self._settled()
        try:
            await anyio.to_thread.run_sync(self._close)
        finally:
            if self._streaming and self._early is not None:
                self._streaming = False
                self._early.release()

    def _finish(self, rest: bytes, record: Record, allowed: RowCondition | None) -> None:
        """The spool, the last bytes and the row, in one hop to a worker thread: on the path to the answer."""
        self._store_spool()
        self._writer.append(rest)
        self._writer.commit(record, allowed)

    def _store_spool(self) -> None:
        """What is spooled, to the writer; the spool is then done with."""
        if self._spool is not None:
            self._spool.seek(0)
            while piece := self._spool.read(READ_BYTES):
                self._writer.append(piece)
            self._spool.close()
            self._spool = None

    def _close(self) -> None:
        if self._spool is not None:
            self._spool.close()
        if not self._committed:  # the commit gave the connection back already
            self._writer.close()

    def _append_to_spool(self, batch: bytes) -> None:
        if self._spool is None:
            # Open until `_close`: the file lives as long as the upload, across many hops.
            self._spool = tempfile.TemporaryFile(prefix="mp3-")  # noqa: SIM115
        self._spool.write(batch)

    async def _hand_over(self) -> None:
        async with self._order:
            await self._settled()
            batch, self._pending = bytes(self._pending), bytearray()
            append = self._writer.append if self._streaming else self._append_to_spool
            self._in_flight = asyncio.ensure_future(anyio.to_thread.run_sync(append, batch))

    async def _settled(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await in_flight
