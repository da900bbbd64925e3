"""`python -m common.storage.move --to s3|postgres`: move records' bytes between backends while the service runs.

Each record moves on its own and can be downloaded throughout:

1. its bytes are copied into the other backend: a new object, or new chunks
   in a transaction not yet committed;
2. the copy's sha256 is checked against the row's: to s3, the object is read
   back from the store; to postgres, the bytes are hashed as they come;
3. one transaction points the row at its new place (only if it is still where
   it was: a record deleted or moved meanwhile is left alone) and, to s3,
   deletes its chunks;
4. to postgres, the object is deleted after that commit (one the store will not
   delete now is the sweeper's: no row names it as an object any more).

Stopped anywhere, every record is wholly in one place (a copy not yet
pointed at is removed, or swept); run it again and it goes on with those not
yet moved. Run it with the schema owner's credentials (it updates rows the
functions may only read), and RECORD_STORAGE set to where new records go.
"""

import argparse
import hashlib
import logging
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

from common.config import get_settings
from common.db import create_db_engine
from common.logs import configure_logging
from common.storage.objects import ObjectRecordWriter, object_key, object_store
from common.storage.read import RecordGoneError, whole_record
from common.storage.write import RecordWriter

if TYPE_CHECKING:
    from obstore.store import S3Store

logger = logging.getLogger("records.move")

#: Records looked up at a time; each is moved on its own.
BATCH = 100
#: What is read from the store at a time, back into PostgreSQL or to check a copy.
READ_BYTES = 1024 * 1024

_WAITING = text(
    "SELECT id, size_bytes, sha256 FROM records WHERE storage = :source AND id > :after"
    " AND (CAST(:only AS uuid[]) IS NULL OR id = ANY(CAST(:only AS uuid[]))) ORDER BY id LIMIT :batch"
)
_POINT = text("UPDATE records SET storage = :target WHERE id = :id AND storage = :source RETURNING id")
_DROP_CHUNKS = text("DELETE FROM record_chunks WHERE record_id = :id")


class CopyDiffersError(Exception):
    """The copy's sha256 is not the record's: it is dropped, and the record stays where it was."""


class NotThereAnyMoreError(Exception):
    """The record was deleted, or moved by another run, while it was being copied."""


@dataclass
class Moved:
    moved: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Waiting:
    id: uuid.UUID
    size_bytes: int
    sha256: bytes


def waiting(engine: Engine, source: str, only: Sequence[uuid.UUID] | None) -> Iterator[Waiting]:
    """The records whose bytes are in `source` (of `only`, if given), in id order, a batch at a time."""
    after = uuid.UUID(int=0)
    chosen = [str(record_id) for record_id in only] if only is not None else None
    while True:
        with engine.connect() as connection:
            values = {"source": source, "after": after, "batch": BATCH, "only": chosen}
            rows = connection.execute(_WAITING, values).all()
        if not rows:
            return
        for record_id, size_bytes, sha256 in rows:
            yield Waiting(record_id, size_bytes, bytes(sha256))
        after = rows[-1][0]


def point(connection: Connection, record_id: uuid.UUID, source: str, target: str) -> None:
    """The row now names `target`; NotThereAnyMoreError when it no longer names `source`."""
    if connection.execute(_POINT, {"id": record_id, "source": source, "target": target}).first() is None:
        raise NotThereAnyMoreError(record_id)


def object_bytes(store: "S3Store", record_id: uuid.UUID) -> Iterator[bytes]:
    import obstore

    for piece in obstore.get(store, object_key(record_id)).stream(min_chunk_size=READ_BYTES):
        yield bytes(piece)


def to_s3(engine: Engine, store: "S3Store", record: Waiting) -> None:
    writer = ObjectRecordWriter(store, engine, record.id)
    try:
        for piece in whole_record(engine, record.id, record.size_bytes):
            writer.append(piece)
        writer.complete()
    finally:
        writer.close()
    try:
        digest = hashlib.sha256()
        for piece in object_bytes(store, record.id):
            digest.update(piece)
        if digest.digest() != record.sha256:
            raise CopyDiffersError(record.id)
        with engine.begin() as connection:
            point(connection, record.id, "postgres", "s3")
            connection.execute(_DROP_CHUNKS, {"id": record.id})
    except BaseException:
        writer.discard()
        raise


def to_postgres(engine: Engine, store: "S3Store", record: Waiting) -> None:
    import obstore

    writer = RecordWriter(engine, record.id)
    try:
        digest = hashlib.sha256()
        for piece in object_bytes(store, record.id):
            digest.update(piece)
            writer.append(piece)
        if digest.digest() != record.sha256:
            raise CopyDiffersError(record.id)
        writer.finish(lambda connection: point(connection, record.id, "s3", "postgres"))
    finally:
        writer.close()
    try:
        obstore.delete(store, object_key(record.id))
    except Exception:
        logger.warning("record %s: its object stays for the sweeper", record.id, exc_info=True)


def move(engine: Engine, store: "S3Store", target: str, only: Sequence[uuid.UUID] | None = None) -> Moved:
    """Every record not yet in `target` (or those of `only`), one at a time; what became of them."""
    source, step = ("postgres", to_s3) if target == "s3" else ("s3", to_postgres)
    moved = Moved()
    for record in waiting(engine, source, only):
        try:
            step(engine, store, record)
        except (NotThereAnyMoreError, RecordGoneError):  # deleted meanwhile: its copy is gone too
            moved.skipped += 1
        except Exception:
            logger.exception("record %s stays in %s", record.id, source)
            moved.failed += 1
        else:
            moved.moved += 1
    return moved


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", choices=("s3", "postgres"), required=True, help="where the bytes go")
    parser.add_argument("--record", type=uuid.UUID, action="append", help="only this record (repeatable)")
    arguments = parser.parse_args(argv)
    settings = get_settings()
    configure_logging("move", settings.log_level, settings.log_format)
    if settings.s3_bucket is None:
        raise SystemExit("move: set the S3_* settings (docs/configuration.md): the store is one side of every move")
    engine = create_db_engine(settings, application_name="move")
    try:
        moved = move(engine, object_store(settings), arguments.to, arguments.record)
    finally:
        engine.dispose()
    logger.info(
        "%d records moved to %s, %d gone meanwhile, %d failed", moved.moved, arguments.to, moved.skipped, moved.failed
    )
    return 1 if moved.failed else 0


if __name__ == "__main__":
    sys.exit(main())
