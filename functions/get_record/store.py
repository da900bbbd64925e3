"""Reading a record back: its description, then its bytes in slices.

The MP3 lives in `record_chunks` rows of CHUNK_BYTES whose `data` column is
stored EXTERNAL (uncompressed TOAST). So `substring()` fetches only the TOAST
pieces a slice covers, and a range costs what it asks for, not the record's size.

The slices travel as binary COPY: psycopg2 receives query results as text,
which for bytea means hex at twice the size and a fifth of the speed
(measured here: 150 MB/s as rows, 790 MB/s as binary COPY).
"""

import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import psycopg2.extensions
from psycopg2 import sql
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from common.models import CHUNK_BYTES, Record

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
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


@dataclass(frozen=True)
class StoredRecord:
    size_bytes: int
    sha256: bytes
    original_name: str
    created_at: datetime


def find_record(engine: Engine, record_id: uuid.UUID, user_id: int) -> StoredRecord | None:
    """The record if it exists *and* belongs to `user_id`; None tells neither apart."""
    with Session(engine) as session:
        row = session.exec(
            select(Record.size_bytes, Record.sha256, Record.original_name, Record.created_at).where(
                col(Record.id) == record_id, col(Record.user_id) == user_id
            )
        ).first()
    if row is None:
        return None
    size_bytes, sha256, original_name, created_at = row
    assert created_at is not None
    return StoredRecord(size_bytes, bytes(sha256), original_name, created_at)


class _CopyRows:
    """A file-like sink for psycopg2's copy_expert that parses binary COPY into one-column rows."""

    def __init__(self) -> None:
        self.rows: list[bytes] = []
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def parse(self) -> list[bytes]:
        view = memoryview(self._buffer)
        if view[:11] != _COPY_SIGNATURE:
            raise ValueError("not binary COPY output")
        (extension,) = struct.unpack_from(">I", view, 15)
        offset = 19 + extension
        while True:
            (fields,) = struct.unpack_from(">h", view, offset)
            if fields == -1:  # the trailer
                return self.rows
            (length,) = struct.unpack_from(">i", view, offset + 2)
            self.rows.append(bytes(view[offset + 6 : offset + 6 + length]))
            offset += 6 + length


def read_slices(engine: Engine, record_id: uuid.UUID, start: int, stop: int, first: int, last: int) -> list[bytes]:
    """The bytes [start, stop) that fall in chunks `first` to `last`, one piece per chunk."""
    values = {"record_id": str(record_id), "start": start, "stop": stop, "chunk": CHUNK_BYTES, "first": first}
    query = _SLICES.format(**{name: sql.Literal(value) for name, value in (values | {"last": last}).items()})
    sink = _CopyRows()
    pooled = engine.raw_connection()
    try:
        connection = pooled.driver_connection
        assert isinstance(connection, psycopg2.extensions.connection)
        with connection.cursor() as cursor:
            cursor.copy_expert(query, sink)
        connection.commit()
    finally:
        pooled.close()  # back to the pool
    return sink.parse()


async def stream_bytes(engine: Engine, record_id: uuid.UUID, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes `start` to `end` inclusive, a few chunks per query, each query in a worker thread."""
    stop = end + 1
    last = end // CHUNK_BYTES
    seq = start // CHUNK_BYTES
    while seq <= last:
        batch_last = min(last, seq + CHUNKS_PER_QUERY - 1)
        for data in await run_in_threadpool(read_slices, engine, record_id, start, stop, seq, batch_last):
            yield data
        seq = batch_last + 1
