"""the owner's view: find a user by token, list their records newest first, delete them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

- `users.token_sha256` gets a unique index: listing and deleting present the
  token alone, and its owner is looked up by its digest.
- `records (user_id, created_at DESC, id DESC)` serves a page of a user's
  records as one index range scan, at any depth (keyset pagination); it also
  serves what `(user_id)` alone did (the quota's sum, the users FK), so that
  index goes.
- The functions' role may now DELETE records. Their chunks go by the foreign
  key's ON DELETE CASCADE, which PostgreSQL runs as the table's owner, so the
  role needs no privilege on `record_chunks` beyond 0003's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "records_functions"


def upgrade() -> None:
    op.create_index("ix_users_token_sha256", "users", ["token_sha256"], unique=True)
    op.create_index(
        "ix_records_user_id_created_at_id",
        "records",
        ["user_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.drop_index("ix_records_user_id", table_name="records")
    op.execute(f"GRANT DELETE ON records TO {ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE DELETE ON records FROM {ROLE}")
    op.create_index("ix_records_user_id", "records", ["user_id"])
    op.drop_index("ix_records_user_id_created_at_id", table_name="records")
    op.drop_index("ix_users_token_sha256", table_name="users")
