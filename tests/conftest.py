"""Fixtures shared by every test: a throwaway database per run, and the functions' apps.

The database lives on the server `make run` would use (DATABASE_URL's server,
else 127.0.0.1:5432, else a cluster under .data/); it is created with a random
name, migrated, exported as DATABASE_URL for everything the tests start, and
dropped at the end.
"""

import importlib
import os
from collections.abc import Iterator
from types import ModuleType

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select
from starlette.applications import Starlette

from common.config import Settings, get_settings
from common.db import create_db_engine
from common.models import Record
from scripts import stack
from scripts.seed import create_user


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with stack.throwaway_database(dict(os.environ), "records_test") as url:
        os.environ["DATABASE_URL"] = url
        # TestClient's requests carry Host: testserver.
        os.environ["ALLOWED_HOSTS"] = "localhost,127.0.0.1,testserver"
        get_settings.cache_clear()
        yield url


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
    return create_user(engine, "uploader")


def record_count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Record)).one()


@pytest.fixture
def nothing_stored(engine: Engine) -> Iterator[None]:
    """The test's requests fail, and leave no record behind."""
    before = record_count(engine)
    yield
    assert record_count(engine) == before


def load_function(name: str) -> ModuleType:
    """The module `functions/<name>/app.py`."""
    return importlib.import_module(f"functions.{name}.app")


def build_function(name: str, settings: Settings, **overrides: object) -> Starlette:
    """Function `name`'s app on the test database, with any settings overridden."""
    app: Starlette = load_function(name).build(settings.model_copy(update=overrides))
    return app


def build_without_database(name: str) -> Starlette:
    """Function `name`'s app whose database is a closed port: every query fails as if PostgreSQL were down."""
    dead = Settings(
        database_url="postgresql://postgres@127.0.0.1:9/records",
        db_connect_timeout_s=1,
        db_startup_wait_s=0,
        allowed_hosts=("testserver",),
    )
    app: Starlette = load_function(name).build(dead)
    return app
