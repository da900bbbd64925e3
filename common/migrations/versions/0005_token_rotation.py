"""token rotation: the functions may replace a user's token digest, and nothing else of the user

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

- The functions' role gets UPDATE on `users.token_sha256` alone (a column
  privilege): rotate_token swaps one digest for another; no function can
  rename a user or change an id.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "records_functions"


def upgrade() -> None:
    op.execute(f"GRANT UPDATE (token_sha256) ON users TO {ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE UPDATE (token_sha256) ON users FROM {ROLE}")
