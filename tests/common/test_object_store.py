"""RECORD_STORAGE=s3 against a real S3 store (SeaweedFS's `weed mini`): an object whole, then its row; or neither."""

import os
import uuid
from dataclasses import replace
from datetime import timedelta

import obstore
import pytest
from obstore.exceptions import PermissionDeniedError
from obstore.store import S3Store
from sqlalchemy import Engine, text

from common.storage.objects import PART_BYTES, ObjectRecordWriter, object_key, object_store
from common.storage.sweep import sweep
from common.storage.write import QuotaExceededError, RecordWriter, within_quota
from devstack.objectstore import ObjectStore
from devstack.seed import create_user, describe


@pytest.fixture(scope="module")
def owner(engine: Engine) -> int:
    """A user of this module's own (other tests remove users)."""
    return create_user(engine, "object owner")[0]


@pytest.fixture(scope="module")
def store(weed: ObjectStore) -> S3Store:
    return object_store(weed.function_settings())


def rows(engine: Engine, record_id: uuid.UUID) -> int:
    with engine.connect() as connection:
        found = connection.execute(text("SELECT count(*) FROM records WHERE id = :id"), {"id": record_id})
        return int(found.scalar_one())


def exists(store: S3Store, record_id: uuid.UUID) -> bool:
    try:
        obstore.head(store, object_key(record_id))
    except FileNotFoundError:
        return False
    return True


def test_an_object_grows_in_parts_and_its_row_comes_once_it_is_whole(
    store: S3Store, engine: Engine, owner: int
) -> None:
    data = os.urandom(2 * PART_BYTES + 12_345)
    record = describe(owner, data)
    writer = ObjectRecordWriter(store, engine, record.id)
    try:
        for start in range(0, len(data), 1_000_003):
            writer.append(data[start : start + 1_000_003])
        assert not exists(store, record.id)  # parts are in, the object is not yet
        assert rows(engine, record.id) == 0
        writer.commit(record)
    finally:
        writer.close()
    assert rows(engine, record.id) == 1
    assert bytes(obstore.get(store, object_key(record.id)).bytes()) == data


def test_a_writer_closed_before_its_commit_leaves_no_object(store: S3Store, engine: Engine, owner: int) -> None:
    record_id = uuid.uuid4()
    writer = ObjectRecordWriter(store, engine, record_id)
    writer.append(os.urandom(PART_BYTES + 1))
    writer.close()
    assert not exists(store, record_id)
    assert rows(engine, record_id) == 0


@pytest.mark.parametrize("backend", ["postgres", "s3"])
def test_over_the_quota_at_the_commit_leaves_nothing(backend: str, store: S3Store, engine: Engine, owner: int) -> None:
    data = os.urandom(1000)
    record = describe(owner, data)
    writer = RecordWriter(engine, record.id) if backend == "postgres" else ObjectRecordWriter(store, engine, record.id)
    try:
        writer.append(data)
        with pytest.raises(QuotaExceededError):
            writer.commit(record, lambda connection, row: within_quota(connection, row, len(data) - 1))
    finally:
        writer.close()
    assert not exists(store, record.id)
    assert rows(engine, record.id) == 0
    with engine.connect() as connection:
        chunks = connection.execute(text("SELECT count(*) FROM record_chunks WHERE record_id = :id"), {"id": record.id})
        assert chunks.scalar_one() == 0


def test_the_store_refuses_other_credentials(weed: ObjectStore) -> None:
    wrong = object_store(replace(weed, secret_access_key="not-the-secret").function_settings())
    with pytest.raises(PermissionDeniedError):
        obstore.put(wrong, "probe", b"x")


def test_a_missing_object_is_not_found_at_once(store: S3Store) -> None:
    """Not found is an answer, not a failure to retry."""
    with pytest.raises(FileNotFoundError):
        obstore.get(store, object_key(uuid.uuid4()))


def test_the_sweeper_removes_old_objects_without_a_record_and_nothing_else(
    store: S3Store, engine: Engine, owner: int
) -> None:
    data = os.urandom(1000)
    kept = describe(owner, data)
    writer = ObjectRecordWriter(store, engine, kept.id)
    writer.append(data)
    writer.commit(kept)
    orphan = uuid.uuid4()  # an upload whose row never came
    obstore.put(store, object_key(orphan), data)
    foreign = "records/not-a-record-id"  # not the service's naming: never touched
    obstore.put(store, foreign, data)

    assert sweep(store, engine, grace=timedelta(hours=1)).removed == 0  # too young to judge
    assert exists(store, orphan)
    swept = sweep(store, engine, grace=timedelta(0))
    assert swept.removed == 1
    assert not exists(store, orphan)
    assert exists(store, kept.id)
    obstore.head(store, foreign)
