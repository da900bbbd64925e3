"""Alembic environment: the URL comes from the service's settings, the target schema from its models."""

from logging.config import fileConfig

from alembic import context
from sqlmodel import SQLModel

import common.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from common.config import get_settings
from common.db import create_db_engine, wait_for_database

# Compose starts `migrate` as soon as PostgreSQL reports healthy; this absorbs the last moments of start-up.
DATABASE_WAIT_S = 30


if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


def run_migrations_online() -> None:
    engine = create_db_engine(get_settings(), application_name="migrate")
    wait_for_database(engine, DATABASE_WAIT_S)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=SQLModel.metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
