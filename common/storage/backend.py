"""Where records' bytes live: the one interface the functions write, serve and delete them by.

    postgres  record_chunks in the same database as the rows (the default; common.storage)
    s3        one object per record in an S3-compatible store (common.storage.objects)

RECORD_STORAGE chooses where new records go; each row's `storage` says where
its own bytes are, so records of both can be served side by side while
`python -m common.storage.move` moves them. Rows, quotas, listing and
deletion are PostgreSQL's under either backend.
"""

import uuid
from typing import Protocol

from sqlalchemy import Engine

from common.config import Settings
from common.models import Record
from common.storage.write import RecordWriter, RowCondition


class StoreUnavailableError(Exception):
    """The object store did not take the bytes (down, too slow, or refusing us): a 503, not the client's fault."""


class Writer(Protocol):
    """A record's bytes as they are produced, then its row (`commit`); or neither (`close` without a commit).

    Each call blocks: make them from one worker thread at a time.
    """

    def append(self, data: bytes) -> None: ...

    def commit(self, record: Record, allowed: RowCondition | None = None) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    #: The backend's RECORD_STORAGE value, which its records' rows carry as `storage`.
    name: str
    #: Whether the gateway fetches the bytes itself (`signed_url`) instead of get_record streaming them.
    serves_by_url: bool

    def writer(self, record_id: uuid.UUID) -> Writer: ...

    def remove(self, record_id: uuid.UUID) -> None:
        """Remove the bytes of a record whose row was just deleted (blocking)."""

    def signed_url(self, record_id: uuid.UUID) -> str:
        """A short-lived URL that reads the record's bytes, for the gateway alone (`serves_by_url` backends)."""


class PostgresBackend:
    """record_chunks, beside the rows: written in the row's transaction, deleted with it (ON DELETE CASCADE)."""

    name = "postgres"
    serves_by_url = False

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def writer(self, record_id: uuid.UUID) -> RecordWriter:
        return RecordWriter(self._engine, record_id)

    def remove(self, record_id: uuid.UUID) -> None:
        """Nothing left to do: the row's deletion took its chunks."""

    def signed_url(self, record_id: uuid.UUID) -> str:
        raise NotImplementedError("PostgreSQL's bytes are streamed by get_record (common.storage.read)")


class StoreNotConfiguredError(StoreUnavailableError):
    """A record's bytes are in the object store, and this process has no S3 settings."""


class Backends:
    """The backend new records go to (RECORD_STORAGE), and the one each stored record names."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine
        self._built: dict[str, Backend] = {"postgres": PostgresBackend(engine)}

    @property
    def writing(self) -> Backend:
        return self.of(self._settings.record_storage)

    def of(self, storage: str) -> Backend:
        """The backend a record's `storage` names; the s3 one (and its library) is loaded on first use."""
        if storage not in self._built:
            from common.storage.objects import ObjectBackend

            if self._settings.s3_bucket is None:
                raise StoreNotConfiguredError("a record is in the object store, and the S3_* settings are unset")
            self._built[storage] = ObjectBackend(self._settings, self._engine)
        return self._built[storage]
