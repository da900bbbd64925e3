"""Writing a record: its row and its MP3 chunks, in one transaction."""

from typing import IO

from sqlalchemy import Engine
from sqlmodel import Session

from common.models import CHUNK_BYTES, Record
from common.pgcopy import ChunkRowsSource, psycopg2_connection

COPY_CHUNKS = "COPY record_chunks (record_id, seq, data) FROM STDIN (FORMAT binary)"
# What psycopg2 asks the source for at a time (its default is 8 KiB).
COPY_READ_BYTES = 1024 * 1024


def store_record(engine: Engine, record: Record, mp3: IO[bytes]) -> None:
    """Insert `record` and the bytes of `mp3` (read from its current position) together, or nothing."""
    # The caller still reads `record` (its id, for the link) after the commit.
    with Session(engine, expire_on_commit=False) as session:
        session.add(record)
        session.flush()
        # The chunks go in by binary COPY on the same connection, in the same transaction.
        with psycopg2_connection(session.connection().connection).cursor() as cursor:
            cursor.copy_expert(COPY_CHUNKS, ChunkRowsSource(record.id, mp3, CHUNK_BYTES), size=COPY_READ_BYTES)
        session.commit()
