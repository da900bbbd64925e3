"""The functions' database role can do what the five functions do, and nothing more."""

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from starlette.testclient import TestClient

from common.config import Settings
from common.db import create_db_engine
from common.provision import FUNCTIONS_ROLE, let_functions_log_in
from tests.support.audio import Wav
from tests.support.auth import bearer
from tests.support.functions import build_function


@pytest.fixture(scope="module")
def functions_settings(settings: Settings, engine: Engine) -> Settings:
    """The test database's settings, connecting as the functions' role (this server trusts 127.0.0.1)."""
    let_functions_log_in(engine, SecretStr("not checked under trust"))
    url = make_url(str(settings.database_url)).set(username=FUNCTIONS_ROLE)
    return settings.model_copy(update={"database_url": url.render_as_string(hide_password=False)})


@pytest.fixture(scope="module")
def functions_engine(functions_settings: Settings) -> Iterator[Engine]:
    engine = create_db_engine(functions_settings, application_name="tests-grants")
    yield engine
    engine.dispose()


def test_the_role_is_not_the_owner_nor_a_superuser(functions_engine: Engine) -> None:
    with functions_engine.connect() as connection:
        row = connection.execute(
            text("SELECT current_user, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
        ).one()
    assert tuple(row) == (FUNCTIONS_ROLE, False, False, False)


def test_every_function_works_as_the_role(functions_settings: Settings) -> None:
    with TestClient(build_function("register", functions_settings)) as register:
        user = register.post("/register", json={"name": "granted"}).json()
    with TestClient(build_function("add_record", functions_settings)) as add_record:
        created = add_record.post(
            "/record",
            data={"user_id": str(user["user_id"]), "access_token": user["access_token"]},
            files={"file": ("granted.wav", Wav(duration_s=0.5).to_bytes(), "audio/wav")},
        )
    assert created.status_code == 201, created.text
    with TestClient(build_function("get_record", functions_settings)) as get_record:
        download = get_record.get(created.json()["url"].removeprefix("http://testserver"))
    assert download.status_code == 200
    assert len(download.content) == created.json()["size_bytes"]
    owner = bearer(user["access_token"])
    with TestClient(build_function("list_records", functions_settings)) as list_records:
        listed = list_records.get("/records", headers=owner)
    assert [record["record_id"] for record in listed.json()["records"]] == [created.json()["record_id"]]
    with TestClient(build_function("delete_record", functions_settings)) as delete_record:
        deleted = delete_record.delete(f"/record?id={created.json()['record_id']}", headers=owner)
    assert deleted.status_code == 204
    with TestClient(build_function("rotate_token", functions_settings)) as rotate_token:
        assert rotate_token.post("/token", headers=owner).status_code == 201


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE users SET name = 'mallory'",
        "UPDATE users SET id = id + 1000",
        "DELETE FROM users",
        "DELETE FROM record_chunks",
        "UPDATE records SET user_id = 1",
        "TRUNCATE record_chunks",
        "DROP TABLE records",
        "ALTER TABLE users ADD COLUMN evil text",
        "CREATE TABLE mine (id int)",
        "SELECT * FROM alembic_version",
    ],
)
def test_anything_else_is_refused(functions_engine: Engine, statement: str) -> None:
    with functions_engine.connect() as connection, pytest.raises(ProgrammingError, match="InsufficientPrivilege"):
        connection.execute(text(statement))
