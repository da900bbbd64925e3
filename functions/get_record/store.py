"""What get_record reads besides the bytes: records' descriptions, if their owners ask, a batch at a time."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text


@dataclass(frozen=True)
class StoredRecord:
    size_bytes: int
    sha256: bytes
    original_name: str
    created_at: datetime
    #: Where its bytes are (common.storage.backend).
    storage: str


#: A link's two parts: the record's id and its owner's.
Link = tuple[uuid.UUID, int]

# A download's one lookup is on every cached download's path (the gateway
# revalidates each), so the lookups asked for together go as one statement:
# the links as arrays, numbered by WITH ORDINALITY, each record by its primary
# key and kept only if the link's user owns it.
_FIND = text("""
SELECT asked.n, records.size_bytes, records.sha256, records.original_name, records.created_at, records.storage
FROM unnest(CAST(:ids AS uuid[]), CAST(:users AS bigint[])) WITH ORDINALITY AS asked (id, user_id, n)
JOIN records ON records.id = asked.id AND records.user_id = asked.user_id
""")


def find_records(engine: Engine, links: list[Link]) -> list[StoredRecord | None]:
    """Each link's record if it exists *and* belongs to the link's user, in order; None tells neither apart."""
    values = {"ids": [record_id for record_id, _ in links], "users": [user_id for _, user_id in links]}
    with engine.connect() as connection:
        found = {
            number: StoredRecord(size_bytes, bytes(sha256), original_name, created_at, storage)
            for number, size_bytes, sha256, original_name, created_at, storage in connection.execute(_FIND, values)
        }
    return [found.get(number) for number in range(1, len(links) + 1)]
