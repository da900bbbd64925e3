"""Where records' bytes live (RECORD_STORAGE): the one interface the functions write, serve and delete them by.

    postgres  record_chunks in the same database as the rows (the default; common.storage)
    s3        one object per record in an S3-compatible store (common.storage.objects)

Rows, quotas, listing and deletion are PostgreSQL's under either backend.
"""

import uuid
from typing import Protocol

from sqlalchemy import Engine

from common.config import Settings
from common.models import Record
from common.storage.write import RecordWriter


class StoreUnavailableError(Exception):
    """The object store did not take the bytes (down, too slow, or refusing us): a 503, not the client's fault."""


class Writer(Protocol):
    """A record's bytes as they are produced, then its row (`commit`); or neither (`close` without a commit).

    Each call blocks: make them from one worker thread at a time.
    """

    def append(self, data: bytes) -> None: ...

    def commit(self, record: Record, quota_bytes: int | None = None) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    #: Whether the gateway fetches the bytes itself (`signed_url`) instead of get_record streaming them.
    serves_by_url: bool

    def writer(self, record_id: uuid.UUID) -> Writer: ...

    def remove(self, record_id: uuid.UUID) -> None:
        """Remove the bytes of a record whose row was just deleted (blocking)."""

    def signed_url(self, record_id: uuid.UUID) -> str:
        """A short-lived URL that reads the record's bytes, for the gateway alone (`serves_by_url` backends)."""


class PostgresBackend:
    """record_chunks, beside the rows: written in the row's transaction, deleted with it (ON DELETE CASCADE)."""

    serves_by_url = False

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def writer(self, record_id: uuid.UUID) -> RecordWriter:
        return RecordWriter(self._engine, record_id)

    def remove(self, record_id: uuid.UUID) -> None:
        """Nothing left to do: the row's deletion took its chunks."""

    def signed_url(self, record_id: uuid.UUID) -> str:
        raise NotImplementedError("PostgreSQL's bytes are streamed by get_record (common.storage.read)")


def backend(settings: Settings, engine: Engine) -> Backend:
    """The backend RECORD_STORAGE names; the s3 one (and its library) is loaded only when chosen."""
    if settings.record_storage == "s3":
        from common.storage.objects import ObjectBackend

        return ObjectBackend(settings, engine)
    return PostgresBackend(engine)
