"""POST /token through the rotate_token function's own app: a new token, the old one dead, every status."""

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from common.auth import owner_of_digest
from common.config import Settings
from common.security import hash_token, new_access_token
from devstack.seed import create_user
from tests.support.auth import bearer
from tests.support.functions import build_function, build_without_database
from tests.support.problems import assert_problem


def owner(engine: Engine, token: str) -> int | None:
    with engine.connect() as connection:
        return owner_of_digest(connection, hash_token(token))


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(build_function("rotate_token", settings)) as client:
        yield client


def test_a_rotation_gives_a_new_token_and_kills_the_old(client: TestClient, engine: Engine) -> None:
    user_id, old = create_user(engine, "rotator")
    response = client.post("/token", headers=bearer(old))
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["user_id"] == user_id
    new = body["access_token"]
    assert uuid.UUID(new).version == 4
    assert new != old
    assert owner(engine, new) == user_id
    assert owner(engine, old) is None
    assert_problem(client.post("/token", headers=bearer(old)), 401)  # the old one, here too
    assert client.post("/token", headers=bearer(new)).status_code == 201  # and the new one rotates in turn


def test_concurrent_rotations_with_one_token_give_exactly_one_new_token(client: TestClient, engine: Engine) -> None:
    user_id, token = create_user(engine, "racer")
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: client.post("/token", headers=bearer(token)), range(8)))
    assert sorted(response.status_code for response in responses) == [201] + [401] * 7
    [winner] = [response.json()["access_token"] for response in responses if response.status_code == 201]
    assert owner(engine, winner) == user_id


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer"}, {"authorization": "Basic abc"}, {"authorization": f"Bearer {uuid.uuid4()}"}],
    ids=["none", "empty", "basic", "unknown"],
)
def test_no_valid_token_is_the_same_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/token", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer realm="records"'


def test_a_token_in_the_url_is_refused(client: TestClient, engine: Engine) -> None:
    _, token = create_user(engine, "careless")
    assert "URL" in assert_problem(client.post(f"/token?access_token={token}", headers=bearer(token)), 400)["detail"]
    assert owner(engine, token) is not None  # nothing was rotated


def test_other_methods_are_405(client: TestClient) -> None:
    response = client.get("/token")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


def test_without_the_database_it_is_503() -> None:
    with TestClient(build_without_database("rotate_token")) as client:
        response = client.post("/token", headers=bearer(new_access_token()))
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) > 0
