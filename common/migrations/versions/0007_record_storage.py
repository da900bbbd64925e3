"""records' bytes in either backend: each row names where its bytes are

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

- `records.storage`: `postgres` (its `record_chunks`, as every record so far)
  or `s3` (one object in the store, common.storage.objects). RECORD_STORAGE
  chooses it for new records; `python -m common.storage.move` changes it, one
  record at a time, while the service runs. A constant default: no table rewrite.
- The functions' role needs no new privilege: it reads the column, and inserts
  it with the row. Only the move, run as the owner, updates it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("records", sa.Column("storage", sa.String(16), nullable=False, server_default="postgres"))
    op.create_check_constraint("records_storage_known", "records", "storage IN ('postgres', 's3')")


def downgrade() -> None:
    # Records whose bytes are in the store would be left without them: move them back first.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM records WHERE storage <> 'postgres') THEN "
        "RAISE EXCEPTION 'records are in the object store: python -m common.storage.move --to postgres first'; "
        "END IF; END $$"
    )
    op.drop_constraint("records_storage_known", "records")
    op.drop_column("records", "storage")
