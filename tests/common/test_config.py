import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from common.config import Settings, get_settings
from common.db import sqlalchemy_url
from common.storage.backend import Backends, PostgresBackend
from common.storage.objects import ObjectBackend


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("fresh_settings")
def test_defaults_point_at_local_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = get_settings()
    assert str(settings.database_url) == "postgresql://postgres@127.0.0.1:5432/records"
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


@pytest.mark.usefixtures("fresh_settings")
def test_an_empty_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compose passes every setting as `${NAME:-}`: empty when the operator left it out of .env."""
    for name in Settings.model_fields:
        monkeypatch.setenv(name.upper(), "")
    assert get_settings() == Settings.model_construct()


# What `openssl rand -base64 32` and people type: every character that means something in a URL.
AWKWARD_PASSWORDS = ["a/b+c=", "p#s?s@w:o%rd", "with spaces  ", "%40%2F", "ünïcødé'\\"]


@pytest.mark.parametrize("password", AWKWARD_PASSWORDS)
def test_any_password_reaches_the_driver_unchanged(password: str) -> None:
    settings = Settings(database_url="postgresql://records_functions@db:5432/records", database_password=password)
    url = sqlalchemy_url(settings)
    assert url.password == password
    assert (url.host, url.database, url.username) == ("db", "records", "records_functions")
    # What the engine hands psycopg2: the password as one argument, never parsed out of a string.
    _, connect_kwargs = url.get_dialect()().create_connect_args(url)
    assert connect_kwargs["password"] == password


def test_the_object_store_needs_its_bucket_and_credentials() -> None:
    with pytest.raises(ValidationError, match="S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY"):
        Settings(record_storage="s3")


def test_the_object_store_endpoint_carries_no_credentials() -> None:
    with pytest.raises(ValidationError, match="S3_ACCESS_KEY_ID"):
        Settings(s3_endpoint_url="http://key:secret@127.0.0.1:8333")


def test_record_storage_chooses_the_backend_every_function_writes_serves_and_deletes_by(engine: Engine) -> None:
    s3 = Settings(record_storage="s3", s3_bucket="records", s3_access_key_id="key", s3_secret_access_key="secret")
    assert isinstance(Backends(Settings(), engine).writing, PostgresBackend)
    chosen = Backends(s3, engine).writing
    assert isinstance(chosen, ObjectBackend)
    assert chosen.serves_by_url
    # Signed here, with no request to the store: the URL names the object and carries a signature.
    url = chosen.signed_url(uuid.UUID(int=1))
    assert "/records/records/00000000-0000-0000-0000-000000000001?" in url
    assert "X-Amz-Signature=" in url
    assert "secret" not in url
