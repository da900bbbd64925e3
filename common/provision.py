"""`python -m common.provision`: make a database ready for the functions (compose's `migrate` service).

Run as the schema's owner (DATABASE_URL, DATABASE_PASSWORD): it applies the
migrations, which make the functions' role and its grants, then lets that role
log in with FUNCTIONS_DB_PASSWORD. It sets the password on every run, so
changing it in `.env` and running `docker compose up` again rotates it.
"""

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, text

from common.config import get_settings
from common.db import create_db_engine

FUNCTIONS_ROLE = "records_functions"
#: The placeholders .env.example ships with: a stack started with them has a password the world knows.
EXAMPLE_PASSWORDS = frozenset({"change-me", "change-me-too"})
ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


class ProvisionSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True)

    functions_db_password: SecretStr


def migrate() -> None:
    command.upgrade(Config(str(ALEMBIC_INI)), "head")


def let_functions_log_in(engine: Engine, password: SecretStr) -> str:
    """Give the functions' role LOGIN and `password`; returns the database's name.

    psycopg2 quotes the password as a literal, whatever characters it holds.
    """
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"ALTER ROLE {FUNCTIONS_ROLE} WITH LOGIN PASSWORD %(password)s",
            {"password": password.get_secret_value()},
        )
        database: str = connection.execute(text("SELECT current_database()")).scalar_one()
    return database


def example_passwords_in_use(owner: SecretStr | None, functions: SecretStr) -> list[str]:
    """The .env variables still set to .env.example's placeholders."""
    values = {"POSTGRES_PASSWORD": owner, "FUNCTIONS_DB_PASSWORD": functions}
    return [name for name, value in values.items() if value and value.get_secret_value() in EXAMPLE_PASSWORDS]


def main() -> None:
    try:
        password = ProvisionSettings().functions_db_password
    except ValidationError:
        sys.exit("invalid configuration: FUNCTIONS_DB_PASSWORD: required (the functions' database password)")
    if placeholders := example_passwords_in_use(get_settings().database_password, password):
        sys.exit(
            f"refusing to start: {' and '.join(placeholders)} in .env still hold .env.example's placeholder, "
            "which anyone can read; set passwords of your own (docs/compose.md)"
        )
    migrate()
    engine = create_db_engine(get_settings(), application_name="provision")
    try:
        database = let_functions_log_in(engine, password)
    finally:
        engine.dispose()
    sys.stderr.write(f"provision: {database} is at the latest migration; {FUNCTIONS_ROLE} may log in\n")


if __name__ == "__main__":
    main()
