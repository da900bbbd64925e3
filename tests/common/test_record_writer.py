"""A record written as its MP3 is produced: chunks first, the row last, one transaction; or nothing."""

import os
import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from common.storage import CHUNK_BYTES
from common.storage.read import read_slices
from common.storage.write import RecordWriter
from devstack.seed import create_user, describe


@pytest.fixture(scope="module")
def owner(engine: Engine) -> int:
    """A user of this module's own (other tests remove users)."""
    return create_user(engine, "streamer")[0]


def stored(engine: Engine, record_id: uuid.UUID) -> tuple[int, int]:
    """(rows, chunks) of the record, as another connection sees them."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT count(*) FROM records WHERE id = :id"), {"id": record_id}).scalar_one()
        chunks = connection.execute(
            text("SELECT count(*) FROM record_chunks WHERE record_id = :id"), {"id": record_id}
        ).scalar_one()
    return rows, chunks


def test_pieces_of_any_size_become_whole_chunks_and_nobody_sees_them_before_the_commit(
    engine: Engine, owner: int
) -> None:
    data = os.urandom(4 * CHUNK_BYTES + 5)
    record = describe(owner, data)
    record_id = record.id
    writer = RecordWriter(engine, record_id)
    try:
        for start in range(0, len(data), 100_001):
            writer.append(data[start : start + 100_001])
        assert stored(engine, record_id) == (0, 0)  # four chunks are in, uncommitted
        writer.commit(record)
    finally:
        writer.close()
    assert stored(engine, record_id) == (1, 5)
    assert b"".join(read_slices(engine, record_id, 0, len(data), 0, 4)) == data


def test_a_writer_closed_before_its_commit_leaves_nothing(engine: Engine, owner: int) -> None:
    record_id = uuid.uuid4()
    writer = RecordWriter(engine, record_id)
    writer.append(os.urandom(3 * CHUNK_BYTES))
    writer.close()
    assert stored(engine, record_id) == (0, 0)


def test_chunks_without_their_row_are_refused_at_the_commit(engine: Engine) -> None:
    """Deferred, the foreign key still holds: chunks never outlive a missing row."""
    record_id = uuid.uuid4()

    def orphan_chunk() -> None:
        with engine.begin() as connection:
            connection.execute(text("SET CONSTRAINTS record_chunks_record_id_fkey DEFERRED"))
            insert = text("INSERT INTO record_chunks (record_id, seq, data) VALUES (:id, 0, 'x')")
            connection.execute(insert, {"id": record_id})

    with pytest.raises(IntegrityError, match="record_chunks_record_id_fkey"):
        orphan_chunk()
    assert stored(engine, record_id) == (0, 0)
