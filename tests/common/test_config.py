from collections.abc import Iterator

import pytest

from common.config import Settings, get_settings
from common.db import sqlalchemy_url


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_settings")
def test_defaults_point_at_local_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = get_settings()
    assert str(settings.database_url) == "postgresql+psycopg2://postgres@127.0.0.1:5432/records"
    assert settings.log_level == "INFO"


@pytest.mark.usefixtures("fresh_settings")
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/records"),
        ("DATABASE_URL", "not a url"),
        ("DB_POOL_SIZE", "0"),
        ("DB_POOL_SIZE", "many"),
        ("DB_CONNECT_TIMEOUT_S", "-1"),
        ("LOG_LEVEL", "CHATTY"),
    ],
)
def test_bad_values_stop_the_process_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit, match=f"invalid configuration: {variable}"):
        get_settings()


def test_plain_postgresql_urls_use_psycopg2() -> None:
    settings = Settings(database_url="postgresql://u:p@db:5432/records")
    url = sqlalchemy_url(settings)
    assert url.drivername == "postgresql+psycopg2"
    assert (url.host, url.port, url.database, url.username) == ("db", 5432, "records", "u")
