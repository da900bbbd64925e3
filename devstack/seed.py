"""Users and records put straight into the database, in add_record's layout: for the tests and the benchmark."""

import hashlib
import io
import uuid

from sqlalchemy import Engine
from sqlmodel import Session

from common.models import Record, User
from common.security import hash_token, new_access_token
from common.storage.write import store_record


def seed_record(engine: Engine, user_id: int, data: bytes, original_name: str = "seeded.wav") -> uuid.UUID:
    """Store `data` as a record directly, in add_record's layout, without converting anything."""
    record = Record(
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
    store_record(engine, record, io.BytesIO(data))
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
