"""Users and records stored directly, as register and add_record store them: for the tests and the benchmark."""

import hashlib
import uuid

from sqlalchemy import Engine, text
from sqlmodel import Session

from common.models import Record, User
from common.security import hash_token, new_access_token
from common.storage.backend import Backend, PostgresBackend


def describe(user_id: int, data: bytes, original_name: str = "seeded.wav") -> Record:
    """A record of `data` as if it were a second of 192 kb/s stereo, under a new id."""
    return Record(
        id=uuid.uuid4(),
        user_id=user_id,
        original_name=original_name,
        size_bytes=len(data),
        duration_s=1.0,
        bitrate_kbps=192,
        sample_rate=44_100,
        channels=2,
        sha256=hashlib.sha256(data).digest(),
    )


def seed_record(target: Engine | Backend, user_id: int, data: bytes, original_name: str = "seeded.wav") -> uuid.UUID:
    """Store `data` as a record directly, without converting anything, as add_record stores one.

    `target` is the backend to store the bytes in, or an engine for PostgreSQL's (the default backend).
    """
    record = describe(user_id, data, original_name)
    writer = (PostgresBackend(target) if isinstance(target, Engine) else target).writer(record.id)
    try:
        writer.append(data)
        writer.commit(record)
    finally:
        writer.close()
    return record.id


def create_user(engine: Engine, name: str) -> tuple[int, str]:
    """A registered user, as POST /register would make one: (user_id, access_token)."""
    token = new_access_token()
    with Session(engine) as session:
        user = User(name=name, token_sha256=hash_token(token))
        session.add(user)
        session.commit()
        assert user.id is not None
        return user.id, token


#: Many records of one user at once, their bytes left out (listing reads rows alone), one second apart.
_SEED_LISTED = """
INSERT INTO records (id, user_id, original_name, size_bytes, duration_s, bitrate_kbps, sample_rate,
                     channels, sha256, created_at)
SELECT gen_random_uuid(), :user_id, 'take ' || n || '.wav', 2880000, 120.0, 192, 44100, 2,
       sha256(n::text::bytea), now() - n * interval '1 second'
FROM generate_series(1, :count) AS n
"""


def seed_listed(engine: Engine, user_id: int, count: int) -> None:
    """`count` rows in `user_id`'s list, without chunks: what a listing reads, at any scale, in one statement."""
    with engine.begin() as connection:
        connection.execute(text(_SEED_LISTED), {"user_id": user_id, "count": count})
        connection.execute(text("ANALYZE records"))
