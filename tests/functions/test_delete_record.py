"""DELETE /record through the delete_record function's own app: every status, and nothing left behind."""

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from common.config import Settings
from common.models import Record, RecordChunk
from common.storage.write import used_bytes
from devstack.seed import create_user, seed_record
from functions.delete_record.store import delete_owned
from tests.support.auth import bearer
from tests.support.functions import build_function, build_without_database
from tests.support.problems import assert_problem


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_function("delete_record", settings)) as client:
        yield client


@pytest.fixture
def owner(engine: Engine) -> tuple[int, str]:
    return create_user(engine, "deleter")


def stored(engine: Engine, record_id: uuid.UUID) -> tuple[int, int]:
    """The record's rows and chunk rows still in the database."""
    with Session(engine) as session:
        rows = session.exec(select(func.count()).select_from(Record).where(col(Record.id) == record_id)).one()
        chunks = session.exec(
            select(func.count()).select_from(RecordChunk).where(col(RecordChunk.record_id) == record_id)
        ).one()
    return rows, chunks


def test_delete_removes_the_row_and_every_chunk(client: TestClient, engine: Engine, owner: tuple[int, str]) -> None:
    record_id = seed_record(engine, owner[0], os.urandom(3 * 256 * 1024 + 1))
    assert stored(engine, record_id) == (1, 4)
    response = client.delete(f"/record?id={record_id}", headers=bearer(owner[1]))
    assert response.status_code == 204
    assert response.content == b""
    assert stored(engine, record_id) == (0, 0)
    with engine.connect() as connection:
        assert used_bytes(connection, owner[0]) == 0  # the quota is freed too


def test_the_download_link_itself_may_be_deleted(client: TestClient, engine: Engine, owner: tuple[int, str]) -> None:
    record_id = seed_record(engine, owner[0], b"mp3")
    response = client.delete(f"/record?id={record_id}&user={owner[0]}", headers=bearer(owner[1]))
    assert response.status_code == 204


def test_a_second_delete_is_404(client: TestClient, engine: Engine, owner: tuple[int, str]) -> None:
    record_id = seed_record(engine, owner[0], b"mp3")
    assert client.delete(f"/record?id={record_id}", headers=bearer(owner[1])).status_code == 204
    assert_problem(client.delete(f"/record?id={record_id}", headers=bearer(owner[1])), 404)


def test_unknown_and_anothers_records_get_the_same_404(
    client: TestClient, engine: Engine, owner: tuple[int, str]
) -> None:
    someone = create_user(engine, "someone")
    theirs = seed_record(engine, someone[0], b"theirs")
    unknown = assert_problem(client.delete(f"/record?id={uuid.uuid4()}", headers=bearer(owner[1])), 404)
    foreign = assert_problem(client.delete(f"/record?id={theirs}", headers=bearer(owner[1])), 404)
    assert unknown == foreign
    assert stored(engine, theirs) == (1, 1)


def test_a_user_parameter_not_the_callers_is_404(client: TestClient, engine: Engine, owner: tuple[int, str]) -> None:
    record_id = seed_record(engine, owner[0], b"mp3")
    assert_problem(client.delete(f"/record?id={record_id}&user={owner[0] + 1}", headers=bearer(owner[1])), 404)
    assert stored(engine, record_id) == (1, 1)


def test_of_concurrent_deletes_exactly_one_deletes(engine: Engine, owner: tuple[int, str]) -> None:
    record_id = seed_record(engine, owner[0], os.urandom(1000))
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: delete_owned(engine, record_id, owner[0]), range(8)))
    assert outcomes.count("postgres") == 1  # where its bytes were: the one deletion that found it
    assert outcomes.count(None) == 7


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer "}, {"Authorization": "Token abc"}, {"Authorization": f"Bearer {uuid.uuid4()}"}],
    ids=["no-token", "empty-token", "other-scheme", "unknown-token"],
)
def test_without_a_valid_token_it_is_401_and_nothing_goes(
    client: TestClient, engine: Engine, owner: tuple[int, str], headers: dict[str, str]
) -> None:
    record_id = seed_record(engine, owner[0], b"mp3")
    response = client.delete(f"/record?id={record_id}", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer realm="records"'
    assert stored(engine, record_id) == (1, 1)


def test_a_token_in_the_url_is_refused(client: TestClient, engine: Engine, owner: tuple[int, str]) -> None:
    record_id = seed_record(engine, owner[0], b"mp3")
    assert_problem(client.delete(f"/record?id={record_id}&access_token={owner[1]}"), 400)
    assert stored(engine, record_id) == (1, 1)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "id"),
        ("id=not-a-uuid", "id"),
        (f"id={uuid.uuid4()}&id={uuid.uuid4()}", "id"),
        (f"id={uuid.uuid4()}&user=0", "user"),
        (f"id={uuid.uuid4()}&user=x", "user"),
        (f"id={uuid.uuid4()}&user={2**63}", "user"),
    ],
    ids=["missing", "malformed", "twice", "user-zero", "user-text", "user-past-bigint"],
)
def test_invalid_parameters_are_422_naming_them(
    client: TestClient, owner: tuple[int, str], query: str, field: str
) -> None:
    body = assert_problem(client.delete(f"/record?{query}", headers=bearer(owner[1])), 422)
    assert [error["field"] for error in body["errors"]] == [field]


def test_other_methods_are_405(client: TestClient) -> None:
    assert_problem(client.get(f"/record?id={uuid.uuid4()}"), 405)


def test_an_unreachable_database_is_503_with_retry_after() -> None:
    with TestClient(build_without_database("delete_record")) as client:
        response = client.delete(f"/record?id={uuid.uuid4()}", headers=bearer(str(uuid.uuid4())))
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
