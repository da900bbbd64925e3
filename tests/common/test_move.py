"""`python -m common.storage.move`: every record to the object store and back, verified, resumable."""

import hashlib
import os
import uuid

import obstore
import pytest
from obstore.store import S3Store
from sqlalchemy import Engine, text

from common.storage import CHUNK_BYTES
from common.storage.backend import PostgresBackend
from common.storage.move import Waiting, move, to_s3
from common.storage.objects import object_key, object_store
from common.storage.read import RecordGoneError, whole_record
from devstack.objectstore import ObjectStore
from devstack.seed import create_user, seed_record


@pytest.fixture(scope="module")
def store(weed: ObjectStore) -> S3Store:
    return object_store(weed.function_settings())


def where(engine: Engine, record_id: uuid.UUID) -> tuple[str, int]:
    """The record's `storage`, and how many chunks it has in PostgreSQL."""
    with engine.connect() as connection:
        storage = connection.execute(text("SELECT storage FROM records WHERE id = :id"), {"id": record_id}).scalar_one()
        chunks = connection.execute(text("SELECT count(*) FROM record_chunks WHERE record_id = :id"), {"id": record_id})
        return storage, chunks.scalar_one()


def object_sha256(store: S3Store, record_id: uuid.UUID) -> bytes | None:
    try:
        return hashlib.sha256(bytes(obstore.get(store, object_key(record_id)).bytes())).digest()
    except FileNotFoundError:
        return None


def test_records_move_to_the_store_and_back_whole(engine: Engine, store: S3Store) -> None:
    user_id, _ = create_user(engine, "mover")
    contents = [os.urandom(3 * CHUNK_BYTES + 17), os.urandom(10)]
    records = [seed_record(PostgresBackend(engine), user_id, data) for data in contents]

    to_s3 = move(engine, store, "s3")
    assert to_s3.failed == 0
    assert to_s3.moved >= len(records)
    for record_id, data in zip(records, contents, strict=True):
        assert where(engine, record_id) == ("s3", 0)  # pointed at the object, its chunks dropped
        assert object_sha256(store, record_id) == hashlib.sha256(data).digest()

    assert move(engine, store, "s3").moved == 0  # nothing left to move: a second run is a no-op

    back = move(engine, store, "postgres")
    assert back.failed == 0
    for record_id, data in zip(records, contents, strict=True):
        storage, _ = where(engine, record_id)
        assert storage == "postgres"
        assert b"".join(whole_record(engine, record_id, len(data))) == data
        assert object_sha256(store, record_id) is None  # the object went once the chunks were in


def test_a_copy_that_differs_is_dropped_and_the_record_stays(engine: Engine, store: S3Store) -> None:
    user_id, _ = create_user(engine, "damaged")
    record_id = seed_record(PostgresBackend(engine), user_id, os.urandom(1000))
    with engine.begin() as connection:  # the row's digest no longer matches its bytes: as if they had rotted
        connection.execute(text("UPDATE records SET sha256 = sha256('other') WHERE id = :id"), {"id": record_id})
    try:
        moved = move(engine, store, "s3")
        assert moved.failed == 1
        assert where(engine, record_id) == ("postgres", 1)  # still whole where it was
        assert object_sha256(store, record_id) is None  # and no copy left behind
    finally:
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM records WHERE id = :id"), {"id": record_id})


def test_a_record_deleted_while_it_is_copied_leaves_no_copy(engine: Engine, store: S3Store) -> None:
    """Listed to be moved, deleted before its turn: nothing is pointed at, and no object stays."""
    user_id, _ = create_user(engine, "gone")
    data = os.urandom(2 * CHUNK_BYTES)
    record_id = seed_record(PostgresBackend(engine), user_id, data)
    listed = Waiting(record_id, len(data), hashlib.sha256(data).digest())
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM records WHERE id = :id"), {"id": record_id})
    with pytest.raises(RecordGoneError):
        to_s3(engine, store, listed)
    assert object_sha256(store, record_id) is None
