"""streamed uploads: an upload's chunks may go in before its row, within one transaction

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

- `record_chunks`' foreign key to `records` becomes DEFERRABLE (still checked
  at each statement unless a transaction defers it): add_record writes the MP3's
  chunks while ffmpeg makes them and the row once the MP3 is known, then commits
  both (common.storage.write.RecordWriter).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "record_chunks_record_id_fkey"


def upgrade() -> None:
    op.execute(f"ALTER TABLE record_chunks ALTER CONSTRAINT {CONSTRAINT} DEFERRABLE INITIALLY IMMEDIATE")


def downgrade() -> None:
    op.execute(f"ALTER TABLE record_chunks ALTER CONSTRAINT {CONSTRAINT} NOT DEFERRABLE")
