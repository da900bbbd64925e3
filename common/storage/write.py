"""Writing a record: its row and its MP3 chunks, in one transaction, within its owner's quota
and the service's whole storage."""

import time
from typing import IO

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, text
from sqlmodel import col

from common.models import Record
from common.storage import CHUNK_BYTES
from common.storage.pgcopy import ChunkRowsSource, psycopg2_connection

COPY_CHUNKS = "COPY record_chunks (record_id, seq, data) FROM STDIN (FORMAT binary)"
# What psycopg2 asks the source for at a time (its default is 8 KiB).
COPY_READ_BYTES = 1024 * 1024


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

    def check(self, engine: Engine) -> None:
        """StorageFullError once the records take the cap (called in a worker thread)."""
        if time.monotonic() - self._read_at >= self.REFRESH_S:
            with engine.connect() as connection:
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


def check_quota(engine: Engine, user_id: int, quota_bytes: int) -> None:
    """Refuse, before converting anything, an upload from a user whose quota is already full."""
    with engine.connect() as connection:
        if used_bytes(connection, user_id) >= quota_bytes:
            raise QuotaExceededError


def store_record(engine: Engine, record: Record, mp3: IO[bytes], quota_bytes: int | None = None) -> None:
    """Insert `record` and the bytes of `mp3` (read from its current position) together, or nothing.

    With `quota_bytes`, the user's records, this one included, must fit in it
    (QuotaExceededError). The check and the insert hold a transaction-scoped
    advisory lock on the user, so concurrent uploads cannot both squeeze in.
    """
    with engine.begin() as connection:
        if quota_bytes is not None:
            connection.execute(_LOCK_USER, {"user_id": record.user_id})
            if used_bytes(connection, record.user_id) + record.size_bytes > quota_bytes:
                raise QuotaExceededError
        connection.execute(_INSERT_RECORD, record.model_dump(exclude={"created_at"}))
        # The chunks go in by binary COPY on the same connection, in the same transaction.
        with psycopg2_connection(connection.connection).cursor() as cursor:
            cursor.copy_expert(COPY_CHUNKS, ChunkRowsSource(record.id, mp3, CHUNK_BYTES), size=COPY_READ_BYTES)
