"""the functions' role: the only privileges the functions need

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The functions connect as `records_functions`, not as the schema's owner: it may
read and add users, records and their chunks, and nothing else (no UPDATE, no
DELETE, no DDL). It is made here without a password, unable to log in;
`python -m common.provision` gives it the deployment's password.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "records_functions"
TABLES = "users, records, record_chunks"


def upgrade() -> None:
    # A role belongs to the server, not to one database: another database there may have made it already.
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
            END IF;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    # SELECT also serves INSERT ... RETURNING; COPY ... FROM needs only INSERT.
    op.execute(f"GRANT SELECT, INSERT ON {TABLES} TO {ROLE}")


def downgrade() -> None:
    # The role stays: other databases on the server may still grant it privileges.
    op.execute(f"REVOKE ALL ON {TABLES} FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ROLE}")
