"""A record's bytes, any range of them, a few chunks per query (the layout: common.storage)."""

import asyncio
import uuid
from collections.abc import AsyncGenerator, Iterator

from psycopg2 import sql
from sqlalchemy import Engine

from common.db import run_in_pool
from common.storage import CHUNK_BYTES
from common.storage.pgcopy import SingleColumnSink, pooled_cursor

#: Rows fetched per round trip: a few megabytes in flight, whatever the record's size.
CHUNKS_PER_QUERY = 16

_SLICES = sql.SQL(
    """
    COPY (
        SELECT substring(data FROM greatest({start} - seq * {chunk}, 0) + 1
                              FOR least({stop} - seq * {chunk}, octet_length(data))
                                  - greatest({start} - seq * {chunk}, 0))
        FROM record_chunks
        WHERE record_id = {record_id} AND seq BETWEEN {first} AND {last}
        ORDER BY seq
    ) TO STDOUT (FORMAT binary)
    """
)


class RecordGoneError(Exception):
    """The record was deleted while its bytes were being sent."""


def read_slices(engine: Engine, record_id: uuid.UUID, start: int, stop: int, first: int, last: int) -> list[bytes]:
    """The bytes [start, stop) that fall in chunks `first` to `last`, one piece per chunk."""
    values = {"record_id": str(record_id), "start": start, "stop": stop, "chunk": CHUNK_BYTES, "first": first}
    query = _SLICES.format(**{name: sql.Literal(value) for name, value in (values | {"last": last}).items()})
    sink = SingleColumnSink()
    with pooled_cursor(engine) as cursor:
        cursor.copy_expert(query, sink)
    return sink.rows()


def whole_record(engine: Engine, record_id: uuid.UUID, size: int) -> Iterator[bytes]:
    """All of a record's bytes, a few chunks per query, in this thread (for the move between backends)."""
    last = (size - 1) // CHUNK_BYTES
    for first in range(0, last + 1, CHUNKS_PER_QUERY):
        slices = read_slices(engine, record_id, 0, size, first, min(last, first + CHUNKS_PER_QUERY - 1))
        if not slices:
            raise RecordGoneError(record_id)
        yield from slices


async def stream_bytes(engine: Engine, record_id: uuid.UUID, start: int, end: int) -> AsyncGenerator[bytes, None]:
    """Bytes `start` to `end` inclusive, a few chunks per query in a worker thread.

    The next query runs while the current batch is being sent, so the database
    and the socket work at the same time; two batches at most are in memory.
    A record deleted meanwhile raises RecordGoneError at the first batch that
    no longer finds its chunks: what was sent is a true prefix, never a short file.
    """
    stop, last = end + 1, end // CHUNK_BYTES
    batches = [
        (first, min(last, first + CHUNKS_PER_QUERY - 1))
        for first in range(start // CHUNK_BYTES, last + 1, CHUNKS_PER_QUERY)
    ]

    def fetch(batch: tuple[int, int]) -> asyncio.Future[list[bytes]]:
        return asyncio.ensure_future(run_in_pool(engine, read_slices, record_id, start, stop, *batch))

    pending = fetch(batches[0])
    try:
        for current, following in zip(batches, [*batches[1:], None], strict=True):
            slices = await pending
            if following is not None:
                pending = fetch(following)
            first, last_in_batch = current
            expected = min(stop, (last_in_batch + 1) * CHUNK_BYTES) - max(start, first * CHUNK_BYTES)
            if sum(map(len, slices)) != expected:
                # Each batch is one statement, so it sees all of its chunks or none: the record is gone.
                raise RecordGoneError(record_id)
            for data in slices:
                yield data
    finally:
        pending.cancel()  # the client left mid-download: drop the prefetch
