"""Writing a converted record: its row and its chunks, in one transaction."""

import re
import unicodedata
from typing import IO

from sqlalchemy import Engine, insert
from sqlmodel import Session

from common.models import CHUNK_BYTES, FILE_NAME_MAX_LENGTH, Record, RecordChunk

# Chunks per INSERT: large enough to keep round trips few, small enough that the
# statement (bytea travels hex-encoded, twice its size) stays a few megabytes.
CHUNKS_PER_STATEMENT = 4
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
        seq = 0
        while True:
            rows = []
            for _ in range(CHUNKS_PER_STATEMENT):
                data = mp3.read(CHUNK_BYTES)
                if not data:
                    break
                rows.append({"record_id": record.id, "seq": seq, "data": data})
                seq += 1
            if not rows:
                break
            session.execute(insert(RecordChunk), rows)
        session.commit()
