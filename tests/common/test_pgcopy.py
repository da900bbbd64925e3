"""The binary COPY framing, both ways, against PostgreSQL itself."""

import io
import os
import uuid

from sqlalchemy import Engine

from common.storage.pgcopy import ChunkRowsSource, SingleColumnSink, pooled_cursor


def test_rows_written_by_copy_read_back_by_copy(engine: Engine) -> None:
    record_id = uuid.uuid4()
    data = os.urandom(1000)
    source = ChunkRowsSource(record_id, io.BytesIO(data), 300)
    sink = SingleColumnSink()
    with pooled_cursor(engine) as cursor:
        cursor.execute("CREATE TEMP TABLE chunks (record_id uuid, seq int, data bytea)")
        cursor.copy_expert("COPY chunks FROM STDIN (FORMAT binary)", source)
        cursor.execute("SELECT record_id::text, seq, length(data) FROM chunks ORDER BY seq")
        expected = [(str(record_id), seq, 300) for seq in range(3)] + [(str(record_id), 3, 100)]
        assert cursor.fetchall() == expected
        cursor.copy_expert("COPY (SELECT data FROM chunks ORDER BY seq) TO STDOUT (FORMAT binary)", sink)
    assert b"".join(sink.rows()) == data


def test_an_empty_source_is_a_header_and_a_trailer() -> None:
    stream = ChunkRowsSource(uuid.uuid4(), io.BytesIO(b""), 10).read()
    assert stream.startswith(b"PGCOPY\n\xff\r\n\x00")
    assert stream.endswith(b"\xff\xff")
