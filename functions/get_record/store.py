"""What get_record reads besides the bytes: a record's description, if its owner asks."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, select
from sqlmodel import col

from common.models import Record


@dataclass(frozen=True)
class StoredRecord:
    size_bytes: int
    sha256: bytes
    original_name: str
    created_at: datetime
    #: Where its bytes are (common.storage.backend).
    storage: str


# Built once; executed on a plain connection, not an ORM session: a download's
# one lookup is on every cached download's path (the gateway revalidates each).
_FIND = select(
    col(Record.size_bytes), col(Record.sha256), col(Record.original_name), col(Record.created_at), col(Record.storage)
).where(col(Record.id) == bindparam("record_id"), col(Record.user_id) == bindparam("user_id"))


def find_record(engine: Engine, record_id: uuid.UUID, user_id: int) -> StoredRecord | None:
    """The record if it exists *and* belongs to `user_id`; None tells neither apart."""
    with engine.connect() as connection:
        row = connection.execute(_FIND, {"record_id": record_id, "user_id": user_id}).first()
    if row is None:
        return None
    size_bytes, sha256, original_name, created_at, storage = row
    assert created_at is not None  # NOT NULL; the model types it optional for inserts
    return StoredRecord(size_bytes, bytes(sha256), original_name, created_at, storage)
