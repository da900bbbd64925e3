"""Fixtures shared by every test: a throwaway database per run, its engine, and a registered user.

The database lives on the server `make run` would use (DATABASE_URL's server,
else 127.0.0.1:5432, else a cluster under .data/); it is created with a random
name, migrated, exported as DATABASE_URL for everything the tests start, and
dropped at the end.
"""

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from common.config import Settings, get_settings
from common.db import create_db_engine
from devstack.objectstore import ObjectStore, running_object_store
from devstack.postgres import throwaway_database
from devstack.seed import create_user
from tests.support.functions import record_count


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with throwaway_database(dict(os.environ), "records_test") as url:
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


@pytest.fixture(scope="session")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """A SeaweedFS of the tests' own (RECORD_STORAGE=s3), one bucket for the whole run."""
    with running_object_store(
        tmp_path_factory.mktemp("objects"), "records", "tests", secrets.token_urlsafe(24)
    ) as store:
        yield store


@pytest.fixture
def nothing_stored(engine: Engine) -> Iterator[None]:
    """The test's requests fail, and leave no record behind."""
    before = record_count(engine)
    yield
    assert record_count(engine) == before
