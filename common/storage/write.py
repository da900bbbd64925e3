"""Writing a record: its row and its MP3 chunks, in one transaction, within its owner's quota
and the service's whole storage."""

import io
import time
import uuid
from collections.abc import Callable

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, text
from sqlmodel import col

from common.models import Record
from common.storage import CHUNK_BYTES
from common.storage.pgcopy import ChunkRowsSource, psycopg2_connection

COPY_CHUNKS = "COPY record_chunks (record_id, seq, data) FROM STDIN (FORMAT binary)"
# What psycopg2 asks the source for at a time (its default is 8 KiB).
COPY_READ_BYTES = 1024 * 1024


#: What a record's row must meet to go in, checked in its transaction (it raises to refuse).
RowCondition = Callable[[Connection, Record], None]


class QuotaExceededError(Exception):
    """The user's records would take more than their quota."""


class StorageFullError(Exception):
    """Everyone's records together take the service's whole storage already."""


class ServiceStorage:
    """The service's storage cap, checked against everyone's records summed.

    Registrations are free, so per-user quotas alone bound nothing. The sum reads
    every record's row, so each process reads it at most every REFRESH_S; the cap
    can be overshot by what the processes store in that time.
    """

    REFRESH_S = 10.0

    def __init__(self, cap_bytes: int) -> None:
        self.cap_bytes = cap_bytes
        self._used = 0
        self._read_at = -self.REFRESH_S

    def check(self, connection: Connection) -> None:
        """StorageFullError once the records take the cap (called in a worker thread)."""
        if time.monotonic() - self._read_at >= self.REFRESH_S:
            self._used = int(connection.execute(_EVERYONES_BYTES).scalar_one())
            self._read_at = time.monotonic()
        if self._used >= self.cap_bytes:
            raise StorageFullError


_EVERYONES_BYTES = select(func.coalesce(func.sum(col(Record.size_bytes)), 0))


_USED_BYTES = select(func.coalesce(func.sum(col(Record.size_bytes)), 0)).where(
    col(Record.user_id) == bindparam("user_id")
)
_LOCK_USER = text("SELECT pg_advisory_xact_lock(:user_id)")
# The row as the model has it; created_at is the database's own (its server default).
_INSERT_RECORD = insert(Record)


def used_bytes(connection: Connection, user_id: int) -> int:
    """What `user_id`'s records take, MP3 bytes summed (one indexed scan of their rows)."""
    return int(connection.execute(_USED_BYTES, {"user_id": user_id}).scalar_one())


def check_quota(connection: Connection, user_id: int, quota_bytes: int) -> None:
    """Refuse, before converting anything, an upload from a user whose quota is already full."""
    if used_bytes(connection, user_id) >= quota_bytes:
        raise QuotaExceededError


class RecordWriter:
    """A record's MP3 into PostgreSQL as it is produced, its row last, all in one transaction, or nothing.

    `append` may be called with any amount of bytes: whole chunks go in at
    once (binary COPY), the remainder waits for more, or for `commit`. The
    transaction opens with the first chunk (a short MP3 opens it at `commit`),
    and the chunks' foreign key is deferred to its end, so they can go in before
    the row that describes them: nobody sees either until the commit. Each
    method blocks; call them from one worker thread at a time.
    """

    def __init__(self, engine: Engine, record_id: uuid.UUID) -> None:
        self._engine = engine
        self._record_id = record_id
        self._connection: Connection | None = None
        self._pending = bytearray()
        self._seq = 0

    def append(self, data: bytes) -> None:
        self._pending += data
        whole = len(self._pending) - len(self._pending) % CHUNK_BYTES
        if whole:
            self._copy(memoryview(self._pending)[:whole])
            del self._pending[:whole]

    def commit(self, record: Record, allowed: RowCondition | None = None) -> None:
        """The rest of the bytes, then the row if `allowed` lets it in (`insert_row`); then commit."""
        assert record.id == self._record_id
        self.finish(
            lambda connection: insert_row(connection, record.model_copy(update={"storage": "postgres"}), allowed)
        )

    def finish(self, last: Callable[[Connection], None]) -> None:
        """The rest of the bytes, then `last` in the same transaction (the row, or pointing it here); then commit."""
        if self._pending:
            self._copy(memoryview(self._pending))
            self._pending.clear()
        connection = self._open()
        last(connection)
        connection.commit()
        self.close()

    def close(self) -> None:
        """Roll back whatever was not committed (no row, no chunk) and give the connection back."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> Connection:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._connection.execute(_DEFER_CHUNKS_OWNER)
        return self._connection

    def _copy(self, data: memoryview) -> None:
        source = ChunkRowsSource(self._record_id, io.BytesIO(data), CHUNK_BYTES, first_seq=self._seq)
        with psycopg2_connection(self._open().connection).cursor() as cursor:
            cursor.copy_expert(COPY_CHUNKS, source, size=COPY_READ_BYTES)
        self._seq += -(-len(data) // CHUNK_BYTES)


def insert_row(connection: Connection, record: Record, allowed: RowCondition | None) -> None:
    """The record's row, in the connection's transaction, once `allowed` has not refused it there."""
    if allowed is not None:
        allowed(connection, record)
    connection.execute(_INSERT_RECORD, record.model_dump(exclude={"created_at"}))


def within_quota(connection: Connection, record: Record, quota_bytes: int) -> None:
    """QuotaExceededError unless the owner's records and this one fit in `quota_bytes`.

    Holds a transaction-scoped advisory lock on the user to the commit, so
    concurrent uploads cannot both squeeze in.
    """
    connection.execute(_LOCK_USER, {"user_id": record.user_id})
    if used_bytes(connection, record.user_id) + record.size_bytes > quota_bytes:
        raise QuotaExceededError


# Checked at the commit instead of at each COPY (migration 0006 made it deferrable).
_DEFER_CHUNKS_OWNER = text("SET CONSTRAINTS record_chunks_record_id_fkey DEFERRED")
