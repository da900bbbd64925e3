"""Fixtures shared by every test: a throwaway database per run, and the functions' apps.

The database lives on the server `make run` would use (DATABASE_URL's server,
else 127.0.0.1:5432, else a cluster under .data/); it is created with a random
name, migrated, exported as DATABASE_URL for everything the tests start, and
dropped at the end.
"""

import hashlib
import importlib
import os
import secrets
import uuid
from collections.abc import Iterator
from types import ModuleType

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy import Engine, func, make_url
from sqlmodel import Session, select
from starlette.applications import Starlette

from common.config import Settings, get_settings
from common.db import create_db_engine
from common.models import CHUNK_BYTES, Record, RecordChunk, User
from common.security import hash_token, new_access_token
from scripts import stack


def admin_connection(url: str) -> "psycopg2.extensions.connection":
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    connection = psycopg2.connect(admin.render_as_string(hide_password=False))
    connection.autocommit = True
    return connection


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    server_env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if "DATABASE_URL" in os.environ:
        server_env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    with stack.database_server(server_env) as server_url:
        name = f"records_test_{secrets.token_hex(4)}"
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        os.environ["DATABASE_URL"] = url
        # TestClient's requests carry Host: testserver.
        os.environ["ALLOWED_HOSTS"] = "localhost,127.0.0.1,testserver"
        get_settings.cache_clear()
        stack.ensure_database(url)
        stack.migrate(dict(os.environ))
        try:
            yield url
        finally:
            connection = admin_connection(url)
            with connection.cursor() as cursor:
                cursor.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            connection.close()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(settings, application_name="tests")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def uploader(engine: Engine) -> tuple[int, str]:
    """A registered user: (user_id, access_token)."""
    token = new_access_token()
    with Session(engine) as session:
        user = User(name="uploader", token_sha256=hash_token(token))
        session.add(user)
        session.commit()
        assert user.id is not None
        return user.id, token


def record_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Record)).one()


@pytest.fixture
def nothing_stored(engine: Engine) -> Iterator[None]:
    """The test's requests fail, and leave no record behind."""
    before = record_count(engine)
    yield
    assert record_count(engine) == before


def seed_record(engine: Engine, user_id: int, data: bytes, original_name: str = "seeded.wav") -> uuid.UUID:
    """Store `data` as a record directly, in add_record's layout, without converting anything."""
    record_id = uuid.uuid4()
    with Session(engine) as session:
        session.add(
            Record(
                id=record_id,
                user_id=user_id,
                original_name=original_name,
                size_bytes=len(data),
                duration_s=1.0,
                bitrate_kbps=192,
                sample_rate=44_100,
                channels=2,
                sha256=hashlib.sha256(data).digest(),
            )
        )
        session.flush()
        for offset in range(0, len(data), CHUNK_BYTES):
            session.add(
                RecordChunk(record_id=record_id, seq=offset // CHUNK_BYTES, data=data[offset : offset + CHUNK_BYTES])
            )
            if offset // CHUNK_BYTES % 16 == 15:
                session.flush()  # keep the pending statement a few megabytes
        session.commit()
    return record_id


def load_function(name: str) -> ModuleType:
    """The module `functions/<name>/app.py`."""
    return importlib.import_module(f"functions.{name}.app")


def build_function(name: str, settings: Settings, **overrides: object) -> Starlette:
    """Function `name`'s app on the test database, with any settings overridden."""
    app: Starlette = load_function(name).build(settings.model_copy(update=overrides))
    return app
