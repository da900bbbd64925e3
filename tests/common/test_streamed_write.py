"""An MP3 spooled while it is made: no connection held until the commit, no file left however it ends."""

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from common.storage import CHUNK_BYTES
from common.storage.read import read_slices
from common.storage.streaming import BATCH_BYTES, StreamedWrite
from common.storage.write import RecordWriter
from devstack.seed import create_user, describe


@pytest.fixture(scope="module")
def owner(engine: Engine) -> int:
    return create_user(engine, "spooler")[0]


@pytest.fixture
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder, the test's own: what the spool leaves in it can be seen."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    return tmp_path


def stored_bytes(engine: Engine, record_id: uuid.UUID, size: int) -> bytes:
    return b"".join(read_slices(engine, record_id, 0, size, 0, size // CHUNK_BYTES))


def files_open_in(folder: Path) -> int:
    """Descriptors of this process on files in `folder`, named or not (O_TMPFILE's are not)."""
    descriptors = Path("/proc/self/fd")
    targets = []
    for descriptor in descriptors.iterdir():
        try:
            targets.append(str(descriptor.readlink()))
        except FileNotFoundError:  # the listing's own descriptor, closed since
            continue
    return sum(target.startswith(f"{folder}/") for target in targets)


def test_the_mp3_holds_no_connection_until_the_commit_and_arrives_whole(
    engine: Engine, owner: int, spool_dir: Path
) -> None:
    data = os.urandom(5 * BATCH_BYTES + 7)
    record = describe(owner, data)

    async def run() -> tuple[int, int]:
        stored = StreamedWrite(RecordWriter(engine, record.id), engine)
        try:
            for start in range(0, len(data), 32_768):
                await stored.write(data[start : start + 32_768])
            connections, spools = engine.pool.checkedout(), files_open_in(spool_dir)  # type: ignore[attr-defined]
            await stored.commit(record, None)
            return connections, spools
        finally:
            await stored.close()

    assert asyncio.run(run()) == (0, 1)  # no connection while it arrives; the bytes went to disk
    assert stored_bytes(engine, record.id, len(data)) == data
    assert list(spool_dir.iterdir()) == []


def test_closed_before_the_commit_nothing_is_left(engine: Engine, owner: int, spool_dir: Path) -> None:
    record_id = uuid.uuid4()

    async def run() -> None:
        stored = StreamedWrite(RecordWriter(engine, record_id), engine)
        for _ in range(4):
            await stored.write(os.urandom(BATCH_BYTES))
        await stored.close()

    asyncio.run(run())
    assert files_open_in(spool_dir) == 0
    assert list(spool_dir.iterdir()) == []
    with engine.connect() as connection:
        chunks = text("SELECT count(*) FROM record_chunks WHERE record_id = :id")
        assert connection.execute(chunks, {"id": record_id}).scalar_one() == 0


def test_once_the_upload_is_in_the_spool_goes_ahead_and_the_commit_stores_the_whole(
    engine: Engine, owner: int, spool_dir: Path
) -> None:
    head, tail = os.urandom(3 * BATCH_BYTES), os.urandom(2 * BATCH_BYTES + 9)
    record = describe(owner, head + tail)

    async def run() -> int:
        stored = StreamedWrite(RecordWriter(engine, record.id), engine, asyncio.Semaphore(1))
        try:
            await stored.write(head)
            await stored.input_complete()  # ffmpeg's tail is still to come
            await stored.write(tail)
            spools = files_open_in(spool_dir)
            await stored.commit(record, None)
            return spools
        finally:
            await stored.close()

    assert asyncio.run(run()) == 0  # the spool was stored and dropped before the commit
    assert stored_bytes(engine, record.id, len(head + tail)) == head + tail


def test_stored_ahead_then_closed_without_a_commit_nothing_is_left(engine: Engine, owner: int, spool_dir: Path) -> None:
    record_id = uuid.uuid4()
    early = asyncio.Semaphore(1)

    async def run() -> bool:
        stored = StreamedWrite(RecordWriter(engine, record_id), engine, early)
        await stored.write(os.urandom(3 * BATCH_BYTES))
        await stored.input_complete()
        await stored.write(os.urandom(BATCH_BYTES))
        await stored.close()
        return early.locked()

    assert asyncio.run(run()) is False  # its spare connection is given back
    assert files_open_in(spool_dir) == 0
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    with engine.connect() as connection:
        chunks = text("SELECT count(*) FROM record_chunks WHERE record_id = :id")
        assert connection.execute(chunks, {"id": record_id}).scalar_one() == 0


@pytest.mark.parametrize("pieces_before", range(3, 12))
def test_bytes_keep_their_order_when_the_upload_ends_while_ffmpeg_writes(
    engine: Engine, owner: int, pieces_before: int
) -> None:
    """ffmpeg's output (`write`) and the upload's end (`input_complete`) come from two tasks at once."""
    data = os.urandom(12 * BATCH_BYTES + 3)
    record = describe(owner, data)

    async def run() -> None:
        stored = StreamedWrite(RecordWriter(engine, record.id), engine, asyncio.Semaphore(1))

        async def ffmpeg_output() -> None:
            for start in range(0, len(data), 65_536):
                await stored.write(data[start : start + 65_536])
                await asyncio.sleep(0)

        try:
            output = asyncio.ensure_future(ffmpeg_output())
            for _ in range(pieces_before):  # some of the output spooled, a batch perhaps on its way
                await asyncio.sleep(0)
            await stored.input_complete()
            await output
            await stored.commit(record, None)
        finally:
            await stored.close()

    asyncio.run(run())
    assert stored_bytes(engine, record.id, len(data)) == data
