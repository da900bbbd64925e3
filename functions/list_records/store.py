"""One page of a user's records, newest first: one index range scan, at any depth.

`ix_records_user_id_created_at_id` (migration 0004) holds exactly this order,
so PostgreSQL reads `limit + 1` index entries from the cursor's position on
(the extra one says whether another page follows) and nothing else.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Select, select, tuple_
from sqlmodel import col

from common.models import Record

from .cursor import Position


@dataclass(frozen=True)
class ListedRecord:
    record_id: uuid.UUID
    original_name: str
    duration_s: float
    size_bytes: int
    created_at: datetime

    @property
    def position(self) -> Position:
        return Position(self.created_at, self.record_id)


def page_query(user_id: int, limit: int, after: Position | None) -> Select[uuid.UUID, str, float, int, datetime]:
    """The one query of a page: `limit + 1` rows (the extra says whether more follow) from past `after`."""
    query = (
        select(
            col(Record.id),
            col(Record.original_name),
            col(Record.duration_s),
            col(Record.size_bytes),
            col(Record.created_at),
        )
        .where(col(Record.user_id) == user_id)
        .order_by(col(Record.created_at).desc(), col(Record.id).desc())
        .limit(limit + 1)
    )
    if after is not None:
        # A row comparison: the index serves it as the start of the scan.
        query = query.where(tuple_(col(Record.created_at), col(Record.id)) < (after.created_at, after.record_id))
    return query  # type: ignore[return-value]  # created_at is NOT NULL


def newest_records(engine: Engine, user_id: int, limit: int, after: Position | None) -> tuple[list[ListedRecord], bool]:
    """Up to `limit` of the user's records, newest first, from past `after`; and whether more follow."""
    with engine.connect() as connection:
        rows = connection.execute(page_query(user_id, limit, after)).all()
    records = [ListedRecord(*row) for row in rows[:limit]]
    return records, len(rows) > limit
