"""The one statement delete_record runs: a record deleted if it is its owner's."""

import uuid

from sqlalchemy import Engine, bindparam, delete
from sqlmodel import col

from common.models import Record

_DELETE_OWNED = (
    delete(Record)
    .where(col(Record.id) == bindparam("record_id"), col(Record.user_id) == bindparam("user_id"))
    .returning(col(Record.storage))
)


def delete_owned(engine: Engine, record_id: uuid.UUID, user_id: int) -> str | None:
    """Delete the record if it is `user_id`'s; where its bytes were, or None. Of concurrent calls, one alone gets it.

    Chunks in PostgreSQL go with it (the foreign key's ON DELETE CASCADE), in the same statement.
    """
    with engine.begin() as connection:
        return connection.execute(_DELETE_OWNED, {"record_id": record_id, "user_id": user_id}).scalar()
