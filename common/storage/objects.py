"""Records' bytes in an S3-compatible object store (RECORD_STORAGE=s3), one object per record.

The rows stay in PostgreSQL, and a row is the only way to an object: an
object is written completely (a multipart upload, parts sent as the MP3 is
produced) before its row commits, and a failure midway aborts the upload, so
no row ever names a missing or partial object. An object whose row never
came (a crash between the two) is left to the sweeper.
"""

import logging
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from common.config import Settings
from common.models import Record
from common.storage.backend import StoreUnavailableError
from common.storage.write import RowCondition, insert_row

if TYPE_CHECKING:  # imported where a store is made: the default backend never loads it
    from obstore._buffered import WritableFile
    from obstore.store import S3Config, S3Store

logger = logging.getLogger("records.storage")

#: Objects live under this prefix, one per record, named by its id.
PREFIX = "records/"
#: Sent as the MP3 grows: S3's smallest part (the last may be smaller).
PART_BYTES = 5 * 1024 * 1024
#: Parts in flight at once, per upload: bounds the memory an upload holds to a few parts.
PARTS_IN_FLIGHT = 2
#: How long a download's signed URL is good for: the gateway uses it at once, for one slice.
SIGNED_URL_LIFETIME = timedelta(minutes=1)


def object_key(record_id: uuid.UUID) -> str:
    return f"{PREFIX}{record_id}"


def object_store(settings: Settings) -> "S3Store":
    """The bucket, with path-style addressing (any S3-compatible store) and the credentials from the settings."""
    from obstore.store import S3Store

    assert settings.s3_bucket is not None  # Settings insists, with RECORD_STORAGE=s3
    assert settings.s3_access_key_id is not None
    assert settings.s3_secret_access_key is not None
    endpoint = str(settings.s3_endpoint_url).rstrip("/") if settings.s3_endpoint_url is not None else None
    config: S3Config = {
        "region": settings.s3_region,
        "access_key_id": settings.s3_access_key_id.get_secret_value(),
        "secret_access_key": settings.s3_secret_access_key.get_secret_value(),
        "virtual_hosted_style_request": False,
    }
    if endpoint is not None:  # else AWS's own, for the region
        config["endpoint"] = endpoint
    return S3Store(
        settings.s3_bucket,
        config=config,
        client_options={
            "allow_http": endpoint is not None and endpoint.startswith("http://"),
            "connect_timeout": "2s",
            "timeout": "30s",
        },
        # A store that is down is reported within seconds (503, Retry-After), not retried for minutes.
        retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=5)},
    )


@contextmanager
def store_errors_as_unavailable() -> Iterator[None]:
    """The store's failures (after obstore's own retries) as StoreUnavailableError: 503 with Retry-After."""
    from obstore.exceptions import BaseError

    try:
        yield
    except (BaseError, OSError) as exc:  # the buffered writer reports the store's failures as OSError
        raise StoreUnavailableError(str(exc).split("\n", 1)[0]) from exc


class UploadAbortedError(Exception):
    """Raised into the multipart writer to make it abort the upload."""


class ObjectRecordWriter:
    """A record's MP3 into the object store as it is produced, then its row in PostgreSQL; or neither.

    The same calls as common.storage.write.RecordWriter (`append`, `commit`,
    `close`), each blocking: call them from one worker thread at a time.
    """

    def __init__(self, store: "S3Store", engine: Engine, record_id: uuid.UUID) -> None:
        self._store = store
        self._engine = engine
        self._record_id = record_id
        self._upload = ExitStack()
        self._writer: WritableFile | None = None

    def append(self, data: bytes) -> None:
        with store_errors_as_unavailable():
            if self._writer is None:
                import obstore

                key = object_key(self._record_id)
                self._writer = self._upload.enter_context(
                    obstore.open_writer(self._store, key, buffer_size=PART_BYTES, max_concurrency=PARTS_IN_FLIGHT)
                )
            self._writer.write(data)

    def commit(self, record: Record, allowed: RowCondition | None = None) -> None:
        """Complete the object, then insert the row (`insert_row`); a refused row removes the object again."""
        assert record.id == self._record_id
        self.complete()
        try:
            with self._engine.begin() as connection:
                insert_row(connection, record.model_copy(update={"storage": "s3"}), allowed)
        except BaseException:
            self.discard()
            raise

    def complete(self) -> None:
        """The object, whole, in the store; no row names it yet (the sweeper's, until one does)."""
        assert self._writer is not None, "a record has bytes (records_size_positive)"
        with store_errors_as_unavailable():
            self._writer = None
            self._upload.close()  # completes the multipart upload

    def close(self) -> None:
        """Abort an upload that was not committed: no object is left (nor its parts)."""
        if self._writer is not None:
            self._writer = None
            try:
                self._upload.__exit__(UploadAbortedError, UploadAbortedError(), None)
            except Exception:  # a store that is down: its uploads' lifecycle rule removes the parts
                logger.warning("record=%s: its multipart upload could not be aborted", self._record_id, exc_info=True)

    def discard(self) -> None:
        """Delete the object; one that cannot be deleted now is the sweeper's (it has no row)."""
        import obstore

        try:
            obstore.delete(self._store, object_key(self._record_id))
        except Exception:
            logger.warning("record=%s: its object stays for the sweeper", self._record_id, exc_info=True)


class ObjectBackend:
    """RECORD_STORAGE=s3 (common.storage.backend): the bytes in the bucket, the rows in PostgreSQL."""

    name = "s3"
    serves_by_url = True

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._store = object_store(settings)
        self._engine = engine

    def writer(self, record_id: uuid.UUID) -> ObjectRecordWriter:
        return ObjectRecordWriter(self._store, self._engine, record_id)

    def remove(self, record_id: uuid.UUID) -> None:
        """Delete the object of a deleted row; if the store fails, the sweeper removes it later."""
        import obstore

        obstore.delete(self._store, object_key(record_id))

    def signed_url(self, record_id: uuid.UUID) -> str:
        """A presigned GET (signed locally: no request to the store), for the gateway to fetch the bytes by."""
        import obstore

        return obstore.sign(self._store, "GET", object_key(record_id), SIGNED_URL_LIFETIME)
