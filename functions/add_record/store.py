"""Writing a converted record: its row and its chunks, in one transaction."""

import re
import unicodedata
from typing import IO

from sqlalchemy import Engine
from sqlmodel import Session

from common.models import CHUNK_BYTES, FILE_NAME_MAX_LENGTH, Record
from common.pgcopy import ChunkRowsSource, psycopg2_connection

COPY_CHUNKS = "COPY record_chunks (record_id, seq, data) FROM STDIN (FORMAT binary)"
# What psycopg2 asks the source for at a time (its default is 8 KiB).
COPY_READ_BYTES = 1024 * 1024
DEFAULT_NAME = "record.wav"


def clean_file_name(name: str | None) -> str:
    """The client's file name as a label only: no folders, no control characters, bounded length."""
    if not name:
        return DEFAULT_NAME
    base = re.split(r"[\\/]", name)[-1]
    printable = "".join(char for char in base if unicodedata.category(char)[0] != "C").strip()
    return printable[:FILE_NAME_MAX_LENGTH] or DEFAULT_NAME


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
