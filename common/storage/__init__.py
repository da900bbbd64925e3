"""How a record's MP3 is stored: the layout, and the only code that writes or reads it.

A record is one `records` row (what is known about it) and its MP3 as
`record_chunks (record_id, seq, data)` rows of CHUNK_BYTES each, the last one
shorter: chunk `seq` holds bytes [seq * CHUNK_BYTES, (seq + 1) * CHUNK_BYTES).

- Neither writing nor reading ever holds a whole record in memory.
- `data` is stored EXTERNAL (uncompressed TOAST; MP3 does not compress), so
  `substring()` fetches only the TOAST pieces a slice covers: a range costs
  what it asks for, not the record's size.
- The chunks travel as PostgreSQL's binary COPY both ways (`pgcopy`):
  psycopg2 would send a bytea hex-encoded, twice its size, and parse it back;
  binary COPY carries the raw bytes (on this machine 5x the read throughput).
- A record's chunks are written as its MP3 is produced and its row last, in
  one transaction (`write`, fed by `streaming`), within the owner's quota;
  nobody sees either before the commit. They are deleted together (ON DELETE CASCADE).
- A ranged read fetches a few chunks per statement (`read`); a record deleted
  meanwhile is noticed at the next statement, never passed off as a short file.

    pgcopy     the binary COPY codec: rows out of a file, rows out of COPY's output
    write      RecordWriter, and the quota
    streaming  the event loop's side of a RecordWriter
    read       stream_bytes: any byte range, a few chunks per query
    backend    RECORD_STORAGE: the one interface the functions write, serve and
               delete bytes by; PostgresBackend (the above) or ObjectBackend
    objects    RECORD_STORAGE=s3: one object per record in an S3-compatible store,
               served by the gateway from a presigned URL (functions/get_record/relay.py)
    sweep      objects no record names, removed after a grace period
"""

#: Bytes per `record_chunks` row; the last row of a record is shorter.
CHUNK_BYTES = 256 * 1024
