"""Pages of users' records, newest first: one statement for every page asked for at once.

The pages requested together (list_records batches them, as register does
its registrations) are answered by one statement on one connection: each
token's owner through `ix_users_token_sha256`, and that owner's page as one
range scan of `ix_records_user_id_created_at_id` (migration 0004), which holds
exactly this order. PostgreSQL reads `limit + 1` index entries from the
cursor's position on (the extra one says whether another page follows) and
nothing else, at any depth.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from operator import itemgetter

from sqlalchemy import Connection, Engine, TextClause, text

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


#: A page asked for: the SHA-256 of the caller's token, how many records, and the position they follow.
PageRequest = tuple[bytes, int, Position | None]

# The requests arrive as parallel arrays, numbered by WITH ORDINALITY. A first
# page starts after (infinity, the greatest UUID), so that every page is the
# same row comparison, which the index serves as the start of its scan. A token
# nobody holds has no row; an owner with no records (further) has one of nulls.
_PAGES = text("""
SELECT asked.n, users.id, page.id, page.original_name, page.duration_s, page.size_bytes, page.created_at
FROM unnest(
    CAST(:digests AS bytea[]), CAST(:rows AS integer[]),
    CAST(:after_created_at AS timestamptz[]), CAST(:after_id AS uuid[])
) WITH ORDINALITY AS asked (digest, rows, after_created_at, after_id, n)
JOIN users ON users.token_sha256 = asked.digest
LEFT JOIN LATERAL (
    SELECT records.id, records.original_name, records.duration_s, records.size_bytes, records.created_at
    FROM records
    WHERE records.user_id = users.id
      AND (records.created_at, records.id) < (
          COALESCE(asked.after_created_at, 'infinity'),
          COALESCE(asked.after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff')
      )
    ORDER BY records.created_at DESC, records.id DESC
    LIMIT asked.rows
) AS page ON true
ORDER BY asked.n, page.created_at DESC, page.id DESC
""")


def pages_query(requests: Sequence[PageRequest]) -> tuple[TextClause, dict[str, object]]:
    """The one statement for `requests`, and its values: `limit + 1` rows each (the extra says whether more follow)."""
    return _PAGES, {
        "digests": [digest for digest, _, _ in requests],
        "rows": [limit + 1 for _, limit, _ in requests],
        "after_created_at": [after and after.created_at for _, _, after in requests],
        "after_id": [after and after.record_id for _, _, after in requests],
    }


def owners_pages_on(connection: Connection, requests: Sequence[PageRequest]) -> list[OwnersPage | None]:
    """Each request's page, in order, or None where no user holds the token."""
    found: dict[int, OwnersPage] = {}
    for number, group in groupby(connection.execute(*pages_query(requests)), key=itemgetter(0)):
        rows = list(group)
        limit = requests[number - 1][1]
        records = [ListedRecord(*row[2:]) for row in rows if row[2] is not None]
        found[number] = OwnersPage(rows[0][1], records[:limit], len(records) > limit)
    return [found.get(number) for number in range(1, len(requests) + 1)]


def owners_pages(engine: Engine, requests: list[PageRequest]) -> list[OwnersPage | None]:
    """`owners_pages_on` a connection of its own: one hop to a worker thread, one round trip, for the whole batch."""
    with engine.connect() as connection:
        return owners_pages_on(connection, requests)
