"""One page of a user's records, newest first: one index range scan, at any depth.

`ix_records_user_id_created_at_id` (migration 0004) holds exactly this order,
so PostgreSQL reads `limit + 1` index entries from the cursor's position on
(the extra one says whether another page follows) and nothing else.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, Select, bindparam, select, tuple_
from sqlmodel import col

from common.auth import owner_or_refuse
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


@dataclass(frozen=True)
class OwnersPage:
    user_id: int
    records: list[ListedRecord]
    more: bool


PageQuery = Select[uuid.UUID, str, float, int, datetime]
_COLUMNS = (
    col(Record.id),
    col(Record.original_name),
    col(Record.duration_s),
    col(Record.size_bytes),
    col(Record.created_at),
)
_NEWEST_FIRST = (col(Record.created_at).desc(), col(Record.id).desc())
# Built once, each with its parameters bound per page: a statement object SQLAlchemy
# has already compiled and keyed costs a fraction of one assembled per request.
_FIRST_PAGE: PageQuery = (
    select(*_COLUMNS)  # type: ignore[assignment]  # created_at is NOT NULL
    .where(col(Record.user_id) == bindparam("user_id"))
    .order_by(*_NEWEST_FIRST)
    .limit(bindparam("rows"))
)
# A row comparison: the index serves it as the start of the scan.
_PAGE_AFTER = _FIRST_PAGE.where(
    tuple_(col(Record.created_at), col(Record.id)) < tuple_(bindparam("created_at"), bindparam("record_id"))
)


def page_query(user_id: int, limit: int, after: Position | None) -> tuple[PageQuery, dict[str, object]]:
    """A page's one query and its values: `limit + 1` rows (the extra says whether more follow) from past `after`."""
    values: dict[str, object] = {"user_id": user_id, "rows": limit + 1}
    if after is None:
        return _FIRST_PAGE, values
    return _PAGE_AFTER, values | {"created_at": after.created_at, "record_id": after.record_id}


def newest_records(
    connection: Connection, user_id: int, limit: int, after: Position | None
) -> tuple[list[ListedRecord], bool]:
    """Up to `limit` of the user's records, newest first, from past `after`; and whether more follow."""
    rows = connection.execute(*page_query(user_id, limit, after)).all()
    records = [ListedRecord(*row) for row in rows[:limit]]
    return records, len(rows) > limit


def owners_page(engine: Engine, digest: bytes, limit: int, after: Position | None) -> OwnersPage:
    """The page of the user whose token has `digest` (401 for none): both lookups on one connection, in one
    hop to a worker thread, which costs more here than either query (docs/performance.md)."""
    with engine.connect() as connection:
        user_id = owner_or_refuse(connection, digest)
        return OwnersPage(user_id, *newest_records(connection, user_id, limit, after))
